"""Translate lines with a trained model, and score a checkpoint on held-out data."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import torch

from seq2seq import checkpoint as ckpt
from seq2seq.config import Config, DecodeConfig, from_dict
from seq2seq.data import (
    collate,
    inference_batches,
    read_corpus,
    read_lines,
)
from seq2seq.ensemble import Ensemble
from seq2seq.errors import UserError
from seq2seq.metrics import Score, bleu, chrf, ter
from seq2seq.model import Seq2Seq, build_model
from seq2seq.precision import autocast
from seq2seq.search import Hypothesis, beam_search, greedy_search
from seq2seq.tokenizer import EOS_ID, Tokenizer

log = logging.getLogger(__name__)


@dataclass
class Translation:
    """One translated line: text, score, target ids and attention (T, S) or None.

    ``finished``: the output ended with EOS (then T = len(tokens) + 1, the last
    attention row being EOS's). ``source``: the input line. ``nbest``: the
    ``n_best`` best (text, score) pairs, best first (the first is text, score).
    ``hypotheses``: the search's hypotheses behind ``nbest`` (tokens, score,
    attention (T, S) and finished of each), empty for a blank line.
    """

    text: str
    score: float
    tokens: list[int]
    attention: torch.Tensor | None = None
    finished: bool = True
    source: str = ""
    nbest: list[tuple[str, float]] = field(default_factory=list)
    hypotheses: list[Hypothesis] = field(default_factory=list)

    def best(self) -> Hypothesis:
        """The best hypothesis (tokens, score, attention, finished)."""
        return Hypothesis(self.tokens, self.score, self.attention, self.finished)


class Translator:
    """Batched translation of sentences with a model and its tokenizer.

    ``beam_size`` 1 is greedy search. Input order is kept; batches are formed from
    length-sorted sentences so padding stays small. ``n_best`` (at most
    ``beam_size``) alternatives are kept per line in :attr:`Translation.nbest`.
    """

    def __init__(
        self,
        model: Seq2Seq | Ensemble,
        tokenizer: Tokenizer,
        decode: DecodeConfig,
        device: torch.device,
        amp_dtype: torch.dtype | None = None,
        beam_size: int = 1,
        alpha: float = 1.0,
        n_best: int = 1,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.decode = decode
        self.device = device
        self.amp_dtype = amp_dtype
        self.beam_size = beam_size
        self.alpha = alpha
        self.n_best = n_best
        # Called with the number of sentences done after each batch (progress bars).
        self.on_batch: Callable[[int], None] | None = None

    def search(
        self, src_ids: list[list[int]], return_attention: bool = False
    ) -> list[Hypothesis]:
        """Best hypothesis for each id sequence (EOS-terminated), in input order."""
        return [n_best[0] for n_best in self.search_nbest(src_ids, return_attention)]

    def search_nbest(
        self, src_ids: list[list[int]], return_attention: bool = False
    ) -> list[list[Hypothesis]]:
        """The ``n_best`` best hypotheses (best first) of each id sequence, in input
        order; greedy search (``beam_size`` 1) gives one."""
        if self.n_best > self.beam_size:
            raise ValueError(f"n_best={self.n_best} > beam_size={self.beam_size}")
        self.model.eval()
        results: list[list[Hypothesis] | None] = [None] * len(src_ids)
        for indices in inference_batches(src_ids, self.decode.batch_size):
            batch = collate([src_ids[i] for i in indices], None, indices)
            src = batch.src.to(self.device)
            with autocast(self.device, self.amp_dtype):
                if self.beam_size == 1:
                    hyps = [
                        [hyp]
                        for hyp in greedy_search(
                            self.model,
                            src,
                            batch.src_lengths,
                            self.decode.max_len_a,
                            self.decode.max_len_b,
                            return_attention,
                        )
                    ]
                else:
                    hyps = beam_search(
                        self.model,
                        src,
                        batch.src_lengths,
                        self.beam_size,
                        self.decode.max_len_a,
                        self.decode.max_len_b,
                        self.alpha,
                        self.n_best,
                        return_attention,
                    )
            for i, n_best in zip(indices, hyps):
                results[i] = n_best
            if self.on_batch is not None:
                self.on_batch(len(indices))
        return results  # type: ignore[return-value]

    def translate_ids(self, src_ids: list[list[int]]) -> list[str]:
        """Detokenized translations of id sequences, in input order."""
        return self.tokenizer.decode_tgt([h.tokens for h in self.search(src_ids)])

    def encode_lines(
        self, lines: list[str], line_numbers: list[int] | None = None
    ) -> list[list[int]]:
        """Source lines -> ids, cutting over-long ones to the model's limit with a
        warning naming the input line (the concat rule cannot attend past it).

        ``line_numbers``: the input line number of each line (default 1, 2, ...).
        """
        limit = self.model.max_src_len
        ids = self.tokenizer.encode_src(lines)
        numbers = line_numbers or list(range(1, len(lines) + 1))
        for index, (number, seq) in enumerate(zip(numbers, ids)):
            if len(seq) > limit:
                log.warning(
                    "input line %d has %d source tokens; only the first %d are "
                    "translated (the model's max_src_len)",
                    number,
                    len(seq),
                    limit,
                )
                ids[index] = seq[: limit - 1] + [EOS_ID]
        return ids

    def translate_lines(
        self, lines: list[str], return_attention: bool = False, first_line: int = 1
    ) -> list[Translation]:
        """Translate raw lines; an empty or blank line gives an empty translation
        (score 0, ``n_best`` empty alternatives). ``first_line``: the input line
        number of ``lines[0]``, for warnings."""
        stripped = [line.strip() for line in lines]
        todo = [i for i, line in enumerate(stripped) if line]
        if self.on_batch is not None and len(todo) < len(lines):
            self.on_batch(len(lines) - len(todo))  # blank lines: done already
        nbests = (
            self.search_nbest(
                self.encode_lines(
                    [stripped[i] for i in todo], [first_line + i for i in todo]
                ),
                return_attention,
            )
            if todo
            else []
        )
        out = [
            Translation("", 0.0, [], source=line, nbest=[("", 0.0)] * self.n_best)
            for line in lines
        ]
        texts = iter(
            self.tokenizer.decode_tgt([h.tokens for hyps in nbests for h in hyps])
        )
        for i, hyps in zip(todo, nbests):
            alternatives = [(next(texts), h.score) for h in hyps]
            best = hyps[0]
            out[i] = Translation(
                alternatives[0][0],
                best.score,
                best.tokens,
                best.attention,
                best.finished,
                lines[i],
                alternatives,
                hyps,
            )
        return out

    def stream_translations(
        self, lines: Iterable[str], chunk: int = 1000, return_attention: bool = False
    ) -> Iterator[Translation]:
        """Translate a stream of lines chunk by chunk, one :class:`Translation` per
        input line, without holding more than ``chunk`` lines."""
        buffer: list[str] = []
        first_line = 1
        for line in lines:
            buffer.append(line.rstrip("\r\n"))
            if len(buffer) >= chunk:
                yield from self.translate_lines(buffer, return_attention, first_line)
                first_line += len(buffer)
                buffer = []
        if buffer:
            yield from self.translate_lines(buffer, return_attention, first_line)


def count_lines(path: Path) -> int | None:
    """Lines in a text file (``.gz`` decompressed), for a progress bar's total;
    None when it cannot be read (the reading itself then reports why)."""
    opener = gzip.open if path.suffix == ".gz" else open
    count, last = 0, b"\n"
    try:
        with opener(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
                last = block[-1:]
    except (OSError, EOFError):
        return None
    return count + (last != b"\n")


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[TextIO]:
    """A text stream for ``--output``: stdout when ``path`` is None, else the file
    (gzip-compressed when it ends in ``.gz``)."""
    if path is None:
        yield sys.stdout
        return
    try:
        handle = (
            gzip.open(path, "wt", encoding="utf-8")
            if path.endswith(".gz")
            else open(path, "w", encoding="utf-8")
        )
    except OSError as err:
        raise UserError(f"--output {path}: cannot write ({err.strerror})") from None
    with handle:
        yield handle


def attention_labels(
    tokenizer: Tokenizer, source: str, hypothesis: Hypothesis
) -> tuple[list[str], list[str]]:
    """Source pieces (attention columns, ``</s>`` last) and target pieces
    (attention rows, ``</s>`` last when finished) of one hypothesis of ``source``;
    both empty for a blank source."""
    if not source.strip():
        return [], []
    src = tokenizer.src_pieces(source.strip())
    if hypothesis.attention is not None:
        columns = hypothesis.attention.size(1)
        if len(src) > columns:  # the input was cut to the model's max_src_len
            src = src[: columns - 1] + ["</s>"]
    tgt = tokenizer.tgt_pieces(hypothesis.tokens)
    if hypothesis.finished:
        tgt.append("</s>")
    return src, tgt


class TranslationWriter:
    """Writes translations to a text stream as ``text`` or ``jsonl``, and, with
    ``plot_dir``, one attention heatmap per translated line (``0001.png`` for input
    line 1, ...; blank lines get none).

    ``text``: per input line, one line per alternative in :attr:`Translation.nbest`
    (one unless n-best), with ``<TAB>score`` when ``show_scores``; with
    ``show_attention`` each alternative's heatmap as text follows its line, then a
    blank line. ``jsonl``: one JSON object per input line (see :meth:`record`), which
    always carries the scores and attention (``show_scores`` and ``show_attention``
    concern the text format only).
    """

    def __init__(
        self,
        out: TextIO,
        tokenizer: Tokenizer,
        output_format: str = "text",
        show_scores: bool = False,
        plot_dir: Path | None = None,
        flush: bool = False,
        show_attention: bool = False,
    ) -> None:
        if output_format not in ("text", "jsonl"):
            raise ValueError(f"unknown output format {output_format!r}")
        self.out = out
        self.tokenizer = tokenizer
        self.output_format = output_format
        self.show_scores = show_scores
        self.plot_dir = plot_dir
        self.flush = flush
        self.show_attention = show_attention  # text: a shaded heatmap under each
        self.line_number = 0  # input lines written so far

    @property
    def needs_attention(self) -> bool:
        """Whether translations must carry their attention matrices."""
        return (
            self.output_format == "jsonl"
            or self.plot_dir is not None
            or self.show_attention
        )

    def write(self, translation: Translation) -> None:
        """Write one input line's translation (and its plot)."""
        self.line_number += 1
        if self.output_format == "jsonl":
            lines = [json.dumps(self.record(translation), ensure_ascii=False)]
        elif self.show_attention and translation.attention is not None:
            lines = self.text_lines_with_attention(translation)
        else:
            lines = self.text_lines(translation)
        self.out.write("".join(line + "\n" for line in lines))
        if self.flush:
            self.out.flush()
        if self.plot_dir is not None and translation.attention is not None:
            self.plot(translation, self.plot_dir / f"{self.line_number:04d}.png")

    def text_lines(self, translation: Translation) -> list[str]:
        """The text-format lines of one translation: one per alternative."""
        alternatives = translation.nbest or [(translation.text, translation.score)]
        if self.show_scores:
            return [f"{text}\t{score:.4f}" for text, score in alternatives]
        return [text for text, _ in alternatives]

    def text_lines_with_attention(self, translation: Translation) -> list[str]:
        """Each alternative's line, its attention grid under it and a blank line;
        with n-best, each grid's corner names its alternative (``2/3``)."""
        from seq2seq.textplot import text_heatmap

        hypotheses = translation.hypotheses or [translation.best()]
        lines = []
        for rank, (line, hypothesis) in enumerate(
            zip(self.text_lines(translation), hypotheses), start=1
        ):
            lines.append(line)
            if hypothesis.attention is None:
                continue
            src, tgt = attention_labels(self.tokenizer, translation.source, hypothesis)
            corner = f"{rank}/{len(hypotheses)}" if len(hypotheses) > 1 else ""
            lines += [
                text_heatmap(hypothesis.attention.tolist(), src, tgt, corner),
                "",
            ]
        return lines

    def labels(self, translation: Translation) -> tuple[list[str], list[str]]:
        """Source pieces (attention columns, ``</s>`` last) and target pieces
        (attention rows, ``</s>`` last when finished) of a translation."""
        return attention_labels(self.tokenizer, translation.source, translation.best())

    def record(self, translation: Translation) -> dict:
        """The JSON object of one input line: source, translation, score, tokens
        (target pieces, the attention rows), source_tokens (the columns), attention
        (rows rounded to 4 decimals) and, with n-best, ``nbest``."""
        src, tgt = self.labels(translation)
        attention = translation.attention
        record = {
            "source": translation.source,
            "translation": translation.text,
            "score": translation.score,
            "tokens": tgt,
            "source_tokens": src,
            "attention": []
            if attention is None
            else [[round(w, 4) for w in row] for row in attention.tolist()],
        }
        if len(translation.nbest) > 1:
            record["nbest"] = [
                {"translation": text, "score": score}
                for text, score in translation.nbest
            ]
        return record

    def plot(self, translation: Translation, path: Path) -> None:
        """Draw the attention heatmap of one translation into ``path``."""
        from seq2seq.plot import plot_attention

        src, tgt = self.labels(translation)
        assert translation.attention is not None
        plot_attention(translation.attention, src, tgt, path, translation.text)


