"""Milliseconds per training step (and per encoder forward + backward) on real batches.

For A/B comparisons on a noisy machine: run it alternately in checkouts of the old
and the new code, several times each, and compare the averages. Example (JoeyNMT's
model size)::

    python scripts/step_time.py configs/multi30k_de_en.yaml \\
        model.encoder_hidden_size=512 model.tie_embeddings=false
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from benchmark import AMP_DTYPES, load_config_or_exit, throwaway_trainer  # scripts/

from seq2seq.precision import autocast


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    parser.add_argument("--amp", default="bf16", choices=list(AMP_DTYPES))
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    cfg = load_config_or_exit(args.config, args.overrides)
    trainer = throwaway_trainer(cfg, args.amp, Path(tempfile.mkdtemp()))
    order = trainer.batches.epoch_batches(0)[: args.batches]
    batches = [trainer.batches.batch(indices) for indices in order]
    model = trainer.model
    for batch in batches[:3]:  # warm-up
        trainer.train_step(batch)
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
