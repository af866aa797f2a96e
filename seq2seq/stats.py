"""Corpus statistics of a config: pairs, subword lengths, unknowns, what is dropped.

``seq2seq data stats CONFIG [key=value ...] [--out DIR] [--json FILE]`` reads every
split the config names, tokenizes it with the run's tokenizer (the models the
config names, or one trained exactly as ``seq2seq train`` trains it) and reports,
per split and side: the number of pairs, length percentiles and a histogram in
subword tokens, the share of tokens that map to the unknown id, how much of the
vocabulary the split uses, and how many pairs the empty-line rule and the
``data.max_src_len`` / ``data.max_tgt_len`` filter would drop.

Lengths count EOS, as the length filter does. ``train`` and ``valid`` are filtered
when training loads them; ``test`` is not (evaluate keeps every pair), so its
counts show what the rule *would* drop.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seq.config import Config, load_config
from seq2seq.errors import UserError
from seq2seq.preflight import require_corpora
from seq2seq.tokenizer import EOS_ID, UNK_ID, Tokenizer, build_tokenizer

SPLITS = ("train", "valid", "test")
FILTERED_SPLITS = ("train", "valid")  # the length filter applies when train loads them
PERCENTILES = (50, 90, 95, 99)
SPECIAL_IDS = 4  # pad, unk, bos, eos: never produced by a sentence's pieces


@dataclass
class SideStats:
    """One side (source or target) of one split."""

    lang: str  # language code from the config
    lengths: list[int]  # per non-empty pair, subword tokens incl. EOS
    tokens: int  # subword tokens of all pairs, EOS excluded
    unk_tokens: int  # of those, how many are the unknown id
    pieces_used: int  # distinct vocabulary pieces that occur
    vocab_pieces: int  # pieces in the tokenizer's vocabulary (specials excluded)

    @property
    def unk_rate(self) -> float:
        return self.unk_tokens / self.tokens if self.tokens else 0.0

    @property
    def coverage(self) -> float:
        """Share of the vocabulary's pieces this side uses."""
        return self.pieces_used / self.vocab_pieces if self.vocab_pieces else 0.0

    def percentiles(self) -> dict[str, float]:
        """Mean, min, max and :data:`PERCENTILES` of ``lengths`` (nearest rank)."""
        ordered = sorted(self.lengths)
        if not ordered:
            return {
                "mean": 0.0,
                "min": 0,
                **{f"p{p}": 0 for p in PERCENTILES},
                "max": 0,
            }
        result: dict[str, float] = {
            "mean": round(sum(ordered) / len(ordered), 2),
            "min": ordered[0],
        }
        for p in PERCENTILES:
            result[f"p{p}"] = ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]
        result["max"] = ordered[-1]
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "tokens": self.tokens,
            "unk_tokens": self.unk_tokens,
            "unk_rate": self.unk_rate,
            "pieces_used": self.pieces_used,
            "vocab_pieces": self.vocab_pieces,
            "length": self.percentiles(),
            "length_counts": sorted(Counter(self.lengths).items()),
        }


@dataclass
class SplitStats:
    """One split: its pairs, both sides, and what the load rules would drop."""

    split: str
    pairs: int
    empty: int  # pairs with an empty source or target line
    too_long: int  # non-empty pairs over data.max_src_len or data.max_tgt_len
    filtered_at_load: bool  # whether `seq2seq train` drops them for this split
    source: SideStats
    target: SideStats
    plot: Path | None = None

    @property
    def kept(self) -> int:
        return self.pairs - self.empty - self.too_long

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "empty": self.empty,
            "too_long": self.too_long,
            "kept": self.kept,
            "filtered_at_load": self.filtered_at_load,
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "plot": None if self.plot is None else str(self.plot),
        }


@dataclass
class CorpusStats:
    """Every split of a config, and how it was tokenized."""

    tokenizer: str  # where the tokenizer came from, in words
    max_src_len: int
    max_tgt_len: int
    splits: list[SplitStats] = field(default_factory=list)
    vocabularies: str = ""  # what each side's "pieces used" counts out of, in words

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer,
            "max_src_len": self.max_src_len,
            "max_tgt_len": self.max_tgt_len,
            "splits": {s.split: s.to_dict() for s in self.splits},
        }


# ---------------------------------------------------------------- computing


