"""Attn: the seed's call, masking, padding invariance and every rule's contract."""

from __future__ import annotations

import typing

import pytest
import torch

from seq2seq.attention import RULES, Attn
from seq2seq.config import ModelConfig


def test_seed_tutorial_call_runs_unchanged():
    query_size, key_size, value_size1, value_size2, output_size = 32, 32, 32, 64, 64
    attn = Attn(query_size, key_size, value_size1, value_size2, output_size)
    Q = torch.randn(1, 1, 32)
    K = torch.randn(1, 1, 32)
    V = torch.randn(1, 32, 64)
    out = attn(Q, K, V)
    assert out[0].shape == (1, 1, 64)
    assert out[1].shape == (1, 32)
    assert torch.allclose(out[1].sum(dim=1), torch.ones(1))


def test_seed_layers_and_arithmetic():
    """Same layer names and sizes as the seed, and the seed's computation."""
    attn = Attn(32, 32, 32, 64, 64)
    assert attn.attn.weight.shape == (32, 64)  # Linear(query + key, value_size1)
    assert attn.attn_combine.weight.shape == (64, 96)  # Linear(query + value2, out)
    Q, K, V = torch.randn(1, 1, 32), torch.randn(1, 1, 32), torch.randn(1, 32, 64)
    weights = torch.softmax(attn.attn(torch.cat((Q[0], K[0]), 1)), dim=1)
    applied = torch.bmm(weights.unsqueeze(0), V)
    expected = attn.attn_combine(torch.cat((Q[0], applied[0]), 1)).unsqueeze(0)
    output, got_weights = attn(Q, K, V)
    torch.testing.assert_close(got_weights, weights)
    torch.testing.assert_close(output, expected)


def _make(rule: str) -> Attn:
    return Attn(8, 12, 10, 12, 6, rule=rule)


def _batch(lengths: list[int], width: int, size: int = 12):
    V = torch.randn(len(lengths), width, size)
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return V, mask


def test_additive_rule_is_bahdanaus_formula():
    """v · tanh(W [Q; K] + U V_i) written out, though the rule computes it with a
    sigmoid: same weights, same output."""
    attn = _make("additive")
    V, mask = _batch([4, 2], 4)
    Q, K = torch.randn(2, 8), torch.randn(2, 12)
    layers = attn.attn
    energy = torch.tanh(
        layers.query_proj(torch.cat((Q, K), 1)).unsqueeze(1) + layers.key_proj(V)
    )
    scores = (energy @ layers.energy.weight.T).squeeze(2).masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, 1)
    context = torch.bmm(weights.unsqueeze(1), V).squeeze(1)
    output, got = attn(Q, K, V, mask)
    torch.testing.assert_close(got, weights)
    torch.testing.assert_close(output, attn.attn_combine(torch.cat((Q, context), 1)))


@pytest.mark.parametrize("rule", RULES)
def test_weights_sum_to_one_and_are_zero_on_padding(rule):
    attn = _make(rule)
    V, mask = _batch([3, 7, 1], 7)
    output, weights = attn(torch.randn(3, 8), torch.randn(3, 12), V, mask)
    assert output.shape == (3, 6) and weights.shape == (3, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~mask] == 0.0)
    assert torch.all(weights[mask] > 0.0)


@pytest.mark.parametrize("rule", RULES)
def test_padding_does_not_change_results(rule):
    attn = _make(rule)
    Q, K = torch.randn(1, 8), torch.randn(1, 12)
    V = torch.randn(1, 4, 12)
    out_short, w_short = attn(Q, K, V, torch.ones(1, 4, dtype=torch.bool))
    padded = torch.cat((V, torch.randn(1, 5, 12) * 100), dim=1)  # garbage in padding
    mask = torch.arange(9).unsqueeze(0) < 4
    out_long, w_long = attn(Q, K, padded, mask)
    torch.testing.assert_close(out_long, out_short)
    torch.testing.assert_close(w_long[:, :4], w_short)
    assert torch.all(w_long[:, 4:] == 0.0)


@pytest.mark.parametrize("rule", RULES)
def test_gradients_reach_every_parameter(rule):
    attn = _make(rule)
    V, mask = _batch([5, 2], 5)
    V.requires_grad_(True)
    output, _ = attn(torch.randn(2, 8), torch.randn(2, 12), V, mask)
    output.pow(2).sum().backward()
    for name, param in attn.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert V.grad.abs().sum() > 0


@pytest.mark.parametrize("rule", ["additive", "general"])
def test_precomputed_keys_give_the_same_result(rule):
    attn = _make(rule)
    V, mask = _batch([5, 2], 5)
    Q, K = torch.randn(2, 8), torch.randn(2, 12)
    expected = attn(Q, K, V, mask)
    got = attn(Q, K, V, mask, keys=attn.prepare(V))
    torch.testing.assert_close(got, expected)


def test_concat_rule_rejects_a_source_longer_than_its_positions():
    attn = Attn(8, 12, 10, 12, 6)
    with pytest.raises(ValueError, match="value_size1=10"):
        attn(torch.randn(1, 8), torch.randn(1, 12), torch.randn(1, 11, 12))


def test_dot_rules_need_matching_sizes():
    with pytest.raises(ValueError, match="key_size == value_size2"):
        Attn(8, 12, 10, 16, 6, rule="dot")


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown attention rule"):
        Attn(8, 12, 10, 12, 6, rule="cosine")


def test_the_config_offers_every_rule():
    assert typing.get_args(typing.get_type_hints(ModelConfig)["attention"]) == RULES


def test_keyword_names_follow_the_field():
    """inputs (the seed's Q), query (its K: the decoder state), values (its V)."""
    attn = _make("general")
    V, mask = _batch([3, 2], 3)
    Q, K = torch.randn(2, 8), torch.randn(2, 12)
    by_name = attn(inputs=Q, query=K, values=V, mask=mask)
    torch.testing.assert_close(by_name, attn(Q, K, V, mask))
    keys = attn.prepare(V)  # (B, L, 12): the values projected
    scores = torch.bmm(keys, K.unsqueeze(2)).squeeze(2).masked_fill(~mask, -torch.inf)
    torch.testing.assert_close(by_name[1], torch.softmax(scores, 1))
