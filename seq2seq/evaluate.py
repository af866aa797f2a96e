"""Translate lines with a trained model, and score a checkpoint on held-out data."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2seq import checkpoint as ckpt
from seq2seq.config import Config, DecodeConfig, from_dict
from seq2seq.data import collate, inference_batches, read_corpus, read_lines
from seq2seq.errors import UserError
from seq2seq.metrics import Score, bleu
from seq2seq.model import Seq2Seq, build_model
from seq2seq.search import Hypothesis, beam_search, greedy_search
from seq2seq.tokenizer import EOS_ID, Tokenizer

log = logging.getLogger(__name__)


@dataclass
class Translation:
    """One translated line: text, score, target ids and attention (T, S) or None."""

    text: str
    score: float
    tokens: list[int]
    attention: torch.Tensor | None = None


class Translator:
    """Batched translation of sentences with a model and its tokenizer.

    ``beam_size`` 1 is greedy search. Input order is kept; batches are formed from
    length-sorted sentences so padding stays small.
    """

    def __init__(
        self,
        model: Seq2Seq,
        tokenizer: Tokenizer,
        decode: DecodeConfig,
        device: torch.device,
        amp_dtype: torch.dtype | None = None,
        beam_size: int = 1,
        alpha: float = 1.0,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.decode = decode
        self.device = device
        self.amp_dtype = amp_dtype
        self.beam_size = beam_size
        self.alpha = alpha

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def search(
        self, src_ids: list[list[int]], return_attention: bool = False
    ) -> list[Hypothesis]:
        """Best hypothesis for each id sequence (EOS-terminated), in input order."""
        self.model.eval()
        results: list[Hypothesis | None] = [None] * len(src_ids)
        for indices in inference_batches(src_ids, self.decode.batch_size):
            batch = collate([src_ids[i] for i in indices], None, indices)
            src = batch.src.to(self.device)
            with self._autocast():
                if self.beam_size == 1:
                    hyps = greedy_search(
                        self.model,
                        src,
                        batch.src_lengths,
                        self.decode.max_len_a,
                        self.decode.max_len_b,
                        return_attention,
                    )
                else:
                    hyps = [
                        n_best[0]
                        for n_best in beam_search(
                            self.model,
                            src,
                            batch.src_lengths,
                            self.beam_size,
                            self.decode.max_len_a,
                            self.decode.max_len_b,
                            self.alpha,
                            1,
                            return_attention,
                        )
                    ]
            for i, hyp in zip(indices, hyps):
                results[i] = hyp
        return results  # type: ignore[return-value]

    def translate_ids(self, src_ids: list[list[int]]) -> list[str]:
        """Detokenized translations of id sequences, in input order."""
        return self.tokenizer.decode_tgt([h.tokens for h in self.search(src_ids)])

    def encode_lines(self, lines: list[str]) -> list[list[int]]:
        """Source lines -> ids, cutting over-long ones to the model's limit with a
        warning (the concat rule cannot attend past it)."""
        limit = self.model.max_src_len
        ids = self.tokenizer.encode_src(lines)
        for number, seq in enumerate(ids, start=1):
            if len(seq) > limit:
                log.warning(
                    "input line %d has %d source tokens; only the first %d are "
                    "translated (the model's max_src_len)",
                    number,
                    len(seq),
                    limit,
                )
                ids[number - 1] = seq[: limit - 1] + [EOS_ID]
        return ids

    def translate_lines(
        self, lines: list[str], return_attention: bool = False
    ) -> list[Translation]:
        """Translate raw lines; an empty or blank line gives an empty translation."""
        stripped = [line.strip() for line in lines]
        todo = [i for i, line in enumerate(stripped) if line]
        hyps = (
            self.search(
                self.encode_lines([stripped[i] for i in todo]), return_attention
            )
            if todo
            else []
        )
        out = [Translation("", 0.0, []) for _ in lines]
        texts = self.tokenizer.decode_tgt([h.tokens for h in hyps])
        for i, hyp, text in zip(todo, hyps, texts):
            out[i] = Translation(text, hyp.score, hyp.tokens, hyp.attention)
        return out

    def stream(self, lines: Iterable[str], chunk: int = 1000) -> Iterator[str]:
        """Translate a stream of lines chunk by chunk, one output per input line."""
        buffer: list[str] = []
        for line in lines:
            buffer.append(line.rstrip("\r\n"))
            if len(buffer) >= chunk:
                yield from (t.text for t in self.translate_lines(buffer))
                buffer = []
        if buffer:
            yield from (t.text for t in self.translate_lines(buffer))


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
    )
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, tokenizer, cfg


def evaluate_files(
    translator: Translator, src_lines: list[str], ref_lines: list[str]
) -> tuple[list[str], Score]:
    """Translate ``src_lines`` and score them against ``ref_lines`` with sacreBLEU."""
    hypotheses = [t.text for t in translator.translate_lines(src_lines)]
    return hypotheses, bleu(hypotheses, ref_lines)


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
