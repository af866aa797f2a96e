"""Corpora -> tokenized pairs -> length-bucketed, padded batches.

A corpus is two line-aligned files (plain or ``.gz``) or one TSV file. Problems a
user can fix (a missing file, different line counts, bad UTF-8, nothing left after
filtering) are one-line :class:`~seq2seq.errors.UserError` messages naming the file.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2seq.config import CorpusConfig, line_range
from seq2seq.errors import UserError
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- reading


def read_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 text file (``.gz`` decompressed), newlines stripped."""
    return _read_lines(path, skip_bad=False)  # type: ignore[return-value]


def _read_lines(path: Path, skip_bad: bool) -> list[str | None]:
    """:func:`read_lines`; with ``skip_bad`` a line that is not valid UTF-8 is None
    instead of an error."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, EOFError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if skip_bad:  # line by line: b"\n" never occurs inside a UTF-8 character
            chunks = raw.split(b"\n")
            if chunks and chunks[-1] == b"":
                chunks.pop()
            return [_decode_or_none(chunk) for chunk in chunks]
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(
            f"{path}:{line}: not valid UTF-8 (byte {raw[err.start]:#04x}); "
            "re-encode the file as UTF-8"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _decode_or_none(chunk: bytes) -> str | None:
    try:
        return chunk.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None


def read_corpus(
    corpus: CorpusConfig, root: Path, split: str, on_bad_lines: str = "error"
) -> tuple[list[str], list[str]]:
    """Read one split's (sources, targets), checking alignment and emptiness.

    ``on_bad_lines`` (``data.on_bad_lines``): ``error`` stops at the first line that
    is not valid UTF-8 or lacks a TSV column; ``skip`` drops those pairs and logs
    how many.
    """
    skip = on_bad_lines == "skip"
    bad: list[str] = []  # "file:line (why)" of each pair dropped
    first, last = (1, None)
    if corpus.lines is not None:
        first, last = line_range(corpus.lines, f"data.{split}.lines")
    if corpus.tsv is not None:
        path = root / corpus.tsv
        sources, targets = [], []
        need = max(corpus.src_column, corpus.tgt_column) + 1
        lines = _select_lines(_read_lines(path, skip), first, last, split, path)
        for number, line in enumerate(lines, start=first):
            if line is None:
                bad.append(f"{path.name}:{number} (not UTF-8)")
                continue
            if not line.strip():
                sources.append("")
                targets.append("")
                continue
            columns = line.split("\t")
            if len(columns) < need:
                if skip:
                    bad.append(f"{path.name}:{number} ({len(columns)} columns)")
                    continue
                raise UserError(
                    f"{path}:{number}: expected at least {need} tab-separated "
                    f"columns, found {len(columns)} (or set data.on_bad_lines: skip)"
                )
            sources.append(columns[corpus.src_column].strip())
            targets.append(columns[corpus.tgt_column].strip())
        name = str(path)
    else:
        src_path, tgt_path = root / corpus.src, root / corpus.tgt
        src_lines = _read_lines(src_path, skip)
        tgt_lines = _read_lines(tgt_path, skip)
        if len(src_lines) != len(tgt_lines):
            raise UserError(
                f"data.{split}: {src_path} has {len(src_lines)} lines but {tgt_path} "
                f"has {len(tgt_lines)}; the files must be line-aligned"
            )
        src_lines = _select_lines(src_lines, first, last, split, src_path)
        tgt_lines = _select_lines(tgt_lines, first, last, split, tgt_path)
        sources, targets = [], []
        for number, (s, t) in enumerate(zip(src_lines, tgt_lines), start=first):
            if s is None or t is None:
                where = src_path if s is None else tgt_path
                bad.append(f"{where.name}:{number} (not UTF-8)")
                continue
            sources.append(s.strip())
            targets.append(t.strip())
        name = f"{src_path} / {tgt_path}"
    if bad:
        log.warning(
            "data.%s: skipped %d bad pairs (data.on_bad_lines: skip): %s%s",
            split,
            len(bad),
            ", ".join(bad[:5]),
            ", ..." if len(bad) > 5 else "",
        )
    if not sources:
        what = "has no good lines" if bad else "is empty"
        raise UserError(f"data.{split}: {name} {what}")
    return sources, targets


def _select_lines(
    lines: list, first: int, last: int | None, split: str, path: Path
) -> list:
    """Lines ``first``..``last`` (1-based, inclusive) of a file's lines."""
    if last is None:
        return lines
    if last > len(lines):
        raise UserError(
            f"data.{split}.lines: {first}-{last} goes past the end of {path} "
            f"({len(lines)} lines)"
        )
    return lines[first - 1 : last]


