"""Set-up of a run: tokenizer, data and batches (no model, no optimizer).

``prepare_run(cfg)`` is what ``train``, ``train --dry-run`` and the benchmark
scripts start from. The training split comes from the prepared-data cache
(:mod:`seq2seq.prepared`): encoded once, memory-mapped at every later start. With
several processes (torchrun) rank 0 trains or loads the tokenizer and prepares
the splits while the others wait; then every rank maps the same files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from seq2seq.config import Config
from seq2seq.data import BatchIterator, FlatPairs, ParallelData, SubwordSampler
from seq2seq.errors import UserError
from seq2seq.prepared import load_or_prepare, load_or_train_tokenizer
from seq2seq.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@dataclass
class PreparedRun:
    """What a run trains and validates on.

    train_data: the training pairs, memory-mapped flat arrays.
    valid_data: the validation pairs in lists (``train.valid_max_sentences`` cut).
    batches: the training batches of each epoch (and their subword sampling).
    valid_batches: validation batches, in length order.
    """

    tokenizer: Tokenizer
    train_data: FlatPairs
    valid_data: ParallelData
    batches: BatchIterator
    valid_batches: BatchIterator

    @property
    def train_pairs_read(self) -> int:
        """Training pairs read, before the empty / length filter."""
        return self.train_data.pairs_read


def load_split(
    cfg: Config, split: str, tokenizer: Tokenizer, cache: Path | None = None
) -> FlatPairs:
    """Split ``split`` (``train``, ``valid`` or ``test``), length-filtered, from
    the prepared-data cache (prepared first when missing)."""
    if getattr(cfg.data, split) is None:
        raise UserError(f"data.{split}: not set in the config")
    return load_or_prepare(cfg, split, tokenizer, cache)


def prepare_run(
    cfg: Config,
    dist=None,
    tokenizer: Tokenizer | None = None,
    cache: Path | None = None,
) -> PreparedRun:
    """Tokenizer (``tokenizer`` when given, e.g. a resumed run's), data and
    batches of ``cfg``.

    ``dist`` is the trainer's :mod:`seq2seq.distributed` object (one process when
    None): rank 0 builds what is missing, the others then read it.
    """
    from seq2seq import distributed

    dist = dist or distributed.SingleProcess(None)
    if tokenizer is None:
        tokenizer = dist.share_tokenizer(lambda: load_or_train_tokenizer(cfg, cache))
    if not dist.is_main:
        dist.barrier()  # rank 0 prepares; then the cache is warm for the others
    train_data = load_split(cfg, "train", tokenizer, cache)
    valid = load_split(cfg, "valid", tokenizer, cache)
    if dist.is_main:
        dist.barrier()
    valid_data = valid.to_parallel(cfg.train.valid_max_sentences or None)
    batches = BatchIterator(
        train_data,
        cfg.train.batch_size,
        cfg.train.batch_tokens,
        shuffle=True,
        seed=cfg.seed,
        sampler=make_sampler(cfg, tokenizer, train_data),
    )
    valid_batches = BatchIterator(
        valid_data, cfg.decode.batch_size, None, shuffle=False
    )
    return PreparedRun(tokenizer, train_data, valid_data, batches, valid_batches)


def make_sampler(
    cfg: Config, tokenizer: Tokenizer, train_data: FlatPairs
) -> SubwordSampler | None:
    """The run's subword sampler (None with ``tokenizer.sampling_alpha: 0``)."""
    if not cfg.tokenizer.sampling_alpha:
        return None
    return SubwordSampler(
        tokenizer,
        train_data,
        cfg.tokenizer.sampling_alpha,
        cfg.tokenizer.sampling_nbest,
        cfg.seed,
        cfg.data.max_src_len,
        cfg.data.max_tgt_len,
    )
