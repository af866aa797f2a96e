"""Ensemble decoding: the step is log(mean of the members' probabilities), one
member decodes as the model itself, and the search invariants hold for an ensemble."""

from __future__ import annotations

import pytest
import torch

from seq2seq.ensemble import Ensemble
from seq2seq.model import Seq2Seq
from seq2seq.search import beam_search, greedy_search
from seq2seq.tokenizer import BOS_ID
from tests.test_search import SOURCES, _batch, copy_model


@pytest.fixture(scope="module")
def models() -> tuple[Seq2Seq, Seq2Seq]:
    """Two different copy models: the second with other weights and the general
    rule, so the members' distributions and attention differ."""
    first = copy_model()
    torch.manual_seed(5)
    second = Seq2Seq(
        16,
        16,
        embed_size=8,
        encoder_hidden_size=12,
        decoder_hidden_size=24,
        max_src_len=8,
        attention="general",
        dropout=0.0,
    ).eval()
    return first, second


def test_step_is_the_log_of_the_members_mean_probability(models):
    ensemble = Ensemble(list(models))
    batch = _batch(SOURCES)
    prev = torch.full((len(SOURCES),), BOS_ID)
    with torch.no_grad():
        enc = ensemble.encode(batch.src, batch.src_lengths)
        state = ensemble.initial_state(enc)
        probs, weights = [], []
        for model in models:
            own = model.encode(batch.src, batch.src_lengths)
            out = model.step(prev, model.initial_state(own), own)
            probs.append(torch.softmax(out.logits, -1))
            weights.append(out.weights)
        for _ in range(2):  # the second step runs from the ensemble's own state
            out = ensemble.step(prev, state, enc)
            expected = torch.log((probs[0] + probs[1]) / 2)
            torch.testing.assert_close(out.logits, expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.weights, (weights[0] + weights[1]) / 2)
            torch.testing.assert_close(
                out.logits.exp().sum(-1), torch.ones(len(SOURCES))
            )
            prev, state = out.logits.argmax(-1), out.state
            probs, weights = [], []
            for model, own_state, own_enc in zip(models, state.parts, enc.parts):
                step = model.step(prev, own_state, own_enc)
                probs.append(torch.softmax(step.logits, -1))
                weights.append(step.weights)
    assert ensemble.max_src_len == 8  # the shorter member's limit


def test_one_member_decodes_exactly_as_the_model(models):
    model = models[0]
    batch = _batch(SOURCES)
    alone = Ensemble([model])
    for mine, its in zip(
        greedy_search(alone, batch.src, batch.src_lengths),
        greedy_search(model, batch.src, batch.src_lengths),
    ):
        assert mine.tokens == its.tokens
        assert mine.score == pytest.approx(its.score, abs=1e-5)
    for mine, its in zip(
        beam_search(alone, batch.src, batch.src_lengths, 4, n_best=4),
        beam_search(model, batch.src, batch.src_lengths, 4, n_best=4),
    ):
        assert [h.tokens for h in mine] == [h.tokens for h in its]
        assert [h.score for h in mine] == pytest.approx([h.score for h in its], 1e-5)


def test_a_model_ensembled_with_itself_keeps_its_output(models):
    model = models[0]
    batch = _batch(SOURCES)
    twice = beam_search(Ensemble([model, model]), batch.src, batch.src_lengths, 3)
    once = beam_search(model, batch.src, batch.src_lengths, 3)
    assert [h[0].tokens for h in twice] == [h[0].tokens for h in once]
    assert [h[0].score for h in twice] == pytest.approx(
        [h[0].score for h in once], abs=1e-4
    )


def test_search_invariants_hold_for_an_ensemble(models):
    ensemble = Ensemble(list(models))
    batch = _batch(SOURCES)
    greedy = greedy_search(ensemble, batch.src, batch.src_lengths, 1.5, 3)
    beam1 = beam_search(ensemble, batch.src, batch.src_lengths, 1, 1.5, 3, 0.0)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beam1]
    together = beam_search(ensemble, batch.src, batch.src_lengths, 4, n_best=4)
    for sentence, hyps in zip(SOURCES, together):
        alone = _batch([sentence])
        (single,) = beam_search(ensemble, alone.src, alone.src_lengths, 4, n_best=4)
        assert [h.tokens for h in hyps] == [h.tokens for h in single]
        scores = [h.score for h in hyps]
        assert scores == pytest.approx([h.score for h in single], abs=1e-4)
        assert scores == sorted(scores, reverse=True)


def test_members_must_share_the_target_vocabulary(models):
    other = Seq2Seq(16, 20, embed_size=8, encoder_hidden_size=8, decoder_hidden_size=8)
    with pytest.raises(ValueError, match="target vocabularies differ"):
        Ensemble([models[0], other])