def load_model(
    run: str | Path, device: torch.device
) -> tuple[Seq2Seq, Tokenizer, Config]:
    """Model, tokenizer and config from a run directory or checkpoint file."""
    path = ckpt.resolve_checkpoint(run)
    state = ckpt.load_checkpoint(path)
    cfg = from_dict(state["config"], f"{path} (config)")
    tok = state["tokenizer"]
    tokenizer = Tokenizer(tok["src"], tok["tgt"])
    model = build_model(
        cfg.model,
        cfg.data.max_src_len,
        tokenizer.src_vocab_size,
        tokenizer.tgt_vocab_size,
        device,
    )
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, tokenizer, cfg


def load_ensemble(
    runs: list[str | Path], device: torch.device
) -> tuple[Seq2Seq | Ensemble, Tokenizer, Config]:
    """One model, or an :class:`~seq2seq.ensemble.Ensemble` of several, with the
    first run's tokenizer and config; every run must have the first one's
    sentencepiece models (a one-line error names the one that does not)."""
    models = []
    tokenizer = cfg = None
    for run in runs:
        model, tok, run_cfg = load_model(run, device)
        if tokenizer is None:
            tokenizer, cfg = tok, run_cfg
        elif (tok.src_model, tok.tgt_model) != (
            tokenizer.src_model,
            tokenizer.tgt_model,
        ):
            raise UserError(
                f"{run}: its sentencepiece models differ from {runs[0]}'s; models "
                "decode together only with the same ones (train each with "
                "tokenizer.model naming the first run's spm.model, or its "
                "spm.src.model when it has one)"
            )
        models.append(model)
    assert tokenizer is not None and cfg is not None
    if len(models) == 1:
        return models[0], tokenizer, cfg
    return Ensemble(models).to(device).eval(), tokenizer, cfg


