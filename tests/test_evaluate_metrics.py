"""``seq2seq evaluate --metrics bleu chrf ter --format json``: each score and
signature equal to what the ``sacrebleu`` command prints for the same hypothesis
and reference files; the text form for BLEU alone stays two lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seq2seq.cli import main
from tests.conftest import PAIRS, tiny_config, write_config


@pytest.fixture(scope="module")
def run_and_files(tmp_path_factory):
    """A tiny trained run, and a line-aligned source / reference pair of files."""
    tmp = tmp_path_factory.mktemp("metrics")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = write_config(
        tmp / "c.yaml", tiny_config(tmp, tsv, train={"epochs": 6, "valid_every": 0})
    )
    assert main(["train", str(cfg), "--quiet"]) == 0
    src, ref = tmp / "src.txt", tmp / "ref.txt"
    src.write_text("".join(en + "\n" for en, _ in PAIRS), encoding="utf-8")
    ref.write_text("".join(fr + "\n" for _, fr in PAIRS), encoding="utf-8")
    return str(tmp / "run"), src, ref


def sacrebleu_json(ref, hyp) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp)]
        + ["-m", "bleu", "chrf", "ter", "-f", "json", "-w", "4"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_json_scores_and_signatures_equal_sacrebleus(run_and_files, tmp_path, capsys):
    run, src, ref = run_and_files
    hyp = tmp_path / "hyp.txt"
    args = ["evaluate", run, "--src", str(src), "--ref", str(ref), "--quiet"]
    options = ["--metrics", "bleu", "chrf", "ter", "--format", "json", "--beam", "2"]
    capsys.readouterr()
    assert main([*args, *options, "--output", str(hyp)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["metrics"]) == ["bleu", "chrf", "ter"]
    assert report["hypotheses"] == str(hyp)
    assert report["sentences"] == len(PAIRS)
    assert report["decoding"]["beam"] == 2 and report["decoding"]["run"] == run
    expected = sacrebleu_json(ref, hyp)
    for got, want in zip(report["metrics"].values(), expected):
        assert got["name"] == want["name"]
        assert round(got["score"], 4) == want["score"]
        assert got["signature"] == want["signature"]
    assert 0 < report["metrics"]["chrf"]["score"] < 100


def test_text_output_for_bleu_alone_is_unchanged(run_and_files, capsys):
    run, src, ref = run_and_files
    args = ["evaluate", run, "--src", str(src), "--ref", str(ref), "--quiet"]
    capsys.readouterr()
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("BLEU = ") and lines[1].startswith("nrefs:1|")
    assert main([*args, "--metrics", "bleu", "ter"]) == 0
    both = capsys.readouterr().out.splitlines()
    assert both[:2] == lines and both[2].startswith("TER = ") and len(both) == 4
