"""seq2seq data stats: counts, lengths, unknowns and filtering agree with training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import pytest

from seq2seq.cli import main
from seq2seq.config import from_dict
from seq2seq.data import encode_pairs, read_corpus
from seq2seq.stats import (
    SideStats,
    corpus_stats,
    format_table,
    split_stats,
    stats_tokenizer,
)
from seq2seq.tokenizer import Tokenizer
from tests.conftest import PAIRS, tiny_config, write_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Training pairs with two blank lines; a valid file with unseen characters."""
    lines = [f"{en}\t{fr}\tattr" for en, fr in PAIRS * 4]
    lines[3] = ""  # an empty pair
    lines[7] = "\tJ'ai faim.\tattr"  # an empty source
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "valid.tsv").write_text(
        "I am cold.\tJ'ai froid.\tx\nΩmega Жук.\tΩmega.\tx\n", encoding="utf-8"
    )
    return tmp_path


def _config(tmp_path: Path, corpus: Path, **data) -> dict:
    cfg = tiny_config(tmp_path, corpus / "train.tsv")
    cfg["data"].update({"valid": {"tsv": "valid.tsv"}, "test": {"tsv": "train.tsv"}})
    cfg["data"].update(src_lang="en", tgt_lang="fr", **data)
    return cfg


def test_filter_counts_agree_with_encode_pairs(tmp_path: Path, corpus: Path) -> None:
    cfg = from_dict(_config(tmp_path, corpus, max_src_len=12, max_tgt_len=14))
    sources, targets = read_corpus(cfg.data.train, corpus, "train")
    tokenizer, _ = stats_tokenizer(cfg, sources, targets)

    stats = split_stats(tokenizer, sources, targets, "train", cfg)
    kept = encode_pairs(tokenizer, sources, targets, "train", 12, 14)

    assert stats.pairs == len(PAIRS) * 4
    assert stats.empty == 2
    assert stats.too_long > 0
    assert stats.kept == len(kept)
    assert stats.filtered_at_load


def test_lengths_and_unknowns(tmp_path: Path, corpus: Path) -> None:
    cfg = from_dict(_config(tmp_path, corpus))
    sources, targets = read_corpus(cfg.data.train, corpus, "train")
    tokenizer, origin = stats_tokenizer(cfg, sources, targets)
    assert origin.startswith("trained on train as `seq2seq train` would (joint char")

    train = split_stats(tokenizer, sources, targets, "train", cfg)
    pairs = [(s, t) for s, t in zip(sources, targets) if s and t]
    assert train.source.lengths == [len(tokenizer.encode_src([s])[0]) for s, _ in pairs]
    assert train.target.lengths == [
        len(tokenizer.encode_tgt([t])[0]) + 1 for _, t in pairs
    ]
    assert train.source.tokens == sum(train.source.lengths) - len(pairs)
    assert train.source.unk_tokens == 0  # trained on these very lines
    assert 0 < train.source.pieces_used <= train.source.vocab_pieces
    assert train.source.vocab_pieces == tokenizer.src_vocab_size - 4

    valid_src, valid_tgt = read_corpus(cfg.data.valid, corpus, "valid")
    valid = split_stats(tokenizer, valid_src, valid_tgt, "valid", cfg)
    # "Ωmega Жук." has characters the training data never showed; sentencepiece
    # makes one unknown piece of each run of them: "Ω" and "Жук".
    assert valid.source.unk_tokens == 2
    assert valid.source.unk_rate == pytest.approx(2 / valid.source.tokens)
    assert valid.target.unk_tokens == 1


def test_percentiles_use_nearest_rank() -> None:
    side = SideStats("en", list(range(100, 0, -1)), 0, 0, 0, 0)
    assert side.percentiles() == {
        "mean": 50.5,
        "min": 1,
        "p50": 50,
        "p90": 90,
        "p95": 95,
        "p99": 99,
        "max": 100,
    }
    assert SideStats("en", [], 0, 0, 0, 0).percentiles()["max"] == 0
    assert SideStats("en", [], 0, 0, 0, 0).unk_rate == 0.0


def test_named_tokenizer_model_is_used(tmp_path: Path, corpus: Path) -> None:
    cfg = from_dict(_config(tmp_path, corpus))
    sources, targets = read_corpus(cfg.data.train, corpus, "train")
    trained, _ = stats_tokenizer(cfg, sources, targets)
    (corpus / "given.model").write_bytes(trained.src_model)

    named = from_dict(
        _config(tmp_path, corpus) | {"tokenizer": {"model": "given.model"}}
    )
    stats = corpus_stats(named)

    assert stats.tokenizer.startswith(f"tokenizer.model {corpus / 'given.model'}")
    assert [s.split for s in stats.splits] == ["train", "valid", "test"]
    assert (
        stats.splits[0].source.vocab_pieces
        == Tokenizer(trained.src_model).src_vocab_size - 4
    )


