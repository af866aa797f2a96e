"""The prepared-data cache: equal to direct encoding, rebuilt when stale or
damaged, never trusted half-written; the streaming reader and numpy batching."""

from __future__ import annotations

import gzip
import logging
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from seq2seq import data as data_module
from seq2seq import prepared
from seq2seq.config import CorpusConfig, from_dict
from seq2seq.data import (
    BatchIterator,
    SubwordSampler,
    encode_pairs,
    iter_lines,
    make_batches,
    read_corpus,
)
from seq2seq.errors import UserError
from seq2seq.tokenizer import Tokenizer, train_sentencepiece
from tests.conftest import PAIRS, ROOT, tiny_config


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A TSV of the pairs, with an empty line and an over-long pair to drop."""
    lines = [f"{en}\t{fr}" for en, fr in PAIRS * 4]
    lines[5] = ""
    lines[9] = "a " * 30 + "\tb"
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _config(tmp_path: Path, corpus: Path, **sections):
    return from_dict(tiny_config(tmp_path, corpus, **sections), "test")


def _tokenizer(vocab: int = 60, model_type: str = "char") -> Tokenizer:
    text = [s for pair in PAIRS for s in pair] * 4
    return Tokenizer(train_sentencepiece(text, vocab, model_type=model_type))


def test_round_trip_equals_direct_encoding(tmp_path, corpus):
    cfg = _config(tmp_path, corpus)
    tok = _tokenizer()
    flat = prepared.load_or_prepare(cfg, "train", tok, tmp_path / "cache")
    sources, targets = read_corpus(cfg.data.train, corpus.parent, "train")
    direct = encode_pairs(tok, sources, targets, "train", 24, 24)
    assert isinstance(flat.src_ids.base, np.memmap) and flat.src_ids.dtype == np.int16
    assert len(flat) == len(direct) == len(PAIRS) * 4 - 2
    assert flat.pairs_read == len(PAIRS) * 4
    assert flat.to_parallel() == direct  # ids, BOS / EOS and text
    # A second call maps the same files instead of encoding again.
    again = prepared.load_or_prepare(cfg, "train", tok, tmp_path / "cache")
    assert again.source == flat.source and flat.source.parent == tmp_path / "cache"


def test_worker_processes_write_what_one_process_writes(tmp_path, corpus, monkeypatch):
    cfg = _config(tmp_path, corpus)
    tok = _tokenizer()
    monkeypatch.setattr(prepared, "CHUNK_PAIRS", 7)  # several chunks, in order
    one = prepared.load_or_prepare(cfg, "train", tok, tmp_path / "one", workers=1)
    two = prepared.load_or_prepare(cfg, "train", tok, tmp_path / "two", workers=2)
    assert two.to_parallel() == one.to_parallel()


def test_a_changed_corpus_file_is_prepared_again(tmp_path, corpus, caplog):
    cfg = _config(tmp_path, corpus)
    tok = _tokenizer()
    cache = tmp_path / "cache"
    first = prepared.load_or_prepare(cfg, "train", tok, cache)
    old_dir = first.source
    with corpus.open("a", encoding="utf-8") as handle:
        handle.write("New line.\tNouvelle ligne.\n")
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        second = prepared.load_or_prepare(cfg, "train", tok, cache)
    assert "pairs.tsv changed since it was prepared" in caplog.text
    assert len(second) == len(first) + 1
    assert second.tgt_text[len(second) - 1] == "Nouvelle ligne."
    assert not old_dir.exists()  # no corpus can hit it again


def test_another_tokenizer_gets_its_own_cache(tmp_path, corpus, caplog):
    cfg = _config(tmp_path, corpus)
    cache = tmp_path / "cache"
    char = prepared.load_or_prepare(cfg, "train", _tokenizer(), cache)
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        unigram = prepared.load_or_prepare(
            cfg, "train", _tokenizer(80, "unigram"), cache
        )
    assert "(another tokenizer)" in caplog.text
    assert unigram.source != char.source
    assert len(unigram.src_ids) < len(char.src_ids)  # pieces, not characters


def test_a_damaged_cache_is_rebuilt_with_the_reason(tmp_path, corpus, caplog):
    cfg = _config(tmp_path, corpus)
    tok = _tokenizer()
    cache = tmp_path / "cache"
    good = prepared.load_or_prepare(cfg, "train", tok, cache).to_parallel()
    directory = next(cache.glob("train-*"))
    ids = directory / "tgt.ids"
    ids.write_bytes(ids.read_bytes()[:-6])  # truncated
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        again = prepared.load_or_prepare(cfg, "train", tok, cache)
    assert f"prepared cache {directory} is damaged (tgt.ids has" in caplog.text
    assert again.to_parallel() == good
    (directory / "meta.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        prepared.load_or_prepare(cfg, "train", tok, cache)
    assert "damaged (no meta.json)" in caplog.text


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from seq2seq import prepared
    from seq2seq.config import load_config
    from seq2seq.tokenizer import Tokenizer

    add = prepared._SplitWriter.add
    def add_then_die(self, chunk):
        add(self, chunk)
        os.kill(os.getpid(), signal.SIGKILL)  # mid-way: one chunk written
    prepared._SplitWriter.add = add_then_die
    prepared.CHUNK_PAIRS = 5
    tokenizer = Tokenizer(open(sys.argv[2], "rb").read())
    prepared.load_or_prepare(load_config(sys.argv[1]), "train", tokenizer)
    """
)


