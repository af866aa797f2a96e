"""Corpora -> tokenized pairs -> length-bucketed, padded batches.

A corpus is two line-aligned files (plain or ``.gz``) or one TSV file. It is read
as a stream (:func:`iter_corpus`), so a corpus larger than memory can be prepared;
problems a user can fix (a missing file, different line counts, bad UTF-8, nothing
left after filtering) are one-line :class:`~seq2seq.errors.UserError` messages
naming the file and line.

Training pairs live in flat id arrays (:class:`FlatPairs`: every sentence's ids
back to back plus an offsets array), memory-mapped from the prepared-data cache
(:mod:`seq2seq.prepared`). Batches are planned with numpy on the lengths the
offsets give (:func:`plan_batches`) and gathered from the arrays only when a batch
is built, so nothing holds a Python object per sentence.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seq2seq.config import CorpusConfig, line_range
from seq2seq.errors import UserError
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

log = logging.getLogger(__name__)

READ_BLOCK = 1 << 22  # bytes decoded at a time: 4 MiB

# ---------------------------------------------------------------- reading


def iter_lines(path: Path, skip_bad: bool = False) -> Iterator[str | None]:
    """The lines of a UTF-8 text file (``.gz`` decompressed), newlines stripped,
    read in blocks; with ``skip_bad`` a line that is not valid UTF-8 is None
    instead of an error (naming the file and line)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        handle = opener(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    number = 0  # lines before this block
    rest = b""
    with handle:
        while True:
            try:
                block = handle.read(READ_BLOCK)
            except (OSError, EOFError) as err:
                raise UserError(f"{path}: cannot read ({err})") from None
            if not block:
                break
            block = rest + block
            cut = block.rfind(b"\n") + 1  # b"\n" never occurs inside a character
            block, rest = block[:cut], block[cut:]
            if block:
                yield from _decode_block(block[:-1], path, number, skip_bad)
                number += block.count(b"\n")
        if rest:
            yield from _decode_block(rest, path, number, skip_bad)


def _decode_block(
    block: bytes, path: Path, before: int, skip_bad: bool
) -> list[str | None]:
    """The lines of ``block`` (lines ``before + 1``... of ``path``, no final
    newline); one decode for the block, line by line only when it fails."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as err:
        if skip_bad:
            return [_decode_or_none(chunk) for chunk in block.split(b"\n")]
        line = before + block[: err.start].count(b"\n") + 1
        raise UserError(
            f"{path}:{line}: not valid UTF-8 (byte {block[err.start]:#04x}); "
            "re-encode the file as UTF-8"
        ) from None
    return [line.rstrip("\r") for line in text.split("\n")]


def read_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 text file (``.gz`` decompressed), newlines stripped."""
    return list(iter_lines(path))  # type: ignore[arg-type]


def _decode_or_none(chunk: bytes) -> str | None:
    try:
        return chunk.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None


def corpus_files(corpus: CorpusConfig, root: Path) -> list[Path]:
    """The file(s) a split is read from."""
    if corpus.tsv is not None:
        return [root / corpus.tsv]
    return [root / corpus.src, root / corpus.tgt]


def iter_corpus(
    corpus: CorpusConfig, root: Path, split: str, on_bad_lines: str = "error"
) -> Iterator[tuple[str, str]]:
    """Stream one split's (source, target) pairs, stripped, checking alignment
    and emptiness (the errors come when the stream reaches the problem).

    ``on_bad_lines`` (``data.on_bad_lines``): ``error`` stops at the first line that
    is not valid UTF-8 or lacks a TSV column; ``skip`` drops those pairs and logs
    how many.
    """
    skip = on_bad_lines == "skip"
    bad: list[str] = []  # "file:line (why)" of the first pairs dropped
    bad_count = 0
    first, last = (1, None)
    if corpus.lines is not None:
        first, last = line_range(corpus.lines, f"data.{split}.lines")
    yielded = 0
    if corpus.tsv is not None:
        path = root / corpus.tsv
        name = str(path)
        need = max(corpus.src_column, corpus.tgt_column) + 1
        if last is not None:  # before reading: the line numbers must exist
            _check_range(last, count_lines(path), split, first, path)
        number = 0
        for number, line in enumerate(iter_lines(path, skip), start=1):
            if number < first or (last is not None and number > last):
                continue
            if line is None:
                bad_count += 1
                bad.append(f"{path.name}:{number} (not UTF-8)")
                del bad[5:]
                continue
            if not line.strip():
                yielded += 1
                yield "", ""
                continue
            columns = line.split("\t")
            if len(columns) < need:
                if skip:
                    bad_count += 1
                    bad.append(f"{path.name}:{number} ({len(columns)} columns)")
                    del bad[5:]
                    continue
                raise UserError(
                    f"{path}:{number}: expected at least {need} tab-separated "
                    f"columns, found {len(columns)} (or set data.on_bad_lines: skip)"
                )
            yielded += 1
            yield columns[corpus.src_column].strip(), columns[corpus.tgt_column].strip()
    else:
        src_path, tgt_path = root / corpus.src, root / corpus.tgt
        name = f"{src_path} / {tgt_path}"
        if last is not None:  # before reading: the line numbers must exist
            src_count, tgt_count = count_lines(src_path), count_lines(tgt_path)
            if src_count != tgt_count:
                raise _misaligned(split, src_path, src_count, tgt_path, tgt_count)
            _check_range(last, src_count, split, first, src_path)
        src_lines = iter_lines(src_path, skip)
        tgt_lines = iter_lines(tgt_path, skip)
        number = 0
        for number, (s, t) in enumerate(
            itertools.zip_longest(src_lines, tgt_lines, fillvalue=_END), start=1
        ):
            if s is _END or t is _END:
                src_count = number - 1 + (s is not _END) + sum(1 for _ in src_lines)
                tgt_count = number - 1 + (t is not _END) + sum(1 for _ in tgt_lines)
                raise _misaligned(split, src_path, src_count, tgt_path, tgt_count)
            if number < first or (last is not None and number > last):
                continue
            if s is None or t is None:
                where = src_path if s is None else tgt_path
                bad_count += 1
                bad.append(f"{where.name}:{number} (not UTF-8)")
                del bad[5:]
                continue
            yielded += 1
            yield s.strip(), t.strip()
    if bad_count:
        log.warning(
            "data.%s: skipped %d bad pairs (data.on_bad_lines: skip): %s%s",
            split,
            bad_count,
            ", ".join(bad[:5]),
            ", ..." if bad_count > 5 else "",
        )
    if not yielded:
        what = "has no good lines" if bad_count else "is empty"
        raise UserError(f"data.{split}: {name} {what}")


_END = object()  # zip_longest's filler: one file ended before the other


def _misaligned(
    split: str, src_path: Path, src_count: int, tgt_path: Path, tgt_count: int
) -> UserError:
    return UserError(
        f"data.{split}: {src_path} has {src_count} lines but {tgt_path} "
        f"has {tgt_count}; the files must be line-aligned"
    )


def count_lines(path: Path) -> int:
    """Lines of a (plain or ``.gz``) file, counted in binary."""
    opener = gzip.open if path.suffix == ".gz" else open
    lines, last = 0, b"\n"
    try:
        with opener(path, "rb") as handle:
            while block := handle.read(READ_BLOCK):
                lines += block.count(b"\n")
                last = block[-1:]
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, EOFError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    return lines + (last != b"\n")


def _check_range(last: int | None, lines: int, split: str, first: int, path: Path):
    if last is not None and last > lines:
        raise UserError(
            f"data.{split}.lines: {first}-{last} goes past the end of {path} "
            f"({lines} lines)"
        )


def read_corpus(
    corpus: CorpusConfig, root: Path, split: str, on_bad_lines: str = "error"
) -> tuple[list[str], list[str]]:
    """Read one split's (sources, targets) into lists (:func:`iter_corpus`)."""
    sources: list[str] = []
    targets: list[str] = []
    for source, target in iter_corpus(corpus, root, split, on_bad_lines):
        sources.append(source)
        targets.append(target)
    return sources, targets


# ---------------------------------------------------------------- datasets


@dataclass
class ParallelData:
    """Tokenized pairs in lists (valid and test sets, small corpora):
    ``src[i]`` ends with EOS, ``tgt[i]`` is BOS ... EOS."""

    src: list[list[int]]
    tgt: list[list[int]]
    src_text: list[str]
    tgt_text: list[str]

    def __len__(self) -> int:
        return len(self.src)


def keep_pair(
    source: str,
    target: str,
    src_tokens: int,
    tgt_tokens: int,
    max_src_len: int | None,
    max_tgt_len: int | None,
) -> str | None:
    """Why a pair is dropped (``"empty"``, ``"too long"``) or None to keep it.

    ``src_tokens`` counts EOS, ``tgt_tokens`` counts EOS but not BOS (what the
    decoder predicts); the limits are ``data.max_src_len`` / ``max_tgt_len``.
    """
    if not source or not target:
        return "empty"
    if (max_src_len is not None and src_tokens > max_src_len) or (
        max_tgt_len is not None and tgt_tokens > max_tgt_len
    ):
        return "too long"
    return None


def log_dropped(split: str, read: int, empty: int, too_long: int, limits) -> None:
    if empty or too_long:
        log.info(
            "%s: dropped %d of %d pairs (%d empty, %d longer than max_src_len=%s / "
            "max_tgt_len=%s tokens)",
            split,
            empty + too_long,
            read,
            empty,
            too_long,
            *limits,
        )


def no_pairs_left(split: str, empty: int, too_long: int) -> UserError:
    return UserError(
        f"data.{split}: no pairs left after dropping {empty} empty and {too_long} "
        "over-long pairs; raise data.max_src_len / data.max_tgt_len"
    )


def encode_pairs(
    tokenizer: Tokenizer,
    sources: list[str],
    targets: list[str],
    split: str,
    max_src_len: int | None = None,
    max_tgt_len: int | None = None,
) -> ParallelData:
    """Tokenize pairs in memory; drop empty pairs and (when limits are given)
    over-long ones. What was dropped is logged with counts; nothing is truncated.
    (:mod:`seq2seq.prepared` does the same for a corpus of any size, on disk.)"""
    src_ids = tokenizer.encode_src(sources)
    tgt_ids = [[BOS_ID, *ids, EOS_ID] for ids in tokenizer.encode_tgt(targets)]
    keep = []
    dropped = {"empty": 0, "too long": 0}
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        why = keep_pair(
            sources[i], targets[i], len(s), len(t) - 1, max_src_len, max_tgt_len
        )
        if why is None:
            keep.append(i)
        else:
            dropped[why] += 1
    empty, too_long = dropped["empty"], dropped["too long"]
    log_dropped(split, len(sources), empty, too_long, (max_src_len, max_tgt_len))
    if not keep:
        raise no_pairs_left(split, empty, too_long)
    return ParallelData(
        src=[src_ids[i] for i in keep],
        tgt=[tgt_ids[i] for i in keep],
        src_text=[sources[i] for i in keep],
        tgt_text=[targets[i] for i in keep],
    )


@dataclass
class TextColumn:
    """Sentences as one UTF-8 byte array: sentence i is
    ``blob[offsets[i]:offsets[i + 1]]``."""

    blob: np.ndarray  # (bytes,) uint8, memory-mapped or in memory
    offsets: np.ndarray  # (sentences + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes().decode()

    def take(self, indices: Sequence[int]) -> list[str]:
        return [self[i] for i in indices]

    @classmethod
    def from_strings(cls, strings: Sequence[str]) -> TextColumn:
        encoded = [s.encode() for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)


@dataclass
class FlatPairs:
    """Tokenized pairs as flat arrays, without a Python object per sentence.

    src_ids: (source tokens,) each sentence's ids + EOS, back to back.
    src_offsets: (pairs + 1,) int64; pair i's source is
        ``src_ids[src_offsets[i]:src_offsets[i + 1]]``.
    tgt_ids / tgt_offsets: the same for BOS + target ids + EOS.
    src_text / tgt_text: the pairs' text (subword sampling, validation).
    ``pairs_read``: lines read before the empty / length filter.
    ``source``: the prepared-data directory the arrays are mapped from, if any.
    """

    src_ids: np.ndarray
    src_offsets: np.ndarray
    tgt_ids: np.ndarray
    tgt_offsets: np.ndarray
    src_text: TextColumn
    tgt_text: TextColumn
    pairs_read: int = 0
    source: Path | None = None

    def __len__(self) -> int:
        return len(self.src_offsets) - 1

    @property
    def src_lengths(self) -> np.ndarray:
        """(pairs,) int32 source tokens, EOS included."""
        return _lengths(self.src_offsets, 0)

    @property
    def tgt_lengths(self) -> np.ndarray:
        """(pairs,) int32 target tokens the decoder predicts (EOS included, BOS
        not)."""
        return _lengths(self.tgt_offsets, 1)

    def src(self, i: int) -> list[int]:
        return self.src_ids[self.src_offsets[i] : self.src_offsets[i + 1]].tolist()

    def tgt(self, i: int) -> list[int]:
        return self.tgt_ids[self.tgt_offsets[i] : self.tgt_offsets[i + 1]].tolist()

    @classmethod
    def from_parallel(cls, data: ParallelData) -> FlatPairs:
        """The same pairs in flat arrays (int32 ids)."""

        def flat(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum([len(r) for r in rows], out=offsets[1:])
            ids = np.fromiter(itertools.chain.from_iterable(rows), np.int32)
            return ids, offsets

        return cls(
            *flat(data.src),
            *flat(data.tgt),
            TextColumn.from_strings(data.src_text),
            TextColumn.from_strings(data.tgt_text),
            pairs_read=len(data),
        )

    def to_parallel(self, limit: int | None = None) -> ParallelData:
        """The first ``limit`` pairs (all: None) in lists (for small splits)."""
        n = len(self) if limit is None else min(limit, len(self))
        return ParallelData(
            [self.src(i) for i in range(n)],
            [self.tgt(i) for i in range(n)],
            self.src_text.take(range(n)),
            self.tgt_text.take(range(n)),
        )


def _lengths(offsets: np.ndarray, less: int) -> np.ndarray:
    """``np.diff(offsets) - less`` as int32, without the int64 array between."""
    lengths = np.empty(len(offsets) - 1, dtype=np.int32)
    np.subtract(offsets[1:], offsets[:-1], out=lengths, casting="unsafe")
    lengths -= less
    return lengths


def as_flat(data: ParallelData | FlatPairs) -> FlatPairs:
    return data if isinstance(data, FlatPairs) else FlatPairs.from_parallel(data)


# ---------------------------------------------------------------- batching


@dataclass
class Batch:
    """Padded tensors of one batch.

    src: (B, S) source ids, EOS-terminated, PAD after.
    src_lengths: (B,) real source lengths.
    tgt_in: (B, T) BOS + target ids (decoder input).
    tgt_out: (B, T) target ids + EOS (what the decoder predicts), PAD after.
    indices: positions of these pairs in the dataset.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor | None
    tgt_out: torch.Tensor | None
    indices: list[int]

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum()) if self.tgt_out is not None else 0

    def to(self, device: torch.device) -> Batch:
        non_blocking = device.type == "cuda"
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch(
            move(self.src),
            self.src_lengths,
            move(self.tgt_in),
            move(self.tgt_out),
            self.indices,
        )


def pad(sequences: list[list[int]]) -> torch.Tensor:
    """Right-pad id lists with PAD into a (B, max_len) LongTensor.

    One tensor from all the ids, scattered into place by a length mask: a few
    torch calls for the batch, where a tensor per row cost 10x the time.
    """
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    width = int(lengths.max())
    out = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    ids = torch.tensor(list(itertools.chain.from_iterable(sequences)), dtype=torch.long)
    out[torch.arange(width) < lengths.unsqueeze(1)] = ids  # row-major, as chained
    return out


def gather_padded(
    ids: np.ndarray, offsets: np.ndarray, indices: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``indices`` of a flat id array, right-padded with PAD.

    Returns ((B, max_len) LongTensor, (B,) lengths): the :func:`pad` of those rows,
    read straight from the (memory-mapped) array.
    """
    rows = np.asarray(indices, dtype=np.int64)
    starts = offsets[rows]  # (B,)
    lengths = offsets[rows + 1] - starts  # (B,)
    width = int(lengths.max()) if len(rows) else 0
    columns = np.arange(width)
    mask = columns < lengths[:, None]  # (B, W)
    out = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    out[mask] = ids[(starts[:, None] + columns)[mask]]  # row-major, as stored
    return torch.from_numpy(out), torch.from_numpy(lengths)


def collate(
    src: list[list[int]], tgt: list[list[int]] | None, indices: list[int]
) -> Batch:
    """Build a :class:`Batch` from id lists (targets are BOS ... EOS, or None)."""
    src_tensor = pad(src)
    lengths = torch.tensor([len(s) for s in src], dtype=torch.long)
    if tgt is None:
        return Batch(src_tensor, lengths, None, None, indices)
    tgt_tensor = pad(tgt)  # (B, T + 1)
    return Batch(src_tensor, lengths, tgt_tensor[:, :-1], tgt_tensor[:, 1:], indices)


class EpochBatches(Sequence):
    """An epoch's batches as index arrays: batch k is
    ``order[starts[k]:ends[k]]``, a list of dataset indices when read.

    A list of lists would hold a Python int per sentence (about 100 MB at 2.9 M
    pairs); this holds three numpy arrays. Slicing (``[rank::world_size]``) gives
    another EpochBatches; equality compares the batches."""

    def __init__(self, order: np.ndarray, starts: np.ndarray, ends: np.ndarray):
        self.order, self.starts, self.ends = order, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, item):  # int -> list[int]; slice -> EpochBatches
        if isinstance(item, slice):
            return EpochBatches(self.order, self.starts[item], self.ends[item])
        return self.order[self.starts[item] : self.ends[item]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for start, end in zip(self.starts.tolist(), self.ends.tolist()):
            yield self.order[start:end].tolist()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (Sequence, EpochBatches)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __mul__(self, times: int) -> EpochBatches:
        return EpochBatches(
            self.order, np.tile(self.starts, times), np.tile(self.ends, times)
        )

    def __repr__(self) -> str:
        return f"EpochBatches({len(self)} batches of {len(self.order)} pairs)"


def make_batches(
    src_lengths: Sequence[int] | np.ndarray,
    tgt_lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    batch_tokens: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> EpochBatches:
    """Group indices into length-sorted batches (numpy on the lengths alone).

    Pairs are sorted by (source, target) length, so a batch holds similar lengths and
    little padding. With ``batch_tokens`` a batch is cut when the padded size
    (rows × longest source or target) would pass it; otherwise it holds
    ``batch_size`` pairs. With ``shuffle`` ties are broken randomly and the batch
    order is shuffled, both from ``seed`` alone (numpy's PCG64), so an epoch's
    batches are reproducible from (seed, epoch) on any machine.
    """
    src = np.asarray(src_lengths)
    tgt = np.asarray(tgt_lengths)
    n = len(src)
    # int32 indices and keys where they fit: at 29 M pairs every int64 array of
    # the plan is 232 MB; the values, and so the plan, are the same.
    index = np.int32 if n < 2**31 else np.int64
    rng = np.random.Generator(np.random.PCG64(seed))
    order = (
        rng.permutation(n).astype(index) if shuffle else np.arange(n, dtype=index)
    )
    width = int(tgt.max(initial=0)) + 1
    fits = (int(src.max(initial=0)) + 1) * width < 2**31
    key = src[order].astype(np.int32 if fits else np.int64)
    key *= width
    key += tgt[order]  # (src, tgt) in one number
    order = order[np.argsort(key, kind="stable")]
    del key
    if batch_tokens is None:
        starts = np.arange(0, n, batch_size)
    else:
        starts = _token_cuts(np.maximum(src, tgt)[order], batch_tokens)
    ends = np.append(starts[1:], n)
    if shuffle:
        permutation = rng.permutation(len(starts))
        starts, ends = starts[permutation], ends[permutation]
    return EpochBatches(order, starts, ends)


def _token_cuts(width: np.ndarray, budget: int) -> np.ndarray:
    """Batch starts over ``width`` (longest side of each sorted pair): each batch
    as long as rows × its widest pair stays within ``budget`` (one pair at least).

    rows × running maximum grows with the rows, so a searchsorted over a window
    finds each cut; a window needs no more rows than ``budget`` // first width.
    """
    starts = []
    start, n = 0, len(width)
    while start < n:
        rows = max(budget // max(int(width[start]), 1), 1)
        window = width[start : start + rows]
        cost = np.maximum.accumulate(window) * np.arange(1, len(window) + 1)
        take = max(int(np.searchsorted(cost, budget, side="right")), 1)
        starts.append(start)
        start += take
    return np.asarray(starts, dtype=np.int64)


def plan_batches(
    data: FlatPairs,
    batch_size: int,
    batch_tokens: int | None,
    shuffle: bool,
    seed: int,
    lengths: tuple[np.ndarray, np.ndarray] | None = None,
) -> EpochBatches:
    """:func:`make_batches` on a dataset's lengths (read from its offsets), or on
    ``lengths`` = (source, target) lengths of other segmentations of its pairs."""
    src_lengths, tgt_lengths = lengths or (data.src_lengths, data.tgt_lengths)
    return make_batches(
        src_lengths, tgt_lengths, batch_size, batch_tokens, shuffle, seed
    )


def _uniforms(key: str, indices: np.ndarray) -> np.ndarray:
    """(len(indices),) floats in [0, 1): a fixed function of (key, index).

    splitmix64 over the index, offset by a hash of ``key``: the number a sentence
    draws depends on nothing else (not on the batch, the process or earlier draws).
    """
    import hashlib

    offset = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest())
    with np.errstate(over="ignore"):
        z = indices.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(offset)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


class SubwordSampler:
    """Subword regularization (Kudo, 2018): each epoch sees the training pairs in
    sampled segmentations, a regularizer for small corpora.

    A batch's sentences are segmented when the batch is built: their ``nbest``
    best segmentations (those within ``max_src_len`` / ``max_tgt_len``) are
    computed for that batch alone, and one is drawn per sentence with probability
    proportional to ``P(segmentation) ** alpha``, from a number that is a fixed
    function of (seed, epoch, side, sentence index). Nothing is kept between
    batches, so memory does not grow with the corpus or with alpha, and a resumed
    run or any DDP rank draws for a sentence exactly what an uninterrupted single
    process draws.

    Why not sentencepiece's own sampler (``encode(..., enable_sampling=True)``):
    it draws from a per-thread generator seeded once per process, so a sentence's
    segmentation depends on every draw the process made before it (and on thread
    scheduling with ``num_threads``); a resumed process or another rank cannot
    reproduce it, and no draw can be tied to a sentence index.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        data: ParallelData | FlatPairs,
        alpha: float,
        nbest: int,
        seed: int,
        max_src_len: int | None = None,
        max_tgt_len: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.data = as_flat(data)
        self.alpha = alpha
        self.nbest = nbest
        self.seed = seed
        self.max_src_len = max_src_len
        self.max_tgt_len = max_tgt_len
        self.lengths_note = "not drawn yet"  # how lengths() got the last epoch's
        # Fails now (a UserError) when a model cannot sample: not a unigram model.
        tokenizer.nbest(self.data.src_text.take([0]), "src", 2)
        tokenizer.nbest(self.data.tgt_text.take([0]), "tgt", 2)
        log.info(
            "subword sampling (alpha %g, %d-best): drawn per batch for its sentences",
            alpha,
            nbest,
        )

    def draw(
        self, indices: Sequence[int], epoch: int
    ) -> tuple[list[list[int]], list[list[int]]]:
        """(source ids + EOS, BOS + target ids + EOS) of pairs ``indices`` in
        ``epoch``'s segmentations."""
        rows = np.asarray(indices, dtype=np.int64)
        key = f"subwords {self.seed} {epoch}"
        src = self._side(
            rows,
            "src",
            _uniforms(key + " src", rows),
            lambda ids: [*ids, EOS_ID],
            self.max_src_len,
        )
        tgt = self._side(
            rows,
            "tgt",
            _uniforms(key + " tgt", rows),
            lambda ids: [BOS_ID, *ids, EOS_ID],
            self.max_tgt_len,
        )
        return src, tgt

    def epoch(self, epoch: int) -> tuple[list[list[int]], list[list[int]]]:
        """Every pair's segmentations in ``epoch`` (what the batches draw)."""
        return self.draw(range(len(self.data)), epoch)

    def lengths(
        self, epoch: int, chunk: int = 4096, workers: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(pairs,) source and target lengths of ``epoch``'s segmentations (counted
        as :class:`FlatPairs` counts them): the epoch's batches are planned on
        them, so a batch holds pairs of similar sampled lengths, as it does without
        sampling. Two int32 arrays are all that is kept; :meth:`draw` makes the
        same segmentations again per batch.

        Drawing them costs about 0.2 ms a pair (sentencepiece's n-best search),
        minutes at millions of pairs, so on a prepared split they are drawn once
        per epoch by ``workers`` processes (default: one per core from
        :data:`seq2seq.sampled.PARALLEL_FROM` pairs on) and kept next to the
        split's arrays: a restart or ``--resume`` in the same epoch reads them
        back (:mod:`seq2seq.sampled`)."""
        from seq2seq import sampled

        return sampled.epoch_lengths(self, epoch, chunk, workers)

    def draw_lengths(self, start: int, stop: int, epoch: int, chunk: int = 4096):
        """:meth:`lengths` of pairs ``start:stop`` (drawn ``chunk`` at a time)."""
        src_lengths = np.empty(stop - start, dtype=np.int32)
        tgt_lengths = np.empty(stop - start, dtype=np.int32)
        for first in range(start, stop, chunk):
            last = min(stop, first + chunk)
            src, tgt = self.draw(range(first, last), epoch)
            src_lengths[first - start : last - start] = [len(ids) for ids in src]
            tgt_lengths[first - start : last - start] = [len(ids) - 1 for ids in tgt]
        return src_lengths, tgt_lengths  # the target's BOS is not counted

    def _side(self, rows, side, uniforms, frame, limit) -> list[list[int]]:
        data = self.data
        text = data.src_text if side == "src" else data.tgt_text
        best_of = data.src if side == "src" else data.tgt
        extra = 0 if side == "src" else 1  # BOS does not count against the limit
        nbest = self.tokenizer.nbest(text.take(rows.tolist()), side, self.nbest)
        out = []
        for row, sentence, u in zip(rows.tolist(), nbest, uniforms.tolist()):
            best = best_of(row)
            top = max((score for _, score in sentence), default=0.0)
            framed = [(frame(ids), score) for ids, score in sentence]
            best_score = next((sc for ids, sc in framed if ids == best), top)
            segmentations = [best]
            weights = [math.exp(self.alpha * (best_score - top))]
            for ids, score in framed:
                if ids != best and (limit is None or len(ids) - extra <= limit):
                    segmentations.append(ids)
                    weights.append(math.exp(self.alpha * (score - top)))
            cumulative = list(itertools.accumulate(weights))
            pick = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
            out.append(segmentations[min(pick, len(segmentations) - 1)])
        return out


class BatchIterator:
    """Batches of a dataset (:class:`FlatPairs`, or a :class:`ParallelData`
    turned into one), one epoch at a time.

    ``epoch_batches(epoch)`` depends only on (seed, epoch), which is what lets a
    resumed run replay the exact data order of an uninterrupted one. With a
    ``sampler`` each epoch has its own segmentations: ``batch`` draws those of the
    epoch last passed to ``epoch_batches``, which plans the batches on their
    lengths.
    """

    def __init__(
        self,
        data: ParallelData | FlatPairs,
        batch_size: int,
        batch_tokens: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        sampler: SubwordSampler | None = None,
    ) -> None:
        self.data = as_flat(data)
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.sampler = sampler
        self._epoch = 0
        # (epoch, its sampled lengths): computed once per epoch, when sampling
        self._planned: tuple[int | None, tuple[np.ndarray, np.ndarray] | None] = (
            None,
            None,
        )

    def epoch_batches(self, epoch: int) -> EpochBatches:
        self._epoch = epoch
        if self.sampler is not None and self._planned[0] != epoch:
            self._planned = (epoch, self.sampler.lengths(epoch))
        return plan_batches(
            self.data,
            self.batch_size,
            self.batch_tokens,
            shuffle=self.shuffle,
            seed=self.seed * 100_003 + epoch,
            lengths=self._planned[1] if self.sampler is not None else None,
        )

    def batch(self, indices: Sequence[int]) -> Batch:
        indices = list(indices)
        if self.sampler is not None:
            return collate(*self.sampler.draw(indices, self._epoch), indices)
        data = self.data
        src, lengths = gather_padded(data.src_ids, data.src_offsets, indices)
        tgt, _ = gather_padded(data.tgt_ids, data.tgt_offsets, indices)  # (B, T + 1)
        return Batch(src, lengths, tgt[:, :-1], tgt[:, 1:], indices)


def inference_batches(src_ids: list[list[int]], batch_size: int) -> list[list[int]]:
    """Length-sorted batches of source indices (caller restores the input order)."""
    order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
