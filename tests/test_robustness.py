"""Nothing trusted blindly: corrupt checkpoints, bad corpus lines, configs and their
files checked before training, and hostile input to the translator."""

from __future__ import annotations

import gzip
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq import checkpoint as ckpt
from seq2seq.cli import main
from seq2seq.config import CorpusConfig, replace
from seq2seq.data import read_corpus
from seq2seq.errors import UserError
from seq2seq.inference import Translator, load_model
from tests.conftest import (
    PAIRS,
    ROOT,
    SHARED_DATA,
    shared_data_root,
    tiny_config,
    write_config,
)

# ---------------------------------------------------------------- checkpoints


def _save(directory: Path, step: int, keep: int = 2) -> None:
    """What Trainer.save does: latest.pt, then the train.keep_last rotation."""
    state = {"model": {"w": torch.full((50, 50), float(step))}, "step": step}
    digest = ckpt.save_checkpoint(state, directory / ckpt.LATEST)
    ckpt.keep_last(directory, step, keep, digest)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        _flip_a_byte,  # torch.load alone would load this one without a word
        lambda p: p.write_bytes(p.read_bytes()[:3000]),
        lambda p: p.write_bytes(b""),
    ],
    ids=["flipped byte", "truncated", "empty"],
)
def test_a_damaged_checkpoint_is_detected_by_its_sha256(tmp_path, damage):
    _save(tmp_path, 1)
    damage(tmp_path / "latest.pt")
    with pytest.raises(UserError, match=r"latest\.pt: corrupt or truncated"):
        ckpt.load_checkpoint(tmp_path / "latest.pt")


def test_sha256_file_is_in_sha256sum_form_and_optional(tmp_path):
    _save(tmp_path, 3)
    digest, name = (tmp_path / "latest.pt.sha256").read_text().split()
    assert name == "latest.pt" and digest == ckpt.file_sha256(tmp_path / "latest.pt")
    (tmp_path / "latest.pt.sha256").unlink()  # e.g. a checkpoint copied by hand
    assert ckpt.load_checkpoint(tmp_path / "latest.pt")["step"] == 3


def test_keep_last_rotates_and_never_deletes_the_only_good_checkpoint(tmp_path):
    for step in (4, 5, 8, 10):
        _save(tmp_path, step, keep=2)
    assert [p.name for p in ckpt.last_checkpoints(tmp_path)] == [
        "last-step10.pt",
        "last-step8.pt",
    ]
    _save(tmp_path, 12, keep=1)  # keep_last lowered on resume: latest.pt alone
    assert ckpt.last_checkpoints(tmp_path) == []
    assert ckpt.load_checkpoint(tmp_path / "latest.pt")["step"] == 12
    for step in (13, 14, 15, 16):
        _save(tmp_path, step, keep=3)
    assert [int(p.name[9:-3]) for p in ckpt.last_checkpoints(tmp_path)] == [
        16,
        15,
        14,
    ]
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_resume_candidates_fall_back_newest_first(tmp_path):
    for step in (4, 8, 10):
        _save(tmp_path, step)
    state, path, problems = ckpt.latest_good_checkpoint(tmp_path)
    assert (state["step"], path.name, problems) == (10, "latest.pt", [])
    _flip_a_byte(tmp_path / "latest.pt")  # a hard link: last-step10.pt too
    state, path, problems = ckpt.latest_good_checkpoint(tmp_path)
    assert (state["step"], path.name, len(problems)) == (8, "last-step8.pt", 2)
    _flip_a_byte(tmp_path / "last-step8.pt")
    assert ckpt.latest_good_checkpoint(tmp_path)[0] is None
    assert ckpt.latest_good_checkpoint(tmp_path / "none") == (None, None, [])