def test_a_run_killed_while_preparing_leaves_nothing_trusted(tmp_path, corpus, caplog):
    cfg_dict = tiny_config(tmp_path, corpus)
    config = tmp_path / "c.yaml"
    import yaml

    config.write_text(yaml.safe_dump(cfg_dict), encoding="utf-8")
    tok = _tokenizer()
    model = tmp_path / "spm.model"
    model.write_bytes(tok.src_model)
    cache = tmp_path / "cache"
    env = {**os.environ, prepared.CACHE_ENV: str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", KILLED, str(config), str(model)],
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    assert result.returncode == -9, result.stderr
    assert list(cache.glob(".tmp-train-*"))  # the half-written split
    assert not list(cache.glob("train-*"))  # never under its real name
    cfg = from_dict(cfg_dict, "test")
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        flat = prepared.load_or_prepare(cfg, "train", tok, cache)
    assert "left by a preparation that did not finish" in caplog.text
    assert not list(cache.glob(".tmp-*"))
    sources, targets = read_corpus(cfg.data.train, corpus.parent, "train")
    assert flat.to_parallel() == encode_pairs(tok, sources, targets, "train", 24, 24)


def test_streaming_reader_names_file_and_line_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "READ_BLOCK", 7)  # lines span blocks
    lines = [f"line {i} ü" for i in range(1, 40)]
    plain = tmp_path / "a.txt"
    plain.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    packed = tmp_path / "a.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write("\r\n".join(lines) + "\r\n")
    assert list(iter_lines(plain)) == lines == list(iter_lines(packed))
    bad = tmp_path / "bad.de"
    bad.write_bytes("\n".join(lines[:22]).encode() + b"\n\xff broken\n" + b"ok\n")
    with pytest.raises(UserError, match=r"bad\.de:23: not valid UTF-8 \(byte 0xff\)"):
        list(iter_lines(bad))
    assert list(iter_lines(bad, skip_bad=True))[22:] == [None, "ok"]
    tsv = tmp_path / "p.tsv"
    tsv.write_text("a\tb\n" * 30 + "no tab\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"p\.tsv:31: expected at least 2"):
        read_corpus(CorpusConfig(tsv="p.tsv"), tmp_path, "train")


def _greedy_token_batches(src, tgt, order, budget):
    """The list-based cutting rule numpy's must equal."""
    batches, current, longest = [], [], 0
    for i in order:
        longest_if_added = max(longest, tgt[i], src[i])
        if current and longest_if_added * (len(current) + 1) > budget:
            batches.append(current)
            current, longest_if_added = [], max(tgt[i], src[i])
        current.append(i)
        longest = longest_if_added
    return batches + [current]


def test_token_batches_cut_where_the_greedy_rule_cuts():
    rng = random.Random(0)
    src = [rng.randint(1, 60) for _ in range(3000)]
    tgt = [rng.randint(1, 60) for _ in range(3000)]
    for budget in (1, 50, 700, 4096):
        batches = make_batches(src, tgt, 8, budget, shuffle=False)
        order = [i for b in batches for i in b]
        expected = _greedy_token_batches(src, tgt, order, budget)
        assert list(batches) == expected


def test_sampled_segmentation_depends_on_seed_epoch_and_sentence_alone():
    text = [s for pair in PAIRS for s in pair] * 4
    tok = Tokenizer(train_sentencepiece(text, 60))  # unigram
    sources, targets = [en for en, _ in PAIRS], [fr for _, fr in PAIRS]
    data = encode_pairs(tok, sources, targets, "train")
    sampler = SubwordSampler(tok, data, 0.1, 8, 5)
    everything = sampler.draw(range(len(data)), 2)
    # A batch of some sentences (another rank's, or one after a resume, with a
    # sampler built afresh) draws what the whole epoch drew for them.
    fresh = SubwordSampler(tok, data, 0.1, 8, 5)
    rows = [7, 2, 9]
    src, tgt = fresh.draw(rows, 2)
    assert src == [everything[0][i] for i in rows]
    assert tgt == [everything[1][i] for i in rows]
    assert sampler.draw(range(len(data)), 3) != everything
    assert SubwordSampler(tok, data, 0.1, 8, 6).draw(range(len(data)), 2) != everything


def test_sampled_batches_are_planned_on_their_sampled_lengths():
    """Batches group pairs of similar lengths in the epoch's segmentations (not in
    the best ones, which would pad every sampled batch to its longest draw)."""
    text = [s for pair in PAIRS for s in pair] * 4
    tok = Tokenizer(train_sentencepiece(text, 60))  # unigram
    sources, targets = [en for en, _ in PAIRS] * 4, [fr for _, fr in PAIRS] * 4
    data = encode_pairs(tok, sources, targets, "train")
    sampler = SubwordSampler(tok, data, 0.1, 8, 5)
    batches = BatchIterator(data, 4, seed=1, sampler=sampler)
    for epoch in (0, 1):
        src_lengths, tgt_lengths = sampler.lengths(epoch, chunk=5)
        plan = batches.epoch_batches(epoch)
        assert plan == make_batches(
            src_lengths, tgt_lengths, 4, None, True, 1 * 100_003 + epoch
        )
        for indices in plan:
            batch = batches.batch(indices)
            assert batch.src_lengths.tolist() == src_lengths[list(indices)].tolist()
            assert (batch.tgt_out != 0).sum(1).tolist() == tgt_lengths[
                list(indices)
            ].tolist()


def test_batches_read_from_the_arrays_equal_the_list_batches(tmp_path, corpus):
    cfg = _config(tmp_path, corpus)
    tok = _tokenizer()
    flat = prepared.load_or_prepare(cfg, "train", tok, tmp_path / "cache")
    lists = flat.to_parallel()
    mapped, listed = BatchIterator(flat, 5, seed=3), BatchIterator(lists, 5, seed=3)
    assert mapped.epoch_batches(1) == listed.epoch_batches(1)
    for indices in mapped.epoch_batches(1):
        batch = mapped.batch(indices)
        rows = [lists.tgt[i] for i in indices]
        assert batch.src_lengths.tolist() == [len(lists.src[i]) for i in indices]
        for row, (i, target) in enumerate(zip(indices, rows)):
            assert batch.src[row, : len(lists.src[i])].tolist() == lists.src[i]
            assert batch.tgt_in[row, : len(target) - 1].tolist() == target[:-1]
            assert batch.tgt_out[row, : len(target) - 1].tolist() == target[1:]


def test_an_unwritable_cache_is_a_one_line_error(tmp_path, corpus):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(UserError, match=r"cannot create the prepared-data cache .*"):
        prepared.load_or_prepare(
            _config(tmp_path, corpus), "train", _tokenizer(), blocker / "cache"
        )


def _prepared_sampler(tmp_path, corpus, seed: int = 5) -> SubwordSampler:
    cfg = _config(tmp_path, corpus)
    tok = _tokenizer(model_type="unigram")
    flat = prepared.load_or_prepare(cfg, "train", tok, tmp_path / "cache")
    return SubwordSampler(tok, flat, 0.5, 8, seed)


def test_sampled_lengths_are_kept_beside_the_split_and_read_back(
    tmp_path, corpus, caplog, monkeypatch
):
    sampler = _prepared_sampler(tmp_path, corpus)
    direct = sampler.draw_lengths(0, len(sampler.data), 1, chunk=3)
    with caplog.at_level(logging.INFO, logger="seq2seq.sampled"):
        drawn = sampler.lengths(1, chunk=3, workers=2)  # two spawned processes
    assert [a.tolist() for a in drawn] == [a.tolist() for a in direct]
    assert "kept in" in caplog.text and "2 processes" in caplog.text
    stored = list(sampler.data.source.glob("sampled-*-epoch1.npy"))
    assert len(stored) == 1 and not list(sampler.data.source.glob(".*.tmp"))
    # A sampler built afresh (a restart) reads them instead of drawing.
    again = SubwordSampler(sampler.tokenizer, sampler.data, 0.5, 8, 5)
    monkeypatch.setattr(SubwordSampler, "draw", None)  # drawing would fail
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seq2seq.sampled"):
        read = again.lengths(1)
    assert "read from" in caplog.text
    assert [a.tolist() for a in read] == [a.tolist() for a in direct]


def test_damaged_sampled_lengths_are_drawn_again_and_old_epochs_dropped(
    tmp_path, corpus, caplog
):
    sampler = _prepared_sampler(tmp_path, corpus)
    first = sampler.lengths(0)
    (path,) = sampler.data.source.glob("sampled-*-epoch0.npy")
    path.write_bytes(path.read_bytes()[:-8])  # truncated
    with caplog.at_level(logging.WARNING, logger="seq2seq.sampled"):
        redrawn = sampler.lengths(0)
    assert "damaged" in caplog.text and path.name in caplog.text
    assert [a.tolist() for a in redrawn] == [a.tolist() for a in first]
    sampler.lengths(1)
    sampler.lengths(2)  # keeps epochs 1 and 2
    epochs = sorted(p.name[-5] for p in sampler.data.source.glob("sampled-*.npy"))
    assert epochs == ["1", "2"]
    # Another seed draws other segmentations: its own files, not these.
    other = SubwordSampler(sampler.tokenizer, sampler.data, 0.5, 8, 6)
    other.lengths(2)
    assert len(list(sampler.data.source.glob("sampled-*-epoch2.npy"))) == 2


def test_data_prepare_draws_the_first_epoch_that_train_then_reads(
    tmp_path, corpus, capfd
):
    from seq2seq.cli import main
    from tests.conftest import write_config

    cfg = tiny_config(
        tmp_path,
        corpus,
        tokenizer={"vocab_size": 60, "model_type": "unigram", "sampling_alpha": 0.5},
    )
    path = write_config(tmp_path / "run.yaml", cfg)
    assert main(["data", "prepare", str(path)]) == 0
    printed = capfd.readouterr().out
    assert "epoch 0's segmentation lengths in" in printed and "-epoch0.npy" in printed
    assert main(["train", str(path), "--dry-run"]) == 0
    report = capfd.readouterr().out
    assert "subword sampling (alpha 0.5): epoch 0's segmentation lengths read" in report


def test_another_sampling_alpha_keeps_the_trained_tokenizer(tmp_path, corpus, caplog):
    """alpha's value does not change the sentencepiece model (whether sampling is
    on does: the target-vocabulary cut reads n-best lists then)."""
    cache = tmp_path / "cache"

    def tokenizer(alpha: float):
        settings = {"vocab_size": 60, "model_type": "unigram", "sampling_alpha": alpha}
        cfg = _config(tmp_path, corpus, tokenizer=settings)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="seq2seq"):
            prepared.load_or_train_tokenizer(cfg, cache)
        return "trained earlier" in caplog.text

    assert not tokenizer(0.5)
    assert tokenizer(0.2)
    assert not tokenizer(0.0)


