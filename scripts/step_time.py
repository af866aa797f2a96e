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
in one process: each package builds its own trainer (the same config, the same
initial weights), and rounds over the same batches go to one and the other in turn
(ABBA order), so both meet the same machine state.
"""

from __future__ import annotations

import argparse
import functools
import statistics
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


def _is_package_module(name: str) -> bool:
    return name == "seq2seq" or name.startswith("seq2seq.")


def checkout_trainer(checkout: Path, config: str, overrides: list[str], amp: str):
    """A throwaway trainer built by the ``seq2seq`` package of another checkout.

    That package is imported under its own name with this one set aside, and this
    one put back after, so the two live side by side: each object keeps the
    module it came from.
    """
    ours = {n: m for n, m in sys.modules.items() if _is_package_module(n)}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, str(checkout))
    try:
        from seq2seq.config import load_config, replace
        from seq2seq.train import Trainer

        cfg = load_config(config, overrides)
        run_dir = tempfile.mkdtemp()
        cfg = replace(cfg, run_dir=run_dir, train=replace(cfg.train, amp=amp))
        return Trainer(cfg, progress=False)
    finally:
        sys.path.remove(str(checkout))
        for name in [n for n in sys.modules if _is_package_module(n)]:
            del sys.modules[name]
        sys.modules.update(ours)


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
        help="alternate this code with the code of checkout DIR, in one process",
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
        checkout = args.ab_checkout.resolve()
        other = checkout_trainer(checkout, args.config, args.overrides, args.amp)
        names = ["this checkout", str(checkout)]
        ab_trainers(trainer, other, order, args.rounds, names)
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
