"""Corpus-size scaling of the data pipeline: peak memory and start time.

    python scripts/scale.py make /work/shared/data/multi30k DIR --copies 100
    python scripts/scale.py measure configs/multi30k_de_en.yaml DIR \
        --cache CACHE [key.path=value ...]

``make`` writes Multi30k's training files repeated ``--copies`` times (gzip) and
copies its valid / test files, into DIR (never commit it). ``measure`` runs, each
in a fresh process, ``seq2seq data prepare`` on an empty cache (cold), then
``seq2seq train --dry-run`` on the warm cache for ``tokenizer.sampling_alpha``
0 and 0.5, and prints one line each: wall time, peak RSS of the process tree
(summed over the command and its worker processes, sampled every 0.1 s) and, for
the preparation, the training split's pairs/s from its log line.
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


def _tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants."""
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
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run_measured(command: list[str], env: dict) -> dict:
    """Run ``command``; its wall time, peak tree RSS, exit status and stderr."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / 1e9, 2),
        "returncode": process.returncode,
        "stderr": stderr,
    }


def measure(config: str, data: Path, cache: Path, overrides: list[str]) -> None:
    env = {**os.environ, "SEQ2SEQ_CACHE_DIR": str(cache)}
    seq2seq = [sys.executable, "-m", "seq2seq"]
    common = [f"data.root={data}", *overrides]
    shutil.rmtree(cache, ignore_errors=True)
    result = run_measured([*seq2seq, "data", "prepare", config, *common], env)
    rate = re.search(
        r"data\.train: prepared .* in ([\d.]+) s, ([\d,]+) pairs/s", result["stderr"]
    )
    _report(
        "prepare (cold cache)",
        result,
        rate and f"train split {rate[1]} s, {rate[2]} pairs/s",
    )
    for alpha in ("0", "0.5"):
        command = [*seq2seq, "train", config, *common, "train.amp=none"]
        command += [f"tokenizer.sampling_alpha={alpha}", "--dry-run"]
        _report(f"train --dry-run, alpha {alpha} (warm)", run_measured(command, env))


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
    args = parser.parse_args(argv)
    if args.command == "make":
        make(args.source, args.out, args.copies)
    else:
        measure(args.config, args.data.resolve(), args.cache, args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
