"""The measuring scripts the README quotes run on the current code and say what
they measured (tiny model, the bundled quickstart corpus)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "configs/quickstart.yaml",
    "model.embed_size=16",
    "model.encoder_hidden_size=16",
    "model.decoder_hidden_size=32",
    "tokenizer.vocab_size=200",
]


def _run(script: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_benchmark_writes_training_and_decoding_figures(tmp_path):
    output = tmp_path / "bench.json"
    out = _run(
        "benchmark.py",
        *TINY,
        "decode.max_len_b=3",
        "--amp",
        "none",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--output",
        str(output),
    )
    report = json.loads(output.read_text())
    train = report["training"]["none"]
    assert train["steps"] == 2
    assert train["target_tokens_per_s"] > 0
    assert train["flops_per_target_token"] > 0
    assert 0 < train["fraction_of_peak"]
    assert set(report["decoding"]) == {"none-beam1", "none-beam5"}
    assert all(d["sentences"] > 0 for d in report["decoding"].values())
    assert "tok/s" in out and "sent/s" in out


def test_benchmark_bad_override_is_one_line():
    result = subprocess.run(
        [
            sys.executable,
            "scripts/benchmark.py",
            "configs/quickstart.yaml",
            "model.nope=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "model.nope" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--amp", "none", "model.nope=1"],
        ["--amp", "none", "bf16", "train.lr=1", "model.nope=1", "--steps", "1"],
        ["--no-decode", "model.nope=1", "--output", "x=1.json"],
    ],
    ids=["after --amp", "inside the options", "after a flag"],
)
def test_benchmark_takes_overrides_after_its_options_as_train_does(args):
    """The override reaches the config (its unknown key is the error), however it
    is placed among the options."""
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "configs/quickstart.yaml", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: override 'model.nope=1': model.nope: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "mode",
    [
        [],
        ["--ab-step-path", "1"],
        ["--ab-override", "model.dropout=0.1", "--rounds", "1"],
    ],
)
def test_step_time_reports_milliseconds_per_step(mode):
    out = _run("step_time.py", *TINY, "--batches", "4", "--repeats", "1", *mode)
    if "--ab-step-path" in mode:
        assert "planned: train step best" in out
        assert "step-by-step: train step best" in out
    elif mode:
        assert "model.dropout=0.1: train step best" in out
        assert "without: train step best" in out
        assert "parameters differ" not in out
    else:
        assert "train step " in out and "encoder forward + backward" in out


def test_step_time_alternates_two_checkouts():
    """This checkout against itself, imported a second time beside it."""
    out = _run(
        "step_time.py",
        *TINY,
        "--batches",
        "2",
        "--ab-checkout",
        str(ROOT),
        "--rounds",
        "1",
    )
    assert "this checkout: train step best" in out
    assert f"{ROOT}: train step best" in out
    assert "this checkout's median step: " in out
    assert "parameters differ" not in out  # the same initial weights on both sides


def test_step_time_runs_the_other_checkouts_own_code(tmp_path):
    """--ab-checkout imports the other checkout's package (in a process of its
    own), not this one's a second time."""
    checkout = tmp_path / "before"
    shutil.copytree(ROOT / "seq2seq", checkout / "seq2seq")
    mark = tmp_path / "imported"
    with (checkout / "seq2seq" / "__init__.py").open("a", encoding="utf-8") as f:
        f.write("\nimport os\nopen(os.environ['AB_MARK'], 'w').write(__file__)\n")
    args = [*TINY, "--batches", "2", "--ab-checkout", str(checkout), "--rounds", "1"]
    result = subprocess.run(
        [sys.executable, "scripts/step_time.py", *args],
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1", AB_MARK=str(mark)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert mark.read_text() == str(checkout / "seq2seq" / "__init__.py")
    assert f"{checkout}: train step best" in result.stdout
    assert "parameters differ" not in result.stdout


def test_train_ensemble_trains_members_that_decode_together(tmp_path):
    run_dir = tmp_path / "pair"
    out = _run(
        "train_ensemble.py",
        *TINY,
        "--members",
        "2",
        "train.max_steps=3",
        "train.valid_every=1",
        "train.keep_best=2",
        f"run_dir={run_dir}",
        "--average",
        "2",
    )
    command = out.strip().splitlines()[-1].split()
    assert command == [
        "seq2seq",
        "evaluate",
        str(run_dir / "m1" / "checkpoints" / "averaged.pt"),
        "--ensemble",
        str(run_dir / "m2" / "checkpoints" / "averaged.pt"),
        "--split",
        "test",
    ]
    for member, seed in (("m1", 1234), ("m2", 1235)):  # quickstart.yaml's seed + i
        config = yaml.safe_load((run_dir / member / "config.yaml").read_text())
        assert config["seed"] == seed
        assert config["train"]["num_threads"] == max(1, (os.cpu_count() or 1) // 2)
        assert config["train"]["max_steps"] == 3
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq", *command[1:], "--beam", "1", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("BLEU = ")


def test_train_ensemble_passes_sigterm_to_its_members(tmp_path):
    """A stopped script stops every member, each with a checkpoint to resume."""
    run_dir = tmp_path / "pair"
    script = subprocess.Popen(
        [
            sys.executable,
            "scripts/train_ensemble.py",
            *TINY,
            "train.epochs=1000",
            f"run_dir={run_dir}",
        ],
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = [run_dir / member / "train.log" for member in ("m1", "m2")]
    deadline = time.monotonic() + 240
    while not all(log.is_file() and "model:" in log.read_text() for log in logs):
        assert script.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    script.send_signal(signal.SIGTERM)
    _, err = script.communicate(timeout=240)
    assert script.returncode == 128 + signal.SIGTERM
    assert "stopped; --resume continues the members" in err
    for member in ("m1", "m2"):
        assert (run_dir / member / "checkpoints" / "latest.pt").is_file()