def evaluate_files(
    translator: Translator,
    src_lines: list[str],
    ref_lines: list[str],
    metrics: Sequence[str] = ("bleu",),
) -> tuple[list[str], dict[str, Score]]:
    """Translate ``src_lines`` and score them against ``ref_lines`` with each
    named sacreBLEU metric (see :func:`score_hypotheses`)."""
    hypotheses = [t.text for t in translator.translate_lines(src_lines)]
    return hypotheses, score_hypotheses(hypotheses, ref_lines, metrics)


METRICS: dict[str, Callable[[list[str], list[str]], Score]] = {
    "bleu": bleu,
    "chrf": chrf,
    "ter": ter,
}


def score_hypotheses(
    hypotheses: list[str], references: list[str], metrics: Sequence[str]
) -> dict[str, Score]:
    """Each named metric (``bleu``, ``chrf``, ``ter``) of the hypotheses, as
    ``sacrebleu -m NAME`` scores them, in the order given."""
    return {name: METRICS[name](hypotheses, references) for name in metrics}


def score_record(score: Score) -> dict:
    """One metric as ``sacrebleu -f json`` names it: name (``BLEU``, ``chrF2``,
    ``TER``), score (unrounded), signature, and sacrebleu's text line."""
    return {
        "name": score.text.split(" = ", 1)[0],
        "score": score.score,
        "signature": score.signature,
        "text": score.text,
    }


def read_eval_data(
    cfg: Config, src: str | None, ref: str | None, split: str | None
) -> tuple[list[str], list[str]]:
    """Sources and references from --src/--ref files or a config split."""
    if src is not None or ref is not None:
        if src is None or ref is None:
            raise UserError("evaluate: give both --src and --ref (or --split)")
        sources, refs = read_lines(Path(src)), read_lines(Path(ref))
        if len(sources) != len(refs):
            raise UserError(
                f"evaluate: {src} has {len(sources)} lines but {ref} has {len(refs)}; "
                "the files must be line-aligned"
            )
        return sources, refs
    split = split or "test"
    if split not in ("train", "valid", "test"):
        raise UserError(f"--split {split!r}: choose train, valid or test")
    corpus = getattr(cfg.data, split)
    if corpus is None:
        raise UserError(f"--split {split}: the run's config has no data.{split}")
    return read_corpus(corpus, Path(cfg.data.root), split)
