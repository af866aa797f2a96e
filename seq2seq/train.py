"""The training loop: data, model, optimizer, validation, checkpoints, resume.

A run directory holds ``config.yaml`` (the resolved config), the tokenizer model(s),
``checkpoints/{latest,best}.pt``, ``train.log`` and TensorBoard event files.
Resuming restores the model, optimizer, step, epoch, position inside the epoch and
every RNG, so a resumed run continues exactly where the checkpoint was written.
"""

from __future__ import annotations

import logging
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from seq2seq import checkpoint as ckpt
from seq2seq import distributed, faults, validation
from seq2seq.config import Config, dump_yaml, from_dict, to_dict
from seq2seq.device import resolve_device
from seq2seq.errors import UserError
from seq2seq.inference import Translator
from seq2seq.model import Seq2Seq, build_model, count_parameters
from seq2seq.precision import autocast, choose_amp, choose_threads
from seq2seq.progress import PLAIN_EVERY_S, bars_enabled
from seq2seq.run_setup import prepare_run
from seq2seq.schedules import (
    budget_lr,
    plateau_lr,
    teacher_forcing_ratio,
    warmup_decay_lr,
)
from seq2seq.tokenizer import Tokenizer
from seq2seq.trainlog import TrainLog

log = logging.getLogger(__name__)

# Config sections whose change makes a checkpoint's weights unusable.
SHAPE_KEYS = ("model", "tokenizer", "data.max_src_len")
NOT_SHAPE_KEYS = ("model.kernels",)  # how the model runs, not what it holds


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # index of the next batch of this epoch (of this rank's)
    world_size: int = 1  # processes (torchrun); an update takes one batch from each
    best_bleu: float = -1.0
    best_step: int = 0
    train_seconds: float = 0.0
    # the plateau schedule's rate: train.lr until a plateau lowers it (the other
    # schedules compute each step's rate from base_lr)
    lr: float = 0.0
    base_lr: float = 0.0  # train.lr this state was made with: the schedules' peak
    bad_validations: int = 0  # since the last lr change (plateau schedule)
    validations_since_best: int = 0  # early stopping
    stopped_early: bool = False
    skipped_batches: int = 0  # non-finite losses skipped (train.on_nan: skip)
    kept_best: list[list[float]] = field(default_factory=list)  # [bleu, step] of best-N
    snapshots: list[float] = field(default_factory=list)  # minutes already saved
    history: list[dict[str, float]] = field(default_factory=list)


class StopRequested(Exception):
    """SIGINT / SIGTERM arrived: save and stop."""


