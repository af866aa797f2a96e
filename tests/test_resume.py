"""Nothing lost: a run stopped at any moment (SIGKILL, SIGTERM, SIGINT, a NaN loss)
and continued with ``--resume`` ends bit for bit like a run never interrupted:
model, optimizer, scaler, training state, validation history and RNG states.

The stops are placed exactly with the test-only ``SEQ2SEQ_FAULT`` hook
(seq2seq/faults.py). The schedule of every run here: 6 batches an epoch, 3 epochs,
18 updates; saves at steps 4 (checkpoint_every), 5 (validation), 8, 10 (validation),
12, 15 (validation), 16 and 18 (the final validation).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.cli import main
from seq2seq.schedules import budget_lr
from tests.conftest import PAIRS, ROOT, tiny_config, write_config

SETTINGS = {
    # dropout and sampled teacher forcing draw random numbers: the RNG states must
    # survive the stop too
    "model": {"dropout": 0.1},
    # each epoch re-segments the pairs by sampling, from (seed, epoch)
    "tokenizer": {"model_type": "unigram", "sampling_alpha": 0.5},
    "train": {
        "epochs": 3,
        "valid_every": 5,
        "checkpoint_every": 4,
        "teacher_forcing": 0.5,
        "num_threads": 1,
        # a schedule that reads the training position (epoch and batch)
        "lr_schedule": "cosine",
        "warmup_steps": 3,
        "min_lr": 1e-4,
    },
}


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()  # train.num_threads: 1 sets it in-process
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    tsv = tmp_path_factory.mktemp("corpus") / "pairs.tsv"
    tsv.write_text(
        "".join(f"{en}\t{fr}\tattr\n" for en, fr in PAIRS * 4), encoding="utf-8"
    )
    return tsv


def _config(directory: Path, corpus: Path, **overrides) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config(directory, corpus, **SETTINGS)
    for section, values in overrides.items():
        cfg[section] = {**cfg[section], **values}
    return write_config(directory / "config.yaml", cfg)


def _latest(config: Path, name: str = "latest.pt") -> dict:
    return load_checkpoint(config.parent / "run" / "checkpoints" / name)


@pytest.fixture(scope="module")
def uninterrupted_config(tmp_path_factory, corpus) -> Path:
    config = _config(tmp_path_factory.mktemp("uninterrupted"), corpus)
    assert main(["train", str(config), "--quiet"]) == 0
    return config


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_config) -> dict:
    return _latest(uninterrupted_config)


# A child process per kill point, forked from one driver process that imported
# torch once: a fresh `python -m seq2seq` spends ~4 s importing torch (and the
# torch._dynamo that building an optimizer pulls in) before the first step. The
# driver never runs a tensor op, so forking it is safe. Each child runs the CLI's
# main(["train", CONFIG, "--quiet"]) with SEQ2SEQ_FAULT set, its output in a file.
DRIVER = r"""
import json, os, sys, traceback
import torch._dynamo  # noqa: F401
import seq2seq.train  # noqa: F401
from seq2seq.cli import main
from seq2seq.schedules import budget_lr