def test_resume_with_no_good_checkpoint_is_one_line(tmp_path, capsys):
    config = write_config(
        tmp_path / "c.yaml", tiny_config(tmp_path, tmp_path / "pairs.tsv")
    )
    checkpoints = tmp_path / "run" / "checkpoints"
    for step in (4, 8):
        _save(checkpoints, step)
    for path in checkpoints.glob("*.pt"):
        path.write_bytes(path.read_bytes()[:1000])  # (hard links: twice is once)
    assert main(["train", str(config), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: --resume: no good checkpoint in ")
    assert "move the run_dir away to start over" in err


# ---------------------------------------------------------------- corpora


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bad_tsv_lines_are_errors_by_default_and_skipped_on_request(tmp_path, caplog):
    _write(
        tmp_path / "p.tsv",
        b"Go.\tVa !\nbad \xff\tx\nHi.\nRun!\tCours !\textra\n\n",
    )
    corpus = CorpusConfig(tsv="p.tsv")
    with pytest.raises(UserError, match=r"p\.tsv:2: not valid UTF-8 \(byte 0xff\)"):
        read_corpus(corpus, tmp_path, "train")
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        src, tgt = read_corpus(corpus, tmp_path, "train", on_bad_lines="skip")
    assert (src, tgt) == (["Go.", "Run!", ""], ["Va !", "Cours !", ""])
    assert (
        "data.train: skipped 2 bad pairs (data.on_bad_lines: skip): "
        "p.tsv:2 (not UTF-8), p.tsv:3 (1 columns)"
    ) in caplog.text
    _write(tmp_path / "q.tsv", b"Go.\tVa !\nHi.\n")
    with pytest.raises(UserError, match=r"q\.tsv:2: expected at least 2 .* skip\)"):
        read_corpus(CorpusConfig(tsv="q.tsv"), tmp_path, "train")


def test_bad_lines_of_aligned_files_drop_the_pair_and_keep_alignment(tmp_path, caplog):
    with gzip.open(tmp_path / "a.de.gz", "wb") as handle:
        handle.write(b"eins\nzw\xc3ei\ndrei\nvier\n")
    _write(tmp_path / "a.en", b"one\ntwo\nthree\nf\xe9our\n")
    corpus = CorpusConfig(src="a.de.gz", tgt="a.en")
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        src, tgt = read_corpus(corpus, tmp_path, "valid", on_bad_lines="skip")
    assert (src, tgt) == (["eins", "drei"], ["one", "three"])
    assert "skipped 2 bad pairs" in caplog.text
    assert "a.de.gz:2 (not UTF-8), a.en:4 (not UTF-8)" in caplog.text


def test_a_corpus_of_bad_lines_only_is_an_error_even_when_skipping(tmp_path):
    _write(tmp_path / "p.tsv", b"\xff\tx\nonly one column\n")
    with pytest.raises(UserError, match=r"data\.train: .*p\.tsv has no good lines"):
        read_corpus(CorpusConfig(tsv="p.tsv"), tmp_path, "train", "skip")


# ---------------------------------------------------------------- seq2seq validate


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
)
def test_validate_every_shipped_config_and_its_files(
    name, monkeypatch, capsys, tmp_path
):
    root = shared_data_root(name, tmp_path)
    if root is not None and not SHARED_DATA.is_dir():
        pytest.skip(f"{name} is tested on {SHARED_DATA}, which is absent")
    monkeypatch.chdir(ROOT)  # data.root is relative to the working directory
    overrides = [] if root is None else [f"data.root={root}"]
    assert main(["validate", f"configs/{name}", *overrides]) == 0, (
        capsys.readouterr().err
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"ok: configs/{name}: train ")
    assert "pairs, valid " in out[0]


def _bad_setup(tmp_path: Path, case: str) -> list[str]:
    """A config (and files) with one problem; returns the extra CLI overrides."""
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS), encoding="utf-8")
    (tmp_path / "a.de").write_text("eins\nzwei\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\n", encoding="utf-8")
    (tmp_path / "bad.tsv").write_bytes(b"Go.\tVa !\nbad \xff\tx\n")
    (tmp_path / "short.tsv").write_bytes(b"Go.\tVa !\nHi.\n")
    (tmp_path / "empty.tsv").write_bytes(b"")
    (tmp_path / "junk.model").write_bytes(b"not a sentencepiece model")
    write_config(tmp_path / "c.yaml", tiny_config(tmp_path, tsv))
    return {
        "missing corpus": ["data.valid.tsv=nope.tsv"],
        "misaligned files": ["data.valid={src: a.de, tgt: a.en}"],
        "invalid UTF-8": ["data.train.tsv=bad.tsv"],
        "missing column": ["data.test.tsv=short.tsv"],
        "empty corpus": ["data.valid.tsv=empty.tsv"],
        "missing tokenizer model": ["tokenizer.model=nope.model"],
        "not a tokenizer model": ["tokenizer.model=junk.model"],
        "missing data.root": ["data.root=/no/such/dir"],
        "n_best > beam_size": ["decode.n_best=6"],
        "unknown key": ["train.on_nans=skip"],
    }[case]


