"""Measure training and decoding speed, FLOPs and the fraction of matmul peak.

    python scripts/benchmark.py configs/multi30k_de_en.yaml --amp none bf16 \
        --run runs/multi30k_de_en --output bench.json

Training: target tokens/s and sentences/s over ``--steps`` real training steps (after
``--warmup``) on the config's training data, through the trainer's own ``train_step``.
Decoding: sentences/s, greedy and beam, over the config's test split (a trained
``--run`` gives realistic output lengths; without one the decoding figures use the
briefly trained benchmark model). ``--timebox MIN`` also trains for MIN minutes and
records valid BLEU against wall-clock minutes.

FLOPs per target token are counted by torch's FlopCounterMode on one training step;
the machine's matmul peak is measured here, per dtype, on a 2048^3 product.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from seq2seq import __version__
from seq2seq.config import Config, load_config, replace
from seq2seq.errors import UserError
from seq2seq.inference import Translator, load_model
from seq2seq.model import count_parameters
from seq2seq.precision import autocast_dtype
from seq2seq.train import Trainer

AMP_DTYPES = {"none": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_config_or_exit(path: str, overrides: list[str]) -> Config:
    """The config, or exit with status 2 and ``error: <one line>``, as the CLI does."""
    try:
        return load_config(path, overrides)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def throwaway_trainer(cfg: Config, amp: str, run_dir: Path) -> Trainer:
    """A progress-less trainer of ``cfg`` under ``train.amp: amp``, writing to
    ``run_dir`` (a temporary directory: these runs are measured, not kept)."""
    return Trainer(
        replace(cfg, run_dir=str(run_dir), train=replace(cfg.train, amp=amp)),
        progress=False,
    )


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int = 0) -> float:
    """Best-of-7 GFLOP/s of a size^3 matrix product (2048^3 on CPU, 8192^3 on GPU)."""
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = 0.0
    for _ in range(7):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


FLOP_BATCHES = 5


def bench_training(trainer: Trainer, steps: int, warmup: int) -> dict:
    """Time ``steps`` real updates after ``warmup`` ones."""
    batches = trainer.batches.epoch_batches(0)
    counted = FLOP_BATCHES
    needed = warmup + counted + steps
    if len(batches) < needed:
        batches = batches * (needed // len(batches) + 1)
    for i in range(warmup):
        trainer.train_step(trainer.batches.batch(batches[i]))
    # FLOPs per target token over a few batches (counted, not timed): one batch alone
    # swings with its source lengths and padding.
    flops = flop_tokens = 0
    for i in range(warmup, warmup + counted):
        with FlopCounterMode(display=False) as counter:
            _, n = trainer.train_step(trainer.batches.batch(batches[i]))
        flops += counter.get_total_flops()
        flop_tokens += n
    flops_per_token = flops / flop_tokens
    first = warmup + counted  # the timed steps follow the counted ones
    tokens = sentences = 0
    _sync(trainer.device)
    start = time.perf_counter()
    for i in range(first, first + steps):
        batch = trainer.batches.batch(batches[i])
        _, n = trainer.train_step(batch)
        tokens += n
        sentences += len(batch.indices)
    _sync(trainer.device)
    seconds = time.perf_counter() - start
    return {
        "steps": steps,
        "target_tokens_per_s": tokens / seconds,
        "sentences_per_s": sentences / seconds,
        "seconds_per_step": seconds / steps,
        "flops_per_target_token": flops_per_token,
        "achieved_gflops": flops_per_token * tokens / seconds / 1e9,
    }


def bench_decoding(translator: Translator, lines: list[str], beam: int) -> dict:
    translator.beam_size = beam
    translator.translate_lines(lines[:64])  # warm-up
    _sync(translator.device)
    start = time.perf_counter()
    out = translator.translate_lines(lines)
    _sync(translator.device)
    seconds = time.perf_counter() - start
    return {
        "beam": beam,
        "sentences": len(lines),
        "sentences_per_s": len(lines) / seconds,
        "output_tokens": sum(len(t.tokens) for t in out),
    }


OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=")
"""The start of a ``key.path=value`` config override."""


def split_overrides(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[list[str], list[str]]:
    """``argv`` without its config overrides, and the overrides, in order.

    Overrides may stand anywhere, as ``seq2seq train`` takes them: also after
    ``--amp none bf16``, whose list would otherwise swallow them. A value of an
    option that takes one (``--output a=b.json``) stays that option's.
    """
    takes_value = {
        flag
        for action in parser._actions
        if action.nargs is None
        for flag in action.option_strings
    }
    rest: list[str] = []
    overrides: list[str] = []
    for i, arg in enumerate(argv):
        after_option = i > 0 and argv[i - 1] in takes_value
        is_override = OVERRIDE.match(arg) and not after_option
        (overrides if is_override else rest).append(arg)
    return rest, overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    parser.add_argument(
        "--amp",
        nargs="+",
        default=["none", "bf16"],
        choices=list(AMP_DTYPES),
        help="precisions to measure",
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--run", help="trained run for the decoding figures")
    parser.add_argument("--decode-batch", type=int, default=64)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--no-decode", action="store_true")
    parser.add_argument(
        "--timebox",
        type=float,
        default=0.0,
        metavar="MIN",
        help="also train MIN minutes and record valid BLEU vs time",
    )
    parser.add_argument("--output", default="benchmark.json")
    rest, overrides = split_overrides(parser, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(rest)
    args.overrides += overrides

    cfg = load_config_or_exit(args.config, args.overrides)
    workdir = Path(tempfile.mkdtemp(prefix="seq2seq-bench-"))
    report: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "seq2seq": __version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "config": args.config,
        "overrides": args.overrides,
        "training": {},
        "decoding": {},
        "matmul_peak_gflops": {},
    }
    rows = []
    for amp in args.amp:
        trainer = throwaway_trainer(cfg, amp, workdir / f"train-{amp}")
        run_cfg = trainer.cfg
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        dtype = autocast_dtype(amp, trainer.device) or torch.float32
        peak = matmul_peak(dtype, trainer.device)
        report["matmul_peak_gflops"][str(dtype)] = peak
        result = bench_training(trainer, args.steps, args.warmup)
        result["parameters"] = count_parameters(trainer.model)
        result["fraction_of_peak"] = result["achieved_gflops"] / peak
        result["peak_memory_mb"] = peak_memory_mb(trainer.device)
        report["training"][amp] = result
        rows.append(
            (
                f"train {amp}",
                f"{result['target_tokens_per_s']:,.0f} tok/s",
                f"{result['sentences_per_s']:,.1f} sent/s",
                f"{result['flops_per_target_token'] / 1e6:.1f} MFLOP/tok",
                f"{100 * result['fraction_of_peak']:.0f}% of {peak:.0f} GFLOP/s",
            )
        )
        if not args.no_decode and amp == args.amp[-1]:
            if args.run:
                model, tokenizer, run_config = load_model(args.run, trainer.device)
            else:
                model, tokenizer, run_config = trainer.model, trainer.tokenizer, run_cfg
            decode = replace(run_config.decode, batch_size=args.decode_batch)
            translator = Translator(
                model, tokenizer, decode, trainer.device, trainer.amp_dtype
            )
            split = run_config.data.test or run_config.data.valid
            from seq2seq.data import read_corpus

            lines, _ = read_corpus(split, Path(run_config.data.root), "test")
            for beam in (1, args.beam):
                key = f"{amp}-beam{beam}"
                result = bench_decoding(translator, lines, beam)
                report["decoding"][key] = result
                rows.append(
                    (
                        f"decode {key}",
                        f"{result['sentences_per_s']:,.1f} sent/s",
                        f"batch {args.decode_batch}",
                        f"{len(lines)} sentences",
                        "",
                    )
                )
        if args.timebox and amp == args.amp[-1]:
            timed = replace(
                run_cfg,
                run_dir=str(workdir / f"timebox-{amp}"),
                train=replace(run_cfg.train, max_minutes=args.timebox, epochs=1000),
            )
            state = Trainer(timed, progress=False).run()
            report["timebox"] = {
                "amp": amp,
                "minutes": args.timebox,
                "valid": state.history,
            }
    report["peak_memory_mb"] = peak_memory_mb(torch.device("cpu"))
    Path(args.output).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(
        f"{report['machine']['processor']}, {report['machine']['threads']} threads, "
        f"torch {report['machine']['torch']}"
    )
    for row in rows:
        print("  ".join(f"{c:<22}" for c in row).rstrip())
    print(f"peak memory {report['peak_memory_mb']:,.0f} MB; results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