codes = {}
for config, fault in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        try:
            os.environ["SEQ2SEQ_FAULT"] = fault
            out = os.open(os.path.join(os.path.dirname(config), "output.txt"),
                          os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(out, 2)
            code = main(["train", config, "--quiet"])
        except BaseException:
            traceback.print_exc()
            code = 70
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    codes[fault] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(codes))
"""

KILL_POINTS = {  # SEQ2SEQ_FAULT -> the step of the checkpoint left behind
    "kill:step=2": None,  # before the first checkpoint
    "kill:step=10": 8,  # mid-epoch, after a checkpoint_every save
    "kill:save=2": 4,  # inside the save of best.pt at step 5 (before latest.pt)
    "kill:validation=4": 16,  # during the final validation
    "kill:save=4": 5,  # inside the save of step 8: written, not yet renamed
}


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory, corpus) -> dict[str, Path]:
    """Each fault of KILL_POINTS applied to a run of its own: fault -> config."""
    configs = {
        fault: _config(tmp_path_factory.mktemp("killed"), corpus)
        for fault in KILL_POINTS
    }
    driver = subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER,
            json.dumps([[str(c), f] for f, c in configs.items()]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert driver.returncode == 0, driver.stderr
    codes = json.loads(driver.stdout)
    for fault, config in configs.items():
        output = (config.parent / "output.txt").read_text(encoding="utf-8")
        assert codes[fault] == -signal.SIGKILL, output
    return configs


def _resume(config: Path, *overrides: str) -> None:
    assert main(["train", str(config), "--resume", "--quiet", *overrides]) == 0


def assert_same_run(a: dict, b: dict) -> None:
    """Bit for bit: every model, optimizer and scaler tensor, the training state
    (but its wall-clock), the validation history and the RNG states."""
    assert a["model"].keys() == b["model"].keys()
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    opt_a, opt_b = a["optimizer"], b["optimizer"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    assert opt_a["state"].keys() == opt_b["state"].keys()
    for key, values in opt_a["state"].items():
        for name, value in values.items():
            assert torch.equal(value, opt_b["state"][key][name]), (key, name)
    assert a["scaler"] == b["scaler"]
    clock = ("train_seconds", "history")
    state_a = {k: v for k, v in a["train_state"].items() if k not in clock}
    state_b = {k: v for k, v in b["train_state"].items() if k not in clock}
    assert state_a == state_b
    history = lambda s: [  # noqa: E731
        {k: v for k, v in h.items() if k != "minutes"}
        for h in s["train_state"]["history"]
    ]
    assert history(a) == history(b)
    assert len(history(a)) == 4  # validations at steps 5, 10, 15, 18
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["rng"]["python"] == b["rng"]["python"]


@pytest.mark.parametrize("fault", [f for f, step in KILL_POINTS.items() if step])
def test_a_killed_run_resumes_exactly(
    fault, killed_runs, uninterrupted, uninterrupted_config, capsys
):
    config = killed_runs[fault]
    resumed_from = KILL_POINTS[fault]
    assert _latest(config)["train_state"]["step"] == resumed_from
    _resume(config)
    assert f"resumed from step {resumed_from} " in capsys.readouterr().err
    assert_same_run(uninterrupted, _latest(config))
    best, best_resumed = (
        _latest(uninterrupted_config, "best.pt"),
        _latest(config, "best.pt"),
    )
    for name, tensor in best["model"].items():
        assert torch.equal(tensor, best_resumed["model"][name]), name
    # A save cut short leaves a temporary file: the resumed run removed it.
    assert not list((config.parent / "run" / "checkpoints").glob(".*.tmp"))


def test_the_cosine_schedule_decays_over_the_epoch_budget(uninterrupted):
    """18 updates over 3 epochs of 6 batches: the last one (step 18) is made
    17/18 of the way through the budget."""
    lr = uninterrupted["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(budget_lr("cosine", 0.01, 1e-4, 18, 3, 17 / 18))
    assert lr < 0.01 * 0.02  # near min_lr, down from 0.01


def test_killed_before_the_first_checkpoint_resume_starts_over(
    killed_runs, uninterrupted, capsys
):
    config = killed_runs["kill:step=2"]
    assert (config.parent / "run" / "config.yaml").is_file()  # the run had begun
    assert not (config.parent / "run" / "checkpoints" / "latest.pt").exists()
    _resume(config)
    assert "holds no checkpoint yet" in capsys.readouterr().err
    assert_same_run(uninterrupted, _latest(config))


def test_sigterm_saves_and_resume_matches(uninterrupted, corpus, tmp_path, capsys):
    """The real CLI in a process of its own, paused at step 13 and sent SIGTERM from
    outside: it saves a checkpoint of step 13 and exits 0."""
    config = _config(tmp_path, corpus)
    process = subprocess.Popen(
        [sys.executable, "-m", "seq2seq", "train", str(config), "--quiet"],
        cwd=ROOT,
        env={**os.environ, "SEQ2SEQ_FAULT": "stop:step=13"},  # SIGSTOP itself
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600
        pid = status = 0
        while pid == 0 and time.monotonic() < deadline:  # until it stops itself
            time.sleep(0.05)
            pid, status = os.waitpid(process.pid, os.WUNTRACED | os.WNOHANG)
        assert pid and os.WIFSTOPPED(status), status
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
        _, err = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "saving a checkpoint at step 13 and stopping" in err
    assert _latest(config)["train_state"]["step"] == 13

    _resume(config)
    assert "resumed from step 13 " in capsys.readouterr().err
    assert_same_run(uninterrupted, _latest(config))


def test_ctrl_c_then_a_corrupt_latest_falls_back_to_the_previous_save(
    uninterrupted, corpus, tmp_path, monkeypatch, capsys
):
    config = _config(tmp_path, corpus)
    monkeypatch.setenv("SEQ2SEQ_FAULT", "int:step=10")  # SIGINT to this process
    assert main(["train", str(config), "--quiet"]) == 0
    monkeypatch.delenv("SEQ2SEQ_FAULT")
    checkpoints = config.parent / "run" / "checkpoints"
    assert _latest(config)["train_state"]["step"] == 10
    # train.keep_last: 2 keeps the save before too
    assert sorted(p.name for p in checkpoints.glob("last-step*.pt")) == [
        "last-step10.pt",
        "last-step8.pt",
    ]
    latest = checkpoints / "latest.pt"
    data = bytearray(latest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit-pattern: loads fine, but wrong
    latest.write_bytes(bytes(data))  # (in place: last-step10.pt is the same file)

    capsys.readouterr()
    _resume(config)
    err = capsys.readouterr().err
    assert "latest.pt: corrupt or truncated checkpoint" in err
    assert "resuming from the previous good checkpoint" in err
    assert "last-step8.pt" in err and "resumed from step 8 " in err
    assert_same_run(uninterrupted, _latest(config))


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_checkpoint(
    uninterrupted, corpus, tmp_path, monkeypatch, capsys
):
    config = _config(tmp_path, corpus)
    monkeypatch.setenv("SEQ2SEQ_FAULT", "nan:step=7")
    assert main(["train", str(config), "--quiet"]) == 2
    monkeypatch.delenv("SEQ2SEQ_FAULT")
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: training loss became nan at step 7;")
    assert _latest(config)["train_state"]["step"] == 5  # intact, sha256 checked

    _resume(config)
    assert_same_run(uninterrupted, _latest(config))


def test_on_nan_skip_skips_the_batch_and_counts_it(corpus, tmp_path, monkeypatch):
    config = _config(tmp_path, corpus, train={"on_nan": "skip", "epochs": 1})
    monkeypatch.setenv("SEQ2SEQ_FAULT", "nan:step=3")
    assert main(["train", str(config), "--quiet"]) == 0
    state = _latest(config)
    assert state["train_state"]["step"] == 6
    assert state["train_state"]["skipped_batches"] == 1
    for values in state["optimizer"]["state"].values():
        assert values["step"].item() == 5  # one batch made no update
    log = (config.parent / "run" / "train.log").read_text(encoding="utf-8")
    assert "step 3: training loss is nan; batch skipped" in log


def test_resume_with_a_new_batch_size_and_lr_says_what_changed(
    corpus, tmp_path, capsys
):
    config = _config(tmp_path, corpus)
    assert main(["train", str(config), "--quiet", "train.max_steps=5"]) == 0
    capsys.readouterr()

    def too_slow(signum, frame):
        raise TimeoutError("the resumed run did not finish")

    # Resumed at batch 5 of an epoch that now has only 2 batches: this used to
    # loop forever (ignoring SIGTERM); the alarm turns a regression into a failure.
    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(600)
    try:
        _resume(config, "train.batch_size=32", "train.lr=0.005", "train.max_steps=null")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    for line in (
        "resume: train.batch_size changed from 8 to 32",
        "resume: train.lr changed from 0.01 to 0.005",
        "resume: train.max_steps changed from 5 to None",
    ):
        assert line in err
    state = _latest(config)["train_state"]
    assert state["epoch"] == 3 and state["lr"] == 0.005


@pytest.mark.parametrize(
    "train",
    [
        {"epochs": 1},  # it used to validate the last step a second time
        # stopped early at step 4 (no better BLEU at lr 1e-6): it used to go on
        {"epochs": 50, "valid_every": 2, "patience": 1, "lr": 1e-6},
        # it used to train one more step (and validate) at every --resume
        {"max_steps": 7},
    ],
    ids=["all epochs", "stopped early", "max_steps"],
)
def test_resuming_a_finished_run_adds_nothing(train, corpus, tmp_path):
    config = _config(tmp_path, corpus, train=train)
    assert main(["train", str(config), "--quiet"]) == 0
    before = _latest(config)
    _resume(config)
    after = _latest(config)
    assert after["train_state"]["step"] == before["train_state"]["step"]
    assert after["train_state"]["history"] == before["train_state"]["history"]
    for name, tensor in before["model"].items():
        assert torch.equal(tensor, after["model"][name]), name


def test_kept_best_list_in_latest_matches_the_files(corpus, tmp_path, monkeypatch):
    """train.keep_best: latest.pt lists exactly the step*.pt files on disk (it used
    to be written before the list was updated), and a file leaves only after."""
    from types import SimpleNamespace

    import seq2seq.validation

    scores = iter(range(1, 100))  # every validation better than the last
    monkeypatch.setattr(
        seq2seq.validation,
        "bleu",
        lambda hyps, refs: SimpleNamespace(score=next(scores)),
    )
    config = _config(
        tmp_path, corpus, train={"keep_best": 2, "valid_every": 2, "epochs": 1}
    )
    assert main(["train", str(config), "--quiet"]) == 0
    checkpoints = config.parent / "run" / "checkpoints"
    kept = _latest(config)["train_state"]["kept_best"]
    assert [step for _, step in kept] == [6, 4]
    assert sorted(p.name for p in checkpoints.glob("step*.pt")) == [
        "step4.pt",
        "step6.pt",
    ]


def test_a_resume_that_switches_plateau_to_cosine_peaks_at_train_lr(corpus, tmp_path):
    """TrainState.lr is the plateau schedule's lowered rate; a resume that moves to
    cosine must peak at train.lr, not at that lowered rate."""
    plateau = {
        "lr_schedule": "plateau",
        "lr": 1e-6,  # BLEU cannot improve: every validation after the first is bad
        "lr_patience": 1,
        "lr_factor": 0.5,
        "min_lr": 1e-9,
        "valid_every": 2,
        "epochs": 1,
        "max_steps": 6,
        "warmup_steps": 1,
    }
    config = _config(tmp_path, corpus, train=plateau)
    assert main(["train", str(config), "--quiet"]) == 0
    state = _latest(config)["train_state"]
    assert state["lr"] < 1e-6 == state["base_lr"]  # the plateau lowered it
    _resume(config, "train.lr_schedule=cosine", "train.max_steps=7", "train.epochs=2")
    latest = _latest(config)
    rate = latest["optimizer"]["param_groups"][0]["lr"]
    resumed = latest["train_state"]
    # step 7 is made with 6 of max_steps' 7 steps used
    expected = budget_lr("cosine", 1e-6, 1e-9, 7, 1, 6 / 7)
    assert resumed["step"] == 7
    assert rate == pytest.approx(expected)
