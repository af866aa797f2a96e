"""``seq2seq validate CONFIG``: check a config and every file it names, without
training.

The config is loaded exactly as ``seq2seq train`` loads it (syntax, keys, types,
ranges, incompatible options); then every corpus it names is read (the file exists
and is readable, UTF-8, line-aligned, not empty; ``data.on_bad_lines`` applies) and
every tokenizer model it names is loaded. The first problem is a
:class:`~seq2seq.errors.UserError`, so the command prints one line and exits 2.
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.config import Config
from seq2seq.errors import UserError

SPLITS = ("train", "valid", "test")


def check_files(cfg: Config) -> dict[str, int]:
    """Read every split and load every named tokenizer model of ``cfg``; returns
    the pairs of each split (``test`` only when set)."""
    from seq2seq.data import read_corpus  # imports torch: only when needed
    from seq2seq.tokenizer import build_tokenizer

    root = Path(cfg.data.root)
    if not root.is_dir():
        raise UserError(
            f"data.root: {root} is not a directory (relative paths start at "
            f"{Path.cwd()})"
        )
    pairs = {}
    for split in SPLITS:
        corpus = getattr(cfg.data, split)
        if corpus is not None:
            sources, _ = read_corpus(corpus, root, split, cfg.data.on_bad_lines)
            pairs[split] = len(sources)
    tok = cfg.tokenizer
    if tok.model is not None or tok.src_model is not None:
        build_tokenizer(tok, resolve=lambda name: root / name)
    return pairs


def summary(config: str | Path, pairs: dict[str, int]) -> str:
    """``ok: CONFIG: train 29,000 pairs, valid 1,014 pairs, test 1,000 pairs``."""
    counts = ", ".join(f"{split} {n:,} pairs" for split, n in pairs.items())
    return f"ok: {config}: {counts}"
