"""Several trained models decoding as one: at each step, the average of their
next-token probabilities (as fairseq and OpenNMT-py ensemble).

:class:`Ensemble` has the three methods the searches call on a
:class:`~seq2seq.model.Seq2Seq` (``encode``, ``initial_state``, ``step``), so greedy
and beam search, ``evaluate`` and ``translate`` take it in a model's place. Each
member encodes the source and keeps its own decoder state; only the output
distribution is shared. The members must share the target vocabulary (the same
sentencepiece models: runs of one config train the same ones, and a run with other
tokenizer settings can take one run's with ``tokenizer.model``), and may otherwise
differ in size, attention rule and recipe.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from seq2seq.model import DecoderState, EncoderOutput, Seq2Seq, StepOutput


class EnsembleEncoding(NamedTuple):
    """Each member's :class:`~seq2seq.model.EncoderOutput`, in member order."""

    parts: tuple[EncoderOutput, ...]

    def select(self, rows: torch.Tensor) -> EnsembleEncoding:
        """Keep (or repeat, or reorder) batch rows of every member's encoding."""
        return EnsembleEncoding(tuple(part.select(rows) for part in self.parts))


class EnsembleState(NamedTuple):
    """Each member's :class:`~seq2seq.model.DecoderState`, in member order."""

    parts: tuple[DecoderState, ...]

    def select(self, rows: torch.Tensor) -> EnsembleState:
        """Keep (or repeat, or reorder) batch rows of every member's state."""
        return EnsembleState(tuple(part.select(rows) for part in self.parts))


class Ensemble(nn.Module):
    """Models whose next-token distributions are averaged at every step.

    ``step`` returns as logits log(mean_m p_m): already log-probabilities, so the
    searches' log_softmax leaves them as they are, and one member gives exactly its
    own log-probabilities. The attention weights returned are the members' mean.
    """

    def __init__(self, models: list[Seq2Seq]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        vocab = {m.decoder.output.out_features for m in models}
        if len(vocab) > 1:
            raise ValueError(f"the models' target vocabularies differ: {sorted(vocab)}")
        self.members = nn.ModuleList(models)
        # The concat rule cannot attend past its max_src_len; the shortest limit
        # holds for every member.
        self.max_src_len = min(m.max_src_len for m in models)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EnsembleEncoding:
        return EnsembleEncoding(tuple(m.encode(src, src_lengths) for m in self.members))

    def initial_state(self, enc: EnsembleEncoding) -> EnsembleState:
        return EnsembleState(
            tuple(m.initial_state(e) for m, e in zip(self.members, enc.parts))
        )

    def step(
        self, prev_tokens: torch.Tensor, state: EnsembleState, enc: EnsembleEncoding
    ) -> StepOutput:
        outs = [
            m.step(prev_tokens, s, e)
            for m, s, e in zip(self.members, state.parts, enc.parts)
        ]
        log_probs = torch.stack(
            [torch.log_softmax(out.logits.float(), dim=-1) for out in outs]
        )  # (M, B, V)
        mean = torch.logsumexp(log_probs, dim=0) - math.log(len(outs))
        weights = torch.stack([out.weights.float() for out in outs]).mean(dim=0)
        return StepOutput(
            mean, EnsembleState(tuple(out.state for out in outs)), weights
        )
