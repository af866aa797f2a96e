"""What users watch: bars on a terminal, plain lines in logs, --quiet, --dry-run."""

from __future__ import annotations

import gzip

import pytest

from seq2seq import progress
from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.inference import count_lines
from seq2seq.model import build_model, count_parameters
from tests.conftest import PAIRS, tiny_config, write_config


@pytest.fixture
def config(tmp_path, tiny_tsv):
    return write_config(
        tmp_path / "c.yaml",
        tiny_config(tmp_path, tiny_tsv, train={"epochs": 2, "log_every": 2}),
    )


def _terminal(monkeypatch, on: bool) -> None:
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: on)


def test_without_a_terminal_training_logs_plain_progress_lines(
    config, monkeypatch, capsys
):
    _terminal(monkeypatch, False)
    monkeypatch.setattr("seq2seq.train.PLAIN_EVERY_S", 0.0)
    assert main(["train", str(config)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if " to go" in line]
    assert lines, err
    assert lines[0].startswith("step 2 (epoch 1, ")
    assert "loss " in lines[0] and "tok/s; epoch " in lines[0]
    assert "\r" not in err  # no bar redraws in a log file
    # The log file gets them too.
    assert " to go" in (config.parent / "run" / "train.log").read_text()


def test_quiet_training_prints_no_progress(config, monkeypatch, capsys):
    _terminal(monkeypatch, True)
    monkeypatch.setattr("seq2seq.train.PLAIN_EVERY_S", 0.0)
    assert main(["train", str(config), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert " to go" not in err and "epoch 1:" not in err and "valid:" not in err


def test_on_a_terminal_training_and_validation_show_bars(config, monkeypatch, capsys):
    _terminal(monkeypatch, True)
    assert main(["train", str(config)]) == 0
    err = capsys.readouterr().err
    assert "epoch 1:" in err  # tqdm's "desc: NN%|..." form
    assert "valid:" in err
    assert " to go" not in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("progress")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = write_config(tmp / "c.yaml", tiny_config(tmp, tsv, train={"epochs": 3}))
    assert main(["train", str(cfg), "--quiet"]) == 0
    return tmp / "run"


@pytest.mark.parametrize("quiet", [False, True])
def test_evaluate_shows_a_bar_on_a_terminal_unless_quiet(
    trained, monkeypatch, capsys, quiet
):
    _terminal(monkeypatch, True)
    assert main(["evaluate", str(trained), *(["--quiet"] if quiet else [])]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("BLEU")  # stdout stays clean
    assert ("translate:" in captured.err) != quiet


def test_translate_to_a_file_shows_a_bar_with_the_input_line_count(
    trained, tmp_path, monkeypatch, capsys
):
    _terminal(monkeypatch, True)
    source = tmp_path / "in.txt"
    source.write_text("".join(en + "\n" for en, _ in PAIRS), encoding="utf-8")
    out = tmp_path / "out.txt"
    args = ["translate", str(trained), "--input", str(source), "--output", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"/{len(PAIRS)} " in err  # the total comes from counting the lines
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(PAIRS)


def test_count_lines(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_text("one\ntwo\nthree", encoding="utf-8")  # no final newline
    assert count_lines(plain) == 3
    packed = tmp_path / "a.txt.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write("one\n\nthree\n")
    assert count_lines(packed) == 3
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert count_lines(empty) == 0
    assert count_lines(tmp_path / "missing.txt") is None


def test_dry_run_reports_and_trains_nothing(config, capsys):
    assert main(["train", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    run_dir = config.parent / "run"
    assert not run_dir.exists()
    assert "# resolved config" in out and "log_every: 2" in out
    assert f"train: {len(PAIRS) * 4} pairs kept of {len(PAIRS) * 4} read" in out
    # The parameter count is the model's that training builds.
    cfg = load_config(config)
    vocab = int(out.split("vocabulary: joint ")[1].split()[0].replace(",", ""))
    model = build_model(cfg.model, cfg.data.max_src_len, vocab, vocab)
    assert f"parameters: {count_parameters(model):,};" in out
    assert "steps per epoch" in out and "epoch with validation:" in out
    assert "already holds a run" not in out
    assert main(["train", str(config), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", str(config), "--dry-run"]) == 0
    assert "already holds a run: train it further with --resume" in (
        capsys.readouterr().out
    )
