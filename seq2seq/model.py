"""GRU encoder, attention decoder (``Attn`` at every step), the loss, build_model.

The reference math, top to bottom: :class:`Encoder`, :class:`Decoder` (one step,
and teacher forcing as those steps in a loop), :class:`Seq2Seq` and
:func:`sequence_loss`. Faster kernels for the two recurrences live in
:mod:`seq2seq.kernels`; ``model.kernels: auto`` picks them once, when the model is
built, and they compute the same numbers from the same parameters.

Shapes use B = batch, S = source length, T = target length, V = vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from seq2seq.attention import Attn
from seq2seq.kernels import DecoderKernel, EncoderKernel, Kernels, select_kernels
from seq2seq.tokenizer import PAD_ID

log = logging.getLogger(__name__)


class EncoderOutput(NamedTuple):
    """outputs (B, S, C), mask (B, S) True on real tokens, keys (B, S, A) or None
    (the attention rule's precomputed key projection), hidden (layers, B, H_dec)."""

    outputs: torch.Tensor
    mask: torch.Tensor
    keys: torch.Tensor | None
    hidden: torch.Tensor

    def select(self, rows: torch.Tensor) -> EncoderOutput:
        """Keep (or repeat, or reorder) batch rows."""
        return EncoderOutput(
            self.outputs.index_select(0, rows),
            self.mask.index_select(0, rows),
            None if self.keys is None else self.keys.index_select(0, rows),
            self.hidden.index_select(1, rows),
        )


class DecoderState(NamedTuple):
    """hidden (layers, B, H); feed (B, P) the previous attentional vector (input
    feeding) or None."""

    hidden: torch.Tensor
    feed: torch.Tensor | None

    def select(self, rows: torch.Tensor) -> DecoderState:
        """Keep (or repeat, or reorder) batch rows."""
        return DecoderState(
            self.hidden.index_select(1, rows),
            None if self.feed is None else self.feed.index_select(0, rows),
        )


class StepOutput(NamedTuple):
    """logits (B, V), the new :class:`DecoderState`, attention weights (B, S)."""

    logits: torch.Tensor
    state: DecoderState
    weights: torch.Tensor


class GRUCell(nn.GRUCell):
    """``nn.GRUCell`` (same parameters) whose matmuls follow autocast.

    torch's fused GRU cell always runs in fp32 under CPU autocast; here the two
    matmuls run in the autocast dtype while the gates and the hidden state stay
    fp32. forward: x (B, I), h (B, H) -> (B, H).
    """

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, gh: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``gh``: the hidden gates ``h · W_hhᵀ + b_hh`` (B, 3H) if computed already."""
        gi = nn.functional.linear(x, self.weight_ih, self.bias_ih).float()  # (B, 3H)
        if gh is None:
            gh = nn.functional.linear(h, self.weight_hh, self.bias_hh)
        gh = gh.float()  # (B, 3H)
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (h.float() - candidate)  # (B, H)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from ``torch.rand``.

    On CPU ``bernoulli_`` (what ``nn.Dropout`` draws with) is slower than a
    uniform draw and a comparison. Elsewhere, and in eval mode, this is
    ``nn.Dropout``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


class WordDropout(nn.Module):
    """Drops whole tokens: each position's embedding (..., E) is zeroed with
    probability p (one draw per token, shared by its E features) and the kept ones
    are scaled by 1 / (1 - p). Identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[:-1] + (1,), device=x.device) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


# nn.GRU's parameters of one layer and direction, by name prefix, in the order its
# kernel (and StackedGRU) takes them
_GRU_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# one layer: inputs per direction (B, S, I), nn.GRU's weights per direction, the
# dtype to compute in, training -> states per direction (B, S, H)
LayerRecurrence = Callable[
    [list[torch.Tensor], list[list[torch.Tensor]], torch.dtype, bool],
    list[torch.Tensor],
]