# ---------------------------------------------------------------- dataset


@dataclass
class ParallelData:
    """Tokenized pairs: ``src[i]`` ends with EOS, ``tgt[i]`` is BOS ... EOS."""

    src: list[list[int]]
    tgt: list[list[int]]
    src_text: list[str]
    tgt_text: list[str]

    def __len__(self) -> int:
        return len(self.src)


def encode_pairs(
    tokenizer: Tokenizer,
    sources: list[str],
    targets: list[str],
    split: str,
    max_src_len: int | None = None,
    max_tgt_len: int | None = None,
) -> ParallelData:
    """Tokenize pairs; drop empty pairs and (when limits are given) over-long ones.

    What was dropped is logged with counts; nothing is truncated.
    """
    src_ids = tokenizer.encode_src(sources)
    tgt_ids = [[BOS_ID, *ids, EOS_ID] for ids in tokenizer.encode_tgt(targets)]
    keep = []
    empty = too_long = 0
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        if not sources[i] or not targets[i]:
            empty += 1
        elif (max_src_len is not None and len(s) > max_src_len) or (
            max_tgt_len is not None and len(t) - 1 > max_tgt_len
        ):
            too_long += 1
        else:
            keep.append(i)
    if empty or too_long:
        log.info(
            "%s: dropped %d of %d pairs (%d empty, %d longer than max_src_len=%s / "
            "max_tgt_len=%s tokens)",
            split,
            empty + too_long,
            len(sources),
            empty,
            too_long,
            max_src_len,
            max_tgt_len,
        )
    if not keep:
        raise UserError(
            f"data.{split}: no pairs left after dropping {empty} empty and {too_long} "
            "over-long pairs; raise data.max_src_len / data.max_tgt_len"
        )
    return ParallelData(
        src=[src_ids[i] for i in keep],
        tgt=[tgt_ids[i] for i in keep],
        src_text=[sources[i] for i in keep],
        tgt_text=[targets[i] for i in keep],
    )


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