def split_stats(
    tokenizer: Tokenizer,
    sources: list[str],
    targets: list[str],
    split: str,
    cfg: Config,
) -> SplitStats:
    """Statistics of one split's (already read) pairs.

    The empty and too-long rules are those of :func:`seq2seq.data.encode_pairs`:
    a pair is empty if either line is; a source is too long with more than
    ``max_src_len`` tokens (EOS included), a target with more than
    ``max_tgt_len`` (EOS included, BOS not).
    """
    src_ids = tokenizer.encode_src(sources)  # each ends with EOS
    tgt_ids = tokenizer.encode_tgt(targets)  # no BOS / EOS
    empty = too_long = 0
    src_lengths, tgt_lengths = [], []
    for i, (src, tgt) in enumerate(zip(src_ids, tgt_ids)):
        if not sources[i] or not targets[i]:
            empty += 1
            continue
        src_lengths.append(len(src))
        tgt_lengths.append(len(tgt) + 1)
        if len(src) > cfg.data.max_src_len or len(tgt) + 1 > cfg.data.max_tgt_len:
            too_long += 1
    return SplitStats(
        split=split,
        pairs=len(sources),
        empty=empty,
        too_long=too_long,
        filtered_at_load=split in FILTERED_SPLITS,
        source=_side(
            cfg.data.src_lang,
            src_lengths,
            [ids[:-1] for ids in src_ids],
            tokenizer.src_vocab_size,
        ),
        target=_side(cfg.data.tgt_lang, tgt_lengths, tgt_ids, tokenizer.tgt_vocab_size),
    )


def _side(
    lang: str, lengths: list[int], ids: list[list[int]], vocab_size: int
) -> SideStats:
    counts: Counter[int] = Counter()
    for sequence in ids:
        counts.update(sequence)
    return SideStats(
        lang=lang,
        lengths=lengths,
        tokens=sum(counts.values()),
        unk_tokens=counts[UNK_ID],
        pieces_used=sum(1 for i in counts if i > EOS_ID),
        vocab_pieces=vocab_size - SPECIAL_IDS,
    )


def corpus_stats(cfg: Config) -> CorpusStats:
    """Read every split of ``cfg``, build its tokenizer and compute the statistics."""
    from seq2seq.data import read_corpus  # imports torch: only when needed

    root = Path(cfg.data.root)
    texts = {
        split: read_corpus(getattr(cfg.data, split), root, split)
        for split in SPLITS
        if getattr(cfg.data, split) is not None
    }
    tokenizer, origin = stats_tokenizer(cfg, *texts["train"])
    result = CorpusStats(origin, cfg.data.max_src_len, cfg.data.max_tgt_len)
    result.vocabularies = describe_vocabularies(cfg, tokenizer)
    for split, (sources, targets) in texts.items():
        result.splits.append(split_stats(tokenizer, sources, targets, split, cfg))
    return result


def stats_tokenizer(
    cfg: Config, train_src: list[str], train_tgt: list[str]
) -> tuple[Tokenizer, str]:
    """The tokenizer ``seq2seq train`` would use, and where it came from, in words.

    With no model named, one is trained on the training pairs with the config's
    settings, by the same call as training (it is not saved).
    """
    tok = cfg.tokenizer
    resolve = lambda path: Path(cfg.data.root) / path  # noqa: E731 (as train does)
    tokenizer = build_tokenizer(tok, train_src, train_tgt, resolve)
    if tok.model is not None:
        origin = f"tokenizer.model {resolve(tok.model)}"
    elif tok.src_model is not None:
        origin = (
            f"tokenizer.src_model {resolve(tok.src_model)}, "
            f"tokenizer.tgt_model {resolve(tok.tgt_model)}"
        )
    else:
        kind = "joint" if tok.joint else "per-language"
        origin = (
            f"trained on train as `seq2seq train` would ({kind} {tok.model_type}, "
            f"vocab_size {tok.vocab_size}), not saved"
        )
    sizes = {tokenizer.src_vocab_size, tokenizer.tgt_vocab_size}
    origin += f"; {' / '.join(str(s) for s in sorted(sizes))} pieces"
    return tokenizer, origin


def describe_vocabularies(cfg: Config, tokenizer: Tokenizer) -> str:
    """Why the two sides' ``pieces used`` count out of different totals, in lines:
    the special ids are left out, and a joint model's target side may be cut down
    (``tokenizer.restrict_target_vocab``)."""
    src, tgt = cfg.data.src_lang, cfg.data.tgt_lang
    src_size, tgt_size = tokenizer.src_vocab_size, tokenizer.tgt_vocab_size
    less = lambda size: f"{size:,} - {SPECIAL_IDS} = {size - SPECIAL_IDS:,}"  # noqa: E731
    if tokenizer.joint:
        sides = [f"{src}, {tgt}: the joint model's {less(src_size)}"]
    elif cfg.tokenizer.joint:  # one model, its target side restricted
        sides = [
            f"{src}: the joint model's {less(src_size)}",
            f"{tgt}: the {less(tgt_size)} pieces the target side keeps "
            "(tokenizer.restrict_target_vocab: those the target training text uses, "
            "and every single character)",
        ]
    else:
        sides = [
            f"{src}: its own model's {less(src_size)}",
            f"{tgt}: its own model's {less(tgt_size)}",
        ]
    head = (
        "pieces used: distinct pieces that occur, of the side's vocabulary less its "
        f"{SPECIAL_IDS} special ids (pad, unk, bos, eos):"
    )
    return "\n".join([head, *(f"  {side}" for side in sides)])


