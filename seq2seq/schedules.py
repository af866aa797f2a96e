"""Learning-rate and teacher-forcing schedules: pure functions of the step.

Everything a schedule needs is in the config and the saved training state, so a
resumed run follows exactly the schedule of an uninterrupted one.
"""

from __future__ import annotations

import math

from seq2seq.config import TrainConfig


def teacher_forcing_ratio(cfg: TrainConfig, step: int) -> float:
    """Probability of feeding the gold previous token at update ``step`` (0-based).

    constant: ``teacher_forcing``; linear: from ``teacher_forcing`` down to
    ``teacher_forcing_min`` over ``teacher_forcing_steps``; inverse_sigmoid
    (Bengio et al., 2015): ``k / (k + exp(step / k))`` scaled to start at
    ``teacher_forcing``, floored at ``teacher_forcing_min``.
    """
    start, floor = cfg.teacher_forcing, cfg.teacher_forcing_min
    if cfg.teacher_forcing_schedule == "linear":
        progress = min(step / cfg.teacher_forcing_steps, 1.0)
        return start - (start - floor) * progress
    if cfg.teacher_forcing_schedule == "inverse_sigmoid":
        k = cfg.teacher_forcing_k
        decay = k / (k + math.exp(min(step / k, 700.0)))
        return max(floor, start * decay * (k + 1.0) / k)
    return start


def warmup_decay_lr(base_lr: float, step: int, warmup_steps: int) -> float:
    """Linear warm-up to ``base_lr`` over ``warmup_steps``, then ``1/sqrt`` decay.

    ``step`` is the 1-based number of the update about to be made.
    """
    step = max(step, 1)
    return base_lr * min(step / warmup_steps, math.sqrt(warmup_steps / step))


def plateau_lr(lr: float, bad_validations: int, cfg: TrainConfig) -> tuple[float, int]:
    """After a validation without a better BLEU: the new (lr, bad count).

    The rate is multiplied by ``lr_factor`` once ``bad_validations`` exceeds
    ``lr_patience``, never below ``min_lr``; the count then restarts.
    """
    if bad_validations > cfg.lr_patience:
        return max(lr * cfg.lr_factor, cfg.min_lr), 0
    return lr, bad_validations


def budget_lr(
    shape: str,
    base_lr: float,
    min_lr: float,
    step: int,
    warmup_steps: int,
    progress: float,
) -> float:
    """Linear warm-up over ``warmup_steps``, then decay to ``min_lr`` at the end.

    ``progress`` is the fraction of the training budget used (0 to 1); ``shape``
    is ``cosine`` (half a cosine) or ``linear``. ``step`` is the 1-based number of
    the update about to be made.
    """
    if step < warmup_steps:
        return base_lr * max(step, 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    if shape == "cosine":
        fraction = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        fraction = 1.0 - progress
    return min_lr + (base_lr - min_lr) * fraction
