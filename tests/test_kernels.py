"""model.kernels: which kernels ``auto`` picks, each kernel against the reference
(forward and gradients: fp32 tight, bf16 loose), and checkpoints that load under
either setting."""

from __future__ import annotations

import typing

import pytest
import torch

from seq2seq.attention import RULES
from seq2seq.cli import main
from seq2seq.config import ModelConfig, load_config
from seq2seq.data import collate
from seq2seq.kernels import CHOICES, select_kernels
from seq2seq.kernels.decoder import attention_gru_recurrence, planned_recurrence
from seq2seq.kernels.encoder import packed_encoder, stacked_encoder
from seq2seq.model import Seq2Seq, build_model
from seq2seq.search import greedy_search
from seq2seq.tokenizer import BOS_ID, EOS_ID
from tests.conftest import tiny_config, write_config


@pytest.mark.parametrize(
    ("device", "rule", "layers", "feeding", "encoder", "decoder"),
    [
        ("cpu", "additive", 1, False, stacked_encoder, attention_gru_recurrence),
        ("cpu", "additive", 2, False, stacked_encoder, planned_recurrence),
        ("cpu", "general", 1, False, stacked_encoder, planned_recurrence),
        ("cpu", "concat", 1, True, stacked_encoder, None),
        ("cuda", "additive", 1, False, packed_encoder, planned_recurrence),
        ("cuda", "dot", 2, True, packed_encoder, None),
    ],
)
def test_auto_picks_the_kernels_that_apply(
    device, rule, layers, feeding, encoder, decoder
):
    kernels = select_kernels(
        "auto", device, attention=rule, decoder_layers=layers, input_feeding=feeding
    )
    assert kernels.encoder is encoder
    assert kernels.decoder is decoder
    assert kernels.reason.startswith(f"auto on {device}: encoder ")


def test_reference_picks_none_and_an_unknown_choice_is_an_error():
    kernels = select_kernels(
        "reference", "cpu", attention="additive", decoder_layers=1, input_feeding=False
    )
    assert kernels.encoder is None and kernels.decoder is None
    with pytest.raises(ValueError, match="unknown kernels 'fast'"):
        select_kernels(
            "fast", "cpu", attention="additive", decoder_layers=1, input_feeding=False
        )


def test_the_config_offers_the_kernel_choices():
    hints = typing.get_type_hints(ModelConfig)
    assert typing.get_args(hints["kernels"]) == CHOICES
    assert ModelConfig().kernels == "auto"


def _pair(rule: str, layers: int, feeding: bool, **sizes) -> list[Seq2Seq]:
    """The same weights under auto and reference."""
    models = []
    for kernels in CHOICES:
        torch.manual_seed(0)
        models.append(
            Seq2Seq(
                20,
                22,
                embed_size=sizes.get("embed", 8),
                encoder_hidden_size=sizes.get("encoder", 6),
                encoder_layers=layers,
                decoder_hidden_size=sizes.get("decoder", 12),
                decoder_layers=layers,
                max_src_len=10,
                attention=rule,
                dropout=0.0,
                input_feeding=feeding,
                kernels=kernels,
            )
        )
    models[1].load_state_dict(models[0].state_dict())
    return models


def _batch():
    return collate(
        [[5, 6, 7, EOS_ID], [8, EOS_ID], [4, 9, 9, 6, 5, EOS_ID]],
        [[BOS_ID, 3, 9, EOS_ID], [BOS_ID, 4, 5, 6, EOS_ID], [BOS_ID, EOS_ID]],
        [0, 1, 2],
    )


