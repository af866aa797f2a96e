"""GRU encoder, attention decoder (``Attn`` at every step) and the Seq2Seq model.

Shapes use B = batch, S = source length, T = target length, V = vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.attention import Attn, QueryPlan, autocast_weight
from seq2seq.attention_gru import AttentionGRU
from seq2seq.gru import StackedGRU
from seq2seq.tokenizer import PAD_ID


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
    matmuls run in the autocast dtype (bf16: ~2x faster) while the gates and the
    hidden state stay fp32. forward: x (B, I), h (B, H) -> (B, H).
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

    On CPU ``bernoulli_`` (what ``nn.Dropout`` draws with) is 3x slower than a
    uniform draw and a comparison; that was 6% of a training step. Elsewhere, and
    in eval mode, this is ``nn.Dropout``.
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


def _gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, S, D), index (B, S) -> x[b, index[b, t]] (B, S, D)."""
    return x.gather(1, index.unsqueeze(2).expand_as(x))


class Encoder(nn.Module):
    """Embedding + (bi)GRU.

    forward: src (B, S), src_lengths (B,) -> outputs (B, S, dirs * hidden),
    final hidden (layers * dirs, B, hidden). Padded positions of ``outputs`` are 0.

    On CUDA this is ``nn.GRU`` over packed sequences (cuDNN runs them well). On
    CPU the same parameters run one layer at a time over the padded batch, the
    backward direction on each sentence reversed within its length, both directions
    side by side in one :class:`~seq2seq.gru.StackedGRU` (one batched matmul per
    step, weight gradients as one matmul over all steps) and, under autocast, in the
    autocast dtype (``nn.GRU`` stays fp32 under CPU autocast): packed-sequence
    results exactly. The GRU alone (batch 64, hidden 512, forward + backward):
    packed fp32 145 ms, dense fp32 109 ms, dense bf16 58 ms; stacked bf16 is 11%
    faster than dense bf16 over a whole encoder (README, Benchmarks).
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

    def _direction(
        self, x: torch.Tensor, layer: int, suffix: str, dtype: torch.dtype
    ) -> torch.Tensor:
        """One layer, one direction over x (B, S, I) through ``nn.GRU``'s own kernel
        -> outputs (B, S, H). For the ONNX exporter, which maps this call onto an
        ONNX GRU op and cannot trace :class:`StackedGRU`."""
        weights = [
            getattr(self.rnn, f"{name}_l{layer}{suffix}").to(dtype)
            for name in _GRU_WEIGHTS
        ]
        h0 = x.new_zeros(1, x.size(0), self.rnn.hidden_size)
        outputs, _ = torch._VF.gru(
            x, h0, weights, True, 1, 0.0, self.training, False, True
        )
        return outputs

    def _weights(self, layer: int, dtype: torch.dtype) -> list[torch.Tensor]:
        """Layer ``layer``'s weights, its directions stacked, in ``dtype``:
        w_ih (D, 3H, I), w_hh (D, 3H, H), b_ih (D, 3H), b_hh (D, 3H)."""
        suffixes = ("", "_reverse") if self.rnn.bidirectional else ("",)
        return [
            torch.stack(
                [getattr(self.rnn, f"{name}_l{layer}{suffix}") for suffix in suffixes]
            ).to(dtype)
            for name in _GRU_WEIGHTS
        ]

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.dropout(self.word_dropout(self.embedding(src)))  # (B, S, E)
        if src.is_cuda:
            outputs, hidden = self.packed(embedded, src_lengths)
        else:
            outputs, hidden = self.per_direction(embedded, src_lengths)
        return self.dropout(outputs), hidden

    def packed(
        self, embedded: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``nn.GRU`` over packed sequences: embedded (B, S, E) -> outputs
        (B, S, dirs * H) (0 on padding), final hidden (layers * dirs, B, H)."""
        packed = pack_padded_sequence(
            embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, hidden = self.rnn(packed)
        outputs, _ = pad_packed_sequence(
            packed_out, batch_first=True, total_length=embedded.size(1)
        )
        return outputs, hidden

    def per_direction(
        self, embedded: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What :meth:`packed` computes, one layer and direction at a time over
        the padded batch (see the class docstring)."""
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
        layer_input = embedded.to(dtype)
        finals = []
        for layer in range(self.rnn.num_layers):
            if layer > 0:
                layer_input = self.dropout(layer_input)  # nn.GRU's inter-layer dropout
            inputs = [layer_input]
            if self.rnn.bidirectional:
                inputs.append(_gather_steps(layer_input, reverse))
            # per direction (B, S, H); row b's states past its length are junk,
            # never read
            if torch.jit.is_tracing():
                states = [
                    self._direction(x, layer, suffix, dtype)
                    for x, suffix in zip(inputs, ("", "_reverse"), strict=False)
                ]
            else:
                stacked = StackedGRU.apply(
                    torch.stack(inputs), *self._weights(layer, dtype)
                )  # (D, S, B, H)
                states = [s.transpose(0, 1) for s in stacked.unbind(0)]
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
    """Attention decoder. One step::

    Q = embedded previous token (with input feeding: [embedded; previous a])
    output, weights = Attn(Q, K=top hidden state, V=encoder outputs)
    h = GRU(relu(output), h)
    a = tanh(Linear([h_top; context; embedded]))     # the attentional vector
    logits = Linear(dropout(a))                      # tied: target embeddingᵀ
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
    ) -> None:
        super().__init__()
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
        )
        self.cells = nn.ModuleList(
            GRUCell(hidden_size, hidden_size) for _ in range(num_layers)
        )
        self.pre_output = nn.Linear(
            hidden_size + context_size + embed_size, self.attentional_size
        )
        self.output = nn.Linear(self.attentional_size, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.weight

    def initial_state(self, hidden: torch.Tensor) -> DecoderState:
        """The state before the first step, from the bridge's hidden (layers, B, H)."""
        feed = None
        if self.input_feeding:
            feed = hidden.new_zeros(hidden.size(1), self.attentional_size)
        return DecoderState(hidden, feed)

    def rnn_step(
        self, embedded: torch.Tensor, state: DecoderState, enc: EncoderOutput
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attention and GRU for one step, without the output layer.

        embedded (B, E) -> top output (B, H), new hidden (layers, B, H),
        context (B, C), attention weights (B, S).
        """
        query = embedded if state.feed is None else torch.cat((embedded, state.feed), 1)
        att = self.attention.attend(
            query, state.hidden[-1], enc.outputs, enc.mask, enc.keys
        )
        layer_input = torch.relu(att.output)  # (B, H)
        new_hidden = []
        for layer, cell in enumerate(self.cells):
            h = cell(layer_input, state.hidden[layer])  # (B, H)
            new_hidden.append(h)
            layer_input = self.dropout(h) if layer + 1 < self.num_layers else h
        return layer_input, torch.stack(new_hidden), att.context, att.weights

    def attentional(
        self, top: torch.Tensor, context: torch.Tensor, embedded: torch.Tensor
    ) -> torch.Tensor:
        """(..., H), (..., C), (..., E) -> attentional vector (..., P)."""
        return torch.tanh(self.pre_output(torch.cat((top, context, embedded), dim=-1)))

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """(..., P) -> (..., V)."""
        return self.output(self.dropout(attentional))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Input tokens (...) -> embeddings (..., E), word dropout and dropout on."""
        return self.dropout(self.word_dropout(self.embedding(tokens)))

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
        if self.input_feeding:
            state = self.initial_state(enc.hidden)
            outputs = []
            # unbind: one backward op for all steps (slicing would zero-fill a
            # (B, T, E) gradient at every step).
            for step_input in embedded.unbind(1):
                top, hidden, context, _ = self.rnn_step(step_input, state, enc)
                attentional = self.attentional(top, context, step_input)  # (B, P)
                outputs.append(attentional)
                state = DecoderState(hidden, attentional)
            return torch.stack(outputs, 1)
        # Without input feeding the queries are known in advance, and the
        # attentional layer runs once over all steps.
        tops, contexts = self._planned_recurrence(embedded, enc)
        return self.attentional(tops, contexts, embedded)

    def _planned_recurrence(
        self, embedded: torch.Tensor, enc: EncoderOutput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`rnn_step` over all steps of embedded (B, T, E), queries known.

        -> top outputs (B, T, H), contexts (B, T, C): the numbers of the step
        loop, with the queries' share of the attention layers computed for all
        steps at once (:meth:`Attn.plan`). With one layer, one matmul of the
        previous hidden state gives both its share of the attention score and the
        GRU's hidden gates.
        """
        plan = self.attention.plan(embedded)
        padding = ~enc.mask
        hidden = list(enc.hidden.unbind(0))  # layers x (B, H)
        first = self.cells[0]
        fused = None
        if self.num_layers == 1 and plan.key_weight is not None:
            split = [plan.key_weight.size(0), first.weight_hh.size(0)]  # A, 3H
            fused = (
                torch.cat((plan.key_weight, autocast_weight(first.weight_hh))),
                autocast_weight(
                    torch.cat((first.bias_hh.new_zeros(split[0]), first.bias_hh))
                ),
            )  # weight (A + 3H, H), bias (A + 3H,): the score layer has no K bias
        if (
            fused is not None
            and self.attention.rule == "additive"
            and embedded.device.type == "cpu"
            and not torch.jit.is_tracing()
        ):
            return self._attention_gru(plan, fused, enc, padding)
        plan = plan.per_step()
        tops, contexts = [], []
        for step in range(len(plan.output)):
            key = hidden[-1]
            key_score = gates = None
            if fused is not None:
                # (B, A), (B, 3H); split: one backward op (slices would zero-fill)
                key_score, gates = nn.functional.linear(key, *fused).split(split, 1)
            att = self.attention.attend_planned(
                plan, step, key, enc.outputs, padding, enc.keys, key_score
            )
            layer_input = torch.relu(att.output)  # (B, H)
            for layer, cell in enumerate(self.cells):
                h = cell(layer_input, hidden[layer], gates if layer == 0 else None)
                hidden[layer] = h
                layer_input = self.dropout(h) if layer + 1 < self.num_layers else h
            tops.append(layer_input)
            contexts.append(att.context)
        return torch.stack(tops, 1), torch.stack(contexts, 1)

    def _attention_gru(
        self,
        plan: QueryPlan,
        fused: tuple[torch.Tensor, torch.Tensor],
        enc: EncoderOutput,
        padding: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_planned_recurrence` for one layer and additive attention, as one
        :class:`AttentionGRU` (hand-written backward; CPU, where it was measured)."""
        dtype = fused[0].dtype
        cell = self.cells[0]
        states, contexts = AttentionGRU.apply(
            enc.hidden[0].float(),
            plan.score.to(dtype),  # (B, T, A)
            plan.output.to(dtype),  # (B, T, H)
            enc.keys.to(dtype),
            enc.outputs.to(dtype),
            padding,
            *fused,
            # the weights: cast like fused's, by autocast_weight, to its dtype
            autocast_weight(self.attention.attn.energy.weight)[0],
            plan.context_weight,
            autocast_weight(cell.weight_ih),
            autocast_weight(cell.bias_ih),
        )
        return states.transpose(0, 1), contexts.transpose(0, 1)

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
    """Encoder, bridge to the decoder's initial state, attention decoder."""

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
    ) -> None:
        super().__init__()
        self.max_src_len = max_src_len
        self.encoder = Encoder(
            src_vocab_size,
            embed_size,
            encoder_hidden_size,
            encoder_layers,
            bidirectional,
            dropout,
            word_dropout,
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
    log-softmax accumulates in fp32 internally and runs 5x faster on bf16 input.
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


def build_model(model_cfg, max_src_len: int, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    """Map a :class:`~seq2seq.config.ModelConfig` to a :class:`Seq2Seq`."""
    return Seq2Seq(
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
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
