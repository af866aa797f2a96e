"""AttentionGRU: its hand-written backward against numerical gradients, its numbers
against the recurrence written out with Bahdanau's tanh, and bf16 against fp32."""

from __future__ import annotations

import pytest
import torch

from seq2seq.kernels.attention_gru import AttentionGRU
from seq2seq.model import Seq2Seq

T, B, S, A, C, H = 3, 2, 4, 5, 6, 7


def _inputs(dtype, scale=1.0):
    """h0, planned queries and outputs, keys, values, padding, weights (see
    AttentionGRU); the second sentence has 2 real positions."""
    torch.manual_seed(0)
    shapes = [
        (B, H), (B, T, A), (B, T, H), (B, S, A), (B, S, C),
        (A + 3 * H, H), (A + 3 * H,), (A,), (H, C), (3 * H, H), (3 * H,),
    ]  # fmt: skip
    tensors = [torch.randn(s, dtype=dtype) * scale for s in shapes]
    padding = torch.tensor([[False] * S, [False, False] + [True] * (S - 2)])
    tensors.insert(5, padding)
    return [t if t.dtype == torch.bool else t.requires_grad_() for t in tensors]


def _written_out(
    h0, queries, planned, keys, values, padding, w_f, b_f, v, w_c, w_ih, b_ih
):
    """One step after the other with autograd, the score as v · tanh(.) (the keys
    come doubled, as Attn.prepare gives them)."""
    h, states, contexts = h0, [], []
    for t in range(T):
        k, g_h = (h @ w_f.T + b_f).split([A, 3 * H], 1)
        energy = torch.tanh(keys / 2 + (queries[:, t] + k).unsqueeze(1))
        weights = torch.softmax((energy @ v).masked_fill(padding, -torch.inf), 1)
        context = (weights.unsqueeze(2) * values).sum(1)
        g_i = torch.relu(planned[:, t] + context @ w_c.T) @ w_ih.T + b_ih
        (i_r, i_z, i_n), (h_r, h_z, h_n) = g_i.chunk(3, 1), g_h.chunk(3, 1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * h
        states.append(h)
        contexts.append(context)
    return torch.stack(states), torch.stack(contexts)


def _float_inputs(inputs):
    return [t for t in inputs if t.dtype != torch.bool]


def test_backward_matches_numerical_gradients():
    assert torch.autograd.gradcheck(AttentionGRU.apply, _inputs(torch.float64))


def test_numbers_and_gradients_are_the_recurrence_written_out():
    inputs = _inputs(torch.float64)
    grads = (
        torch.randn(T, B, H, dtype=torch.float64),
        torch.randn(T, B, C, dtype=torch.float64),
    )
    results = []
    for run in (AttentionGRU.apply, _written_out):
        states, contexts = run(*inputs)
        params = _float_inputs(inputs)
        results.append(
            (states, contexts, torch.autograd.grad((states, contexts), params, grads))
        )
    (states, contexts, mine), (ref_states, ref_contexts, reference) = results
    torch.testing.assert_close(states, ref_states)
    torch.testing.assert_close(contexts, ref_contexts)
    for got, expected in zip(mine, reference, strict=True):
        torch.testing.assert_close(got, expected)
    values_grad = mine[4]
    assert torch.all(values_grad[1, 2:] == 0)  # padding gets no gradient


def test_bf16_stays_close_to_fp32():
    """Matmuls in bf16, state and gates in fp32: within 3% of each fp32 result's
    largest entry (inputs at a trained model's scale)."""
    inputs = _inputs(torch.float32, scale=0.3)
    grads = torch.randn(T, B, H), torch.randn(T, B, C)
    states, contexts = AttentionGRU.apply(*inputs)
    reference = [
        states,
        contexts,
        *torch.autograd.grad((states, contexts), _float_inputs(inputs), grads),
    ]
    low = [
        t.detach() if t.dtype == torch.bool else t.detach().bfloat16() for t in inputs
    ]
    low[0] = low[0].float()  # the state stays fp32
    low = [t if t.dtype == torch.bool else t.requires_grad_() for t in low]
    states, contexts = AttentionGRU.apply(*low)
    got = [
        states,
        contexts,
        *torch.autograd.grad(
            (states, contexts), _float_inputs(low), (grads[0], grads[1].bfloat16())
        ),
    ]
    # states fp32, contexts bf16, each gradient in its input's dtype
    dtypes = [torch.float32, torch.bfloat16] + [t.dtype for t in _float_inputs(low)]
    assert [t.dtype for t in got] == dtypes
    for mine, ref in zip(got, reference, strict=True):
        error = (mine.float() - ref).abs().max()
        assert error <= 0.03 * ref.abs().max()


@pytest.mark.parametrize(
    ("rule", "layers", "kernels", "used"),
    [
        ("additive", 1, "auto", True),
        ("additive", 1, "reference", False),
        ("additive", 2, "auto", False),
        ("general", 1, "auto", False),
    ],
)
def test_the_decoder_runs_it_for_one_layer_and_additive_attention(
    rule, layers, kernels, used, monkeypatch
):
    calls = []
    apply = AttentionGRU.apply
    monkeypatch.setattr(AttentionGRU, "apply", lambda *a: calls.append(1) or apply(*a))
    torch.manual_seed(0)
    model = Seq2Seq(
        20,
        22,
        8,
        6,
        decoder_hidden_size=12,
        decoder_layers=layers,
        attention=rule,
        kernels=kernels,
    )
    src = torch.tensor([[5, 6, 2], [7, 2, 0]])
    tgt = torch.tensor([[1, 3, 2], [1, 2, 0]])
    model(src, torch.tensor([3, 2]), tgt)
    assert bool(calls) == used
