"""The encoder's GRU, fast: each ``(encoder, embedded (B, S, E), src_lengths (B,))
-> outputs (B, S, dirs * H) (0 on padding), final hidden (layers * dirs, B, H)``,
the numbers of :meth:`seq2seq.model.Encoder.gru`.

- :func:`stacked_encoder`: the reference's layer loop, each layer's directions
  side by side in one :class:`~seq2seq.kernels.gru.StackedGRU` (one batched matmul
  per step, a hand-written backward), in the autocast dtype under autocast.
- :func:`packed_encoder`: ``nn.GRU`` over packed sequences, all layers and
  directions in one call (cuDNN on CUDA; fp32 under CPU autocast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.kernels.gru import StackedGRU

if TYPE_CHECKING:
    from seq2seq.model import Encoder


def stacked_layer(
    inputs: list[torch.Tensor],
    weights: list[list[torch.Tensor]],
    dtype: torch.dtype,
    training: bool,
) -> list[torch.Tensor]:
    """One layer's directions as one :class:`StackedGRU`: inputs, per direction
    (B, S, I); weights, per direction ``nn.GRU``'s (w_ih, w_hh, b_ih, b_hh) ->
    states per direction (B, S, H), computed in ``dtype``."""
    stacked = StackedGRU.apply(
        torch.stack(inputs),  # (D, B, S, I)
        *(torch.stack(same).to(dtype) for same in zip(*weights)),  # (D, ...)
    )  # (D, S, B, H)
    return [states.transpose(0, 1) for states in stacked.unbind(0)]


def stacked_encoder(
    encoder: Encoder, embedded: torch.Tensor, src_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`Encoder.gru` with :func:`stacked_layer`. Under tracing (the ONNX
    exporter, which maps the reference's per-direction calls onto ONNX GRU ops and
    cannot record a Python autograd Function) it is the reference."""
    if torch.jit.is_tracing():
        return encoder.gru(embedded, src_lengths)
    return encoder.gru(embedded, src_lengths, run_layer=stacked_layer)


def packed_encoder(
    encoder: Encoder, embedded: torch.Tensor, src_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.GRU`` over packed sequences."""
    packed = pack_padded_sequence(
        embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False
    )
    packed_out, hidden = encoder.rnn(packed)
    outputs, _ = pad_packed_sequence(
        packed_out, batch_first=True, total_length=embedded.size(1)
    )  # (B, S, dirs * H)
    return outputs, hidden
