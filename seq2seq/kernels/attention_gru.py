"""The teacher-forced decoder recurrence (additive attention, one GRU layer) with a
hand-written backward.

:func:`seq2seq.kernels.decoder.planned_recurrence` runs, at every target step, the
additive attention over the source and a GRU cell. Under autograd each step's
backward makes its own small weight-gradient matmuls (one batch of rows) and its own
bookkeeping, and that backward dominated the recurrence's time. :class:`AttentionGRU`
runs the same numbers as one autograd Function: the backward loop carries only what
flows through the hidden state from step to step, and every weight's gradient is one
matmul over all steps at the end.

Shapes: T = target steps, B = batch, S = source positions, A = attention hidden
size, C = context (encoder output) size, H = decoder hidden size. One step, from
the hidden state h, the attention's query (the decoder inputs' share of the layers
is planned, see :func:`seq2seq.kernels.decoder.plan_inputs`)::

    k, g_h = split(h W_fᵀ + b_f)            # W_f = [the query's score weight; W_hh]
    s = 2 v · sigmoid(keys + 2 (q_t + k))   # keys = 2 U V (Attn.prepare)
    w = softmax(s over real positions);  c = w · V
    a = relu(o_t + c W_cᵀ)                   # Attn's output: o_t planned
    h' = GRU gates of a W_ihᵀ + b_ih and g_h, as in ``nn.GRUCell``

Matmuls run in the dtype of the weights given (bf16 under autocast); the GRU's
gates, its hidden state and the softmax stay in h0's dtype (fp32), as in the
reference path, and so do the attention's sigmoids (on CPU, fp32 sigmoids were
found both faster and more precise than bf16 ones; see docs/KERNELS.md).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seq2seq.kernels.gru import gate_slopes


def _attention_gates(
    keys: torch.Tensor, query: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """sigmoid(keys + 2 query) into out: keys (B, S, A) fp32, query (B, A). The
    forward and the backward pass both call it, so they see the same numbers."""
    return torch.add(keys, query.unsqueeze(1), alpha=2, out=out).sigmoid_()


class AttentionGRU(torch.autograd.Function):
    """h0 (B, H) fp32; queries (B, T, A), planned (B, T, H): the decoder inputs'
    shares of the score and output layers at every step (the plan's ``score`` and
    ``output``, bias included); keys (B, S, A), values (B, S, C);
    padding (B, S) True on padding; w_fused (A + 3H, H), b_fused (A + 3H);
    energy (A,) = v; w_context (H, C), w_ih (3H, H), b_ih (3H) -> hidden states
    (T, B, H) fp32 and contexts (T, B, C)."""

    @staticmethod
    def forward(
        ctx,
        h0,
        queries,
        planned,
        keys,
        values,
        padding,
        w_fused,
        b_fused,
        energy,
        w_context,
        w_ih,
        b_ih,
    ):
        B, T, A = queries.shape
        H = h0.size(1)
        S, C = values.shape[1:]
        dtype, fp32 = w_fused.dtype, h0.dtype  # matmuls; gates, state, softmax
        with torch.autocast(h0.device.type, enabled=False):
            # -inf on padding: added to the scores, the softmax gives exact zeros.
            mask = h0.new_zeros(B, S).masked_fill_(padding, float("-inf"))
            energy2 = (energy.to(fp32) * 2).unsqueeze(1)  # (A, 1)
            w_fused_t, w_context_t, w_ih_t = w_fused.t(), w_context.t(), w_ih.t()
            keys32 = keys.to(fp32)
            states = h0.new_empty(T + 1, B, H)  # states[t]: the state before step t
            states[0] = h0
            inputs = queries.new_empty(T, B, H)  # states in the matmul dtype
            # sigmoid(keys + 2 (q + k)), (B, S, A) fp32: one buffer for every step,
            # recomputed by the backward pass from q + k (a (T, B, S, A) tensor
            # would leave the caches and cost a page fault per 4 KiB written)
            gates = h0.new_empty(B, S, A)
            query = queries.new_empty(T, B, A)  # q + k
            weights = queries.new_empty(T, B, S)
            contexts = queries.new_empty(T, B, C)
            acts = queries.new_empty(T, B, H)  # a: relu of Attn's output
            rz = h0.new_empty(T, B, 2 * H)  # the GRU's reset and update gates
            n = h0.new_empty(T, B, H)  # its candidate
            ghn = h0.new_empty(T, B, H)  # h W_hn + b_hn
            for t in range(T):
                inputs[t] = states[t]
                fused = torch.addmm(b_fused, inputs[t], w_fused_t)  # (B, A + 3H)
                torch.add(queries[:, t], fused[:, :A], out=query[t])
                _attention_gates(keys32, query[t], gates)
                scores = torch.matmul(gates, energy2).squeeze(2) + mask
                weights[t] = torch.softmax(scores, 1)
                torch.bmm(weights[t].unsqueeze(1), values, out=contexts[t].unsqueeze(1))
                torch.addmm(
                    planned[:, t], contexts[t], w_context_t, out=acts[t]
                ).relu_()
                gi = torch.addmm(b_ih, acts[t], w_ih_t).to(fp32)  # (B, 3H)
                gh = fused[:, A:].to(fp32)
                torch.add(gi[:, : 2 * H], gh[:, : 2 * H], out=rz[t]).sigmoid_()
                ghn[t] = gh[:, 2 * H :]
                torch.addcmul(gi[:, 2 * H :], rz[t, :, :H], ghn[t], out=n[t]).tanh_()
                torch.lerp(n[t], states[t], rz[t, :, H:], out=states[t + 1])
        ctx.save_for_backward(
            values, w_fused, energy, w_context, w_ih, keys32, query,
            states, inputs, weights, contexts, acts, rz, n, ghn,
        )  # fmt: skip
        ctx.dtype = dtype
        return states[1:], contexts

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states, grad_contexts):
        (
            values, w_fused, energy, w_context, w_ih, keys32, query,
            states, inputs, weights, contexts, acts, rz, n, ghn,
        ) = ctx.saved_tensors  # fmt: skip
        T, B, S = weights.shape
        A = keys32.size(2)
        H = n.size(2)
        dtype, fp32 = ctx.dtype, n.dtype
        with torch.autocast(states.device.type, enabled=False):
            if grad_states is None:
                grad_states = torch.zeros_like(n)
            r, z = rz[..., :H], rz[..., H:]
            d_n, d_z, d_r = gate_slopes(states[:-1], rz, n, ghn)
            # Per step, what the weight gradients need at the end.
            d_gi = n.new_empty(T, B, 3 * H)  # dL/d(a W_ihᵀ + b_ih)
            d_fused = values.new_empty(T, B, A + 3 * H)  # dL/d(h W_fᵀ + b_f)
            d_planned = values.new_empty(T, B, H)  # dL/d(Attn's output)
            d_contexts = values.new_empty(T, B, values.size(2))
            energy4 = energy.to(fp32) * 4
            quarter = n.new_tensor(0.25)
            centred = n.new_empty(B, S, A)  # σ(x) - 1/2, recomputed at each step
            slope = n.new_empty(B, S, A)
            # Σ_t over the steps: dL/dv / 2 and dL/dkeys / (2 v)
            d_energy = n.new_zeros(A)
            d_keys = n.new_zeros(B, S, A)
            dh = torch.zeros_like(n[0])
            for t in range(T - 1, -1, -1):
                dh = dh + grad_states[t]
                g = d_gi[t]
                torch.mul(dh, d_n[t], out=g[:, 2 * H :])
                torch.mul(dh, d_z[t], out=g[:, H : 2 * H])
                torch.mul(g[:, 2 * H :], d_r[t], out=g[:, :H])
                d_fused[t, :, A : A + 2 * H] = g[:, : 2 * H]
                d_fused[t, :, A + 2 * H :] = g[:, 2 * H :] * r[t]
                d_act = torch.mm(g.to(dtype), w_ih)  # (B, H)
                torch.mul(d_act, acts[t] > 0, out=d_planned[t])
                d_context = d_contexts[t]
                torch.mm(d_planned[t], w_context, out=d_context)
                if grad_contexts is not None:
                    d_context += grad_contexts[t]
                # softmax backward: w * (dL/dw - Σ w dL/dw)
                d_w = torch.bmm(values, d_context.unsqueeze(2)).squeeze(2).to(fp32)
                w = weights[t].to(fp32)
                d_s = torch.mul(w, d_w - (w * d_w).sum(1, keepdim=True)).unsqueeze(1)
                # s = 2 v · σ(x) = v · tanh(x / 2) + Σ v, and the softmax ignores
                # Σ v: dL/dv = Σ d_s tanh(x / 2) = 2 Σ d_s (σ(x) - 1/2). (2 Σ d_s σ(x)
                # is the same in exact arithmetic, as Σ d_s = 0 over positions, but
                # sums terms near d_s / 2 that cancel, and their rounding adds up.)
                _attention_gates(keys32, query[t], centred).sub_(0.5)
                torch.addcmul(quarter, centred, centred, value=-1, out=slope)  # σ'(x)
                d_energy += d_s.view(1, -1).mm(centred.view(-1, A)).squeeze(0)
                d_keys.addcmul_(d_s.transpose(1, 2), slope)
                # s = 2 v · sigmoid(x), x = keys + 2 (q + k): ds/d(q + k) = 4 v σ'(x)
                d_query = torch.bmm(d_s, slope).squeeze(1)
                torch.mul(d_query, energy4, out=d_fused[t, :, :A])
                dh = torch.addcmul(
                    torch.mm(d_fused[t], w_fused).to(fp32), dh, z[t]
                )  # dL/dh of the step before
            # Every weight's gradient: one matmul over all T * B rows.
            d_fused_rows = d_fused.view(T * B, -1)
            d_gi_rows = d_gi.to(dtype).view(T * B, -1)
            d_planned_rows = d_planned.view(T * B, H)
            d_w_fused = d_fused_rows.t().mm(inputs.view(T * B, H))
            d_w_ih = d_gi_rows.t().mm(acts.view(T * B, H))
            d_w_context = d_planned_rows.t().mm(contexts.view(T * B, -1))
            # The keys enter x once, q + k twice: dL/dkeys = Σ_t d_s 2 v σ'(x).
            d_keys = d_keys.to(dtype) * (energy * 2)
            d_values = torch.bmm(
                weights.permute(1, 2, 0).to(dtype), d_contexts.transpose(0, 1)
            )  # Σ_t w_t dL/dc_t: (B, S, C)
        return (
            dh,
            d_fused[..., :A].transpose(0, 1),
            d_planned.transpose(0, 1),
            d_keys,
            d_values,
            None,
            d_w_fused,
            d_fused_rows.sum(0),
            (d_energy * 2).to(dtype),
            d_w_context,
            d_w_ih,
            d_gi.sum((0, 1)).to(dtype),
        )
