"""Encoder packing, decoder step shapes, teacher forcing, and a tiny overfit run,
under both ``model.kernels`` settings."""

from __future__ import annotations

import pytest
import torch

from seq2seq.attention import RULES
from seq2seq.data import collate
from seq2seq.kernels import CHOICES as KERNELS
from seq2seq.kernels.encoder import packed_encoder
from seq2seq.model import Dropout, Seq2Seq, WordDropout, sequence_loss
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID


def _model(rule: str = "additive", kernels: str = "auto", **kwargs) -> Seq2Seq:
    torch.manual_seed(0)
    sizes = dict(
        embed_size=8,
        encoder_hidden_size=6,
        decoder_hidden_size=12,
        max_src_len=10,
        dropout=0.0,
    )
    sizes.update(kwargs)
    return Seq2Seq(20, 22, attention=rule, kernels=kernels, **sizes).eval()


@pytest.mark.parametrize("kernels", KERNELS)
def test_encoder_output_does_not_depend_on_padding_or_batch_mates(kernels):
    model = _model(kernels=kernels, encoder_layers=2)
    sentences = [[5, 6, 7, EOS_ID], [8, 9, EOS_ID], [4, 5, 6, 7, 8, 9, EOS_ID]]
    batch = collate(sentences, None, [0, 1, 2])
    together, hidden_together = model.encoder(batch.src, batch.src_lengths)
    for row, sentence in enumerate(sentences):
        alone = collate([sentence], None, [0])
        out, hidden = model.encoder(alone.src, alone.src_lengths)
        n = len(sentence)
        torch.testing.assert_close(together[row, :n], out[0])
        torch.testing.assert_close(hidden_together[:, row], hidden[:, 0])
        assert torch.all(together[row, n:] == 0.0)  # padding gives zero outputs


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (2, False)])
def test_encoder_matches_nn_gru_over_packed_sequences(kernels, layers, bidirectional):
    """The encoder on CPU (the reference's dense GRU per direction, or the
    directions stacked) gives the CUDA kernel's nn.GRU outputs over packed
    sequences, its final states and its gradients."""
    model = _model(kernels=kernels, encoder_layers=layers, bidirectional=bidirectional)
    encoder = model.encoder
    sentences = [[5, 6, 7, EOS_ID], [8, 9, EOS_ID], [4, 5, 6, 7, 8, 9, EOS_ID], [3]]
    batch = collate(sentences, None, [0, 1, 2, 3])
    outputs, final = encoder(batch.src, batch.src_lengths)

    # the CUDA kernel: nn.GRU over packed sequences
    ref_outputs, ref_final = packed_encoder(
        encoder, encoder.embedding(batch.src), batch.src_lengths
    )
    torch.testing.assert_close(outputs, ref_outputs)
    torch.testing.assert_close(final, ref_final)

    weights = torch.randn_like(outputs)
    (outputs * weights).sum().add(final.sum()).backward()
    ours = [p.grad.clone() for p in encoder.parameters()]
    encoder.zero_grad()
    (ref_outputs * weights).sum().add(ref_final.sum()).backward()
    for mine, ref in zip(ours, (p.grad for p in encoder.parameters()), strict=True):
        torch.testing.assert_close(mine, ref)


def test_encoder_path_for_the_onnx_exporter_gives_the_same_outputs(monkeypatch):
    """Under tracing (the ONNX exporter) the auto encoder runs the reference, nn.GRU's
    kernel per direction, instead of StackedGRU; both give the same numbers."""
    from seq2seq.kernels.gru import StackedGRU

    model = _model(encoder_layers=2)
    batch = collate([[5, 6, 7, EOS_ID], [8, 9, EOS_ID], [3]], None, [0, 1, 2])
    outputs, final = model.encoder(batch.src, batch.src_lengths)
    monkeypatch.setattr(torch.jit, "is_tracing", lambda: True)
    monkeypatch.setattr(StackedGRU, "apply", None)  # a call would fail
    traced_outputs, traced_final = model.encoder(batch.src, batch.src_lengths)
    torch.testing.assert_close(traced_outputs, outputs)
    torch.testing.assert_close(traced_final, final)


