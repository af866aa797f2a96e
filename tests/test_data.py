"""Corpus reading, its errors, length filtering and bucketed batching."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
import torch

from seq2seq.config import CorpusConfig
from seq2seq.data import (
    BatchIterator,
    ParallelData,
    SubwordSampler,
    encode_pairs,
    make_batches,
    pad,
    read_corpus,
    read_lines,
)
from seq2seq.errors import UserError
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID
from tests.conftest import PAIRS


def test_pad_puts_each_row_at_the_left_and_pads_the_rest():
    rows = [[5, 6, 7], [], [8], [9, 10, 11, 12]]
    assert pad(rows).tolist() == [
        [5, 6, 7, PAD_ID],
        [PAD_ID] * 4,
        [8, PAD_ID, PAD_ID, PAD_ID],
        [9, 10, 11, 12],
    ]
    assert pad(rows).dtype == torch.long
    assert pad([[], []]).shape == (2, 0)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_plain_and_gzip_files_alike(tmp_path):
    _write(tmp_path / "a.txt", "eins\nzwei\r\n")
    with gzip.open(tmp_path / "a.gz", "wt", encoding="utf-8") as handle:
        handle.write("eins\nzwei\n")
    assert read_lines(tmp_path / "a.txt") == ["eins", "zwei"]
    assert read_lines(tmp_path / "a.gz") == ["eins", "zwei"]


def test_tsv_columns_and_extra_columns(tmp_path):
    _write(tmp_path / "p.tsv", "Go.\tVa !\tCC-BY\nHi.\tSalut !\tCC-BY\n")
    src, tgt = read_corpus(CorpusConfig(tsv="p.tsv"), tmp_path, "train")
    assert (src, tgt) == (["Go.", "Hi."], ["Va !", "Salut !"])
    src, tgt = read_corpus(
        CorpusConfig(tsv="p.tsv", src_column=1, tgt_column=0), tmp_path, "train"
    )
    assert src == ["Va !", "Salut !"]


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(UserError, match=r"nope\.de: file not found"):
        read_corpus(CorpusConfig(src="nope.de", tgt="nope.en"), tmp_path, "train")


def test_different_line_counts_name_both_files_and_counts(tmp_path):
    _write(tmp_path / "a.de", "1\n2\n3\n")
    _write(tmp_path / "a.en", "1\n2\n")
    with pytest.raises(UserError, match=r"a\.de has 3 lines but .*a\.en has 2"):
        read_corpus(CorpusConfig(src="a.de", tgt="a.en"), tmp_path, "valid")


def test_empty_corpus(tmp_path):
    _write(tmp_path / "a.de", "")
    _write(tmp_path / "a.en", "")
    with pytest.raises(UserError, match=r"data\.train: .* is empty"):
        read_corpus(CorpusConfig(src="a.de", tgt="a.en"), tmp_path, "train")


def test_invalid_utf8_names_file_and_line(tmp_path):
    (tmp_path / "bad.tsv").write_bytes(b"ok\tok\nfine\tfine\nbad \xff\tx\n")
    with pytest.raises(UserError, match=r"bad\.tsv:3: not valid UTF-8"):
        read_corpus(CorpusConfig(tsv="bad.tsv"), tmp_path, "train")


def test_tsv_line_without_target_column_names_the_line(tmp_path):
    _write(tmp_path / "p.tsv", "Go.\tVa !\nHi.\n")
    with pytest.raises(UserError, match=r"p\.tsv:2: expected at least 2"):
        read_corpus(CorpusConfig(tsv="p.tsv"), tmp_path, "train")


def test_length_filter_drops_and_reports(tmp_path, caplog):
    from seq2seq.data import encode_pairs
    from seq2seq.tokenizer import Tokenizer, train_sentencepiece

    text = ["a b c d e f g h i j"] * 20
    tok = Tokenizer(train_sentencepiece(text, 30, model_type="char"))
    sources = ["a b", "a b c d e f g h i j", "", "c"]
    targets = ["c", "d", "e", ""]
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        data = encode_pairs(
            tok, sources, targets, "train", max_src_len=6, max_tgt_len=6
        )
    assert data.src_text == ["a b"]
    assert "dropped 3 of 4 pairs (2 empty, 1 longer" in caplog.text
    with pytest.raises(UserError, match="no pairs left"):
        encode_pairs(tok, ["a b c d e f"], ["x"], "train", max_src_len=3)


def test_batches_cover_every_pair_once_and_respect_the_token_budget():
    src = [3, 9, 4, 12, 5, 7, 8, 2, 11, 6] * 7
    tgt = [4, 8, 5, 10, 6, 6, 9, 3, 12, 5] * 7
    batches = make_batches(
        src, tgt, batch_size=4, batch_tokens=40, shuffle=True, seed=3
    )
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(src)))
    for b in batches:
        longest = max(max(src[i], tgt[i]) for i in b)
        assert len(b) == 1 or longest * len(b) <= 40
    sentence_batches = make_batches(src, tgt, batch_size=4)
    assert all(len(b) == 4 for b in sentence_batches[:-1])
    # Length-sorted: every batch spans a narrow range of source lengths.
    assert [src[b[0]] for b in sentence_batches] == sorted(
        src[b[0]] for b in sentence_batches
    )


def test_epoch_order_depends_only_on_seed_and_epoch():
    data = ParallelData(
        [[1] * (i % 7 + 1) for i in range(50)],
        [[2] * (i % 5 + 2) for i in range(50)],
        [""] * 50,
        [""] * 50,
    )
    a = BatchIterator(data, 8, seed=5)
    b = BatchIterator(data, 8, seed=5)
    assert a.epoch_batches(3) == b.epoch_batches(3)
    assert a.epoch_batches(3) != a.epoch_batches(4)
    batch = a.batch(a.epoch_batches(0)[0])
    assert batch.src.shape[0] == batch.tgt_in.shape[0] == len(a.epoch_batches(0)[0])
    assert batch.tgt_in.shape == batch.tgt_out.shape


def _sampling_setup(max_src_len=None, max_tgt_len=None):
    from seq2seq.tokenizer import Tokenizer, train_sentencepiece

    text = [s for pair in PAIRS for s in pair] * 4
    tok = Tokenizer(train_sentencepiece(text, 60))  # unigram
    sources, targets = [en for en, _ in PAIRS], [fr for _, fr in PAIRS]
    data = encode_pairs(tok, sources, targets, "train")
    sampler = SubwordSampler(tok, data, 0.1, 8, 5, max_src_len, max_tgt_len)
    return tok, data, sampler


def test_subword_sampling_is_fresh_each_epoch_and_reproducible():
    tok, data, sampler = _sampling_setup()
    src3, tgt3 = sampler.epoch(3)
    assert sampler.epoch(3) == (src3, tgt3)  # (seed, epoch) decides
    src4, tgt4 = sampler.epoch(4)
    assert (src3, tgt3) != (src4, tgt4)
    assert src3 != data.src  # not the best segmentation
    for ids, text in zip(src3, data.src_text):
        assert ids[-1] == EOS_ID and EOS_ID not in ids[:-1]
        assert tok.src.decode(ids[:-1]) == text  # a segmentation of the same text
    for ids, text in zip(tgt3, data.tgt_text):
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID
        assert tok.decode_tgt([ids]) == [text]
    # The batches are built from the segmentations of the epoch asked for.
    batches = BatchIterator(data, 4, seed=1, sampler=sampler)
    first = batches.epoch_batches(3)[0]
    batch = batches.batch(first)
    for row, i in enumerate(first):
        assert batch.src[row, : len(src3[i])].tolist() == src3[i]
        assert batch.tgt_out[row, : len(tgt3[i]) - 1].tolist() == tgt3[i][1:]
    assert batches.epoch_batches(3) == BatchIterator(
        data, 4, seed=1, sampler=sampler
    ).epoch_batches(3)


def test_samples_respect_the_length_limits():
    _, data, unlimited = _sampling_setup()
    limit = max(len(s) for s in data.src)
    _, _, limited = _sampling_setup(max_src_len=limit, max_tgt_len=limit)
    longest = lambda ids: max(map(len, ids))  # noqa: E731
    assert any(longest(unlimited.epoch(e)[0]) > limit for e in range(5))
    for epoch in range(5):
        src, tgt = limited.epoch(epoch)
        assert longest(src) <= limit and longest(tgt) - 1 <= limit


def test_subword_sampling_needs_a_unigram_model():
    from seq2seq.tokenizer import Tokenizer, train_sentencepiece

    text = [s for pair in PAIRS for s in pair] * 4
    tok = Tokenizer(train_sentencepiece(text, 60, model_type="bpe"))
    data = encode_pairs(tok, ["I am cold."], ["J'ai froid."], "train")
    with pytest.raises(UserError, match="sampling_alpha: the source .* not a unigram"):
        SubwordSampler(tok, data, 0.5, 8, 0)


def test_lines_holds_out_part_of_one_file(tmp_path):
    (tmp_path / "p.tsv").write_text(
        "".join(f"s{i}\tt{i}\tattr\n" for i in range(1, 11)), encoding="utf-8"
    )
    (tmp_path / "a.de").write_text("".join(f"d{i}\n" for i in range(1, 11)))
    (tmp_path / "a.en").write_text("".join(f"e{i}\n" for i in range(1, 11)))
    src, tgt = read_corpus(CorpusConfig(tsv="p.tsv", lines="1-7"), tmp_path, "train")
    assert src == [f"s{i}" for i in range(1, 8)] and tgt[-1] == "t7"
    src, tgt = read_corpus(CorpusConfig(tsv="p.tsv", lines="8-10"), tmp_path, "valid")
    assert (src, tgt) == (["s8", "s9", "s10"], ["t8", "t9", "t10"])
    pair = CorpusConfig(src="a.de", tgt="a.en", lines="3-4")
    assert read_corpus(pair, tmp_path, "test") == (["d3", "d4"], ["e3", "e4"])


def test_lines_errors_name_the_key_and_real_line_numbers(tmp_path):
    (tmp_path / "p.tsv").write_text("a\tb\nc\td\nno tab here\ne\tf\n")
    with pytest.raises(UserError, match=r"p.tsv:3: expected at least 2"):
        read_corpus(CorpusConfig(tsv="p.tsv", lines="2-4"), tmp_path, "valid")
    past = r"data.valid.lines: 3-9 goes past the end of .*p.tsv \(4 lines\)"
    with pytest.raises(UserError, match=past):
        read_corpus(CorpusConfig(tsv="p.tsv", lines="3-9"), tmp_path, "valid")
    for bad in ("4-2", "0-3", "7", "a-b"):
        with pytest.raises(UserError, match=r"data.train.lines: .* FIRST-LAST"):
            read_corpus(CorpusConfig(tsv="p.tsv", lines=bad), tmp_path, "train")
