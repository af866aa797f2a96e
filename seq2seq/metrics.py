"""Corpus BLEU, chrF and TER through sacrebleu, with its default settings (BLEU:
cased, detokenized, 13a tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass

import sacrebleu


@dataclass(frozen=True)
class Score:
    """A corpus score: its value, sacrebleu's text form and signature."""

    score: float
    text: str
    signature: str


def bleu(hypotheses: list[str], references: list[str]) -> Score:
    """sacreBLEU of detokenized hypotheses against one reference each."""
    metric = sacrebleu.BLEU()
    result = metric.corpus_score(hypotheses, [references])
    return Score(result.score, str(result), str(metric.get_signature()))


def chrf(hypotheses: list[str], references: list[str]) -> Score:
    """sacrebleu chrF of detokenized hypotheses against one reference each."""
    metric = sacrebleu.CHRF()
    result = metric.corpus_score(hypotheses, [references])
    return Score(result.score, str(result), str(metric.get_signature()))


def ter(hypotheses: list[str], references: list[str]) -> Score:
    """sacrebleu TER (translation edit rate; lower is better) of detokenized
    hypotheses against one reference each."""
    metric = sacrebleu.TER()
    result = metric.corpus_score(hypotheses, [references])
    return Score(result.score, str(result), str(metric.get_signature()))
