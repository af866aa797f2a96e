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
once per sentence; pass its result as ``keys=`` to every step. When Q is known for
every step in advance (teacher forcing), ``plan(Q)`` computes Q's share of the score
layer and of ``attn_combine`` for all steps at once, and ``attend_planned`` runs a
step from it: the same numbers as ``attend`` with smaller per-step matmuls.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

RULES = ("concat", "additive", "dot", "general", "scaled_dot")


def autocast_weight(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` in the autocast dtype when autocast is on for its device.

    Autocast caches the casts of parameters only; a slice or a concatenation of
    them would be cast again at every call, so it is cast once here instead.
    """
    kind = weight.device.type
    if torch.is_autocast_enabled(kind):
        return weight.to(torch.get_autocast_dtype(kind))
    return weight


def _split_columns(
    weight: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, size + rest) -> its first ``size`` columns and the rest."""
    return autocast_weight(weight[:, :size]), autocast_weight(weight[:, size:])


class QueryPlan(NamedTuple):
    """Q's share of :meth:`Attn.attend`'s layers for every step, from :meth:`Attn.plan`.

    ``score`` (B, T, A): Q's part of the score layer (``additive``: the query
    projection, ``concat``: the position scores, bias included); None for the rules
    whose scores do not depend on Q. ``output`` (B, T, output_size): Q's part of
    ``attn_combine``, bias included. ``key_weight`` (A, key_size): K's part of the
    score layer's weight (None with ``score``); ``context_weight`` (output_size,
    value_size2): the context's part of ``attn_combine``'s weight. After
    :meth:`per_step`, ``score`` and ``output`` are tuples of T steps.
    """

    score: torch.Tensor | tuple[torch.Tensor, ...] | None
    output: torch.Tensor | tuple[torch.Tensor, ...]
    key_weight: torch.Tensor | None
    context_weight: torch.Tensor

    def per_step(self) -> QueryPlan:
        """The plan split into steps, the form :meth:`Attn.attend_planned` takes."""
        # unbind: one backward op for all steps (indexing a step would zero-fill a
        # (B, T, .) gradient at every step)
        score = None if self.score is None else self.score.unbind(1)
        return self._replace(score=score, output=self.output.unbind(1))


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

    @property
    def query_layer(self) -> nn.Linear:
        return self

    def prepare(self, values: torch.Tensor) -> None:
        return None

    def score(
        self, query: torch.Tensor, key: torch.Tensor, values: torch.Tensor, keys: None
    ) -> torch.Tensor:
        scores = super().forward(torch.cat((query, key), dim=-1))  # (B, positions)
        return self.score_projected(scores, values, keys)

    def score_projected(
        self, projected: torch.Tensor, values: torch.Tensor, keys: None
    ) -> torch.Tensor:
        """``Linear([Q; K])`` (B, positions) -> the scores (B, L) of the real length."""
        length = values.size(1)
        if length > self.positions:
            raise ValueError(
                f"source of {length} positions is longer than the concat attention's "
                f"limit value_size1={self.positions}"
            )
        return projected[:, :length]  # (B, L)


class AdditiveScore(nn.Module):
    """Bahdanau: ``v · tanh(W [Q; K] + U V_i)``.

    Computed as ``2 v · sigmoid(2 y)`` with ``y = W [Q; K] + U V_i``: since
    ``tanh(y) = 2 sigmoid(2 y) - 1``, that is the score minus the constant ``Σ v``,
    which the softmax over positions cancels, and on CPU sigmoid runs 3x faster
    than tanh (the (B, L, hidden) tanh was 19% of the teacher-forced recurrence's
    forward). ``prepare`` returns the keys doubled, ``2 U V_i``, for this form.
    """

    def __init__(
        self, query_size: int, key_size: int, value_size: int, hidden: int
    ) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_size + key_size, hidden, bias=False)
        self.key_proj = nn.Linear(value_size, hidden)
        self.energy = nn.Linear(hidden, 1, bias=False)

    @property
    def query_layer(self) -> nn.Linear:
        return self.query_proj

    def prepare(self, values: torch.Tensor) -> torch.Tensor:
        return self.key_proj(values).mul_(2)  # (B, L, hidden): 2 U V_i

    def score(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        values: torch.Tensor,
        keys: torch.Tensor | None,
    ) -> torch.Tensor:
        q = self.query_proj(torch.cat((query, key), dim=-1))  # (B, hidden)
        return self.score_projected(q, values, keys)

    def score_projected(
        self, projected: torch.Tensor, values: torch.Tensor, keys: torch.Tensor | None
    ) -> torch.Tensor:
        """``W [Q; K]`` (B, hidden) -> the scores (B, L), less ``Σ v``."""
        if keys is None:
            keys = self.prepare(values)
        # sigmoid_ in place: the sum is a fresh tensor that nothing else needs
        gates = torch.add(keys, projected.unsqueeze(1), alpha=2).sigmoid_()
        return self.energy(gates).squeeze(2).mul(2)


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

    query_layer = None

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

    query_layer = None

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
        weights, context = self._weigh(scores, V, None if mask is None else ~mask)
        output = self.attn_combine(torch.cat((Q, context), dim=-1))  # (B, output_size)
        return AttnResult(output, weights, context)

    def _weigh(
        self, scores: torch.Tensor, V: torch.Tensor, padding: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """scores (B, L) -> weights (B, L), 0 where ``padding``; context (B, v2)."""
        if padding is not None:
            scores = scores.masked_fill(padding, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(V.dtype)  # (B, L)
        context = torch.bmm(weights.unsqueeze(1), V).squeeze(1)  # (B, v2)
        return weights, context

    def plan(self, Q: torch.Tensor) -> QueryPlan:
        """Q (B, T, query_size) of every step -> :class:`QueryPlan`.

        ``Linear([Q; K]) = Q · W_Qᵀ + K · W_Kᵀ + b``: Q's halves of the score layer
        and of ``attn_combine`` run here as one matmul over all T steps, and each
        step of :meth:`attend_planned` multiplies only K and the context.
        """
        size = Q.size(-1)
        score = key_weight = None
        layer = self.attn.query_layer
        if layer is not None:
            query_weight, key_weight = _split_columns(layer.weight, size)
            score = nn.functional.linear(Q, query_weight, layer.bias)
        query_weight, context_weight = _split_columns(self.attn_combine.weight, size)
        output = nn.functional.linear(Q, query_weight, self.attn_combine.bias)
        return QueryPlan(score, output, key_weight, context_weight)

    def attend_planned(
        self,
        plan: QueryPlan,
        step: int,
        K: torch.Tensor,
        V: torch.Tensor,
        padding: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
        key_score: torch.Tensor | None = None,
    ) -> AttnResult:
        """Step ``step`` of :meth:`attend` on the Q of :meth:`plan`, split by
        :meth:`QueryPlan.per_step`.

        K (B, key_size), V (B, L, v2); ``padding`` (B, L) is True on padding (the
        inverse of ``attend``'s mask, inverted once by the caller). ``key_score``
        may bring ``K · plan.key_weightᵀ`` (B, A), computed by the caller together
        with other products of K.
        """
        if plan.score is None:
            scores = self.attn.score(None, K, V, keys)
        else:
            if key_score is None:
                key_score = nn.functional.linear(K, plan.key_weight)
            scores = self.attn.score_projected(plan.score[step] + key_score, V, keys)
        weights, context = self._weigh(scores, V, padding)
        output = plan.output[step] + nn.functional.linear(context, plan.context_weight)
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
