"""Fast recurrences for the model, chosen once when it is built.

:mod:`seq2seq.model` holds the reference math: the encoder's GRU one layer and
direction at a time (:meth:`~seq2seq.model.Encoder.gru`), and the decoder one step
at a time (:meth:`~seq2seq.model.Decoder.rnn_step`), teacher forcing included. The
kernels here compute the same numbers (up to rounding) faster, each replacing one
whole recurrence and reading the model's own parameters, so checkpoints are the
same under either choice:

- encoder (:mod:`.encoder`): ``stacked_encoder`` (the directions side by side in
  one ``StackedGRU``, :mod:`.gru`, hand-written backward) or ``packed_encoder``
  (``nn.GRU`` over packed sequences: cuDNN);
- teacher-forced decoder without input feeding (:mod:`.decoder`):
  ``planned_recurrence`` (the inputs' share of the attention planned for all steps)
  or ``attention_gru_recurrence`` (that, for the ``additive`` rule and one layer, as
  one ``AttentionGRU``, :mod:`.attention_gru`, hand-written backward).

Decoding (``Decoder.step``) and scheduled sampling always run the reference step.
:func:`select_kernels` is the one place that chooses (``model.kernels``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from seq2seq.kernels.decoder import attention_gru_recurrence, planned_recurrence
from seq2seq.kernels.encoder import packed_encoder, stacked_encoder

CHOICES = ("auto", "reference")
# (encoder, embedded (B, S, E), src_lengths (B,)) -> outputs, final hidden
EncoderKernel = Callable[..., tuple[torch.Tensor, torch.Tensor]]
# (decoder, embedded (B, T, E), encoder output) -> tops (B, T, H), contexts
DecoderKernel = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Kernels:
    """What replaces the reference recurrences (None: the reference runs), and why.

    ``encoder`` replaces :meth:`Encoder.gru`; ``decoder`` replaces the
    teacher-forced loop of :meth:`Decoder.rnn_step`.
    """

    encoder: EncoderKernel | None
    decoder: DecoderKernel | None
    reason: str


def select_kernels(
    choice: Literal["auto", "reference"],
    device: torch.device | str,
    *,
    attention: str,
    decoder_layers: int,
    input_feeding: bool,
) -> Kernels:
    """The kernels for a model that will run on ``device``.

    ``reference``: none. ``auto``: on CUDA, ``packed_encoder``; elsewhere
    ``stacked_encoder``. Without input feeding, on CPU with the ``additive`` rule and
    one decoder layer, ``attention_gru_recurrence``; otherwise
    ``planned_recurrence``. With input feeding each step's input needs the step
    before, so the decoder runs the reference loop.
    """
    if choice not in CHOICES:
        raise ValueError(f"unknown kernels {choice!r}; choose from {CHOICES}")
    if choice == "reference":
        return Kernels(None, None, "reference: model.py's recurrences")
    kind = torch.device(device).type
    if kind == "cuda":
        encoder, encoder_why = packed_encoder, "nn.GRU over packed sequences (cuDNN)"
    else:
        encoder = stacked_encoder
        encoder_why = "StackedGRU (the directions side by side, hand-written backward)"
    if input_feeding:
        decoder = None
        decoder_why = "the reference step loop (input feeding needs the step before)"
    elif kind == "cpu" and attention == "additive" and decoder_layers == 1:
        decoder = attention_gru_recurrence
        decoder_why = "AttentionGRU (additive, one layer, CPU; hand-written backward)"
    else:
        decoder = planned_recurrence
        decoder_why = "the planned recurrence (no input feeding)"
    reason = f"auto on {kind}: encoder {encoder_why}; teacher forcing {decoder_why}"
    return Kernels(encoder, decoder, reason)