@pytest.mark.parametrize("kernels", KERNELS)
def test_encoder_runs_in_the_autocast_dtype(kernels):
    model = _model(kernels=kernels)
    batch = collate([[5, 6, 7, EOS_ID], [8, EOS_ID]], None, [0, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, final = model.encoder(batch.src, batch.src_lengths)
    assert outputs.dtype == final.dtype == torch.bfloat16
    reference, _ = model.encoder(batch.src, batch.src_lengths)
    assert reference.dtype == torch.float32
    torch.testing.assert_close(outputs.float(), reference, atol=0.02, rtol=0.02)


def test_dropout_zeroes_about_p_and_keeps_the_expectation():
    torch.manual_seed(0)
    dropout = Dropout(0.3)
    x = torch.ones(200, 500)
    y = dropout(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.01
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    x.requires_grad_(True)
    y = dropout(x)
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)  # gradient flows through kept units only
    assert torch.equal(dropout.eval()(x), x)


def test_word_dropout_drops_whole_tokens_about_p_and_keeps_the_expectation():
    torch.manual_seed(0)
    dropout = WordDropout(0.3)
    y = dropout(torch.ones(400, 50, 8))
    dropped = (y == 0).all(-1)  # (400, 50)
    assert abs(dropped.float().mean().item() - 0.3) < 0.01
    kept = y[~dropped]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))  # whole tokens
    x = torch.ones(3, 4, 8)
    assert torch.equal(dropout.eval()(x), x)


def test_word_dropout_reaches_source_and_target_inputs_in_training_only():
    model = _model(word_dropout=0.5)
    src = torch.tensor([[5, 6, 7, 8, 9, 4, 5, 6, 7, EOS_ID]])
    lengths = torch.tensor([10])
    reference, _ = model.encoder(src, lengths)  # eval: no word dropout
    torch.testing.assert_close(model.encoder(src, lengths)[0], reference)
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model.encoder(src, lengths)[0], reference)
    embedded = model.decoder.embed(src)  # (1, 10, E): the decoder's input tokens
    zeroed = (embedded == 0).all(-1)
    assert zeroed.any() and not zeroed.all()
    model.eval()
    torch.testing.assert_close(model.decoder.embed(src), model.decoder.embedding(src))


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("feeding", [False, True])
def test_decoder_step_shapes(kernels, rule, layers, feeding):
    model = _model(rule, kernels, decoder_layers=layers, input_feeding=feeding)
    batch = collate([[5, 6, EOS_ID], [7, EOS_ID]], None, [0, 1])
    enc = model.encode(batch.src, batch.src_lengths)
    assert enc.outputs.shape == (2, 3, 12)
    assert enc.hidden.shape == (layers, 2, 12)
    state = model.decoder.initial_state(enc.hidden)
    out = model.decoder.step(torch.tensor([BOS_ID, BOS_ID]), state, enc)
    assert out.logits.shape == (2, 22)
    assert out.state.hidden.shape == (layers, 2, 12)
    assert (out.state.feed is not None) == feeding
    if feeding:
        assert out.state.feed.shape == (2, 12)
    assert out.weights.shape == (2, 3)
    assert out.weights[1, 2].item() == 0.0  # the second sentence has 2 real positions


def _step_by_step_logits(model: Seq2Seq, batch) -> torch.Tensor:
    """The decoder's one-step path (what decoding runs) over the gold inputs."""
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.decoder.initial_state(enc.hidden)
    logits = []
    for t in range(batch.tgt_in.size(1)):
        out = model.decoder.step(batch.tgt_in[:, t], state, enc)
        state = out.state
        logits.append(out.logits)
    return torch.stack(logits, 1)


def _two_pairs():
    return collate(
        [[5, 6, EOS_ID], [7, EOS_ID]],
        [[BOS_ID, 3, 9, EOS_ID], [BOS_ID, 4, EOS_ID]],
        [0, 1],
    )


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("feeding", [False, True])
@pytest.mark.parametrize("tied", [False, True])
def test_teacher_forced_forward_equals_step_by_step(kernels, feeding, tied):
    model = _model(kernels=kernels, input_feeding=feeding, tie_embeddings=tied)
    batch = _two_pairs()
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    torch.testing.assert_close(logits, _step_by_step_logits(model, batch))


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("layers", [1, 2])
def test_planned_teacher_forcing_gives_the_step_paths_logits_and_gradients(
    kernels, rule, layers
):
    """Teacher forcing (auto: the inputs' share of attention planned for all steps
    and, with one layer, the hidden state's two products fused) gives the step
    path's logits and gradients."""
    batch = _two_pairs()
    grads = []
    for planned in (True, False):
        model = _model(rule, kernels=kernels, decoder_layers=layers)
        if planned:
            logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        else:
            logits = _step_by_step_logits(model, batch)
        logits.square().sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
        if planned:
            reference = logits.detach()
        else:
            torch.testing.assert_close(reference, logits.detach())
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert grad is not None and grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, grads[1][name], msg=name)