def _changed(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    changes = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes.extend(_changed(a, b, path + "."))
        elif a != b:
            changes.append((path, a, b))
    return changes


class Trainer:
    """Train a :class:`Seq2Seq` from a :class:`Config`; ``run()`` does the work."""

    clock = staticmethod(time.perf_counter)  # training time and speed (tests stub it)

    def __init__(
        self, cfg: Config, resume: bool = False, progress: bool | None = None
    ) -> None:
        self.run_dir = Path(cfg.run_dir)
        self.dist = distributed.from_env(resolve_device(cfg.device), cfg.seed)
        self.device = self.dist.device
        self.progress = progress if self.dist.is_main else False
        self._bars = bars_enabled(self.progress)
        # No terminal (CI, nohup) and not --quiet: plain progress lines instead.
        self._plain_lines = self.progress is None and not self._bars
        checkpoints = ckpt.checkpoint_dir(self.run_dir)
        resume_state = None
        if resume:
            resume_state = self._load_resume_state(checkpoints)
            if resume_state is not None:
                cfg = self._merge_resumed_config(resume_state["config"], cfg)
        elif ckpt.has_checkpoint(checkpoints):
            raise UserError(
                f"run_dir {self.run_dir} already holds a run; continue it with "
                "--resume "
                "or choose another run_dir"
            )
        self.cfg = cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._attach_log_file()
        if self.device.type == "cpu":
            threads, why = choose_threads(cfg.train.num_threads)
            torch.set_num_threads(threads)
            log.info("threads: %d (%s)", threads, why)
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)

        resumed_tokenizer = None
        if resume_state is not None:
            tok = resume_state["tokenizer"]
            resumed_tokenizer = Tokenizer(tok["src"], tok["tgt"])
        run = prepare_run(cfg, self.dist, resumed_tokenizer)
        self.tokenizer = run.tokenizer
        if resume_state is None and self.dist.is_main:
            self.tokenizer.save(self.run_dir)
            dump_yaml(cfg, self.run_dir / "config.yaml")
        self.train_data, self.valid_data = run.train_data, run.valid_data
        self.train_pairs_read = run.train_pairs_read  # before the length filter
        self.batches, self.valid_batches = run.batches, run.valid_batches

        self.model: Seq2Seq = build_model(
            cfg.model,
            cfg.data.max_src_len,
            self.tokenizer.src_vocab_size,
            self.tokenizer.tgt_vocab_size,
            self.device,
        ).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=cfg.train.lr,
            betas=cfg.train.betas,
            fused=True,  # one kernel for all parameters (CPU and CUDA)
        )
        self.amp = choose_amp(
            cfg.train.amp,
            self.device,
            hidden_size=cfg.model.decoder_hidden_size,
            batch_size=cfg.train.batch_size,
        )
        self.amp_dtype = self.amp.dtype
        log.info("%s", self.amp)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.state = TrainState(lr=cfg.train.lr, base_lr=cfg.train.lr)
        if resume_state is not None:
            self._restore(resume_state)
        self.dist.check_batches(self.state, self.batches)
        self.loss_fn = self.dist.wrap(self.model)  # model.loss, through DDP if any
        t = cfg.train
        self.keeper = ckpt.CheckpointKeeper(
            checkpoints, t.keep_last, t.keep_best, t.snapshot_minutes
        )
        self._stop_signal: int | None = None
        self._grad_norm: float | None = None  # of the last update, before clipping

    # ------------------------------------------------------------ set-up helpers

    def _load_resume_state(self, checkpoints: Path) -> dict | None:
        """The newest good checkpoint (a corrupt latest.pt falls back to the copy
        before it, loudly); None, with a warning, when the run saved none yet."""
        if self.dist.is_main and checkpoints.is_dir():
            ckpt.remove_stale_temporaries(checkpoints)  # of a save a crash cut short
        state, path, problems = ckpt.latest_good_checkpoint(checkpoints)
        if state is None and problems:
            raise UserError(
                f"--resume: no good checkpoint in {checkpoints} ({problems[0]}); "
                "move the run_dir away to start over"
            )
        if state is None:
            log.warning(
                "--resume: %s holds no checkpoint yet (the run stopped before its "
                "first save): starting from the beginning",
                checkpoints,
            )
        elif problems:
            log.warning(
                "--resume: %s; resuming from the previous good checkpoint, %s",
                "; ".join(problems),
                path,
            )
        return state

    def _merge_resumed_config(self, saved: dict, cfg: Config) -> Config:
        """Allow changes to the schedule, refuse changes to the model's shape."""
        new = to_dict(cfg)
        changes = _changed(saved, new)
        for path, old, value in changes:
            if path in NOT_SHAPE_KEYS:
                continue
            if any(path == key or path.startswith(key + ".") for key in SHAPE_KEYS):
                raise UserError(
                    f"--resume: {path} changed from {old!r} to {value!r}; "
                    "the checkpoint's "
                    "model cannot take that change (start a new run_dir instead)"
                )
        for path, old, value in changes:
            log.warning("resume: %s changed from %r to %r", path, old, value)
        return from_dict(new, "resumed config")

    def _attach_log_file(self) -> None:
        if not self.dist.is_main:  # rank 0 alone writes train.log
            handler = logging.NullHandler()
        else:
            handler = logging.FileHandler(self.run_dir / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("seq2seq").addHandler(handler)
        self._log_handler = handler

    def detach_log_file(self) -> None:
        """Stop writing ``train.log`` (the end of :meth:`run`, or a dry run)."""
        logging.getLogger("seq2seq").removeHandler(self._log_handler)
        self._log_handler.close()

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        saved = state["train_state"]
        self.state = TrainState(**saved)
        if self.state.base_lr != self.cfg.train.lr:  # a new train.lr restarts the rate
            self.state.lr = self.state.base_lr = self.cfg.train.lr
        ckpt.set_rng_state(state["rng"])
        log.info(
            "resumed from step %d (epoch %d, batch %d)",
            self.state.step,
            self.state.epoch + 1,
            self.state.batch_in_epoch,
        )

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.cfg),
            "tokenizer": {
                "src": self.tokenizer.src_model,
                "tgt": None if self.tokenizer.joint else self.tokenizer.tgt_model,
            },
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "train_state": dict(vars(self.state)),
            "rng": ckpt.rng_state(),
        }

    def save(self, best: bool = False) -> None:
        if self.dist.is_main:  # rank 0 writes the checkpoints
            self.keeper.save(self.checkpoint_state(), self.state.step, best)

    # ------------------------------------------------------------ schedules

    def _lr_for_step(self, step: int, epoch_batches: int) -> float:
        t = self.cfg.train
        if t.lr_schedule == "warmup_decay":
            return warmup_decay_lr(self.state.base_lr, step, t.warmup_steps)
        if t.lr_schedule in ("cosine", "linear"):
            return budget_lr(
                t.lr_schedule,
                self.state.base_lr,
                t.min_lr,
                step,
                t.warmup_steps,
                self._budget_used(epoch_batches),
            )
        return self.state.lr

    def _budget_used(self, epoch_batches: int) -> float:
        """The fraction of the training budget used: the largest of the fractions
        of epochs, max_steps and max_minutes (the same on every rank)."""
        t, s = self.cfg.train, self.state
        used = (s.epoch + s.batch_in_epoch / max(epoch_batches, 1)) / t.epochs
        if t.max_steps is not None:
            used = max(used, s.step / t.max_steps)
        if t.max_minutes is None:
            return used  # steps and epochs: the same on every rank
        used = max(used, s.train_seconds / (60.0 * t.max_minutes))
        return self.dist.max_over_ranks(used)  # the ranks' clocks differ

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _after_validation(self, bleu_score: float, best: bool) -> None:
        """Best score, plateau schedule and early stopping after a validation."""
        s, t = self.state, self.cfg.train
        if best:
            s.best_bleu, s.best_step = bleu_score, s.step
            s.validations_since_best = s.bad_validations = 0
            return
        s.validations_since_best += 1
        if t.lr_schedule == "plateau":
            lr, s.bad_validations = plateau_lr(s.lr, s.bad_validations + 1, t)
            if lr != s.lr:
                log.info("valid BLEU has not improved: lr %.2e -> %.2e", s.lr, lr)
                s.lr = lr
        if t.patience is not None and s.validations_since_best >= t.patience:
            log.info(
                "early stopping: no better valid BLEU in %d validations (best %.2f "
                "at step %d)",
                t.patience,
                s.best_bleu,
                s.best_step,
            )
            s.stopped_early = True

    def _keep_best_n(self, bleu_score: float) -> list[Path]:
        """Rank this validation among the ``train.keep_best`` best, save it if it
        made the list, and return the files that fell off (deleted by the caller
        once latest.pt records the new list)."""
        s = self.state
        s.kept_best, made_it, dropped = self.keeper.rank_best(
            s.kept_best, bleu_score, s.step
        )
        if made_it:
            self.keeper.save_as(self.checkpoint_state(), f"step{s.step}.pt")
        return dropped

    def _save_snapshots(self) -> None:
        """A checkpoint per ``train.snapshot_minutes`` mark passed (quality vs time)."""
        if not self.dist.is_main:
            return
        s = self.state
        for minute in self.keeper.snapshots_due(s.snapshots, s.train_seconds):
            s.snapshots.append(minute)
            name = f"minute{minute:g}.pt"
            self.keeper.save_as(self.checkpoint_state(), name)
            log.info("snapshot at %.1f min: %s", s.train_seconds / 60, name)

    # ------------------------------------------------------------ the loop

    def train_step(
        self, batch, teacher_forcing: float | None = None
    ) -> tuple[float, int]:
        """One update; returns (summed loss, target tokens)."""
        self.model.train()
        batch = batch.to(self.device)
        with autocast(self.device, self.amp_dtype):
            loss = self.loss_fn(
                batch.src,
                batch.src_lengths,
                batch.tgt_in,
                batch.tgt_out,
                self.cfg.train.teacher_forcing
                if teacher_forcing is None
                else teacher_forcing,
                self.cfg.train.label_smoothing,
            )
        tokens = batch.num_tgt_tokens
        # Several processes: the sum and tokens of the global batch (all ranks').
        loss, tokens = self.dist.global_loss(loss, tokens)
        if faults.inject("step", self.state.step + 1):  # test-only: a NaN loss
            loss = loss * float("nan")
        if not torch.isfinite(loss):
            if self.cfg.train.on_nan == "skip":
                self.state.skipped_batches += 1
                log.warning(
                    "step %d: training loss is %s; batch skipped, weights unchanged "
                    "(train.on_nan: skip; %d skipped so far)",
                    self.state.step + 1,
                    loss.item(),
                    self.state.skipped_batches,
                )
                return 0.0, 0
            raise UserError(
                f"training loss became {loss.item()} at step {self.state.step + 1}; "
                "the last good checkpoint is kept in "
                f"{ckpt.checkpoint_dir(self.run_dir)} "
                "(try a lower train.lr or train.clip_grad_norm, or train.on_nan: skip)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss / tokens).backward()
        if self.cfg.train.clip_grad_norm and not self.scaler.is_enabled():
            self._clipped_step(self.cfg.train.clip_grad_norm)
            return loss.item(), tokens
        if self.cfg.train.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            self._grad_norm = float(
                nn.utils.clip_grad_norm_(
                    self.model.parameters(), self.cfg.train.clip_grad_norm
                )
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item(), tokens

    def _clipped_step(self, max_norm: float) -> None:
        """``clip_grad_norm_`` and the optimizer step, the clipping done by Adam.

        ``clip_grad_norm_`` multiplies every gradient by ``min(1, max_norm /
        norm)``, a pass over all of them (2% of a CPU step). The fused Adam kernel
        divides each gradient by the ``grad_scale`` it is given (the way
        ``GradScaler`` unscales), so the division by the inverse happens there,
        in the pass Adam makes anyway. The same numbers as ``clip_grad_norm_``
        (same ``1e-6`` in the denominator).
        """
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g) for g in grads])
        )
        self._grad_norm = float(norm)
        self.optimizer.grad_scale = (norm + 1e-6).div(max_norm).clamp(min=1.0).float()
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.grad_scale

    def run(self) -> TrainState:
        """Train until epochs, max_steps or max_minutes run out; returns the state."""
        from torch.utils.tensorboard import SummaryWriter

        if self.dist.is_main:
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        else:
            self.writer = distributed.NullWriter()
        log.info(
            "model: %s parameters, device %s, %s; train %d pairs, valid %d pairs",
            f"{count_parameters(self.model):,}",
            self.device,
            self.amp,
            len(self.train_data),
            len(self.valid_data),
        )
        log.info("model.kernels: %s", self.model.kernels.reason)
        previous_handlers = self._install_signal_handlers()
        try:
            self._loop()
            self._log_hparams()
        except StopRequested:
            log.warning(
                "signal %s: saving a checkpoint at step %d and stopping (continue "
                "with --resume)",
                self._stop_signal,
                self.state.step,
            )
            self.save()
            self.dist.barrier()  # the other ranks wait for rank 0's checkpoint
        finally:
            self._restore_signal_handlers(previous_handlers)
            self.dist.close()
            self.writer.close()
            self.detach_log_file()
        return self.state

    def _loop(self) -> None:
        t, s = self.cfg.train, self.state
        clock = self.clock
        started = clock() - s.train_seconds
        train_log = TrainLog(self.writer, self._plain_lines, PLAIN_EVERY_S)
        # A finished run stays finished: --resume trains on only when a budget grew.
        done = self._out_of_budget() or (
            s.stopped_early  # and its patience did not grow
            and t.patience is not None
            and s.validations_since_best >= t.patience
        )
        if done and s.history and s.history[-1]["step"] == s.step:
            log.info(
                "the run is already finished at step %d (epoch %d); raise "
                "train.max_steps, train.max_minutes, train.epochs or train.patience "
                "to train on",
                s.step,
                s.epoch,
            )
        while s.epoch < t.epochs and not done:
            batches = self.dist.shard(self.batches.epoch_batches(s.epoch))
            if s.batch_in_epoch >= len(batches):  # resumed with larger batches
                s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                continue
            bar = tqdm(
                total=len(batches),
                initial=s.batch_in_epoch,
                desc=f"epoch {s.epoch + 1}",
                disable=not self._bars,
                leave=False,
                dynamic_ncols=True,
            )
            while s.batch_in_epoch < len(batches):
                if self.dist.any_rank(self._stop_signal is not None):
                    raise StopRequested
                step_start = clock()
                batch = self.batches.batch(batches[s.batch_in_epoch])
                self.dist.seed_step(s.step + 1)  # several processes: dropout per rank
                self._set_lr(self._lr_for_step(s.step + 1, len(batches)))
                loss, tokens = self.train_step(batch, teacher_forcing_ratio(t, s.step))
                now = clock()
                s.step += 1
                s.batch_in_epoch += 1
                s.train_seconds = now - started
                train_log.add(loss, tokens, now - step_start)
                bar.update(1)
                if s.step % t.log_every == 0:
                    train_log.report(
                        now=now,
                        step=s.step,
                        epoch=s.epoch,
                        train_seconds=s.train_seconds,
                        lr=self.optimizer.param_groups[0]["lr"],
                        grad_norm=self._grad_norm,
                        batches_done=s.batch_in_epoch,
                        batches_in_epoch=len(batches),
                        bar=bar,
                    )
                done = self._out_of_budget()
                epoch_end = s.batch_in_epoch == len(batches)
                if epoch_end:
                    s.epoch += 1
                    s.batch_in_epoch = 0
                due_valid = (t.valid_every and s.step % t.valid_every == 0) or (
                    not t.valid_every and epoch_end
                )
                self._save_snapshots()
                if due_valid or done or (epoch_end and s.epoch >= t.epochs):
                    self.validate()
                    done = done or s.stopped_early
                elif t.checkpoint_every and s.step % t.checkpoint_every == 0:
                    self.save()
                if done or epoch_end:
                    break
            bar.close()
        # Not twice: a run resumed at its very end validated this step already.
        if not s.history or s.history[-1]["step"] != s.step:
            self.validate()

    def _out_of_budget(self) -> bool:
        """Whether train.max_steps or train.max_minutes is used up (on any rank)."""
        t, s = self.cfg.train, self.state
        out_of_steps = t.max_steps is not None and s.step >= t.max_steps
        out_of_time = (
            t.max_minutes is not None and s.train_seconds >= t.max_minutes * 60
        )
        return self.dist.any_rank(out_of_steps or out_of_time)

    def validate(self) -> dict[str, float]:
        """Valid loss, perplexity, greedy BLEU; saves latest (and best) checkpoints.

        With several processes rank 0 validates and saves while the others wait;
        then every rank takes rank 0's state (best score, lr, early stopping).
        """
        metrics = self._validate_on_main() if self.dist.is_main else {}
        self.dist.share_state(self.state)
        return metrics

    def _validate_on_main(self) -> dict[str, float]:
        s = self.state
        translator = Translator(
            self.model, self.tokenizer, self.cfg.decode, self.device, self.amp_dtype
        )
        scores = validation.score(
            self.model, translator, self.valid_data, self.valid_batches, self._bars
        )
        if self.cfg.train.log_examples:
            validation.log_examples(
                self.writer,
                translator,
                self.valid_data,
                self.cfg.train.log_examples,
                s.step,
                self.run_dir / "attention",
            )
        metrics = {
            "step": s.step,
            "loss": scores.loss,
            "ppl": scores.ppl,
            "bleu": scores.bleu,
            "minutes": s.train_seconds / 60,
        }
        s.history.append(metrics)
        for name in ("loss", "ppl", "bleu"):
            self.writer.add_scalar(f"valid/{name}", metrics[name], s.step)
        self.writer.add_scalar("valid/chrf", scores.chrf, s.step)
        self.writer.flush()
        best = scores.bleu > s.best_bleu
        self._after_validation(scores.bleu, best)
        faults.inject("validation")
        dropped = self._keep_best_n(scores.bleu)
        self.save(best=best)
        for path in dropped:  # only now: the new latest.pt no longer lists them
            ckpt.remove_checkpoint(path)
        log.info(
            "step %d (epoch %d, %.1f min): valid loss %.3f ppl %.2f BLEU %.2f%s",
            s.step,
            s.epoch + (1 if s.batch_in_epoch else 0),
            s.train_seconds / 60,
            scores.loss,
            scores.ppl,
            scores.bleu,
            " (best)" if best else "",
        )
        return metrics

    def _log_hparams(self) -> None:
        """The run's hyperparameters beside its final scores (TensorBoard hparams)."""
        flat: dict[str, Any] = {}

        def walk(node: Any, prefix: str) -> None:
            for key, value in node.items():
                if isinstance(value, dict):
                    walk(value, f"{prefix}{key}.")
                elif isinstance(value, (bool, int, float, str)):
                    flat[f"{prefix}{key}"] = value
                else:
                    flat[f"{prefix}{key}"] = str(value)

        walk(to_dict(self.cfg), "")
        last = self.state.history[-1] if self.state.history else {}
        self.writer.add_hparams(
            flat,
            {
                "hparam/best_valid_bleu": self.state.best_bleu,
                "hparam/final_valid_loss": last.get("loss", float("nan")),
                "hparam/train_minutes": self.state.train_seconds / 60,
            },
            run_name="hparams",
        )

    # ------------------------------------------------------------ signals

    def _install_signal_handlers(self) -> dict:
        previous = {}

        def handler(signum, frame):
            self._stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        return previous

    def _restore_signal_handlers(self, previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train(
    cfg: Config, resume: bool = False, progress: bool | None = None
) -> TrainState:
    """Train from ``cfg`` (``resume`` continues from the latest checkpoint)."""
    return Trainer(cfg, resume=resume, progress=progress).run()
