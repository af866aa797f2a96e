"""Greedy and beam search invariants."""

from __future__ import annotations

import pytest
import torch

from seq2seq.data import collate
from seq2seq.model import Seq2Seq
from seq2seq.search import beam_search, greedy_search
from seq2seq.tokenizer import BOS_ID, EOS_ID

SOURCES = [
    [5, 6, 7, EOS_ID],
    [8, EOS_ID],
    [4, 9, 9, 4, 6, EOS_ID],
    [7, 7, EOS_ID],
    [10, 11, 12, 13, EOS_ID],
]


def copy_model(device: str = "cpu") -> Seq2Seq:
    """A model briefly trained to copy, so outputs have a mix of lengths and EOS."""
    torch.manual_seed(1)
    model = Seq2Seq(
        16,
        16,
        embed_size=16,
        encoder_hidden_size=16,
        decoder_hidden_size=32,
        max_src_len=10,
        dropout=0.0,
        kernel_device=device,
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    batch = collate(SOURCES, [[BOS_ID, *s] for s in SOURCES], list(range(5)))
    batch = batch.to(torch.device(device))
    for _ in range(15):
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), batch.tgt_out, ignore_index=0
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def model() -> Seq2Seq:
    return copy_model()


def _batch(sources):
    return collate(sources, None, list(range(len(sources))))


def test_beam_one_is_greedy(model):
    batch = _batch(SOURCES)
    greedy = greedy_search(model, batch.src, batch.src_lengths, 1.5, 3)
    beam = beam_search(
        model,
        batch.src,
        batch.src_lengths,
        beam_size=1,
        max_len_a=1.5,
        max_len_b=3,
        alpha=0.0,
    )
    for g, (b,) in zip(greedy, beam):
        assert g.tokens == b.tokens
        assert g.finished == b.finished
        assert g.score == pytest.approx(b.score, abs=1e-4)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_batch_gives_what_sentences_give_one_by_one(model, beam_size):
    batch = _batch(SOURCES)
    together = beam_search(
        model, batch.src, batch.src_lengths, beam_size, n_best=beam_size
    )
    for sentence, hyps in zip(SOURCES, together):
        alone = _batch([sentence])
        (single,) = beam_search(
            model, alone.src, alone.src_lengths, beam_size, n_best=beam_size
        )
        assert [h.tokens for h in hyps] == [h.tokens for h in single]
        assert [h.score for h in hyps] == pytest.approx(
            [h.score for h in single], abs=1e-4
        )
    greedy = greedy_search(model, batch.src, batch.src_lengths)
    for sentence, hyp in zip(SOURCES, greedy):
        alone = _batch([sentence])
        assert (
            greedy_search(model, alone.src, alone.src_lengths)[0].tokens == hyp.tokens
        )


def test_beam_hypotheses_are_sorted_and_end_at_eos(model):
    batch = _batch(SOURCES)
    results = beam_search(
        model,
        batch.src,
        batch.src_lengths,
        beam_size=5,
        n_best=5,
        max_len_a=2.0,
        max_len_b=5,
    )
    for hyps, length in zip(results, batch.src_lengths.tolist()):
        assert 1 <= len(hyps) <= 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        for h in hyps:
            assert EOS_ID not in h.tokens and BOS_ID not in h.tokens
            assert len(h.tokens) <= int(2.0 * length + 5)
            if not h.finished:
                assert len(h.tokens) == int(2.0 * length + 5)


def test_beam_search_is_at_least_as_good_as_greedy(model):
    batch = _batch(SOURCES)
    greedy = greedy_search(model, batch.src, batch.src_lengths)
    beam = beam_search(model, batch.src, batch.src_lengths, beam_size=5, alpha=0.0)
    for g, (b,) in zip(greedy, beam):
        if g.finished:
            assert b.score >= g.score - 1e-4


def test_attention_rows_are_returned_per_output_token(model):
    batch = _batch(SOURCES[:2])
    for hyp, length in zip(
        greedy_search(model, batch.src, batch.src_lengths, return_attention=True),
        [4, 2],
    ):
        steps = len(hyp.tokens) + (1 if hyp.finished else 0)
        assert hyp.attention.shape == (steps, length)
        torch.testing.assert_close(hyp.attention.sum(-1), torch.ones(steps))
    (beam,) = beam_search(
        model, batch.src[:1], batch.src_lengths[:1], 3, return_attention=True
    )
    assert beam[0].attention.shape[1] == 4


def test_n_best_larger_than_beam_is_an_error(model):
    batch = _batch(SOURCES[:1])
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model, batch.src, batch.src_lengths, beam_size=2, n_best=3)


def test_no_empty_translations_even_when_eos_is_likeliest(model):
    batch = _batch(SOURCES)
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] += 100.0  # EOS dominates every step
    try:
        for hyp in greedy_search(model, batch.src, batch.src_lengths):
            assert hyp.tokens and hyp.finished and len(hyp.tokens) == 1
        for (hyp,) in beam_search(model, batch.src, batch.src_lengths, beam_size=3):
            assert len(hyp.tokens) == 1
    finally:
        with torch.no_grad():
            model.decoder.output.bias[EOS_ID] -= 100.0
