"""What training reports while it runs: the window of steps since the last report,
turned into a bar postfix, a plain progress line and TensorBoard scalars.

Speed and time to go are measured over the window's training steps only: the
seconds spent validating, saving checkpoints or starting up are not in them, so the
first window after a validation reports the same tokens/s as any other.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from seq2seq.progress import format_minutes

log = logging.getLogger(__name__)


@dataclass
class Window:
    """Sums over the training steps since the last report."""

    loss: float = 0.0  # summed token losses
    tokens: int = 0  # target tokens
    steps: int = 0
    seconds: float = 0.0  # inside training steps only

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    @property
    def mean_loss(self) -> float:
        return self.loss / max(self.tokens, 1)

    def seconds_for(self, steps: int) -> float:
        """The time ``steps`` more steps take at this window's pace."""
        return steps * self.seconds / max(self.steps, 1)


class TrainLog:
    """Collects steps into a :class:`Window` and reports it.

    ``writer`` is a TensorBoard ``SummaryWriter`` (or a null one); ``plain_lines``
    turns on a plain progress line (no terminal: CI, ``nohup``), written at most
    once per ``plain_every`` seconds of the ``clock`` passed to :meth:`report`.
    """

    def __init__(self, writer, plain_lines: bool, plain_every: float) -> None:
        self.writer = writer
        self.plain_lines = plain_lines
        self.plain_every = plain_every
        self.window = Window()
        self._last_plain: float | None = None

    def add(self, loss: float, tokens: int, seconds: float) -> None:
        """One training step: its summed loss, target tokens and duration."""
        w = self.window
        w.loss += loss
        w.tokens += tokens
        w.steps += 1
        w.seconds += seconds

    def report(
        self,
        *,
        now: float,
        step: int,
        epoch: int,
        train_seconds: float,
        lr: float,
        grad_norm: float | None,
        batches_done: int,
        batches_in_epoch: int,
        bar=None,
    ) -> Window:
        """Write the window out (bar, plain line, TensorBoard) and start a new one;
        returns the window reported."""
        w, self.window = self.window, Window()
        ppl = math.exp(min(w.mean_loss, 50.0))
        if bar is not None:
            bar.set_postfix(loss=f"{w.mean_loss:.3f}", tok_s=f"{w.tokens_per_s:,.0f}")
        if self.plain_lines and (
            self._last_plain is None or now - self._last_plain >= self.plain_every
        ):
            self._last_plain = now
            left = batches_in_epoch - batches_done
            log.info(
                "step %d (epoch %d, %s): loss %.3f ppl %.2f lr %.2e, %s tok/s; "
                "epoch %d%% done, %s to go",
                step,
                epoch + 1,
                format_minutes(train_seconds),
                w.mean_loss,
                ppl,
                lr,
                f"{w.tokens_per_s:,.0f}",
                100 * batches_done // max(batches_in_epoch, 1),
                format_minutes(w.seconds_for(left)),
            )
        self.writer.add_scalar("train/loss", w.mean_loss, step)
        self.writer.add_scalar("train/tokens_per_s", w.tokens_per_s, step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/ppl", ppl, step)
        if grad_norm is not None:
            self.writer.add_scalar("train/grad_norm", grad_norm, step)
        return w