@pytest.mark.parametrize("kernels", KERNELS)
def test_planned_teacher_forcing_under_bf16_autocast_stays_close_to_the_step_path(
    kernels,
):
    model = _model(
        kernels=kernels, embed_size=32, encoder_hidden_size=32, decoder_hidden_size=64
    )
    batch = _two_pairs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        planned = model(batch.src, batch.src_lengths, batch.tgt_in).float()
        stepped = _step_by_step_logits(model, batch).float()
    assert planned.dtype == torch.float32
    torch.testing.assert_close(planned, stepped, atol=3e-2, rtol=3e-2)


def test_tied_embeddings_share_one_matrix():
    model = _model(tie_embeddings=True)
    assert model.decoder.output.weight is model.decoder.embedding.weight
    untied = _model()
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(model) < params(untied)


@pytest.mark.parametrize("kernels", KERNELS)
def test_teacher_forcing_below_one_feeds_predictions(kernels):
    model = _model(kernels=kernels)
    batch = collate([[5, 6, EOS_ID]], [[BOS_ID, 3, 9, 10, EOS_ID]], [0])
    gold = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=1.0)
    free = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=0.0)
    assert free.shape == gold.shape
    torch.testing.assert_close(free[:, 0], gold[:, 0])  # first input is BOS either way
    # The free-running decoder saw its own argmax, not the gold tokens.
    assert not torch.allclose(free[:, 1:], gold[:, 1:])


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("rule", RULES)
def test_training_drives_loss_near_zero_on_a_handful_of_pairs(kernels, rule):
    torch.manual_seed(0)
    model = Seq2Seq(
        16,
        16,
        embed_size=16,
        encoder_hidden_size=16,
        decoder_hidden_size=32,
        max_src_len=8,
        attention=rule,
        dropout=0.0,
        kernels=kernels,
    )
    pairs = [
        ([4, 5, 6], [7, 8]),
        ([6, 5, 4], [8, 7, 9]),
        ([9, 9], [10]),
        ([4, 10, 11, 12], [12, 11, 10, 4]),
    ]
    batch = collate(
        [s + [EOS_ID] for s, _ in pairs],
        [[BOS_ID, *t, EOS_ID] for _, t in pairs],
        list(range(len(pairs))),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    tokens = int((batch.tgt_out != PAD_ID).sum())
    for _ in range(150):
        loss = (
            sequence_loss(
                model(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out
            )
            / tokens
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.02


@pytest.mark.parametrize("kernels", KERNELS)
def test_loss_on_real_positions_equals_loss_over_all_logits(kernels):
    model = _model(kernels=kernels)
    batch = collate(
        [[5, 6, EOS_ID], [7, EOS_ID]],
        [[BOS_ID, 3, 9, 4, EOS_ID], [BOS_ID, 4, EOS_ID]],
        [0, 1],
    )
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    expected = sequence_loss(logits, batch.tgt_out, label_smoothing=0.1)
    got = model.loss(
        batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, label_smoothing=0.1
    )
    torch.testing.assert_close(got, expected)


def test_gru_cell_matches_torch():
    from seq2seq.model import GRUCell

    ours = GRUCell(6, 5)
    reference = torch.nn.GRUCell(6, 5)
    reference.load_state_dict(ours.state_dict())
    x, h = torch.randn(3, 6), torch.randn(3, 5)
    torch.testing.assert_close(ours(x, h), reference(x, h))


def test_fp16_logits_give_a_finite_label_smoothed_loss():
    """fp16 (CUDA autocast) overflowed the smoothing sum over an 8k vocabulary."""
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 8000) * 3
    targets = torch.randint(4, 8000, (4, 7))
    targets[:, -2:] = PAD_ID
    exact = sequence_loss(logits, targets, label_smoothing=0.1)
    half = sequence_loss(logits.half(), targets, label_smoothing=0.1)
    assert torch.isfinite(half)
    assert half.item() == pytest.approx(exact.item(), rel=1e-3)


def test_amp_auto_is_bf16_on_capable_cpus_and_off_on_cuda(monkeypatch):
    from seq2seq import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512bw", "amx_bf16"})
    assert precision.autocast_dtype("auto", torch.device("cpu")) == torch.bfloat16
    assert precision.autocast_dtype("auto", torch.device("cuda")) is None
    assert precision.autocast_dtype("fp16", torch.device("cuda")) == torch.float16
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512bw"})
    monkeypatch.setattr(precision, "bf16_speedup", lambda hidden, batch: 0.4)
    assert precision.autocast_dtype("auto", torch.device("cpu")) is None