BAD_CASES = {
    "missing corpus": r"nope\.tsv: file not found",
    "misaligned files": r"a\.de has 2 lines but .*a\.en has 1",
    "invalid UTF-8": r"bad\.tsv:2: not valid UTF-8",
    "missing column": r"short\.tsv:2: expected at least 2 tab-separated columns",
    "empty corpus": r"data\.valid: .*empty\.tsv is empty",
    "missing tokenizer model": r"tokenizer\.model: cannot read sentencepiece model",
    "not a tokenizer model": r"not a sentencepiece model",
    "missing data.root": r"data\.root: /no/such/dir is not a directory",
    "n_best > beam_size": r"decode\.n_best: 6 is more than decode\.beam_size \(5\)",
    "unknown key": r"train\.on_nans: unknown key \(did you mean 'on_nan'\?\)",
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_validate_reports_the_one_problem_in_one_line(case, tmp_path, capsys):
    overrides = _bad_setup(tmp_path, case)
    assert main(["validate", str(tmp_path / "c.yaml"), *overrides]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert re.search(BAD_CASES[case], captured.err), captured.err


def test_validate_with_skip_counts_the_pairs_left(tmp_path, capsys):
    _bad_setup(tmp_path, "invalid UTF-8")
    argv = ["validate", str(tmp_path / "c.yaml"), "data.train.tsv=bad.tsv"]
    assert main([*argv, "data.on_bad_lines=skip"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ") and "train 1 pairs, valid 12 pairs" in (
        captured.out
    )
    assert "skipped 1 bad pairs" in captured.err


# ---------------------------------------------------------------- translation


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: for a model this small, more threads only wait on each
    other (and burn a busy CPU spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A model trained for a few steps: its output is nonsense, its shapes real."""
    tmp = tmp_path_factory.mktemp("tiny_run")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS * 4), encoding="utf-8")
    cfg = tiny_config(tmp, tsv, train={"max_steps": 4}, decode={"batch_size": 3})
    assert main(["train", str(write_config(tmp / "c.yaml", cfg)), "--quiet"]) == 0
    return tmp / "run"


@pytest.fixture(scope="module")
def translators(tiny_run) -> dict[int, Translator]:
    model, tokenizer, cfg = load_model(tiny_run, torch.device("cpu"))
    # Outputs of at most 3 tokens: the untrained model never says EOS, and the
    # input side is what is under test here.
    decode = replace(cfg.decode, max_len_a=0.0, max_len_b=3)
    return {
        beam: Translator(model, tokenizer, decode, torch.device("cpu"), beam_size=beam)
        for beam in (1, 3)
    }


# Any text but a line break (a line holds none): control characters and NUL, RTL
# and bidi controls, emoji, unseen scripts, only spaces, far past max_src_len.
ANY_CHARACTER = st.characters(
    blacklist_categories=("Cs",),  # lone surrogates: not text, cannot be read in
    blacklist_characters="\n",
)
LINE = st.one_of(
    st.text(ANY_CHARACTER, max_size=60),
    st.text(st.sampled_from(" \t\u00a0\u3000\u200b\r\x0b\x0c"), max_size=12),
    st.text(st.sampled_from("\x00\x01\x1b\x7f\u200e\u200f\u202e\u2066\ufeff\ufffd")),
    st.sampled_from(
        [
            "I am cold.",
            "مرحبا بالعالم",
            "שלום עולם",
            "😀👍🏽🇫🇷 👩‍👩‍👧",
            "字字字",
            "ﷺ" * 9,
        ]
    ),
    st.builds(
        lambda text, n: text * n,
        st.text(ANY_CHARACTER, min_size=1, max_size=4),
        st.integers(100, 1500),
    ),
)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(LINE, min_size=1, max_size=5), beam=st.sampled_from([1, 3]))
def test_any_text_gives_one_translation_per_line(translators, lines, beam):
    translations = translators[beam].translate_lines(lines)
    assert len(translations) == len(lines)
    for line, translation in zip(lines, translations):
        assert isinstance(translation.text, str) and "\n" not in translation.text
        if not line.strip():
            assert translation.text == ""


def test_translate_survives_invalid_utf8_and_a_5000_character_line(tiny_run):
    lines = [
        b"I am cold.",
        b"",
        b"   ",
        b"caf\xe9 \xff\xfe \xc3( broken UTF-8",
        b"word " * 1000,  # 5,000 characters, far past data.max_src_len
        "😀 مرحبا \u202eשלום 字".encode(),
        b"\x00\x01\x1b[31m\x7f",
        b"He eats bread.",  # the last line has no newline
    ]
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq", "translate", str(tiny_run)],
        input=b"\n".join(lines),
        capture_output=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out = result.stdout.decode("utf-8").split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines)  # one line per input line
    assert out[1] == out[2] == ""
    assert b"source tokens; only the first" in result.stderr  # cut, with a warning


def test_a_carriage_return_inside_a_line_does_not_split_it(tmp_path):
    """Only "\\n" ends an input line of translate's stdin filter."""
    import subprocess
    import sys

    from seq2seq.cli import main
    from tests.conftest import PAIRS, tiny_config, write_config

    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = tiny_config(tmp_path, tsv, train={"max_steps": 2})
    assert main(["train", str(write_config(tmp_path / "c.yaml", cfg)), "--quiet"]) == 0
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq",
            "translate",
            str(tmp_path / "run"),
            "--beam",
            "1",
        ],
        input=b"I am\rcold.\nHe eats.\n",
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(b"\n") == 2
