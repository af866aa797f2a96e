"""Each epoch's sampled segmentation lengths, drawn once and kept on disk.

With subword sampling an epoch's batches are planned on the lengths of that
epoch's segmentations (:meth:`seq2seq.data.SubwordSampler.lengths`). Drawing them
runs sentencepiece's n-best search over every pair: about 0.2 ms a pair, so
minutes at millions of pairs. Here they are drawn by several processes (each maps
the prepared split itself) and kept beside the split's arrays as
``sampled-KEY-epochE.npy`` ((2, pairs) int32), KEY naming everything a draw
depends on (the tokenizer, alpha, n-best, seed, length limits). A restart, a
``--resume`` or ``train --dry-run`` in the same epoch reads the file back;
``seq2seq data prepare`` draws epoch 0's ahead. Processes that share the cache
(the ranks of a torchrun) take turns on a lock file beside it: one draws, the
others read what it wrote. Each file is written under a
temporary name and renamed, so a killed run leaves none half written; a file
that does not read back as (2, pairs) int32 is drawn again, with a log line
saying why. The two newest epochs of a KEY are kept, older ones removed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from seq2seq.data import SubwordSampler

log = logging.getLogger(__name__)

PARALLEL_FROM = 50_000  # pairs from which drawing uses a process per core
TASK_PAIRS = 16_384  # pairs per worker task (about 3 s)
KEEP_EPOCHS = 2


def sampler_key(sampler: SubwordSampler) -> str:
    """What a sampler's draws depend on besides the pairs (the split directory
    already names the corpus and its tokenization)."""
    tokenizer = sampler.tokenizer
    inputs = {
        "src_model": hashlib.blake2b(tokenizer.src_model, digest_size=10).hexdigest(),
        "tgt_model": hashlib.blake2b(tokenizer.tgt_model, digest_size=10).hexdigest(),
        "alpha": sampler.alpha,
        "nbest": sampler.nbest,
        "seed": sampler.seed,
        "max_src_len": sampler.max_src_len,
        "max_tgt_len": sampler.max_tgt_len,
    }
    text = json.dumps(inputs, sort_keys=True).encode()
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def stored_path(sampler: SubwordSampler, epoch: int) -> Path | None:
    """Where ``epoch``'s lengths are kept; None for pairs not mapped from a
    prepared split (nothing to keep them beside)."""
    source = sampler.data.source
    if source is None:
        return None
    return source / f"sampled-{sampler_key(sampler)}-epoch{epoch}.npy"


def default_workers(pairs: int) -> int:
    """One process per core (at most 8) from :data:`PARALLEL_FROM` pairs on;
    under torchrun, the node's cores divided by its ranks (conservative since
    ranks sharing a cache take turns on its lock: one draws while the others
    wait)."""
    if pairs < PARALLEL_FROM:
        return 1
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, min(len(os.sched_getaffinity(0)) // ranks, 8))


def epoch_lengths(
    sampler: SubwordSampler, epoch: int, chunk: int, workers: int | None
) -> tuple[np.ndarray, np.ndarray]:
    path = stored_path(sampler, epoch)
    if path is None:
        return _read_or_draw(sampler, epoch, chunk, workers, None)
    # Processes sharing the cache (torchrun's ranks, two runs of one config)
    # take turns: the first draws and writes, the others then read its file.
    with _locked(path.with_name(f".{path.stem}.lock")):
        return _read_or_draw(sampler, epoch, chunk, workers, path)


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock`` (released by the kernel if the holder
    dies); no lock where the file cannot be opened (a read-only cache)."""
    try:
        handle = open(lock, "a+b")  # noqa: SIM115  (closed below)
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