def test_cli_tables_plots_and_json(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "cfg.yaml", _config(tmp_path, corpus))
    out, report = tmp_path / "plots", tmp_path / "stats.json"
    backend, pyplot_loaded = (
        matplotlib.get_backend(),
        "matplotlib.pyplot" in sys.modules,
    )
    argv = ["data", "stats", str(config), "--out", str(out), "--json", str(report)]

    assert main([*argv, "data.max_src_len=12"]) == 0  # the override after options

    stdout = capsys.readouterr().out
    assert "max_src_len 12" in stdout
    for split in ("train", "valid", "test"):
        png = out / f"{split}_lengths.png"
        assert png.read_bytes().startswith(PNG_MAGIC)
        assert str(png) in stdout
    assert "test" in stdout and "(not applied: evaluate keeps them)" in stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["max_src_len"] == 12
    train = data["splits"]["train"]
    assert (train["pairs"], train["empty"]) == (48, 2)
    assert train["kept"] == 48 - 2 - train["too_long"]
    assert sum(count for _, count in train["source"]["length_counts"]) == 46
    assert data["splits"]["valid"]["source"]["unk_tokens"] == 2
    assert set(train["source"]["length"]) == {
        "mean",
        "min",
        "p50",
        "p90",
        "p95",
        "p99",
        "max",
    }
    # Only the object-oriented API: no backend switch, no pyplot.
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded


def test_cli_default_out_is_run_dir_stats(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, corpus)
    cfg["data"]["test"] = None
    config = write_config(tmp_path / "cfg.yaml", cfg)
    assert main(["data", "stats", str(config)]) == 0
    assert sorted(p.name for p in (tmp_path / "run" / "stats").iterdir()) == [
        "train_lengths.png",
        "valid_lengths.png",
    ]
    table = capsys.readouterr().out
    assert "\ntest " not in table


def test_cli_missing_corpus_is_one_line_error(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, corpus)
    cfg["data"]["valid"] = {"tsv": "nowhere.tsv"}
    config = write_config(tmp_path / "cfg.yaml", cfg)
    assert main(["data", "stats", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {corpus / 'nowhere.tsv'}: file not found\n"


def test_format_table_has_a_row_per_split_and_side(
    tmp_path: Path, corpus: Path
) -> None:
    rows = format_table(corpus_stats(from_dict(_config(tmp_path, corpus))))
    rows = rows.splitlines()[4:10]
    assert [row.split()[:3] for row in rows[::2]] == [
        ["train", "48", "en"],
        ["valid", "2", "en"],
        ["test", "48", "en"],
    ]
    assert [row.split()[0] for row in rows[1::2]] == ["fr"] * 3


@pytest.mark.parametrize(
    ("tokenizer", "expected"),
    [
        (
            {"model_type": "unigram"},  # joint, its target side restricted
            [
                "en: the joint model's {src} - 4 = {src_pieces}",
                "fr: the {tgt} - 4 = {tgt_pieces} pieces the target side keeps "
                "(tokenizer.restrict_target_vocab: those the target training text "
                "uses, and every single character)",
            ],
        ),
        (
            {"restrict_target_vocab": False},
            ["en, fr: the joint model's {src} - 4 = {src_pieces}"],
        ),
        (
            {"joint": False},
            [
                "en: its own model's {src} - 4 = {src_pieces}",
                "fr: its own model's {tgt} - 4 = {tgt_pieces}",
            ],
        ),
    ],
)
def test_table_says_why_the_sides_count_pieces_out_of_different_totals(
    tmp_path: Path, corpus: Path, tokenizer: dict, expected: list[str]
) -> None:
    cfg = _config(tmp_path, corpus)
    cfg["tokenizer"].update(tokenizer)
    stats = corpus_stats(from_dict(cfg))
    src, tgt = stats.splits[0].source.vocab_pieces, stats.splits[0].target.vocab_pieces
    lines = format_table(stats).splitlines()
    at = lines.index(
        "pieces used: distinct pieces that occur, of the side's vocabulary less its "
        "4 special ids (pad, unk, bos, eos):"
    )
    sizes = {"src": src + 4, "src_pieces": src, "tgt": tgt + 4, "tgt_pieces": tgt}
    assert lines[at + 1 : at + 1 + len(expected)] == [
        "  " + line.format(**sizes) for line in expected
    ]
    assert f"of {src} (" in format_table(stats)
