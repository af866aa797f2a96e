"""``seq2seq train CONFIG --dry-run``: everything a run would start with, then exit.

The trainer is set up exactly as for training, in a temporary run directory (the
configured one is left untouched): the tokenizer and the prepared data come from
the cache (:func:`seq2seq.run_setup.prepare_run`; built first when missing, and
kept), the batches are formed and the model built. A
few real training steps and a greedy decode of some valid sentences are timed to
estimate the time per epoch. Nothing is saved.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from seq2seq import checkpoint as ckpt
from seq2seq.config import Config, replace, to_dict
from seq2seq.inference import Translator
from seq2seq.model import count_parameters

TIMED_STEPS = 6
WARMUP_STEPS = 2
TIMED_VALID_SENTENCES = 64


@dataclass
class Estimate:
    seconds_per_step: float
    tokens_per_s: float
    steps_per_epoch: int
    valid_seconds: float  # one validation (greedy decode of the valid set)
    validations_per_epoch: float

    @property
    def epoch_seconds(self) -> float:
        return (
            self.seconds_per_step * self.steps_per_epoch
            + self.valid_seconds * self.validations_per_epoch
        )


def dry_run(cfg: Config) -> str:
    """The report printed by ``--dry-run``."""
    from seq2seq.train import Trainer

    workdir = Path(tempfile.mkdtemp(prefix="seq2seq-dry-run-"))
    quiet = logging.getLogger("seq2seq")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the trainer's set-up chatter; warnings stay
    try:
        trainer = Trainer(replace(cfg, run_dir=str(workdir / "run")), progress=False)
        try:
            estimate = _estimate(trainer)
        finally:
            trainer.detach_log_file()
    finally:
        quiet.setLevel(level)
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(cfg, trainer, estimate)


def _estimate(trainer) -> Estimate:
    cfg = trainer.cfg
    order = trainer.batches.epoch_batches(0)  # shuffled: a fair sample of lengths
    steps = min(len(order), WARMUP_STEPS + TIMED_STEPS)
    tokens = 0
    start = 0.0
    for i in range(steps):
        if i == min(WARMUP_STEPS, steps - 1):
            _sync(trainer.device)
            start, tokens = time.perf_counter(), 0
        _, n = trainer.train_step(trainer.batches.batch(order[i]))
        tokens += n
    _sync(trainer.device)
    seconds = max(time.perf_counter() - start, 1e-9)
    tokens = max(tokens, 1)  # every timed batch skipped (train.on_nan: skip)
    # Scale the timed steps' tokens/s to the whole epoch's target tokens.
    epoch_tokens = int(trainer.train_data.tgt_lengths.sum())
    epoch_seconds = epoch_tokens / (tokens / seconds)

    valid = trainer.valid_data.src
    sample = valid[:TIMED_VALID_SENTENCES]
    translator = Translator(
        trainer.model, trainer.tokenizer, cfg.decode, trainer.device, trainer.amp_dtype
    )
    start = time.perf_counter()
    translator.translate_ids(sample)
    _sync(trainer.device)
    valid_seconds = (time.perf_counter() - start) * len(valid) / max(len(sample), 1)
    if cfg.train.valid_every:
        per_epoch = len(order) / cfg.train.valid_every
    else:
        per_epoch = 1.0
    return Estimate(
        seconds_per_step=epoch_seconds / len(order),
        tokens_per_s=tokens / seconds,
        steps_per_epoch=len(order),
        valid_seconds=valid_seconds,
        validations_per_epoch=per_epoch,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _minutes(seconds: float) -> str:
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def _sampling(sampler) -> list[str]:
    """What planning epoch 0 on sampled segmentations cost (a minute or more on
    millions of pairs when they are not yet in the cache)."""
    if sampler is None:
        return []
    return [
        f"subword sampling (alpha {sampler.alpha:g}): epoch 0's segmentation "
        f"lengths {sampler.lengths_note}"
    ]


def _vocabulary(cfg: Config, tok) -> str:
    if not cfg.tokenizer.joint:
        return f"source {tok.src_vocab_size:,}, target {tok.tgt_vocab_size:,}"
    if tok.tgt_vocab_size == tok.src_vocab_size:
        return f"joint {tok.src_vocab_size:,}"
    return (
        f"joint {tok.src_vocab_size:,}, the target side restricted to its "
        f"{tok.tgt_vocab_size:,} pieces"
    )


def _report(cfg: Config, trainer, est: Estimate) -> str:
    tok, t = trainer.tokenizer, cfg.train
    train_read = trainer.train_pairs_read
    train = trainer.train_data
    src_tokens = int(train.src_lengths.sum())
    tgt_tokens = int(train.tgt_lengths.sum())
    lines = [
        "# resolved config",
        yaml.safe_dump(to_dict(cfg), sort_keys=False).rstrip(),
        "",
        "# data",
        f"train: {len(train):,} pairs kept of {train_read:,} read "
        f"({train_read - len(train):,} dropped by the length filter or empty); "
        f"{src_tokens:,} source / {tgt_tokens:,} target tokens "
        f"(mean {src_tokens / len(train):.1f} / {tgt_tokens / len(train):.1f})",
        f"valid: {len(trainer.valid_data):,} pairs",
        f"vocabulary: {_vocabulary(cfg, tok)}",
        *_sampling(trainer.batches.sampler),
        "",
        "# model",
        f"parameters: {count_parameters(trainer.model):,}; device {trainer.device}",
        f"{trainer.amp}; threads {torch.get_num_threads()}",
        "",
        "# time (estimated from "
        f"{TIMED_STEPS} timed training steps and {TIMED_VALID_SENTENCES} valid "
        "sentences)",
        f"training: {est.tokens_per_s:,.0f} target tokens/s, {est.steps_per_epoch:,} "
        f"steps per epoch, {_minutes(est.seconds_per_step * est.steps_per_epoch)} "
        "per epoch",
        f"validation: {_minutes(est.valid_seconds)} each, "
        f"{est.validations_per_epoch:.2g} per epoch",
        f"epoch with validation: {_minutes(est.epoch_seconds)}",
    ]
    limits = [f"{t.epochs} epochs: {_minutes(t.epochs * est.epoch_seconds)}"]
    if t.max_steps is not None:
        steps = _minutes(t.max_steps * est.seconds_per_step)
        limits.append(f"max_steps {t.max_steps}: {steps}")
    if t.max_minutes is not None:
        fit = t.max_minutes * 60 / est.epoch_seconds
        limits.append(f"max_minutes {t.max_minutes:g}: about {fit:.1f} epochs")
    lines.append("limits: " + "; ".join(limits) + " (training stops at the first)")
    if ckpt.has_checkpoint(ckpt.checkpoint_dir(Path(cfg.run_dir))):
        lines.append(
            f"note: run_dir {cfg.run_dir} already holds a run: train it further with "
            "--resume, or choose another run_dir"
        )
    return "\n".join(lines)