def _loss_and_grads(model: Seq2Seq, batch) -> list[torch.Tensor]:
    loss = model.loss(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
    params = list(model.parameters())
    return [loss, *torch.autograd.grad(loss.float(), params)]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("feeding", [False, True])
def test_auto_gives_the_reference_loss_and_gradients_in_fp32(rule, layers, feeding):
    auto, reference = _pair(rule, layers, feeding)
    assert auto.kernels.encoder is not None
    assert reference.kernels.encoder is None and reference.kernels.decoder is None
    batch = _batch()
    mine, expected = _loss_and_grads(auto, batch), _loss_and_grads(reference, batch)
    for got, want in zip(mine, expected, strict=True):
        assert got.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rule", ["additive", "general"])
@pytest.mark.parametrize("layers", [1, 2])
def test_auto_stays_close_to_the_reference_under_bf16(rule, layers):
    """bf16 against the fp32 reference, auto as the reference itself: the loss
    within 3%, every gradient entry within 3% of the largest gradient entry (a
    tensor of tiny gradients alone is off by more, under either setting)."""
    auto, reference = _pair(rule, layers, False, embed=32, encoder=32, decoder=64)
    batch = _batch()
    exact_loss, *exact = _loss_and_grads(reference, batch)
    scale = max(grad.abs().max() for grad in exact)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        results = [_loss_and_grads(model, batch) for model in (auto, reference)]
    for loss, *grads in results:
        assert abs(loss.float() - exact_loss) <= 0.03 * exact_loss
        for mine, want in zip(grads, exact, strict=True):
            assert (mine.float() - want).abs().max() <= 0.03 * scale


@pytest.mark.parametrize(
    ("kernel", "rules"),
    [(planned_recurrence, RULES), (attention_gru_recurrence, ("additive",))],
)
def test_each_decoder_kernel_gives_the_reference_loop(kernel, rules):
    """Each kernel installed by hand (whatever auto would pick) against the
    reference step loop: tops, contexts and gradients."""
    batch = _batch()
    for rule in rules:
        _, model = _pair(rule, 1, False)
        outputs = []
        for recurrence in (kernel, None):
            model.decoder.recurrence = recurrence
            enc = model.encode(batch.src, batch.src_lengths)
            attentional = model.decoder.teacher_forced_attentional(batch.tgt_in, enc)
            grads = torch.autograd.grad(
                attentional.square().sum(),
                list(model.parameters()),
                allow_unused=True,  # the output layer's
            )
            outputs.append([attentional, *(g for g in grads if g is not None)])
        for got, want in zip(*outputs, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        embedded = model.decoder.embed(batch.tgt_in)  # (B, T, E)
        tops, contexts = kernel(model.decoder, embedded, enc)
        assert tops.shape == (3, batch.tgt_in.size(1), 12)
        assert contexts.shape == (3, batch.tgt_in.size(1), 12)


def _model_config(kernels: str) -> ModelConfig:
    return ModelConfig(
        embed_size=8, encoder_hidden_size=6, decoder_hidden_size=12, kernels=kernels
    )


def test_a_checkpoint_saved_under_auto_loads_under_reference(tmp_path):
    """Same state_dict keys, and after loading the same loss and translations."""
    torch.manual_seed(0)
    auto = build_model(_model_config("auto"), 10, 20, 22).eval()
    path = tmp_path / "model.pt"
    torch.save(auto.state_dict(), path)
    reference = build_model(_model_config("reference"), 10, 20, 22).eval()
    assert reference.state_dict().keys() == auto.state_dict().keys()
    reference.load_state_dict(torch.load(path, weights_only=True))
    assert reference.kernels.encoder is None
    batch = _batch()
    with torch.no_grad():
        losses = [
            m.loss(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
            for m in (auto, reference)
        ]
        decoded = [
            greedy_search(m, batch.src, batch.src_lengths, 1.5, 5)
            for m in (auto, reference)
        ]
    torch.testing.assert_close(losses[0], losses[1])
    assert [h.tokens for h in decoded[0]] == [h.tokens for h in decoded[1]]


def test_a_run_resumes_under_the_other_kernels(tiny_tsv, tmp_path, capsys):
    cfg = tiny_config(tmp_path, tiny_tsv, train={"max_steps": 2})
    config = write_config(tmp_path / "c.yaml", cfg)
    assert main(["train", str(config), "--quiet"]) == 0
    args = ["train", str(config), "--quiet", "--resume"]
    assert main([*args, "model.kernels=reference", "train.max_steps=4"]) == 0
    err = capsys.readouterr().err
    assert "model.kernels changed from 'auto' to 'reference'" in err
    assert "model.kernels: reference" in err
    assert load_config(config).model.kernels == "auto"  # the file is unchanged