def make_batches(
    src_lengths: list[int],
    tgt_lengths: list[int],
    batch_size: int,
    batch_tokens: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> list[list[int]]:
    """Group indices into length-sorted batches.

    Pairs are sorted by (source, target) length, so a batch holds similar lengths and
    little padding. With ``batch_tokens`` a batch is cut when the padded target size
    (rows × longest target) would pass it; otherwise it holds ``batch_size`` pairs.
    With ``shuffle`` ties are broken randomly and the batch order is shuffled, both
    from ``seed`` alone, so an epoch's batches are reproducible from (seed, epoch).
    """
    rng = random.Random(seed)
    order = list(range(len(src_lengths)))
    if shuffle:
        rng.shuffle(order)
    order.sort(key=lambda i: (src_lengths[i], tgt_lengths[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        longest_if_added = max(longest, tgt_lengths[i], src_lengths[i])
        if batch_tokens is not None:
            full = current and longest_if_added * (len(current) + 1) > batch_tokens
        else:
            full = len(current) >= batch_size
        if full:
            batches.append(current)
            current, longest_if_added = [], max(tgt_lengths[i], src_lengths[i])
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


class SubwordSampler:
    """Subword regularization (Kudo, 2018): each epoch sees the training pairs in
    sampled segmentations, a regularizer for small corpora.

    Each sentence's ``nbest`` best segmentations (those within ``max_src_len`` /
    ``max_tgt_len``) are found once; an epoch draws one per sentence with
    probability proportional to ``P(segmentation) ** alpha``, from Python's RNG
    seeded by (seed, epoch) alone. So a resumed run samples exactly what an
    uninterrupted one did, and every DDP rank the same (sentencepiece's own
    sampler differs from process to process even with a fixed seed).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        data: ParallelData,
        alpha: float,
        nbest: int,
        seed: int,
        max_src_len: int | None = None,
        max_tgt_len: int | None = None,
    ) -> None:
        self.seed = seed
        self._src = self._candidates(
            tokenizer.nbest(data.src_text, "src", nbest),
            data.src,
            alpha,
            lambda ids: [*ids, EOS_ID],
            lambda ids: max_src_len is None or len(ids) <= max_src_len,
        )
        self._tgt = self._candidates(
            tokenizer.nbest(data.tgt_text, "tgt", nbest),
            data.tgt,
            alpha,
            lambda ids: [BOS_ID, *ids, EOS_ID],
            lambda ids: max_tgt_len is None or len(ids) - 1 <= max_tgt_len,
        )
        varied = lambda side: sum(len(c[0]) > 1 for c in side)  # noqa: E731
        log.info(
            "subword sampling (alpha %g, %d-best): %d of %d source and %d target "
            "sentences have other segmentations to draw from",
            alpha,
            nbest,
            varied(self._src),
            len(self._src),
            varied(self._tgt),
        )

    @staticmethod
    def _candidates(
        nbest: list[list[tuple[list[int], float]]],
        best: list[list[int]],
        alpha: float,
        frame: Callable[[list[int]], list[int]],
        fits: Callable[[list[int]], bool],
    ) -> list[tuple[list[list[int]], list[float]]]:
        """Per sentence: its segmentations (the dataset's best first) and their
        cumulative sampling weights."""
        out = []
        for sentence, first in zip(nbest, best):
            top = max((score for _, score in sentence), default=0.0)
            framed = [(frame(ids), score) for ids, score in sentence]
            first_score = next((sc for ids, sc in framed if ids == first), top)
            segmentations = [first]
            weights = [math.exp(alpha * (first_score - top))]
            for ids, score in framed:
                if ids != first and fits(ids):
                    segmentations.append(ids)
                    weights.append(math.exp(alpha * (score - top)))
            out.append((segmentations, list(itertools.accumulate(weights))))
        return out

    def epoch(self, epoch: int) -> tuple[list[list[int]], list[list[int]]]:
        """(source ids + EOS, BOS + target ids + EOS) of every pair for ``epoch``."""
        rng = random.Random(f"subwords {self.seed} {epoch}")
        return self._draw(self._src, rng), self._draw(self._tgt, rng)

    @staticmethod
    def _draw(
        candidates: list[tuple[list[list[int]], list[float]]], rng: random.Random
    ) -> list[list[int]]:
        return [
            segmentations[0]
            if len(segmentations) == 1
            else rng.choices(segmentations, cum_weights=cumulative)[0]
            for segmentations, cumulative in candidates
        ]


class BatchIterator:
    """Batches of a :class:`ParallelData` for one epoch at a time.

    ``epoch_batches(epoch)`` depends only on (seed, epoch), which is what lets a
    resumed run replay the exact data order of an uninterrupted one. With a
    ``sampler`` each epoch has its own segmentations: ``batch`` builds batches
    from those of the epoch last passed to ``epoch_batches``.
    """

    def __init__(
        self,
        data: ParallelData,
        batch_size: int,
        batch_tokens: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        sampler: SubwordSampler | None = None,
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.sampler = sampler
        self._epoch: int | None = None
        self._use_ids(data.src, data.tgt)

    def _use_ids(self, src: list[list[int]], tgt: list[list[int]]) -> None:
        self._src, self._tgt = src, tgt
        self._src_lengths = [len(s) for s in src]
        self._tgt_lengths = [len(t) - 1 for t in tgt]

    def _use_epoch(self, epoch: int) -> None:
        if self.sampler is not None and epoch != self._epoch:
            self._use_ids(*self.sampler.epoch(epoch))
        self._epoch = epoch

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        self._use_epoch(epoch)
        return make_batches(
            self._src_lengths,
            self._tgt_lengths,
            self.batch_size,
            self.batch_tokens,
            shuffle=self.shuffle,
            seed=self.seed * 100_003 + epoch,
        )

    def batch(self, indices: list[int]) -> Batch:
        return collate(
            [self._src[i] for i in indices],
            [self._tgt[i] for i in indices],
            indices,
        )


def inference_batches(src_ids: list[list[int]], batch_size: int) -> list[list[int]]:
    """Length-sorted batches of source indices (caller restores the input order)."""
    order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
