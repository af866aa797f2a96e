"""Corpus-size scaling of the data pipeline: peak memory and start time.

    python scripts/scale.py make /work/shared/data/multi30k DIR --copies 100
    python scripts/scale.py measure configs/multi30k_de_en.yaml DIR \
        --cache CACHE [key.path=value ...]

``make`` writes Multi30k's training files repeated ``--copies`` times (gzip) and
copies its valid / test files, into DIR (never commit it). ``measure`` runs, each
in a fresh process and for ``tokenizer.sampling_alpha`` 0 then 0.5 (``--alphas``),
``seq2seq data prepare`` on a cold cache, then the data set-up alone and
``seq2seq train --dry-run`` on the warm cache, and prints one line each: wall
time, peak RSS and peak PSS of the process tree (summed over the command and its
worker processes, sampled every 0.1 s; PSS counts a page the workers share once)
and, for the preparation, the training split's pairs/s from its log line.

    python scripts/scale.py set-up configs/multi30k_de_en.yaml [key=value ...]
    [PYTHONPATH=OTHER_CHECKOUT] python scripts/scale.py batch-build \
        /path/to/multi30k joint.model --alpha 0.5

``set-up`` times the phases of a run's data set-up in a fresh process;
``batch-build`` times building Multi30k training batches, in this checkout or
(PYTHONPATH) another.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPLITS = ("train", "val", "test_2016_flickr")


def make(source: Path, out: Path, copies: int) -> None:
    """Multi30k's train files ``copies`` times over, valid and test as they are."""
    out.mkdir(parents=True, exist_ok=True)
    for lang in ("de", "en"):
        with gzip.open(source / f"train.{lang}.gz", "rb") as handle:
            text = handle.read()
        if not text.endswith(b"\n"):
            text += b"\n"
        with gzip.open(out / f"train.{lang}.gz", "wb", compresslevel=1) as handle:
            for _ in range(copies):
                handle.write(text)
        for split in SPLITS[1:]:
            shutil.copy(source / f"{split}.{lang}.gz", out / f"{split}.{lang}.gz")
    print(f"wrote {out}: {copies} x Multi30k train")


def _tree_memory(root: int) -> tuple[int, int]:
    """(resident bytes, proportional bytes) of process ``root`` and all its
    descendants. Worker processes map the same prepared files, whose pages the
    RSS sum counts once per process; PSS (``/proc/PID/smaps_rollup``) shares each
    page among the processes that map it, so its sum is the memory the tree holds."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier.extend(children)
    rss = pss = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


def run_measured(command: list[str], env: dict) -> dict:
    """Run ``command``; its wall time, CPU time (user + system, its worker
    processes included), peak tree RSS, exit status and stderr."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        peak = peak_pss = 0
        while process.poll() is None:
            rss, pss = _tree_memory(process.pid)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_gb": round(peak / 1e9, 2),
        "peak_pss_gb": round(peak_pss / 1e9, 2),
        "returncode": process.returncode,
        "stderr": stderr,
    }


# The data set-up alone, in a fresh process: imports, config, prepare_run, the
# first epoch's batch plan and its first batch (the model and the dry run's timed
# steps excluded).
SET_UP = """
import sys
from pathlib import Path
from seq2seq.config import load_config, replace
from seq2seq.run_setup import prepare_run
cfg = load_config(sys.argv[1], sys.argv[2:])
cfg = replace(cfg, data=replace(cfg.data, root=str(Path(cfg.data.root).resolve())))
run = prepare_run(cfg)
run.batches.batch(run.batches.epoch_batches(0)[0])
"""


def measure(
    config: str,
    data: Path,
    cache: Path,
    overrides: list[str],
    alphas: tuple[str, ...] = ("0", "0.5"),
) -> None:
    """For alpha 0, then the config's subword sampling at alpha 0.5 (which has a
    tokenizer and prepared split of its own): cold ``data prepare``, the data
    set-up alone, and ``train --dry-run``, both warm."""
    env = {**os.environ, "SEQ2SEQ_CACHE_DIR": str(cache)}
    seq2seq = [sys.executable, "-m", "seq2seq"]
    shutil.rmtree(cache, ignore_errors=True)
    for alpha in alphas:
        common = [f"data.root={data}", *overrides, f"tokenizer.sampling_alpha={alpha}"]
        result = run_measured([*seq2seq, "data", "prepare", config, *common], env)
        _report(f"prepare, alpha {alpha} (cold cache)", result, _prepared(result))
        command = [sys.executable, "-c", SET_UP, config, *common]
        _report(
            f"prepare_run + first epoch's batches, alpha {alpha} (warm)",
            run_measured(command, env),
        )
        command = [*seq2seq, "train", config, *common, "train.amp=none", "--dry-run"]
        _report(f"train --dry-run, alpha {alpha} (warm)", run_measured(command, env))