def gru_layer(
    inputs: list[torch.Tensor],
    weights: list[list[torch.Tensor]],
    dtype: torch.dtype,
    training: bool,
) -> list[torch.Tensor]:
    """One GRU layer, one direction at a time, through ``nn.GRU``'s own kernel:
    inputs per direction (B, S, I), weights per direction (w_ih, w_hh, b_ih, b_hh)
    -> states per direction (B, S, H), from a zero state, computed in ``dtype``.
    (The ONNX exporter maps each of these calls onto an ONNX GRU op.)"""
    states = []
    for x, direction in zip(inputs, weights, strict=True):
        h0 = x.new_zeros(1, x.size(0), direction[1].size(1))  # (1, B, H)
        cast = [w.to(dtype) for w in direction]
        # args: has_biases, num_layers, dropout, train, bidirectional, batch_first
        out, _ = torch._VF.gru(x, h0, cast, True, 1, 0.0, training, False, True)
        states.append(out)  # (B, S, H)
    return states


def _gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, S, D), index (B, S) -> x[b, index[b, t]] (B, S, D)."""
    return x.gather(1, index.unsqueeze(2).expand_as(x))


class Encoder(nn.Module):
    """Embedding + (bi)GRU.

    forward: src (B, S), src_lengths (B,) -> outputs (B, S, dirs * hidden),
    final hidden (layers * dirs, B, hidden). Padded positions of ``outputs`` are 0.

    The GRU keeps ``nn.GRU``'s parameters (and checkpoint keys); :meth:`gru` runs
    them one layer and direction at a time over the padded batch, the backward
    direction over each sentence reversed within its own length: the results of
    ``nn.GRU`` over packed sequences, and in the autocast dtype under autocast.
    ``recurrence`` (from :mod:`seq2seq.kernels`) replaces :meth:`gru` when given.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        word_dropout: float = 0.0,
        recurrence: EncoderKernel | None = None,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.dropout = Dropout(dropout)
        self.word_dropout = WordDropout(word_dropout)
        self.rnn = nn.GRU(
            embed_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_size = hidden_size * (2 if bidirectional else 1)
        self.recurrence = recurrence

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.dropout(self.word_dropout(self.embedding(src)))  # (B, S, E)
        if self.recurrence is None:
            outputs, hidden = self.gru(embedded, src_lengths)
        else:
            outputs, hidden = self.recurrence(self, embedded, src_lengths)
        return self.dropout(outputs), hidden

    def gru(
        self,
        embedded: torch.Tensor,
        src_lengths: torch.Tensor,
        run_layer: LayerRecurrence = gru_layer,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The GRU over embedded (B, S, E) -> outputs (B, S, dirs * H) (0 on
        padding), final hidden (layers * dirs, B, H). ``run_layer`` computes one
        layer's directions (:func:`gru_layer`, or a kernel's)."""
        device = embedded.device
        dtype = (
            torch.get_autocast_dtype(device.type)
            if torch.is_autocast_enabled(device.type)
            else embedded.dtype
        )
        lengths = src_lengths.to(device).unsqueeze(1)  # (B, 1)
        positions = torch.arange(embedded.size(1), device=device).unsqueeze(0)
        real = (positions < lengths).unsqueeze(2)  # (B, S, 1)
        last = (lengths - 1).clamp(min=0)  # (B, 1) each row's last real position
        rows = torch.arange(embedded.size(0), device=device)
        # Reverses each row's real positions, padding in place; its own inverse.
        reverse = torch.where(positions <= last, last - positions, positions)
        suffixes = ("", "_reverse") if self.rnn.bidirectional else ("",)
        layer_input = embedded.to(dtype)
        finals = []
        for layer in range(self.rnn.num_layers):
            if layer > 0:
                layer_input = self.dropout(layer_input)  # nn.GRU's inter-layer dropout
            inputs = [layer_input]
            if self.rnn.bidirectional:
                inputs.append(_gather_steps(layer_input, reverse))
            weights = [
                [getattr(self.rnn, f"{name}_l{layer}{suffix}") for name in _GRU_WEIGHTS]
                for suffix in suffixes
            ]
            # per direction (B, S, H); row b's states past its length are junk,
            # never read
            states = run_layer(inputs, weights, dtype, self.training)
            forward = states[0]
            outputs = [forward]
            finals.append(forward[rows, last[:, 0]])  # (B, H)
            if self.rnn.bidirectional:
                backward = _gather_steps(states[1], reverse)
                outputs.append(backward)
                finals.append(backward[:, 0])
            layer_input = torch.cat(outputs, dim=2).masked_fill(~real, 0.0)
        return layer_input, torch.stack(finals)


class Decoder(nn.Module):
    """Attention decoder. One step (:meth:`step`), in the seed's ``Attn(Q, K, V)``
    order and the field's names::

    inputs = embedded previous token (input feeding: [embedded; previous a])
    output, weights = Attn(inputs, query=top hidden state, values=encoder outputs)
    h = GRU(relu(output), h)
    a = tanh(Linear([h_top; context; embedded]))     # the attentional vector
    logits = Linear(dropout(a))                      # tied: target embeddingᵀ

    ``recurrence`` (from :mod:`seq2seq.kernels`) replaces the teacher-forced loop
    of :meth:`rnn_step` when given (never with input feeding).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        context_size: int,
        max_src_len: int,
        attention: str,
        dropout: float,
        input_feeding: bool = False,
        tie_embeddings: bool = False,
        word_dropout: float = 0.0,
        recurrence: DecoderKernel | None = None,
    ) -> None:
        super().__init__()
        if recurrence is not None and input_feeding:
            raise ValueError("a teacher-forced kernel cannot run with input feeding")
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.input_feeding = input_feeding
        self.attentional_size = embed_size if tie_embeddings else hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.dropout = Dropout(dropout)
        self.word_dropout = WordDropout(word_dropout)
        self.attention = Attn(
            query_size=embed_size + (self.attentional_size if input_feeding else 0),
            key_size=hidden_size,
            value_size1=max_src_len,
            value_size2=context_size,
            output_size=hidden_size,
            rule=attention,
        )  # the seed's names: query_size is the inputs', key_size the query's
        self.cells = nn.ModuleList(
            GRUCell(hidden_size, hidden_size) for _ in range(num_layers)
        )
        self.pre_output = nn.Linear(
            hidden_size + context_size + embed_size, self.attentional_size
        )
        self.output = nn.Linear(self.attentional_size, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.weight
        self.recurrence = recurrence

    def initial_state(self, hidden: torch.Tensor) -> DecoderState:
        """The state before the first step, from the bridge's hidden (layers, B, H)."""
        feed = None
        if self.input_feeding:
            feed = hidden.new_zeros(hidden.size(1), self.attentional_size)
        return DecoderState(hidden, feed)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Input tokens (...) -> embeddings (..., E), word dropout and dropout on."""
        return self.dropout(self.word_dropout(self.embedding(tokens)))

    def gru_layers(
        self,
        layer_input: torch.Tensor,
        hidden: Sequence[torch.Tensor],
        first_gates: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """The GRU stack for one step: layer_input (B, H), hidden per layer (B, H)
        -> the new hidden per layer (B, H), dropout between layers. ``first_gates``:
        the first layer's hidden gates ``h · W_hhᵀ + b_hh`` (B, 3H) if computed
        already."""
        new_hidden = []
        for layer, cell in enumerate(self.cells):
            gates = first_gates if layer == 0 else None
            h = cell(layer_input, hidden[layer], gates)  # (B, H)
            new_hidden.append(h)
            layer_input = self.dropout(h) if layer + 1 < self.num_layers else h
        return new_hidden

    def rnn_step(
        self, embedded: torch.Tensor, state: DecoderState, enc: EncoderOutput
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attention and GRU for one step, without the output layer.

        embedded (B, E) -> top output (B, H), new hidden (layers, B, H),
        context (B, C), attention weights (B, S).
        """
        inputs = embedded  # (B, E); with input feeding (B, E + P)
        if state.feed is not None:
            inputs = torch.cat((embedded, state.feed), 1)
        query = state.hidden[-1]  # (B, H) the top layer's state
        att = self.attention.attend(inputs, query, enc.outputs, enc.mask, enc.keys)
        new_hidden = self.gru_layers(torch.relu(att.output), state.hidden)
        return new_hidden[-1], torch.stack(new_hidden), att.context, att.weights

    def attentional(
        self, top: torch.Tensor, context: torch.Tensor, embedded: torch.Tensor
    ) -> torch.Tensor:
        """(..., H), (..., C), (..., E) -> attentional vector (..., P)."""
        return torch.tanh(self.pre_output(torch.cat((top, context, embedded), dim=-1)))

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """(..., P) -> (..., V)."""
        return self.output(self.dropout(attentional))

    def step(
        self, prev_tokens: torch.Tensor, state: DecoderState, enc: EncoderOutput
    ) -> StepOutput:
        """prev_tokens (B,) -> :class:`StepOutput`."""
        embedded = self.embed(prev_tokens)  # (B, E)
        top, hidden, context, weights = self.rnn_step(embedded, state, enc)
        attentional = self.attentional(top, context, embedded)  # (B, P)
        feed = attentional if self.input_feeding else None
        return StepOutput(self.logits(attentional), DecoderState(hidden, feed), weights)

    def teacher_forced_attentional(
        self, tgt_in: torch.Tensor, enc: EncoderOutput
    ) -> torch.Tensor:
        """Run the recurrence on gold inputs: tgt_in (B, T) -> attentional (B, T, P)."""
        embedded = self.embed(tgt_in)  # (B, T, E)
        if self.recurrence is not None:
            # (B, T, H), (B, T, C)
            tops, contexts = self.recurrence(self, embedded, enc)
            return self.attentional(tops, contexts, embedded)
        state = self.initial_state(enc.hidden)
        outputs = []
        # unbind: one backward op for all steps (slicing would zero-fill a
        # (B, T, E) gradient at every step).
        for step_input in embedded.unbind(1):
            top, hidden, context, _ = self.rnn_step(step_input, state, enc)
            attentional = self.attentional(top, context, step_input)  # (B, P)
            outputs.append(attentional)
            state = DecoderState(hidden, attentional if self.input_feeding else None)
        return torch.stack(outputs, 1)

    def forward(
        self,
        tgt_in: torch.Tensor,
        enc: EncoderOutput,
        teacher_forcing: float = 1.0,
    ) -> torch.Tensor:
        """Decode a whole target: tgt_in (B, T) -> logits (B, T, V).

        With ``teacher_forcing`` < 1, each next input is, per sentence and step,
        the gold token with that probability and the model's own argmax otherwise
        (scheduled sampling).
        """
        if teacher_forcing >= 1.0:
            # The output layer runs once over all steps: one large matmul.
            return self.logits(self.teacher_forced_attentional(tgt_in, enc))
        state = self.initial_state(enc.hidden)
        steps = tgt_in.size(1)
        logits = []
        prev = tgt_in[:, 0]
        for t in range(steps):
            out = self.step(prev, state, enc)
            state = out.state
            logits.append(out.logits)
            if t + 1 < steps:
                use_gold = torch.rand(prev.shape, device=prev.device) < teacher_forcing
                predicted = out.logits.detach().argmax(-1)
                prev = torch.where(use_gold, tgt_in[:, t + 1], predicted)
        return torch.stack(logits, 1)  # (B, T, V)


class Seq2Seq(nn.Module):
    """Encoder, bridge to the decoder's initial state, attention decoder.

    ``kernels``: ``reference`` runs this module's recurrences; ``auto`` the fast
    ones of :mod:`seq2seq.kernels` that apply to this model on ``kernel_device``
    (where it will run; the parameters are created on CPU either way). The choice,
    with its reason, is ``self.kernels``; it changes no parameter.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embed_size: int = 256,
        encoder_hidden_size: int = 256,
        encoder_layers: int = 1,
        bidirectional: bool = True,
        decoder_hidden_size: int = 512,
        decoder_layers: int = 1,
        max_src_len: int = 64,
        attention: str = "additive",
        dropout: float = 0.2,
        input_feeding: bool = False,
        tie_embeddings: bool = False,
        word_dropout: float = 0.0,
        kernels: str = "auto",
        kernel_device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.max_src_len = max_src_len
        self.kernels: Kernels = select_kernels(
            kernels,
            kernel_device,
            attention=attention,
            decoder_layers=decoder_layers,
            input_feeding=input_feeding,
        )
        self.encoder = Encoder(
            src_vocab_size,
            embed_size,
            encoder_hidden_size,
            encoder_layers,
            bidirectional,
            dropout,
            word_dropout,
            self.kernels.encoder,
        )
        self.directions = 2 if bidirectional else 1
        self.decoder = Decoder(
            tgt_vocab_size,
            embed_size,
            decoder_hidden_size,
            decoder_layers,
            self.encoder.output_size,
            max_src_len,
            attention,
            dropout,
            input_feeding,
            tie_embeddings,
            word_dropout,
            self.kernels.decoder,
        )
        self.bridge = nn.Linear(
            self.encoder.output_size, decoder_layers * decoder_hidden_size
        )

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """src (B, S), src_lengths (B,) -> :class:`EncoderOutput`."""
        outputs, final = self.encoder(src, src_lengths)  # (B, S, C), (L*dirs, B, He)
        last = final[-self.directions :]  # (dirs, B, He): top layer, each direction
        summary = torch.cat(tuple(last), dim=-1)  # (B, C)
        batch = src.size(0)
        hidden = torch.tanh(self.bridge(summary))  # (B, layers * H)
        hidden = hidden.view(batch, self.decoder.num_layers, -1).transpose(0, 1)
        mask = src != PAD_ID  # (B, S)
        keys = self.decoder.attention.prepare(outputs)
        return EncoderOutput(outputs, mask, keys, hidden.contiguous())

    def initial_state(self, enc: EncoderOutput) -> DecoderState:
        """The decoder's state before its first step (what the searches start from)."""
        return self.decoder.initial_state(enc.hidden)

    def step(
        self, prev_tokens: torch.Tensor, state: DecoderState, enc: EncoderOutput
    ) -> StepOutput:
        """One decoding step: prev_tokens (B,) -> :class:`StepOutput`."""
        return self.decoder.step(prev_tokens, state, enc)

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing: float = 1.0,
    ) -> torch.Tensor:
        """Training forward: -> logits (B, T, V)."""
        return self.decoder(tgt_in, self.encode(src, src_lengths), teacher_forcing)

    def loss(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor,
        teacher_forcing: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """Summed cross-entropy of tgt_out (B, T) over its non-PAD tokens.

        With full teacher forcing the output layer runs only on real target
        positions, not on padding.
        """
        if teacher_forcing < 1.0:
            logits = self(src, src_lengths, tgt_in, teacher_forcing)
            return sequence_loss(logits, tgt_out, label_smoothing)
        enc = self.encode(src, src_lengths)
        attentional = self.decoder.teacher_forced_attentional(tgt_in, enc)  # (B, T, P)
        real = tgt_out != PAD_ID  # (B, T)
        logits = self.decoder.logits(attentional[real])  # (N, V)
        return sequence_loss(logits, tgt_out[real], label_smoothing)


def sequence_loss(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Summed cross-entropy over non-PAD targets: logits (..., V), targets (...).

    bf16 logits stay bf16: autocast would upcast them to an fp32 copy, but
    log-softmax accumulates in fp32 internally and runs faster on bf16 input.
    fp16 logits (CUDA autocast) are upcast: label smoothing sums log-probabilities
    over the whole vocabulary, past fp16's 65504 for vocabularies of a few thousand.
    The sum is taken in fp32.
    """
    if logits.dtype == torch.float16:
        logits = logits.float()
    with torch.autocast(logits.device.type, enabled=False):
        per_token = nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            targets.reshape(-1),
            ignore_index=PAD_ID,
            reduction="none",
            label_smoothing=label_smoothing,
        )  # (N,)
    return per_token.float().sum()


def build_model(
    model_cfg,
    max_src_len: int,
    src_vocab: int,
    tgt_vocab: int,
    device: torch.device | str = "cpu",
) -> Seq2Seq:
    """Map a :class:`~seq2seq.config.ModelConfig` to a :class:`Seq2Seq` (on CPU)
    whose kernels suit ``device``; logs the kernels chosen (debug level; the
    trainer reports them at the start of a run)."""
    model = Seq2Seq(
        src_vocab_size=src_vocab,
        tgt_vocab_size=tgt_vocab,
        embed_size=model_cfg.embed_size,
        encoder_hidden_size=model_cfg.encoder_hidden_size,
        encoder_layers=model_cfg.encoder_layers,
        bidirectional=model_cfg.bidirectional,
        decoder_hidden_size=model_cfg.decoder_hidden_size,
        decoder_layers=model_cfg.decoder_layers,
        max_src_len=max_src_len,
        attention=model_cfg.attention,
        dropout=model_cfg.dropout,
        input_feeding=model_cfg.input_feeding,
        tie_embeddings=model_cfg.tie_embeddings,
        word_dropout=model_cfg.word_dropout,
        kernels=model_cfg.kernels,
        kernel_device=device,
    )
    log.debug("model.kernels: %s", model.kernels.reason)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
