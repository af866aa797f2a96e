"""Training speed and time to go count training steps only: validation, checkpoints
and start-up do not make the next window look fast."""

from __future__ import annotations

import pytest
import torch.utils.tensorboard

from seq2seq.config import from_dict
from seq2seq.train import Trainer
from seq2seq.trainlog import TrainLog
from tests.conftest import tiny_config


class RecordingWriter:
    """A SummaryWriter that keeps its scalars."""

    def __init__(self, *args, **kwargs) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = {}

    def add_scalar(self, name: str, value: float, step: int) -> None:
        self.scalars.setdefault(name, []).append((step, float(value)))

    def __getattr__(self, name: str):  # add_text, add_hparams, flush, close, ...
        return lambda *args, **kwargs: None


def test_a_window_reports_tokens_over_its_step_seconds(caplog):
    writer = RecordingWriter()
    train_log = TrainLog(writer, plain_lines=True, plain_every=0.0)
    for _ in range(4):
        train_log.add(loss=200.0, tokens=100, seconds=0.5)
    with caplog.at_level("INFO", logger="seq2seq"):
        window = train_log.report(
            now=1e6,  # wall clock: far from the steps' own seconds
            step=4,
            epoch=0,
            train_seconds=2.0,
            lr=1e-3,
            grad_norm=None,
            batches_done=4,
            batches_in_epoch=10,
        )
    assert window.tokens_per_s == pytest.approx(200.0)
    assert writer.scalars["train/tokens_per_s"] == [(4, pytest.approx(200.0))]
    assert writer.scalars["train/loss"] == [(4, pytest.approx(2.0))]
    # 6 batches left at 0.5 s each
    assert "200 tok/s; epoch 40% done, 0.1 min to go" in caplog.text
    assert train_log.window.steps == 0  # a new window


def test_speed_after_a_validation_counts_training_time_only(
    tmp_path, tiny_tsv, monkeypatch, caplog
):
    """Steps take 0.5 s of a stub clock and move 100 tokens; validations take 1000 s.
    Every reported window must say 200 tok/s (it used to spike after each
    validation: the window's clock restarted, its token count did not)."""
    cfg = from_dict(
        tiny_config(
            tmp_path,
            tiny_tsv,
            train={"max_steps": 12, "valid_every": 3, "log_every": 4, "epochs": 50},
        ),
        "test",
    )
    writers: list[RecordingWriter] = []
    monkeypatch.setattr(
        torch.utils.tensorboard,
        "SummaryWriter",
        lambda *a, **k: writers.append(RecordingWriter()) or writers[-1],
    )
    now = [0.0]
    caplog.set_level("INFO", logger="seq2seq")
    trainer = Trainer(cfg, progress=False)
    trainer.clock = lambda: now[0]
    validate = trainer.validate

    def train_step(batch, teacher_forcing=None):
        now[0] += 0.5
        return 150.0, 100

    def slow_validate():
        now[0] += 1000.0
        return validate()

    trainer.train_step = train_step
    trainer.validate = slow_validate
    state = trainer.run()
    assert state.step == 12 and len(state.history) == 4
    speeds = writers[0].scalars["train/tokens_per_s"]
    assert [step for step, _ in speeds] == [4, 8, 12]
    assert [speed for _, speed in speeds] == [pytest.approx(200.0)] * 3
    # train_seconds (max_minutes's budget) stays wall time: the validations at
    # steps 3, 6 and 9 are in it (the final one comes after the last step)
    assert state.train_seconds == pytest.approx(12 * 0.5 + 3 * 1000.0)
    # the run's per-machine choices are logged with their reasons
    log_text = (tmp_path / "run" / "train.log").read_text()
    assert "amp: fp32 (train.amp: none)" in log_text
    assert "threads: " in log_text