def _prepared(result: dict) -> str:
    """The training split's preparation rate (and sampled lengths) from the log."""
    rate = re.search(
        r"data\.train is prepared: ([\d,]+) pairs \(([\d,]+) read\) in ([\d.]+) s, "
        r"([\d,]+) pairs/s, (\d+) encoding process\(es\), ([\d.]+) CPU s",
        result["stderr"],
    )
    drawn = re.search(
        r"drew epoch 0's segmentation lengths of [\d,]+ pairs in ([\d.]+) s "
        r"\((\d+) process",
        result["stderr"],
    )
    parts = []
    if rate:
        per_cpu = int(rate[2].replace(",", "")) / max(float(rate[6]), 1e-9)
        parts.append(
            f"train split {rate[3]} s, {rate[4]} pairs/s wall, {rate[6]} CPU s "
            f"({per_cpu:,.0f} pairs per CPU second)"
        )
    if drawn:
        parts.append(
            f"epoch 0's sampled lengths drawn in {drawn[1]} s ({drawn[2]} processes)"
        )
    return "; ".join(parts)


def set_up(config: str, overrides: list[str]) -> None:
    """Time the data set-up phases of a run in this (fresh) process."""
    import resource

    start = time.perf_counter()
    from seq2seq.config import load_config, replace
    from seq2seq.run_setup import prepare_run

    imported = time.perf_counter()
    cfg = load_config(config, overrides)
    root = str(Path(cfg.data.root).resolve())
    run = prepare_run(replace(cfg, data=replace(cfg.data, root=root)))
    prepared = time.perf_counter()
    order = run.batches.epoch_batches(0)
    planned = time.perf_counter()
    run.batches.batch(order[0])
    built = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB
    print(
        f"imports {imported - start:.1f} s, prepare_run {prepared - imported:.1f} s, "
        f"epoch plan {planned - prepared:.1f} s, first batch {built - planned:.2f} s, "
        f"peak RSS {rss:.2f} GB"
    )


def batch_build(data: Path, model: Path, alpha: float, batches: int) -> None:
    """Set-up, epoch plan and batch build time of ``BatchIterator`` over Multi30k
    de-en (``data``), through calls that older checkouts have too: run with
    PYTHONPATH=OTHER_CHECKOUT to time theirs."""
    import resource

    import seq2seq
    from seq2seq.config import CorpusConfig
    from seq2seq.data import BatchIterator, SubwordSampler, encode_pairs, read_corpus
    from seq2seq.tokenizer import Tokenizer, restrict_to_target

    corpus = CorpusConfig(src="train.de.gz", tgt="train.en.gz")
    sources, targets = read_corpus(corpus, data, "train")
    joint = model.read_bytes()
    tokenizer = Tokenizer(joint, restrict_to_target(joint, targets, 8))
    start = time.perf_counter()
    pairs = encode_pairs(tokenizer, sources, targets, "train", 64, 80)
    sampler = None
    if alpha:
        sampler = SubwordSampler(tokenizer, pairs, alpha, 8, 1234, 64, 80)
    iterator = BatchIterator(pairs, 64, None, True, 1234, sampler)
    ready = time.perf_counter()
    order = iterator.epoch_batches(1)
    planned = time.perf_counter()
    for i in range(batches):
        iterator.batch(order[i])
    built = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB
    print(
        f"{Path(seq2seq.__file__).parent.parent} alpha {alpha}: encode + sampler "
        f"set-up {ready - start:.1f} s, epoch plan {1000 * (planned - ready):.0f} ms, "
        f"batch build {1000 * (built - planned) / batches:.2f} ms/batch, "
        f"peak RSS {rss:.2f} GB"
    )


def _report(name: str, result: dict, extra: str | None = None) -> None:
    line = {k: v for k, v in result.items() if k != "stderr"}
    print(f"{name}: {json.dumps(line)}{'; ' + extra if extra else ''}", flush=True)
    if result["returncode"] != 0:
        print(result["stderr"][-3000:], file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make", help="Multi30k train repeated, in a new folder")
    p.add_argument("source", type=Path, help="folder of Multi30k's .gz files")
    p.add_argument("out", type=Path)
    p.add_argument("--copies", type=int, default=100)
    p = sub.add_parser("measure", help="cold preparation and warm dry runs")
    p.add_argument("config")
    p.add_argument("data", type=Path, help="a folder made by `make`")
    p.add_argument("overrides", nargs="*", metavar="key.path=value")
    p.add_argument("--cache", type=Path, required=True, help="emptied first")
    p.add_argument(
        "--alphas",
        nargs="+",
        default=["0", "0.5"],
        help="tokenizer.sampling_alpha values to measure, in order (default 0 0.5)",
    )
    p = sub.add_parser("set-up", help="time prepare_run and the batch plan")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key.path=value")
    p = sub.add_parser("batch-build", help="time building batches (any checkout)")
    p.add_argument("data", type=Path, help="Multi30k's folder")
    p.add_argument("model", type=Path, help="a joint sentencepiece model")
    p.add_argument("--alpha", type=float, default=0.0)
    p.add_argument("--batches", type=int, default=60)
    args = parser.parse_args(argv)
    if args.command == "set-up":
        set_up(args.config, args.overrides)
    elif args.command == "batch-build":
        batch_build(args.data, args.model, args.alpha, args.batches)
    elif args.command == "make":
        make(args.source, args.out, args.copies)
    else:
        measure(
            args.config,
            args.data.resolve(),
            args.cache,
            args.overrides,
            tuple(args.alphas),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
