"""Train one model per attention rule on the same budget and recipe; tabulate BLEU.

    python scripts/compare_attention.py configs/multi30k_de_en.yaml --minutes 8 \
        --out runs/attention --table attention_table.md

Each row: ``seq2seq train CONFIG model.attention=RULE train.max_minutes=MIN
run_dir=OUT/RULE``, then ``seq2seq evaluate OUT/RULE --split test --beam 1`` and
``--beam 5``. Rows are printed as a Markdown table (with the command of each row)
and saved as JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from seq2seq.attention import RULES
from seq2seq.checkpoint import load_checkpoint
from seq2seq.inference import load_model
from seq2seq.model import count_parameters


def run(command: list[str]) -> str:
    print("$", " ".join(command), file=sys.stderr, flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"failed: {' '.join(command)}")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--out", default="runs/attention")
    parser.add_argument("--table", default="attention_table.md")
    args = parser.parse_args(argv)

    seq2seq = [sys.executable, "-m", "seq2seq"]
    rows = []
    for rule in args.rules:
        run_dir = Path(args.out) / rule
        train = [
            *seq2seq,
            "train",
            args.config,
            *args.overrides,
            f"model.attention={rule}",
            f"train.max_minutes={args.minutes}",
            "train.snapshot_minutes=[]",
            f"run_dir={run_dir}",
            "--quiet",
        ]
        if not (run_dir / "checkpoints" / "latest.pt").is_file():
            started = time.perf_counter()
            run(train)
            wall = time.perf_counter() - started
        else:
            wall = float("nan")
        model, _, _ = load_model(run_dir, torch.device("cpu"))
        params = count_parameters(model)  # tied weights counted once
        scores = {}
        for beam in (1, 5):
            out = run(
                [
                    *seq2seq,
                    "evaluate",
                    str(run_dir),
                    "--split",
                    "test",
                    "--beam",
                    str(beam),
                ]
            )
            scores[beam] = float(out.split()[2])
        latest = load_checkpoint(run_dir / "checkpoints" / "latest.pt")["train_state"]
        rows.append(
            {
                "rule": rule,
                "greedy": scores[1],
                "beam5": scores[5],
                "parameters": params,
                "train_minutes": latest["train_seconds"] / 60,
                "steps": latest["step"],
                "best_valid_bleu": latest["best_bleu"],
                "wall_seconds": wall,
                "command": " ".join(train[2:]),
            }
        )
    lines = [
        "| rule | test BLEU greedy | test BLEU beam 5 | parameters | training "
        "| steps |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['rule']}` | {r['greedy']:.2f} | {r['beam5']:.2f} | "
            f"{r['parameters'] / 1e6:.2f} M | {r['train_minutes']:.1f} min | "
            f"{r['steps']} |"
        )
    table = "\n".join(lines)
    print(table)
    Path(args.table).write_text(table + "\n", encoding="utf-8")
    Path(args.table).with_suffix(".json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
