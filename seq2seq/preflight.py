"""``seq2seq validate CONFIG``: check a config and every file it names, without
training.

The config is loaded exactly as ``seq2seq train`` loads it (syntax, keys, types,
ranges, incompatible options); then every corpus it names is read (the file exists
and is readable, UTF-8, line-aligned, not empty; ``data.on_bad_lines`` applies) and
every tokenizer model it names is loaded. The first problem is a
:class:`~seq2seq.errors.UserError`, so the command prints one line and exits 2.

:func:`require_corpora` runs first in ``validate``, ``train`` (``--dry-run`` too)
and ``data stats``: a public corpus that has not been downloaded yet is one line
naming the command that downloads it, the same from each.
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.config import Config
from seq2seq.errors import UserError

SPLITS = ("train", "valid", "test")


def corpus_files(cfg: Config) -> list[str]:
    """The file names the config's splits read, in order, each once (as written:
    relative names are read from ``data.root``)."""
    names: list[str] = []
    for split in SPLITS:
        corpus = getattr(cfg.data, split)
        if corpus is not None:
            names += [n for n in (corpus.tsv, corpus.src, corpus.tgt) if n is not None]
    return list(dict.fromkeys(names))


def require_corpora(cfg: Config) -> None:
    """Raise if a corpus file the config names is missing and
    ``seq2seq data download`` would fetch it.

    The message is one line with the path as the config spells it (``data.root``
    joined with the file name, not resolved against the working directory) and
    the command to run. Missing files of no downloadable corpus are left to the
    readers' own errors.
    """
    from seq2seq.download import download_command

    root = Path(cfg.data.root)
    missing = [name for name in corpus_files(cfg) if not (root / name).is_file()]
    found = download_command(cfg.data.root, missing)
    if found is None:
        return
    corpus, command = found
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    raise UserError(
        f"{root / missing[0]}: file not found{more}; download {corpus} with "
        f"`{command}` (or set data.root to the directory that holds it)"
    )


def check_files(cfg: Config) -> dict[str, int]:
    """Read every split and load every named tokenizer model of ``cfg``; returns
    the pairs of each split (``test`` only when set)."""
    from seq2seq.data import read_corpus  # imports torch: only when needed
    from seq2seq.tokenizer import build_tokenizer

    require_corpora(cfg)
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