def _read_or_draw(
    sampler: SubwordSampler,
    epoch: int,
    chunk: int,
    workers: int | None,
    path: Path | None,
) -> tuple[np.ndarray, np.ndarray]:
    pairs = len(sampler.data)
    why = "not drawn before"
    if path is not None and path.exists():
        stored, why = _read(path, pairs)
        if stored is not None:
            sampler.lengths_note = f"read from {path}"
            log.info(
                "subword sampling: epoch %d's segmentation lengths read from %s",
                epoch,
                path,
            )
            return stored[0], stored[1]
    workers = workers or default_workers(pairs)
    start = time.perf_counter()
    src, tgt = _draw(sampler, epoch, chunk, workers)
    seconds = time.perf_counter() - start
    kept = path is not None and _write(path, np.stack([src, tgt]))
    sampler.lengths_note = (
        f"drawn in {seconds:.1f} s ({workers} process{'es' if workers > 1 else ''})"
        + (f", kept in {path}" if kept else "")
    )
    log.info(
        "subword sampling: drew epoch %d's segmentation lengths of %s pairs in "
        "%.1f s (%d process%s)%s",
        epoch,
        f"{pairs:,}",
        seconds,
        workers,
        "es" if workers > 1 else "",
        f"; kept in {path} ({why})" if kept else "",
    )
    return src, tgt


def _read(path: Path, pairs: int) -> tuple[np.ndarray | None, str]:
    """(the stored (2, pairs) array, "") or (None, why it cannot be used)."""
    try:
        stored = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        reason = f"{path.name} is damaged ({err})"
    else:
        if stored.shape == (2, pairs) and stored.dtype == np.int32:
            return stored, ""
        reason = (
            f"{path.name} holds {stored.dtype} {stored.shape}, not int32 (2, {pairs})"
        )
    log.warning("subword sampling: drawing again: %s", reason)
    return None, reason


def _write(path: Path, lengths: np.ndarray) -> bool:
    """Write atomically and drop older epochs of the same key; False (logged)
    when the directory is not writable: the run goes on without keeping them."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            np.save(handle, lengths)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        log.warning(
            "subword sampling: cannot keep the epoch's lengths in %s (%s); a "
            "restart will draw them again",
            path.parent,
            err.strerror or err,
        )
        return False
    prefix, _, epoch = path.stem.rpartition("-epoch")
    for old in path.parent.glob(f"{prefix}-epoch*.npy"):
        other = old.stem.rpartition("-epoch")[2]
        if other.isdigit() and int(other) <= int(epoch) - KEEP_EPOCHS:
            old.unlink(missing_ok=True)
            old.with_name(f".{old.stem}.lock").unlink(missing_ok=True)
    return True


def _draw(
    sampler: SubwordSampler, epoch: int, chunk: int, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    pairs = len(sampler.data)
    if workers <= 1 or sampler.data.source is None:
        return sampler.draw_lengths(0, pairs, epoch, chunk)
    context = multiprocessing.get_context("spawn")  # no fork of torch's threads
    arguments = (
        sampler.tokenizer.src_model,
        sampler.tokenizer.tgt_model,
        str(sampler.data.source),
        sampler.alpha,
        sampler.nbest,
        sampler.seed,
        sampler.max_src_len,
        sampler.max_tgt_len,
    )
    src = np.empty(pairs, dtype=np.int32)
    tgt = np.empty(pairs, dtype=np.int32)
    starts = range(0, pairs, TASK_PAIRS)
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=arguments
    ) as pool:
        tasks = [
            (first, min(pairs, first + TASK_PAIRS), epoch, chunk) for first in starts
        ]
        for (first, last, _, _), (s, t) in zip(tasks, pool.map(_task, tasks)):
            src[first:last], tgt[first:last] = s, t
    return src, tgt


_WORKER: dict = {}


def _init_worker(src_model, tgt_model, source, alpha, nbest, seed, max_src, max_tgt):
    from seq2seq.data import SubwordSampler
    from seq2seq.prepared import open_prepared
    from seq2seq.tokenizer import Tokenizer

    tokenizer = Tokenizer(src_model, tgt_model)
    data = open_prepared(Path(source))
    _WORKER["sampler"] = SubwordSampler(
        tokenizer, data, alpha, nbest, seed, max_src, max_tgt
    )


def _task(task: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    first, last, epoch, chunk = task
    return _WORKER["sampler"].draw_lengths(first, last, epoch, chunk)
