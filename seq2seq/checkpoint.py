"""Checkpoints: atomic save, safe load (``weights_only``), and the run's state.

A checkpoint holds only tensors and plain data: the resolved config as a dict, the
tokenizer models as bytes, model / optimizer state dicts, the training position and
the RNG states. Nothing in it can run code when loaded.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from seq2seq import faults
from seq2seq.errors import UserError
from seq2seq.files import fsync_directory

FORMAT = "seq2seq-checkpoint-v1"
LATEST = "latest.pt"
BEST = "best.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def sidecar(path: Path) -> Path:
    """``NAME.sha256`` next to checkpoint ``NAME``: its sha256 (``sha256sum`` form)."""
    return path.with_name(path.name + ".sha256")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(state: dict[str, Any], path: Path) -> str:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename), then its
    sha256 to ``NAME.sha256``; returns the sha256.

    A crash during the save leaves the previous file at ``path`` untouched; one
    between the two renames leaves a pair that loading reports as corrupt.
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
        digest = file_sha256(Path(tmp_name))
        faults.inject("save")
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _write_sidecar(path, digest)
    fsync_directory(path.parent)
    return digest


def _write_sidecar(path: Path, digest: str) -> None:
    check = sidecar(path)
    tmp = check.with_name(f".{check.name}.tmp")
    with open(tmp, "w", encoding="ascii") as handle:
        handle.write(f"{digest}  {path.name}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, check)


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint and its sha256 file (missing ones are fine)."""
    path.unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)


def remove_stale_temporaries(directory: Path) -> None:
    """Delete the temporary files of saves that a crash interrupted."""
    for path in directory.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def last_checkpoints(directory: Path) -> list[Path]:
    """The ``last-step{N}.pt`` copies of earlier ``latest.pt`` saves, newest first."""
    found = []
    for path in directory.glob("last-step*.pt"):
        number = path.name[len("last-step") : -len(".pt")]
        if number.isdigit():
            found.append((int(number), path))
    return [path for _, path in sorted(found, reverse=True)]


def keep_last(directory: Path, step: int, keep: int, digest: str) -> None:
    """After ``latest.pt`` (sha256 ``digest``) was saved at ``step``: keep it as
    ``last-step{step}.pt`` too (a hard link: no extra space) and delete all but the
    ``keep`` newest of those copies (``train.keep_last``). The checkpoint just saved
    is never deleted, so a good one always remains."""
    current = directory / f"last-step{step}.pt"
    if keep > 1:
        tmp = directory / f".{current.name}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(directory / LATEST, tmp)
        except OSError:  # a file system without hard links: copy
            shutil.copyfile(directory / LATEST, tmp)
        os.replace(tmp, current)
        _write_sidecar(current, digest)
    others = [p for p in last_checkpoints(directory) if p != current]
    for old in others[max(keep - 1, 0) :]:
        remove_checkpoint(old)


