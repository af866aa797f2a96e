"""Checkpoints: atomic save, safe load (``weights_only``), and the run's state.

A checkpoint holds only tensors and plain data: the resolved config as a dict, the
tokenizer models as bytes, model / optimizer state dicts, the training position and
the RNG states. Nothing in it can run code when loaded.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import torch

from seq2seq.errors import UserError

FORMAT = "seq2seq-checkpoint-v1"
LATEST = "latest.pt"
BEST = "best.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically: temp file, fsync, rename.

    A crash during the save leaves the previous file at ``path`` untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": FORMAT, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse anything else."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = (
            str(err).strip().splitlines()[0] if str(err).strip() else "unsafe content"
        )
        raise UserError(
            f"{path}: refused to load: the file holds objects other than tensors and "
            f"plain data ({first[:160]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UserError(
            f"{path}: corrupt or truncated checkpoint "
            f"({str(err).splitlines()[0][:160]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a seq2seq checkpoint")
    return state


def resolve_checkpoint(run: str | Path) -> Path:
    """A run directory (its best checkpoint) or a checkpoint file -> the file."""
    run = Path(run)
    if run.is_dir():
        for name in (BEST, LATEST):
            candidate = checkpoint_dir(run) / name
            if candidate.is_file():
                return candidate
        raise UserError(f"{run}: no checkpoint in {checkpoint_dir(run)}; train first")
    if not run.exists():
        raise UserError(f"{run}: no such run directory or checkpoint file")
    return run


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop draws from (Python, torch CPU, CUDA)."""
    state: dict[str, Any] = {
        "python": _to_plain(random.getstate()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """The first checkpoint with its model weights replaced by the mean over all.

    Optimizer and RNG states are dropped: the result is for translation only.
    """
    if not paths:
        raise UserError("average: no checkpoints to average")
    states = [load_checkpoint(p) for p in paths]
    first = states[0]
    averaged = {}
    for name, tensor in first["model"].items():
        if not tensor.is_floating_point():
            averaged[name] = tensor
            continue
        try:
            total = sum(s["model"][name].double() for s in states)
        except (KeyError, RuntimeError):
            raise UserError(
                f"average: {name} differs between checkpoints; average checkpoints "
                "of one run only"
            ) from None
        averaged[name] = (total / len(states)).to(tensor.dtype)
    result = {k: v for k, v in first.items() if k not in ("optimizer", "rng", "format")}
    result["model"] = averaged
    result["averaged_from"] = [str(p) for p in paths]
    return result


def best_checkpoints(run_dir: Path, n: int) -> list[Path]:
    """The run's ``n`` best kept checkpoints (``train.keep_best``), best first."""
    latest = load_checkpoint(checkpoint_dir(run_dir) / LATEST)
    kept = latest["train_state"].get("kept_best", [])
    paths = [checkpoint_dir(run_dir) / f"step{int(step)}.pt" for _, step in kept[:n]]
    missing = [p for p in paths if not p.is_file()]
    if len(paths) < n or missing:
        raise UserError(
            f"average: {run_dir} keeps {len(paths) - len(missing)} best checkpoints, "
            f"{n} asked; train with train.keep_best={n} or ask for fewer"
        )
    return paths
