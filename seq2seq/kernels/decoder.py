"""The teacher-forced decoder recurrence without input feeding, planned.

Under teacher forcing every step's input (the embedded gold token) is known before
the first step. ``Linear([inputs; query]) = inputs · W_inᵀ + query · W_qᵀ + b``, so
:func:`plan_inputs` runs the inputs' columns of the attention's layers (the score
layer and ``attn_combine``) once over all T steps as one matmul, and each step of
:func:`attend_planned` multiplies only the query and the context. With one decoder
layer, one matmul of the previous state gives both its share of the attention score
and the GRU's hidden gates.

Two recurrences, each ``(decoder, embedded (B, T, E), enc) -> tops (B, T, H),
contexts (B, T, C)``, the numbers of :meth:`seq2seq.model.Decoder.rnn_step` over
all steps:

- :func:`planned_recurrence`: any rule, any number of layers, under autograd.
- :func:`attention_gru_recurrence`: the ``additive`` rule and one layer, as one
  :class:`~seq2seq.kernels.attention_gru.AttentionGRU` with a hand-written backward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

from seq2seq.attention import Attn, AttnResult
from seq2seq.kernels.attention_gru import AttentionGRU

if TYPE_CHECKING:
    from seq2seq.model import Decoder, EncoderOutput


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


class InputPlan(NamedTuple):
    """The decoder inputs' share of :meth:`Attn.attend`'s layers for every step.

    ``score`` (B, T, A): the inputs' part of the score rule's ``joint_layer``
    (``additive``: the query projection, ``concat``: the position scores), bias
    included; None for the rules whose score reads the query alone. ``output``
    (B, T, output_size): the inputs' part of ``attn_combine``, bias included.
    ``query_weight`` (A, key_size): the query's columns of the joint layer's weight
    (None with ``score``); ``context_weight`` (output_size, value_size2): the
    context's columns of ``attn_combine``'s weight. After :meth:`per_step`,
    ``score`` and ``output`` are tuples of T steps.
    """

    score: torch.Tensor | tuple[torch.Tensor, ...] | None
    output: torch.Tensor | tuple[torch.Tensor, ...]
    query_weight: torch.Tensor | None
    context_weight: torch.Tensor

    def per_step(self) -> InputPlan:
        """The plan split into steps, the form :func:`attend_planned` takes."""
        # unbind: one backward op for all steps (indexing a step would zero-fill a
        # (B, T, .) gradient at every step)
        score = None if self.score is None else self.score.unbind(1)
        return self._replace(score=score, output=self.output.unbind(1))


def plan_inputs(attention: Attn, inputs: torch.Tensor) -> InputPlan:
    """inputs (B, T, query_size) of every step -> :class:`InputPlan`."""
    size = inputs.size(-1)
    score = query_weight = None
    layer = attention.attn.joint_layer
    if layer is not None:
        input_weight, query_weight = _split_columns(layer.weight, size)
        score = nn.functional.linear(inputs, input_weight, layer.bias)  # (B, T, A)
    input_weight, context_weight = _split_columns(attention.attn_combine.weight, size)
    output = nn.functional.linear(inputs, input_weight, attention.attn_combine.bias)
    return InputPlan(score, output, query_weight, context_weight)


def attend_planned(
    attention: Attn,
    plan: InputPlan,
    step: int,
    query: torch.Tensor,
    values: torch.Tensor,
    padding: torch.Tensor | None = None,
    keys: torch.Tensor | None = None,
    query_score: torch.Tensor | None = None,
) -> AttnResult:
    """Step ``step`` of :meth:`Attn.attend` on the inputs of a plan split by
    :meth:`InputPlan.per_step`.

    query (B, key_size), values (B, L, v2); ``padding`` (B, L) is True on padding
    (the inverse of ``attend``'s mask, inverted once by the caller).
    ``query_score`` may bring ``query · plan.query_weightᵀ`` (B, A), computed by the
    caller together with other products of the query.
    """
    rule = attention.attn
    if plan.score is None:
        scores = rule.score(None, query, values, keys)  # (B, L)
    else:
        if query_score is None:
            query_score = nn.functional.linear(query, plan.query_weight)  # (B, A)
        scores = rule.score_projected(plan.score[step] + query_score, values, keys)
    weights, context = attention.weigh(scores, values, padding)
    output = plan.output[step] + nn.functional.linear(context, plan.context_weight)
    return AttnResult(output, weights, context)


def _fused_state_weights(
    decoder: Decoder, plan: InputPlan
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """With one layer and a joint score layer: weight (A + 3H, H) and bias
    (A + 3H,) that give the query's share of the score and the GRU's hidden gates
    in one matmul of the state (the score layer has no bias on the query's side).
    None otherwise."""
    if decoder.num_layers != 1 or plan.query_weight is None:
        return None
    cell = decoder.cells[0]
    weight = torch.cat((plan.query_weight, autocast_weight(cell.weight_hh)))
    zeros = cell.bias_hh.new_zeros(plan.query_weight.size(0))  # (A,)
    bias = autocast_weight(torch.cat((zeros, cell.bias_hh)))
    return weight, bias


def planned_recurrence(
    decoder: Decoder, embedded: torch.Tensor, enc: EncoderOutput
) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`Decoder.rnn_step` over all steps of embedded (B, T, E), its inputs
    planned -> top outputs (B, T, H), contexts (B, T, C)."""
    attention = decoder.attention
    plan = plan_inputs(attention, embedded)
    padding = ~enc.mask
    hidden = list(enc.hidden.unbind(0))  # layers x (B, H)
    fused = _fused_state_weights(decoder, plan)
    if fused is not None:
        split = [plan.query_weight.size(0), 3 * decoder.hidden_size]  # A, 3H
    plan = plan.per_step()
    tops, contexts = [], []
    for step in range(len(plan.output)):
        query = hidden[-1]  # (B, H)
        query_score = gates = None
        if fused is not None:
            # (B, A), (B, 3H); split: one backward op (slices would zero-fill)
            query_score, gates = nn.functional.linear(query, *fused).split(split, 1)
        att = attend_planned(
            attention, plan, step, query, enc.outputs, padding, enc.keys, query_score
        )
        hidden = decoder.gru_layers(torch.relu(att.output), hidden, gates)
        tops.append(hidden[-1])
        contexts.append(att.context)
    return torch.stack(tops, 1), torch.stack(contexts, 1)


def attention_gru_recurrence(
    decoder: Decoder, embedded: torch.Tensor, enc: EncoderOutput
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`planned_recurrence` for one layer and the ``additive`` rule, as one
    :class:`AttentionGRU`. Under tracing (which cannot record a Python autograd
    Function) it is :func:`planned_recurrence`."""
    if torch.jit.is_tracing():
        return planned_recurrence(decoder, embedded, enc)
    attention = decoder.attention
    plan = plan_inputs(attention, embedded)
    weight, bias = _fused_state_weights(decoder, plan)
    dtype = weight.dtype
    cell = decoder.cells[0]
    states, contexts = AttentionGRU.apply(
        enc.hidden[0].float(),
        plan.score.to(dtype),  # (B, T, A)
        plan.output.to(dtype),  # (B, T, H)
        enc.keys.to(dtype),
        enc.outputs.to(dtype),
        ~enc.mask,
        weight,
        bias,
        # the weights: cast like the fused ones, by autocast_weight, to its dtype
        autocast_weight(attention.attn.energy.weight)[0],
        plan.context_weight,
        autocast_weight(cell.weight_ih),
        autocast_weight(cell.bias_ih),
    )  # (T, B, H), (T, B, C)
    return states.transpose(0, 1), contexts.transpose(0, 1)