def test_sampled_lengths_use_a_process_per_core_on_large_corpora(monkeypatch):
    from seq2seq import sampled

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(4)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert sampled.default_workers(sampled.PARALLEL_FROM - 1) == 1
    assert sampled.default_workers(sampled.PARALLEL_FROM) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: two ranks share them
    assert sampled.default_workers(10**7) == 2


def test_batch_plan_is_the_same_whatever_the_length_arrays_dtype():
    """int32 indices and sort keys (half the memory of the plan at 29 M pairs)
    give the plan of a sort on Python ints, also where a key needs 64 bits."""
    rng = random.Random(3)
    for longest in (60, 70_000):  # 70,001**2 does not fit an int32 key
        src = [rng.randint(1, longest) for _ in range(2000)]
        tgt = [rng.randint(1, longest) for _ in range(2000)]
        plan = make_batches(
            np.array(src, np.int32), np.array(tgt, np.int32), 8, None, True, 4
        )
        assert plan.order.dtype == np.int32
        assert list(plan) == list(make_batches(src, tgt, 8, None, True, 4))
        # the plan's order as int64 arrays made it (the code before int32)
        order = np.random.Generator(np.random.PCG64(4)).permutation(2000)
        s64, t64 = np.array(src, np.int64), np.array(tgt, np.int64)
        key = s64[order] * (t64.max() + 1) + t64[order]
        assert plan.order.tolist() == order[np.argsort(key, kind="stable")].tolist()
        flat = [i for batch in make_batches(src, tgt, 8, None, False) for i in batch]
        assert flat == sorted(range(2000), key=lambda i: (src[i], tgt[i]))


def test_processes_sharing_the_cache_draw_an_epoch_once(tmp_path, corpus, monkeypatch):
    """Two samplers (two ranks) asking for the same epoch at once: one draws, the
    other waits on the lock and reads what it wrote."""
    import threading
    import time

    from seq2seq import sampled

    sampler = _prepared_sampler(tmp_path, corpus)
    other = SubwordSampler(sampler.tokenizer, sampler.data, 0.5, 8, 5)
    draws = []
    real = sampled._draw

    def slow_draw(*args):
        draws.append(1)
        time.sleep(0.5)  # long enough for the other to ask meanwhile
        return real(*args)

    monkeypatch.setattr(sampled, "_draw", slow_draw)
    results = {}
    threads = [
        threading.Thread(target=lambda s=s: results.__setitem__(s, s.lengths(4)))
        for s in (sampler, other)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(draws) == 1
    assert {s.lengths_note.split()[0] for s in (sampler, other)} == {"drawn", "read"}
    assert results[sampler][0].tolist() == results[other][0].tolist()
