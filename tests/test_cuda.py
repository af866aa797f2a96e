"""CUDA paths: training under each precision, decoding, CPU <-> GPU checkpoints.

Skipped where no CUDA GPU is present (CI); run on a GPU machine with
``python -m pytest -q tests/test_cuda.py``.
"""

from __future__ import annotations

import pytest
import torch

from seq2seq.attention import RULES
from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.data import collate
from seq2seq.inference import Translator, load_model
from seq2seq.model import Seq2Seq
from seq2seq.search import beam_search, greedy_search
from seq2seq.train import Trainer
from tests.conftest import PAIRS, tiny_config, write_config
from tests.test_model import _model, _step_by_step_logits, _two_pairs
from tests.test_search import SOURCES, copy_model

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine"
)
CUDA = torch.device("cuda")


def _config(tmp_path, tiny_tsv, **train):
    cfg = tiny_config(
        tmp_path, tiny_tsv, train={"lr": 0.01, "batch_size": 8, "epochs": 6, **train}
    )
    cfg["device"] = "cuda"
    return write_config(tmp_path / "config.yaml", cfg)


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_training_on_cuda_learns_under_each_precision(tmp_path, tiny_tsv, amp):
    trainer = Trainer(load_config(_config(tmp_path, tiny_tsv, amp=amp)), progress=False)
    assert next(trainer.model.parameters()).device.type == "cuda"
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    batches = trainer.batches.epoch_batches(0)
    first = None
    for _ in range(12):
        for index in batches:
            loss, tokens = trainer.train_step(trainer.batches.batch(index))
            first = first if first is not None else loss / tokens
    last = loss / tokens
    assert torch.isfinite(torch.tensor(last))
    assert last < 0.5 * first, (first, last)


def test_a_cuda_run_translates_the_same_on_cpu(tmp_path, tiny_tsv, capsys):
    """Train on the GPU; the checkpoint decodes on CPU to the same tokens."""
    config = _config(tmp_path, tiny_tsv, amp="bf16", epochs=30)
    assert main(["train", str(config), "--quiet"]) == 0
    run = tmp_path / "run"
    sources = [en for en, _ in PAIRS]
    outputs = {}
    for device in ("cuda", "cpu"):
        model, tokenizer, cfg = load_model(run, torch.device(device))
        assert next(model.parameters()).device.type == device
        translator = Translator(model, tokenizer, cfg.decode, torch.device(device))
        outputs[device] = [t.tokens for t in translator.translate_lines(sources)]
    assert outputs["cuda"] == outputs["cpu"]
    assert main(["evaluate", str(run), "--split", "test", "--beam", "3"]) == 0
    assert "BLEU" in capsys.readouterr().out


@pytest.fixture(scope="module")
def trained_copy_model() -> Seq2Seq:
    return copy_model("cuda")


def test_cuda_beam_one_is_greedy_and_batches_match_one_by_one(trained_copy_model):
    model = trained_copy_model
    batch = collate(SOURCES, None, list(range(len(SOURCES)))).to(CUDA)
    greedy = greedy_search(model, batch.src, batch.src_lengths, 1.5, 3)
    beam1 = beam_search(model, batch.src, batch.src_lengths, 1, 1.5, 3, 0.0)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beam1]
    together = beam_search(model, batch.src, batch.src_lengths, 4, n_best=4)
    for sentence, hyps in zip(SOURCES, together):
        alone = collate([sentence], None, [0]).to(CUDA)
        (single,) = beam_search(model, alone.src, alone.src_lengths, 4, n_best=4)
        assert [h.tokens for h in hyps] == [h.tokens for h in single]
        for a, b in zip(hyps, single):
            assert a.score == pytest.approx(b.score, abs=1e-4)


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
@pytest.mark.parametrize("rule", RULES)
def test_cuda_planned_teacher_forcing_matches_the_step_path(rule, amp):
    """The planned recurrence (split and fused weights, cast once per forward under
    autocast) gives the step path's logits and gradients on the GPU too."""
    dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    tol = dict(atol=1e-4, rtol=1e-4) if dtype is None else dict(atol=3e-2, rtol=3e-2)
    batch = _two_pairs().to(CUDA)
    results = []
    for planned in (True, False):
        model = (
            _model(
                rule,
                embed_size=32,
                encoder_hidden_size=32,
                decoder_hidden_size=64,
                kernel_device="cuda",  # the kernels auto picks for CUDA
            )
            .to(CUDA)
            .train()
        )  # cuDNN runs the backward in training mode only; dropout 0
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=bool(dtype)):
            if planned:
                logits = model(batch.src, batch.src_lengths, batch.tgt_in)
            else:
                logits = _step_by_step_logits(model, batch)
        logits.float().square().sum().backward()
        grads = {n: p.grad.float() for n, p in model.named_parameters()}
        results.append((logits.float().detach(), grads))
    (planned_logits, planned_grads), (step_logits, step_grads) = results
    torch.testing.assert_close(planned_logits, step_logits, **tol)
    for name, grad in planned_grads.items():
        error = (grad - step_grads[name]).norm() / step_grads[name].norm()
        # Half precision: gross errors only (a wrong half or cast); the attention
        # biases' gradients are sums that nearly cancel, so 10% of their norm.
        assert error < (1e-4 if dtype is None else 0.1), (name, error.item())
