"""Validation: the model's loss and greedy translations on the valid split, their
scores, and the examples (text and attention heatmaps) shown in TensorBoard.

The trainer decides what a score means for the run (best checkpoint, learning rate,
early stopping); this module only measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from seq2seq.inference import Translator
from seq2seq.metrics import bleu, chrf
from seq2seq.plot import attention_figure, figure_pixels
from seq2seq.precision import autocast
from seq2seq.progress import progress_bar


@dataclass(frozen=True)
class Scores:
    """One validation's figures."""

    loss: float  # mean cross-entropy per target token
    bleu: float
    chrf: float

    @property
    def ppl(self) -> float:
        return math.exp(min(self.loss, 50.0))


def valid_loss(
    model: nn.Module, batches, device: torch.device, amp_dtype: torch.dtype | None
) -> float:
    """Mean loss per target token over the batches of ``batches`` (a
    :class:`~seq2seq.data.BatchIterator` of the valid split, not shuffled)."""
    total_loss, total_tokens = 0.0, 0
    with torch.no_grad():  # not inference_mode: it turns autocast's cast cache off
        for indices in batches.epoch_batches(0):
            batch = batches.batch(indices).to(device)
            with autocast(device, amp_dtype):
                loss = model.loss(
                    batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out
                )
            total_loss += loss.item()
            total_tokens += batch.num_tgt_tokens
    return total_loss / max(total_tokens, 1)


def score(
    model: nn.Module,
    translator: Translator,
    valid_data,
    valid_batches,
    show_bar: bool,
) -> Scores:
    """Loss, greedy-or-beam BLEU and chrF (the run's ``decode`` settings) of the
    valid split; ``valid_data`` holds its source ids and target texts."""
    model.eval()
    loss = valid_loss(model, valid_batches, translator.device, translator.amp_dtype)
    with progress_bar(len(valid_data.src), "valid", show_bar) as update:
        translator.on_batch = update
        try:
            hypotheses = translator.translate_ids(valid_data.src)
        finally:
            translator.on_batch = None
    return Scores(
        loss=loss,
        bleu=bleu(hypotheses, valid_data.tgt_text).score,
        chrf=chrf(hypotheses, valid_data.tgt_text).score,
    )


def log_examples(
    writer,
    translator: Translator,
    valid_data,
    count: int,
    step: int,
    directory: Path,
) -> None:
    """TensorBoard text and attention heatmaps of the first ``count`` valid
    sentences; the latest heatmaps also stay in ``directory`` as PNG files."""
    tokenizer = translator.tokenizer
    count = min(count, len(valid_data))
    hyps = translator.search(valid_data.src[:count], return_attention=True)
    texts = tokenizer.decode_tgt([h.tokens for h in hyps])
    directory.mkdir(exist_ok=True)
    for i, (hyp, text) in enumerate(zip(hyps, texts)):
        source = valid_data.src_text[i]
        writer.add_text(
            f"valid/sample{i}",
            f"source: {source}  \nreference: {valid_data.tgt_text[i]}  \n"
            f"translation: {text}",
            step,
        )
        end = ["</s>"] if hyp.finished else []
        tgt_pieces = tokenizer.tgt_pieces(hyp.tokens) + end
        src_pieces = tokenizer.src_pieces(source)
        if hyp.attention is None or tuple(hyp.attention.shape) != (
            len(tgt_pieces),
            len(src_pieces),
        ):
            continue
        figure = attention_figure(hyp.attention, src_pieces, tgt_pieces, text)
        figure.savefig(directory / f"sample{i}.png", format="png")
        writer.add_image(
            f"attention/sample{i}", figure_pixels(figure), step, dataformats="HWC"
        )
