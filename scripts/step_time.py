"""Milliseconds per training step (and per encoder forward + backward) on real batches.

For A/B comparisons on a noisy machine: run it alternately in checkouts of the old
and the new code, several times each, and compare the averages. Example (JoeyNMT's
model size)::

    python scripts/step_time.py configs/multi30k_de_en.yaml \\
        model.encoder_hidden_size=512 model.tie_embeddings=false

``--ab-step-path`` instead alternates, in one process and on the same batches, the
teacher-forced kernel that ``model.kernels`` picked (``seq2seq.kernels``) with the
step-by-step recurrence that decoding runs (``Decoder.rnn_step``), and prints the
best and median step times.

``--ab-override KEY=VALUE`` alternates, the same way, the config with and without
the override (``model.dropout=0.1``).

``--ab-checkout DIR`` alternates this checkout's code with another checkout's (a
change judged against the code before it: ``git worktree add /tmp/before HEAD~1``),
with the other checkout's code in a process of its own: each builds its own
trainer (the same config, the same initial weights), and rounds over the same
batches go to one and the other in turn (ABBA order), so both meet the same
machine state.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from benchmark import AMP_DTYPES, load_config_or_exit, throwaway_trainer  # scripts/

from seq2seq.model import Decoder, DecoderState
from seq2seq.precision import autocast


def step_by_step_recurrence(
    decoder: Decoder, embedded: torch.Tensor, enc
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a teacher-forced kernel computes, one ``rnn_step`` at a time."""
    state = decoder.initial_state(enc.hidden)
    tops, contexts = [], []
    for step_input in embedded.unbind(1):
        top, hidden, context, _ = decoder.rnn_step(step_input, state, enc)
        tops.append(top)
        contexts.append(context)
        state = DecoderState(hidden, None)
    return torch.stack(tops, 1), torch.stack(contexts, 1)


def _train(trainer, batches: list) -> int:
    """One training step on each batch; -> the number of steps."""
    for batch in batches:
        trainer.train_step(batch)
    return len(batches)


def alternate(
    sides: dict[str, Callable[[], int]], rounds: int
) -> dict[str, list[float]]:
    """``rounds`` rounds of each of two sides, in ABBA order so that both meet the
    same machine state; a side's round returns its number of training steps.
    -> milliseconds per step of every round, by side."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for i in range(2 * rounds):
        name = names[i % 2] if i // 2 % 2 == 0 else names[1 - i % 2]
        start = time.perf_counter()
        steps = sides[name]()
        times[name].append((time.perf_counter() - start) / steps * 1000)
    return times


def report(times: dict[str, list[float]], rounds: int, batches: int) -> list[float]:
    """Print each side's best and median step; -> the medians."""
    medians = []
    for name, ms in times.items():
        medians.append(statistics.median(ms))
        print(
            f"{name}: train step best {min(ms):.1f} ms, median {medians[-1]:.1f} ms "
            f"({rounds} rounds of {batches} batches, torch {torch.__version__})"
        )
    return medians


def ab_step_path(trainer, batches: list, rounds: int) -> None:
    decoder = trainer.model.decoder
    if decoder.input_feeding:
        raise SystemExit("--ab-step-path: input feeding runs step by step already")
    planned = decoder.recurrence

    def side(path):
        def run() -> int:
            decoder.recurrence = path
            return _train(trainer, batches)

        return run

    sides = {"planned": side(planned), "step-by-step": side(step_by_step_recurrence)}
    try:
        times = alternate(sides, rounds)
    finally:
        decoder.recurrence = planned
    report(times, rounds, len(batches))


WORKER = """
import json, sys, tempfile
checkout, config, amp, weights = sys.argv[1:5]
overrides = sys.argv[5:]
sys.path.insert(0, checkout)  # that checkout's seq2seq, before any other
import torch
from seq2seq.config import load_config, replace
from seq2seq.train import Trainer

cfg = load_config(config, overrides)
cfg = replace(cfg, run_dir=tempfile.mkdtemp(), train=replace(cfg.train, amp=amp))
trainer = Trainer(cfg, progress=False)
try:
    trainer.model.load_state_dict(torch.load(weights))
    print("same weights", flush=True)
except RuntimeError:
    print("own weights", flush=True)
batches = [trainer.batches.batch(i) for i in json.loads(sys.stdin.readline())]
print("ready", flush=True)
for line in sys.stdin:
    for batch in batches[:3] if line.strip() == "warmup" else batches:
        trainer.train_step(batch)
    print("done", flush=True)
"""
"""The other checkout's side of ``--ab-checkout``: a process of its own that
imports that checkout's ``seq2seq``, builds its trainer from the same config and
weights, and runs a round of training steps on the given batches per line read."""


