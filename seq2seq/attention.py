"""``Attn``: the seed tutorial's attention module, batched, masked, with every rule.

The seed's call keeps working unchanged::

    attn = Attn(32, 32, 32, 64, 64)
    output, weights = attn(torch.randn(1, 1, 32), torch.randn(1, 1, 32),
                           torch.randn(1, 32, 64))      # (1, 1, 64), (1, 32)

Names, as JoeyNMT and fairseq use them: the decoder state is the **query**, the
encoder outputs are the **values** (the memory), and **keys** are the values
projected by the rule (``prepare``). The seed's three positional arguments are, in
order, the decoder's ``inputs`` at this step (the seed's Q: the embedded previous
target token, with input feeding also the previous attentional vector), the
``query`` (the seed's K) and the ``values`` (the seed's V). A rule turns them into
one score per source position; softmax over the real positions gives the weights
(exactly 0 on padding), ``context = weights · values``, and
``attn_combine([inputs; context])`` is the output.

Rules (``rule=``), one score class each in :data:`SCORES`:

- ``concat``: the seed's location rule, ``softmax(Linear([inputs; query]))`` over a
  fixed number ``value_size1`` of positions; sources longer than that are an error.
- ``additive``: Bahdanau, ``v · tanh(W [inputs; query] + U values_i)``.
- ``dot``: Luong, ``query · values_i`` (needs ``key_size == value_size2``).
- ``general``: Luong, ``query · W values_i``.
- ``scaled_dot``: ``query · values_i / sqrt(value_size2)`` (as ``dot``).

For the rules with keys, ``prepare(values)`` computes them once per sentence; pass
the result as ``keys=`` to every step. The fast teacher-forced recurrences
(:mod:`seq2seq.kernels.decoder`) split a score class's ``joint_layer`` into its
inputs' and its query's columns; see docs/KERNELS.md for adding a rule.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn


class AttnResult(NamedTuple):
    """output (B, output_size), weights (B, L), context (B, value_size2)."""

    output: torch.Tensor
    weights: torch.Tensor
    context: torch.Tensor


# Every score class takes the same five sizes: inputs, query, value positions
# (value_size1), value features (value_size2) and the rule's hidden size. It has
# ``prepare(values) -> keys or None`` and ``score(inputs, query, values, keys) ->
# (B, L)``, and ``joint_layer``: the nn.Linear over [inputs; query] whose output
# ``score_projected(projected, values, keys)`` turns into the scores, or None for a
# score that reads the query alone (``score`` then accepts ``inputs=None``).


class ConcatScore(nn.Linear):
    """The seed's rule: ``Linear([inputs; query])`` gives one score per fixed
    position."""

    def __init__(
        self, input_size: int, query_size: int, positions: int, value_size: int, _: int
    ) -> None:
        super().__init__(input_size + query_size, positions)
        self.positions = positions

    @property
    def joint_layer(self) -> nn.Linear:
        return self

    def prepare(self, values: torch.Tensor) -> None:
        return None

    def score(
        self,
        inputs: torch.Tensor,
        query: torch.Tensor,
        values: torch.Tensor,
        keys: None,
    ) -> torch.Tensor:
        scores = super().forward(torch.cat((inputs, query), dim=-1))  # (B, positions)
        return self.score_projected(scores, values, keys)

    def score_projected(
        self, projected: torch.Tensor, values: torch.Tensor, keys: None
    ) -> torch.Tensor:
        """``Linear([inputs; query])`` (B, positions) -> the scores (B, L) of the
        real length."""
        length = values.size(1)
        if length > self.positions:
            raise ValueError(
                f"source of {length} positions is longer than the concat attention's "
                f"limit value_size1={self.positions}"
            )
        return projected[:, :length]  # (B, L)


class AdditiveScore(nn.Module):
    """Bahdanau: ``v · tanh(W [inputs; query] + U values_i)``.

    Computed as ``2 v · sigmoid(2 y)`` with ``y = W [inputs; query] + U values_i``:
    since ``tanh(y) = 2 sigmoid(2 y) - 1``, that is the score minus the constant
    ``Σ v``, which the softmax over positions cancels, and on CPU sigmoid is much
    cheaper than tanh. ``prepare`` returns the keys doubled, ``2 U values_i``, for
    this form.
    """

    def __init__(
        self,
        input_size: int,
        query_size: int,
        positions: int,
        value_size: int,
        hidden: int,
    ) -> None:
        super().__init__()
        self.query_proj = nn.Linear(input_size + query_size, hidden, bias=False)
        self.key_proj = nn.Linear(value_size, hidden)
        self.energy = nn.Linear(hidden, 1, bias=False)

    @property
    def joint_layer(self) -> nn.Linear:
        return self.query_proj

    def prepare(self, values: torch.Tensor) -> torch.Tensor:
        return self.key_proj(values).mul_(2)  # (B, L, hidden): 2 U values_i

    def score(
        self,
        inputs: torch.Tensor,
        query: torch.Tensor,
        values: torch.Tensor,
        keys: torch.Tensor | None,
    ) -> torch.Tensor:
        projected = self.query_proj(torch.cat((inputs, query), dim=-1))  # (B, hidden)
        return self.score_projected(projected, values, keys)

    def score_projected(
        self, projected: torch.Tensor, values: torch.Tensor, keys: torch.Tensor | None
    ) -> torch.Tensor:
        """``W [inputs; query]`` (B, hidden) -> the scores (B, L), less ``Σ v``."""
        if keys is None:
            keys = self.prepare(values)
        # sigmoid_ in place: the sum is a fresh tensor that nothing else needs
        gates = torch.add(keys, projected.unsqueeze(1), alpha=2).sigmoid_()
        return self.energy(gates).squeeze(2).mul(2)  # (B, L)


class DotScore(nn.Module):
    """Luong dot: ``query · values_i``."""

    joint_layer = None
    scale = 1.0

    def __init__(
        self, input_size: int, query_size: int, positions: int, value_size: int, _: int
    ) -> None:
        super().__init__()
        if query_size != value_size:
            raise ValueError(
                "dot-product attention needs key_size == value_size2, got "
                f"{query_size} and {value_size}"
            )

    def prepare(self, values: torch.Tensor) -> None:
        return None

    def score(
        self,
        inputs: torch.Tensor | None,
        query: torch.Tensor,
        values: torch.Tensor,
        keys: None,
    ) -> torch.Tensor:
        scores = torch.bmm(values, query.unsqueeze(2)).squeeze(2)  # (B, L)
        return scores * self.scale if self.scale != 1.0 else scores


class ScaledDotScore(DotScore):
    """``query · values_i / sqrt(value_size2)``."""

    def __init__(
        self, input_size: int, query_size: int, positions: int, value_size: int, _: int
    ) -> None:
        super().__init__(input_size, query_size, positions, value_size, _)
        self.scale = 1.0 / math.sqrt(value_size)


class GeneralScore(nn.Module):
    """Luong general: ``query · W values_i``."""

    joint_layer = None

    def __init__(
        self, input_size: int, query_size: int, positions: int, value_size: int, _: int
    ) -> None:
        super().__init__()
        self.key_proj = nn.Linear(value_size, query_size, bias=False)

    def prepare(self, values: torch.Tensor) -> torch.Tensor:
        return self.key_proj(values)  # (B, L, query_size)

    def score(
        self,
        inputs: torch.Tensor | None,
        query: torch.Tensor,
        values: torch.Tensor,
        keys: torch.Tensor | None,
    ) -> torch.Tensor:
        if keys is None:
            keys = self.prepare(values)
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (B, L)


SCORES: dict[str, type[nn.Module]] = {
    "concat": ConcatScore,
    "additive": AdditiveScore,
    "dot": DotScore,
    "general": GeneralScore,
    "scaled_dot": ScaledDotScore,
}
RULES = tuple(SCORES)


class Attn(nn.Module):
    """Attention of the query over the values, then a linear layer on
    ``[inputs; context]``.

    Args (the seed's names and order):
        query_size: last dimension of the seed's Q, here the decoder's ``inputs``.
        key_size: last dimension of the seed's K, here the ``query`` (the decoder
            state).
        value_size1: number of value positions the ``concat`` rule scores (the
            maximum source length); other rules accept any length.
        value_size2: last dimension of the ``values``.
        output_size: last dimension of the output.
        rule: one of :data:`RULES`.
        attn_hidden: hidden size of the ``additive`` rule (default ``key_size``).

    Shapes: inputs ``(B, query_size)``, query ``(B, key_size)``, values
    ``(B, L, value_size2)``, mask ``(B, L)`` (True on real positions) -> output
    ``(B, output_size)``, weights ``(B, L)``. The seed's 3-D form, inputs
    ``(B, 1, query_size)`` and query ``(B, 1, key_size)``, gives output
    ``(B, 1, output_size)``.
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
        if rule not in SCORES:
            raise ValueError(f"unknown attention rule {rule!r}; choose from {RULES}")
        self.rule = rule
        self.value_size1 = value_size1
        self.attn = SCORES[rule](
            query_size, key_size, value_size1, value_size2, attn_hidden or key_size
        )
        self.attn_combine = nn.Linear(query_size + value_size2, output_size)

    def prepare(self, values: torch.Tensor) -> torch.Tensor | None:
        """The keys: values (B, L, value_size2) projected by the rule, once per
        sentence and reused at every step; None for the rules without keys."""
        return self.attn.prepare(values)

    def attend(
        self,
        inputs: torch.Tensor,
        query: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
    ) -> AttnResult:
        """Batched attention on 2-D inputs and query; see the class docstring."""
        scores = self.attn.score(inputs, query, values, keys)  # (B, L)
        weights, context = self.weigh(scores, values, None if mask is None else ~mask)
        output = self.attn_combine(torch.cat((inputs, context), dim=-1))  # (B, out)
        return AttnResult(output, weights, context)

    def weigh(
        self, scores: torch.Tensor, values: torch.Tensor, padding: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """scores (B, L) -> weights (B, L), 0 where ``padding`` (B, L) is True;
        context (B, value_size2)."""
        if padding is not None:
            scores = scores.masked_fill(padding, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(values.dtype)  # (B, L)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (B, v2)
        return weights, context

    def forward(
        self,
        inputs: torch.Tensor,
        query: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The seed's ``Attn(Q, K, V)``: ``(output, attn_weights)``; 3-D inputs and
        query give a 3-D output as in the seed."""
        if inputs.dim() == 3:
            inputs, query = inputs.squeeze(1), query.squeeze(1)  # (B, q), (B, k)
            result = self.attend(inputs, query, values, mask, keys)
            return result.output.unsqueeze(1), result.weights  # (B, 1, out), (B, L)
        result = self.attend(inputs, query, values, mask, keys)
        return result.output, result.weights
