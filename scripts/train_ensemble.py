"""Train N models of one config side by side, for decoding as an ensemble.

On a CPU with few cores, N training processes of ``cores / N`` threads each make
more steps in total than one process with every core: most of a step's small
element-wise ops run on one thread whatever the thread count, so one process
leaves the other cores idle for much of a step (2 cores: two one-thread runs make
1.3-1.4x the steps of one two-thread run). Each member gets its own seed (the config's
seed + i) and run directory (``RUN_DIR/m1``, ``RUN_DIR/m2``, ...); they train the
same sentencepiece models (its training is deterministic), so they decode together::

    python scripts/train_ensemble.py configs/multi30k_de_en.yaml --members 2 --average 5
    seq2seq evaluate runs/multi30k_de_en/m1/checkpoints/averaged.pt \\
        --ensemble runs/multi30k_de_en/m2/checkpoints/averaged.pt --split test

The first member's progress goes to the terminal; the others train ``--quiet``,
their output in ``RUN_DIR/mI.out``. After training the script prints the evaluate
command for the members' last checkpoints, or with ``--average K`` for the average
of each member's K best (``seq2seq average``: on Multi30k it helps a 60-minute run
and hurts a 15-minute one, whose few kept checkpoints go back to its first
minutes). Ctrl-C or SIGTERM stops every member, each writing a checkpoint, and
``--resume`` resumes them all. If a member fails, the others are stopped and the
script exits with its status.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmark import load_config_or_exit  # scripts/


def member_command(
    config: str,
    overrides: list[str],
    run_dir: Path,
    seed: int,
    threads: int,
    quiet: bool,
) -> list[str]:
    """The ``seq2seq train`` command line of one member."""
    return [
        sys.executable,
        "-m",
        "seq2seq",
        "train",
        config,
        *overrides,
        f"run_dir={run_dir}",
        f"seed={seed}",
        f"train.num_threads={threads}",
        *(["--quiet"] if quiet else []),
    ]


def signal_running(procs: list[subprocess.Popen], signum: int) -> None:
    """Send ``signum`` to every member still running (each writes a checkpoint)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    parser.add_argument("--members", type=int, default=2, help="models (default 2)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per member (default: CPU cores / members, at least 1)",
    )
    parser.add_argument(
        "--average",
        type=int,
        default=0,
        metavar="K",
        help="afterwards average each member's K best checkpoints (seq2seq average; "
        "K <= train.keep_best) and name those in the evaluate command (default: "
        "the members' last checkpoints)",
    )
    parser.add_argument("--resume", action="store_true", help="resume every member")
    args = parser.parse_intermixed_args(argv)  # overrides may follow options
    if args.members < 1:
        parser.error(f"--members {args.members}: must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads}: must be >= 1")
    cfg = load_config_or_exit(args.config, args.overrides)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.members)
    root = Path(cfg.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    runs = [root / f"m{i + 1}" for i in range(args.members)]
    resume = ["--resume"] if args.resume else []
    print(
        f"training {args.members} members of {args.config} with {threads} thread(s) "
        f"each: {', '.join(map(str, runs))}",
        file=sys.stderr,
    )
    procs = []
    for i, run in enumerate(runs):
        cmd = member_command(
            args.config, args.overrides, run, cfg.seed + i, threads, quiet=i > 0
        )
        if i == 0:
            procs.append(subprocess.Popen([*cmd, *resume]))
            continue
        with open(root / f"m{i + 1}.out", "a") as out:  # the member keeps its copy
            procs.append(subprocess.Popen([*cmd, *resume], stdout=out, stderr=out))
    stopping: list[int] = []

    def stop(signum: int, _frame) -> None:  # SIGTERM to the script: stop them all
        stopping.append(signum)
        signal_running(procs, signum)

    signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        while any(p.poll() is None for p in procs):
            failed = [p for p in procs if p.returncode not in (None, 0)]
            if failed:
                status = failed[0].returncode
                signal_running(procs, signal.SIGINT)
                break
            time.sleep(1)
        for p in procs:
            p.wait()
        status = status or next((p.returncode for p in procs if p.returncode), 0)
    except KeyboardInterrupt:  # the terminal sent SIGINT to every member too
        for p in procs:
            p.wait()
        return 130
    if stopping:
        print(f"stopped; --resume continues the members in {root}", file=sys.stderr)
        return 128 + stopping[0]
    if status:
        print(
            f"error: a member failed (status {status}); see {root}/m*.out and "
            "each member's train.log; once fixed, --resume continues them",
            file=sys.stderr,
        )
        return status
    members = [run / "checkpoints" / "latest.pt" for run in runs]
    if args.average > 1:
        for i, run in enumerate(runs):
            average = [sys.executable, "-m", "seq2seq", "average", str(run)]
            done = subprocess.run([*average, "--best", str(args.average)])
            if done.returncode:
                return done.returncode  # seq2seq average said why
            members[i] = run / "checkpoints" / "averaged.pt"
    ensemble = [f"--ensemble {m}" for m in members[1:]]
    print(" ".join(["seq2seq evaluate", str(members[0]), *ensemble, "--split test"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
