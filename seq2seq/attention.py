"""``Attn``: the seed tutorial's attention module, batched, masked, with every rule.

The seed's call keeps working unchanged::

    attn = Attn(32, 32, 32, 64, 64)
    output, weights = attn(torch.randn(1, 1, 32), torch.randn(1, 1, 32),
                           torch.randn(1, 32, 64))      # (1, 1, 64), (1, 32)

In the decoder, Q is the embedded previous target token, K the decoder's hidden
state and V the encoder outputs. A rule turns (Q, K, V) into one score per source
position; softmax over the real positions gives the weights (exactly 0 on padding),
``context = weights · V``, and ``attn_combine([Q; context])`` is the output.

Rules (``rule=``):

- ``concat``: the seed's location rule, ``softmax(Linear([Q; K]))`` over a fixed
  number ``value_size1`` of positions; sources longer than that are an error.
- ``additive``: Bahdanau, ``v · tanh(W [Q; K] + U V_i)``, content-based.
- ``dot``: Luong, ``K · V_i`` (needs ``key_size == value_size2``).
- ``general``: Luong, ``K · W V_i``.
- ``scaled_dot``: ``K · V_i / sqrt(value_size2)`` (needs ``key_size == value_size2``).

For the content-based rules ``prepare(V)`` computes the per-position key projection
once per sentence; pass its result as ``keys=`` to every step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

RULES = ("concat", "additive", "dot", "general", "scaled_dot")


class AttnResult(NamedTuple):
    """output (B, output_size), weights (B, L), context (B, value_size2)."""

    output: torch.Tensor
    weights: torch.Tensor
    context: torch.Tensor


class ConcatScore(nn.Linear):
    """The seed's rule: ``Linear([Q; K])`` gives one score per fixed position."""

    def __init__(self, query_size: int, key_size: int, positions: int) -> None:
        super().__init__(query_size + key_size, positions)
        self.positions = positions

    def prepare(self, values: torch.Tensor) -> None:
        return None

    def score(
        self, query: torch.Tensor, key: torch.Tensor, values: torch.Tensor, keys: None
    ) -> torch.Tensor:
        length = values.size(1)
        if length > self.positions:
            raise ValueError(
                f"source of {length} positions is longer than the concat attention's "
                f"limit value_size1={self.positions}"
            )
        scores = super().forward(torch.cat((query, key), dim=-1))  # (B, positions)
        return scores[:, :length]  # (B, L)


class AdditiveScore(nn.Module):
    """Bahdanau: ``v · tanh(W [Q; K] + U V_i)``."""

    def __init__(
        self, query_size: int, key_size: int, value_size: int, hidden: int
    ) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_size + key_size, hidden, bias=False)
        self.key_proj = nn.Linear(value_size, hidden)
        self.energy = nn.Linear(hidden, 1, bias=False)

    def prepare(self, values: torch.Tensor) -> torch.Tensor:
        return self.key_proj(values)  # (B, L, hidden)

    def score(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        values: torch.Tensor,
        keys: torch.Tensor | None,
    ) -> torch.Tensor:
        if keys is None:
            keys = self.prepare(values)
        q = self.query_proj(torch.cat((query, key), dim=-1))  # (B, hidden)
        # tanh_ in place: the sum is a fresh tensor that nothing else needs
        return self.energy((keys + q.unsqueeze(1)).tanh_()).squeeze(2)  # (B, L)


class DotScore(nn.Module):
    """Luong dot (``K · V_i``), optionally scaled by ``1 / sqrt(d)``."""

    def __init__(self, key_size: int, value_size: int, scaled: bool) -> None:
        super().__init__()
        if key_size != value_size:
            raise ValueError(
                f"dot-product attention needs key_size == value_size2, got {key_size} "
                f"and {value_size}"
            )
        self.scale = 1.0 / math.sqrt(value_size) if scaled else 1.0

    def prepare(self, values: torch.Tensor) -> None:
        return None

    def score(
        self, query: torch.Tensor, key: torch.Tensor, values: torch.Tensor, keys: None
    ) -> torch.Tensor:
        scores = torch.bmm(values, key.unsqueeze(2)).squeeze(2)  # (B, L)
        return scores * self.scale if self.scale != 1.0 else scores


class GeneralScore(nn.Module):
    """Luong general: ``K · W V_i``."""

    def __init__(self, key_size: int, value_size: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(value_size, key_size, bias=False)

    def prepare(self, values: torch.Tensor) -> torch.Tensor:
        return self.key_proj(values)  # (B, L, key_size)

    def score(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        values: torch.Tensor,
        keys: torch.Tensor | None,
    ) -> torch.Tensor:
        if keys is None:
            keys = self.prepare(values)
        return torch.bmm(keys, key.unsqueeze(2)).squeeze(2)  # (B, L)


class Attn(nn.Module):
    """Attention of Q under K and V, then a linear layer on ``[Q; context]``.

    Args:
        query_size: last dimension of Q.
        key_size: last dimension of K.
        value_size1: number of value positions the ``concat`` rule scores (the
            maximum source length); other rules accept any length.
        value_size2: last dimension of V.
        output_size: last dimension of the output.
        rule: one of :data:`RULES`.
        attn_hidden: hidden size of the ``additive`` rule (default ``key_size``).

    Shapes: Q ``(B, query_size)``, K ``(B, key_size)``, V ``(B, L, value_size2)``,
    mask ``(B, L)`` (True on real positions) -> output ``(B, output_size)``,
    weights ``(B, L)``. The seed's 3-D form, Q ``(B, 1, q)``, K ``(B, 1, k)``, gives
    output ``(B, 1, output_size)``.
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        value_size1: int,
        value_size2: int,
        output_size: int,
        rule: str = "concat",
        attn_hidden: int | None = None,
    ) -> None:
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"unknown attention rule {rule!r}; choose from {RULES}")
        self.rule = rule
        self.value_size1 = value_size1
        if rule == "concat":
            self.attn = ConcatScore(query_size, key_size, value_size1)
        elif rule == "additive":
            self.attn = AdditiveScore(
                query_size, key_size, value_size2, attn_hidden or key_size
            )
        elif rule == "general":
            self.attn = GeneralScore(key_size, value_size2)
        else:
            self.attn = DotScore(key_size, value_size2, scaled=rule == "scaled_dot")
        self.attn_combine = nn.Linear(query_size + value_size2, output_size)

    def prepare(self, V: torch.Tensor) -> torch.Tensor | None:
        """Per-sentence key projection of V (B, L, v2), reused at every step."""
        return self.attn.prepare(V)

    def attend(
        self,
        Q: torch.Tensor,
        K: torch.Tensor,
        V: torch.Tensor,
        mask: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
    ) -> AttnResult:
        """Batched attention on 2-D Q and K; see the class docstring for shapes."""
        scores = self.attn.score(Q, K, V, keys)  # (B, L)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(V.dtype)  # (B, L)
        context = torch.bmm(weights.unsqueeze(1), V).squeeze(1)  # (B, v2)
        output = self.attn_combine(torch.cat((Q, context), dim=-1))  # (B, output_size)
        return AttnResult(output, weights, context)

    def forward(
        self,
        Q: torch.Tensor,
        K: torch.Tensor,
        V: torch.Tensor,
        mask: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(output, attn_weights)``; 3-D Q/K give 3-D output as in the seed."""
        if Q.dim() == 3:
            result = self.attend(Q.squeeze(1), K.squeeze(1), V, mask, keys)
            return result.output.unsqueeze(1), result.weights  # (B, 1, out), (B, L)
        result = self.attend(Q, K, V, mask, keys)
        return result.output, result.weights