# ---------------------------------------------------------------- plots


def plot_lengths(
    stats: SplitStats, max_src_len: int, max_tgt_len: int, path: Path
) -> Path:
    """Save the source and target length histograms of a split as one PNG.

    Only matplotlib's object-oriented API is used (``Figure`` + Agg canvas), so no
    global matplotlib state changes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    sides = (
        (stats.source, max_src_len, "max_src_len"),
        (stats.target, max_tgt_len, "max_tgt_len"),
    )
    for column, (side, limit, key) in enumerate(sides, start=1):
        axes = figure.add_subplot(1, 2, column)
        top = max([limit, *side.lengths]) + 1
        edges = [length - 0.5 for length in range(1, top + 1)]  # a bar per length
        axes.hist(side.lengths, bins=edges, color="#4477aa")
        axes.axvline(
            limit + 0.5,
            color="#cc3311",
            linestyle="--",
            label=f"{key} = {limit}",
        )
        axes.set_title(
            f"{stats.split} {side.lang}: {len(side.lengths):,} non-empty pairs",
            fontsize=10,
        )
        axes.set_xlabel("subword tokens (incl. EOS)")
        axes.set_ylabel("pairs")
        axes.legend(fontsize=8)
    figure.savefig(path, format="png", dpi=90)
    return path


# ---------------------------------------------------------------- report


def format_table(stats: CorpusStats) -> str:
    """The statistics as readable plain-text tables."""
    lines = [
        f"tokenizer: {stats.tokenizer}",
        "lengths: subword tokens incl. EOS, as data.max_src_len / max_tgt_len count",
        "",
        f"{'split':<6} {'pairs':>9}  {'side':<5} {'tokens':>11} {'mean':>6} "
        + " ".join(f"{'p' + str(p):>4}" for p in PERCENTILES)
        + f" {'max':>5}  {'unk %':>6}  pieces used",
    ]
    for s in stats.splits:
        for row, side in enumerate((s.source, s.target)):
            length = side.percentiles()
            head = f"{s.split:<6} {s.pairs:>9,}" if row == 0 else " " * 16
            lines.append(
                f"{head}  {side.lang:<5} {side.tokens:>11,} {length['mean']:>6.1f} "
                + " ".join(f"{length[f'p{p}']:>4}" for p in PERCENTILES)
                + f" {length['max']:>5}  {100 * side.unk_rate:>6.3f}  "
                f"{side.pieces_used:,} of {side.vocab_pieces:,} "
                f"({100 * side.coverage:.1f}%)"
            )
    if stats.vocabularies:
        lines.append(stats.vocabularies)
    lines += [
        "",
        f"empty lines and length filter (max_src_len {stats.max_src_len}, "
        f"max_tgt_len {stats.max_tgt_len}):",
        f"{'split':<6} {'pairs':>9} {'empty':>7} {'too long':>9} {'kept':>9} "
        f"{'dropped':>8}",
    ]
    for s in stats.splits:
        dropped = 100 * (s.empty + s.too_long) / s.pairs
        note = "" if s.filtered_at_load else "  (not applied: evaluate keeps them)"
        lines.append(
            f"{s.split:<6} {s.pairs:>9,} {s.empty:>7,} {s.too_long:>9,} "
            f"{s.kept:>9,} {dropped:>7.2f}%{note}"
        )
    plots = [str(s.plot) for s in stats.splits if s.plot is not None]
    if plots:
        lines += ["", "length histograms: " + ", ".join(plots)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command


def add_stats_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``seq2seq data stats`` to ``parser``."""
    parser.add_argument("config", help="YAML config file")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key.path=value",
        help="override config keys, e.g. data.max_src_len=50",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write the length histograms here (default: RUN_DIR/stats)",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the statistics as JSON"
    )


def run_stats(args: argparse.Namespace) -> int:
    """Run ``seq2seq data stats``: print the tables, write plots (and JSON)."""
    cfg = load_config(args.config, args.overrides)
    require_corpora(cfg)
    out = Path(args.out) if args.out else Path(cfg.run_dir) / "stats"
    stats = corpus_stats(cfg)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out}: cannot create ({err.strerror})") from None
    for split in stats.splits:
        split.plot = plot_lengths(
            split,
            cfg.data.max_src_len,
            cfg.data.max_tgt_len,
            out / f"{split.split}_lengths.png",
        )
    if args.json:
        try:
            Path(args.json).write_text(
                json.dumps(stats.to_dict(), indent=2) + "\n", encoding="utf-8"
            )
        except OSError as err:
            raise UserError(
                f"--json {args.json}: cannot write ({err.strerror})"
            ) from None
    sys.stdout.write(format_table(stats))
    return 0
