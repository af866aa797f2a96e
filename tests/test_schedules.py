"""Learning-rate and teacher-forcing schedules."""

from __future__ import annotations

import pytest

from seq2seq.config import TrainConfig
from seq2seq.schedules import (
    budget_lr,
    plateau_lr,
    teacher_forcing_ratio,
    warmup_decay_lr,
)


def test_constant_teacher_forcing():
    cfg = TrainConfig(teacher_forcing=0.8)
    assert teacher_forcing_ratio(cfg, 0) == teacher_forcing_ratio(cfg, 10**6) == 0.8


def test_linear_teacher_forcing_decays_to_the_floor():
    cfg = TrainConfig(
        teacher_forcing_schedule="linear",
        teacher_forcing=1.0,
        teacher_forcing_min=0.5,
        teacher_forcing_steps=100,
    )
    assert teacher_forcing_ratio(cfg, 0) == 1.0
    assert teacher_forcing_ratio(cfg, 50) == pytest.approx(0.75)
    assert teacher_forcing_ratio(cfg, 100) == teacher_forcing_ratio(cfg, 10**6) == 0.5


def test_inverse_sigmoid_starts_at_the_ratio_and_falls_monotonically():
    cfg = TrainConfig(
        teacher_forcing_schedule="inverse_sigmoid",
        teacher_forcing_k=100.0,
        teacher_forcing_min=0.1,
    )
    values = [teacher_forcing_ratio(cfg, s) for s in range(0, 3000, 100)]
    assert values[0] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[-1] == 0.1  # floored
    assert 0.1 < teacher_forcing_ratio(cfg, 460) < 0.9  # the middle of the sigmoid


def test_warmup_then_inverse_sqrt_decay():
    assert warmup_decay_lr(1e-3, 50, 100) == pytest.approx(5e-4)
    assert warmup_decay_lr(1e-3, 100, 100) == pytest.approx(1e-3)
    assert warmup_decay_lr(1e-3, 400, 100) == pytest.approx(5e-4)


def test_plateau_halves_after_patience_and_respects_min_lr():
    cfg = TrainConfig(lr_factor=0.5, lr_patience=1, min_lr=3e-4)
    assert plateau_lr(1e-3, 1, cfg) == (1e-3, 1)
    assert plateau_lr(1e-3, 2, cfg) == (5e-4, 0)
    assert plateau_lr(5e-4, 2, cfg) == (3e-4, 0)


def test_budget_schedules_warm_up_then_reach_min_lr_at_the_end():
    for shape in ("cosine", "linear"):
        assert budget_lr(shape, 1e-3, 1e-5, 1, 10, 0.0) == pytest.approx(1e-4)
        assert budget_lr(shape, 1e-3, 1e-5, 10, 10, 0.0) == pytest.approx(1e-3)
        assert budget_lr(shape, 1e-3, 1e-5, 500, 10, 1.0) == pytest.approx(1e-5)
        assert budget_lr(shape, 1e-3, 1e-5, 500, 10, 1.7) == pytest.approx(1e-5)
        midway = budget_lr(shape, 1e-3, 1e-5, 500, 10, 0.5)
        assert midway == pytest.approx((1e-3 + 1e-5) / 2)
    # cosine stays high longer, then falls faster than linear
    assert budget_lr("cosine", 1.0, 0.0, 50, 1, 0.25) == pytest.approx(0.8535534)
    assert budget_lr("linear", 1.0, 0.0, 50, 1, 0.25) == pytest.approx(0.75)