class CheckoutWorker:
    """A trainer of another checkout's code, in a process of its own (two versions
    of one package cannot share an interpreter without swapping ``sys.modules``).

    Each round is one line to the process and one back; the pipe costs some
    microseconds against the milliseconds of every training step.
    """

    def __init__(
        self, checkout: Path, config: str, overrides: list[str], amp: str, trainer
    ) -> None:
        weights = Path(tempfile.mkdtemp()) / "weights.pt"
        torch.save(trainer.model.state_dict(), weights)
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(checkout), config, amp, str(weights)]
            + overrides,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.same_weights = self._read() == "same weights"
        self.steps = 0

    def _read(self) -> str:
        line = self.process.stdout.readline().strip()
        if not line:
            raise SystemExit(
                f"the other checkout's process ended ({self.process.wait()})"
            )
        return line

    def _ask(self, line: str) -> str:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._read()

    def use_batches(self, indices: list) -> None:
        """Build the batches of these sample indices (``Batches.batch``)."""
        self._ask(json.dumps([[int(i) for i in batch] for batch in indices]))
        self.steps = len(indices)

    def train(self, warmup: bool = False) -> int:
        """One round (or the warm-up's three steps); -> the steps taken."""
        self._ask("warmup" if warmup else "round")
        return self.steps

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def ab_checkout(trainer, checkout: Path, args, indices: list) -> None:
    """Alternate this checkout's trainer with another checkout's, in its own
    process, over the same batches, from the same weights where they fit."""
    worker = CheckoutWorker(checkout, args.config, args.overrides, args.amp, trainer)
    try:
        if not worker.same_weights:
            print("(the two sides' parameters differ: each starts from its own init)")
        worker.use_batches(indices)
        batches = [trainer.batches.batch(i) for i in indices]
        _train(trainer, batches[:3])  # warm-up
        worker.train(warmup=True)
        names = ["this checkout", str(checkout)]
        sides = {names[0]: functools.partial(_train, trainer, batches)}
        sides[names[1]] = worker.train
        this, that = report(alternate(sides, args.rounds), args.rounds, len(indices))
        print(f"{names[0]}'s median step: {100 * (this / that - 1):+.1f}%")
    finally:
        worker.close()


def ab_trainers(trainer, other, indices: list, rounds: int, names: list[str]) -> None:
    """Alternate two trainers over the same batches, from the same weights."""
    try:
        other.model.load_state_dict(trainer.model.state_dict())
    except RuntimeError:
        print("(the two sides' parameters differ: each starts from its own init)")
    runs = {
        name: (run, [run.batches.batch(i) for i in indices])
        for name, run in zip(names, (trainer, other), strict=True)
    }
    for run, batches in runs.values():  # warm-up
        _train(run, batches[:3])
    sides = {
        name: functools.partial(_train, run, batches)
        for name, (run, batches) in runs.items()
    }
    this, that = report(alternate(sides, rounds), rounds, len(indices))
    print(f"{names[0]}'s median step: {100 * (this / that - 1):+.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    parser.add_argument("--amp", default="bf16", choices=list(AMP_DTYPES))
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    # One comparison per run: a second one would be silently ignored.
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--ab-step-path",
        type=int,
        metavar="ROUNDS",
        help="alternate the planned and the step-by-step teacher-forced recurrence",
    )
    modes.add_argument(
        "--ab-checkout",
        type=Path,
        metavar="DIR",
        help="alternate this code with the code of checkout DIR (run in a process "
        "of its own)",
    )
    modes.add_argument(
        "--ab-override",
        action="append",
        metavar="KEY=VALUE",
        help="alternate the config with and without these overrides (repeatable)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=12,
        help="rounds per side of --ab-checkout and --ab-override",
    )
    args = parser.parse_args(argv)
    if args.ab_checkout and not (args.ab_checkout / "seq2seq/train.py").is_file():
        parser.error(f"--ab-checkout {args.ab_checkout}: no seq2seq/train.py there")
    cfg = load_config_or_exit(args.config, args.overrides)
    trainer = throwaway_trainer(cfg, args.amp, Path(tempfile.mkdtemp()))
    order = trainer.batches.epoch_batches(0)[: args.batches]
    if args.ab_checkout:
        ab_checkout(trainer, args.ab_checkout.resolve(), args, order)
        return 0
    if args.ab_override:
        changed = load_config_or_exit(args.config, args.overrides + args.ab_override)
        other = throwaway_trainer(changed, args.amp, Path(tempfile.mkdtemp()))
        names = [" ".join(args.ab_override), "without"]
        ab_trainers(other, trainer, order, args.rounds, names)
        return 0
    batches = [trainer.batches.batch(indices) for indices in order]
    model = trainer.model
    for batch in batches[:3]:  # warm-up
        trainer.train_step(batch)
    if args.ab_step_path:
        ab_step_path(trainer, batches, args.ab_step_path)
        return 0
    encoder_ms, step_ms = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for batch in batches:
            with autocast(trainer.device, trainer.amp_dtype):
                outputs, hidden = model.encoder(batch.src, batch.src_lengths)
            (outputs.float().sum() + hidden.float().sum()).backward()
        encoder_ms.append((time.perf_counter() - start) / len(batches) * 1000)
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        for batch in batches:
            trainer.train_step(batch)
        step_ms.append((time.perf_counter() - start) / len(batches) * 1000)
    print(
        f"train step {' '.join(f'{ms:.1f}' for ms in step_ms)} ms; encoder forward + "
        f"backward {' '.join(f'{ms:.1f}' for ms in encoder_ms)} ms "
        f"({args.batches} batches, amp {args.amp}, torch {torch.__version__})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