class CheckpointKeeper:
    """What a run writes and keeps in its checkpoint ``directory``: ``latest.pt``
    (with ``keep_last`` copies), ``best.pt``, the ``keep_best`` best-scoring
    ``step{N}.pt`` and a ``minute{M}.pt`` snapshot per ``snapshot_minutes`` mark.

    It holds no run state: what was kept is listed in the training state (saved in
    every checkpoint), which the methods take and return.
    """

    def __init__(
        self,
        directory: Path,
        keep_last: int,
        keep_best: int,
        snapshot_minutes: tuple[float, ...] | list[float] = (),
    ) -> None:
        self.directory = directory
        self.keep_last = keep_last
        self.keep_best = keep_best
        self.snapshot_minutes = tuple(snapshot_minutes)

    def save(self, state: dict[str, Any], step: int, best: bool = False) -> None:
        """``state`` as ``latest.pt`` (and ``best.pt`` first when ``best``: a
        crash between the two redoes this validation), then the keep_last copies."""
        if best:
            save_checkpoint(state, self.directory / BEST)
        digest = save_checkpoint(state, self.directory / LATEST)
        keep_last(self.directory, step, self.keep_last, digest)

    def save_as(self, state: dict[str, Any], name: str) -> Path:
        path = self.directory / name
        save_checkpoint(state, path)
        return path

    def rank_best(
        self, kept: list[list[float]], score: float, step: int
    ) -> tuple[list[list[float]], bool, list[Path]]:
        """Rank ``score`` at ``step`` among the kept ``[score, step]`` list: the new
        list, whether this step made it (save it as ``step{step}.pt``), and the
        files of the ones that fell off (delete them once ``latest.pt`` lists the
        new list)."""
        if self.keep_best <= 1:
            return kept, False, []
        ranked = sorted(kept + [[score, step]], key=lambda x: (-x[0], x[1]))
        new = ranked[: self.keep_best]
        dropped = [
            self.directory / f"step{int(s)}.pt" for _, s in ranked[self.keep_best :]
        ]
        return new, [score, step] in new, dropped

    def snapshots_due(self, taken: list[float], train_seconds: float) -> list[float]:
        """The snapshot minutes passed by ``train_seconds`` and not yet ``taken``."""
        return [
            minute
            for minute in self.snapshot_minutes
            if minute not in taken and train_seconds >= minute * 60
        ]


def has_checkpoint(directory: Path) -> bool:
    """Whether ``directory`` holds a latest checkpoint (or a kept copy of one)."""
    return (directory / LATEST).is_file() or bool(last_checkpoints(directory))


def latest_good_checkpoint(
    directory: Path,
) -> tuple[dict[str, Any] | None, Path | None, list[str]]:
    """The newest checkpoint in ``directory`` that loads and matches its sha256:
    ``latest.pt``, else the ``last-step{N}.pt`` copies, newest first.

    Returns (state, its path, why each newer one was skipped); (None, None, [...])
    when none is good.
    """
    candidates = [directory / LATEST] if (directory / LATEST).is_file() else []
    problems = []
    for path in candidates + last_checkpoints(directory):
        try:
            return load_checkpoint(path), path, problems
        except UserError as err:
            problems.append(str(err))
    return None, None, problems


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse anything else."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    _verify_sha256(path)
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


def _verify_sha256(path: Path) -> None:
    """Compare ``path`` with its ``NAME.sha256`` file, when it has one."""
    check = sidecar(path)
    if not check.is_file():
        return
    try:
        expected = check.read_text(encoding="ascii", errors="replace").split()[:1]
        actual = file_sha256(path)
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    if expected != [actual]:
        raise UserError(
            f"{path}: corrupt or truncated checkpoint (its sha256 differs from the "
            f"one in {check.name})"
        )


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
    """The run's ``n`` best kept checkpoints (``train.keep_best``), best first.

    A run trained with ``keep_best: 1`` keeps its best only as ``best.pt``, which
    is then the one checkpoint ``n = 1`` asks for.
    """
    directory = checkpoint_dir(run_dir)
    latest = load_checkpoint(directory / LATEST)
    kept = latest["train_state"].get("kept_best", [])
    paths = [directory / f"step{int(step)}.pt" for _, step in kept[:n]]
    if not kept and (directory / BEST).is_file():
        paths = [directory / BEST]  # keep_best 1: the best is best.pt alone
    available = [path for path in paths if path.is_file()]
    if len(available) < n:
        keep_best = latest.get("config", {}).get("train", {}).get("keep_best")
        if keep_best is not None and keep_best >= n:
            advice = (
                f"it was trained with train.keep_best={keep_best} and has not "
                "validated that often yet; train on or ask for fewer"
            )
        else:
            advice = f"train with train.keep_best={n} or ask for fewer"
            if keep_best is not None:
                advice = f"it was trained with train.keep_best={keep_best}; {advice}"
        raise UserError(
            f"average: {run_dir} keeps {len(available)} best checkpoints, {n} "
            f"asked; {advice}"
        )
    return available
