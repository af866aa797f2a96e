"""Independent one-layer GRUs run side by side, with a hand-written backward.

The encoder's two directions are two GRUs over sequences of the same length (the
backward one over each sentence reversed). :class:`StackedGRU` runs them as one:
each step is a single batched matmul for both directions and one set of gate ops on
stacked tensors, where two ``nn.GRU`` kernels would each make their own. The
backward pass is written out: the per-step work is the recurrence through the hidden
state alone, and the weight gradients are one matmul over all steps at the end
(autograd would make one small matmul per step and add it up).

Shapes: D = GRUs (directions), B = batch, S = steps, I = input size, H = hidden.
The gates follow ``nn.GRU``::

    r, z = sigmoid(x W_ir,z + b_ir,z + h W_hr,z + b_hr,z)
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
    h' = n + z * (h - n)
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def gate_slopes(
    h_prev: torch.Tensor, rz: torch.Tensor, n: torch.Tensor, ghn: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The GRU's derivatives that depend on the forward pass alone, for every step
    at once: dL/d(pre-activation) = dL/dh' times these. From the state before each
    step h_prev (..., H), the reset and update gates rz (..., 2H), the candidate n
    and h W_hn + b_hn, ghn (..., H) -> the slopes of n's, z's and r's
    pre-activations (r's per unit of n's)."""
    H = n.size(-1)
    r, z = rz[..., :H], rz[..., H:]
    return (1 - z) * (1 - n * n), (h_prev - n) * z * (1 - z), ghn * r * (1 - r)


class StackedGRU(torch.autograd.Function):
    """x (D, B, S, I); w_ih (D, 3H, I), w_hh (D, 3H, H), b_ih, b_hh (D, 3H): the
    GRUs' ``nn.GRU`` weights stacked, every tensor in the dtype to compute in ->
    hidden states (D, S, B, H), from a zero initial state."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh):
        D, B, S, _ = x.shape
        H = w_hh.size(2)
        # The input's share of every gate, all steps at once: (D, B, S, 3H).
        gi = torch.baddbmm(
            b_ih.unsqueeze(1), x.reshape(D, B * S, -1), w_ih.transpose(1, 2)
        ).view(D, B, S, 3 * H)
        b_hh = b_hh.unsqueeze(1)  # (D, 1, 3H)
        w_hh_t = w_hh.transpose(1, 2)  # (D, H, 3H)
        # What the backward pass needs, written in place step by step.
        hs = x.new_empty(D, S + 1, B, H)  # hs[:, t]: the state before step t
        hs[:, 0].zero_()
        rz = x.new_empty(D, S, B, 2 * H)  # reset and update gates
        n = x.new_empty(D, S, B, H)  # candidate
        ghn = x.new_empty(D, S, B, H)  # h W_hn + b_hn
        for t in range(S):
            gh = torch.baddbmm(b_hh, hs[:, t], w_hh_t)  # (D, B, 3H)
            git = gi[:, :, t]  # (D, B, 3H)
            gates = rz[:, t]
            torch.add(git[..., : 2 * H], gh[..., : 2 * H], out=gates).sigmoid_()
            ghn[:, t] = gh[..., 2 * H :]
            torch.addcmul(
                git[..., 2 * H :], gates[..., :H], ghn[:, t], out=n[:, t]
            ).tanh_()
            torch.lerp(n[:, t], hs[:, t], gates[..., H:], out=hs[:, t + 1])
        ctx.save_for_backward(x, w_ih, w_hh, hs, rz, n, ghn)
        return hs[:, 1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, w_ih, w_hh, hs, rz, n, ghn = ctx.saved_tensors
        D, S, B, H = n.shape
        r, z = rz[..., :H], rz[..., H:]
        h_prev = hs[:, :-1]
        d_n, d_z, d_r = gate_slopes(h_prev, rz, n, ghn)
        d_gh = x.new_empty(D, S, B, 3 * H)  # dL/d(h W_hh + b_hh)
        d_gi_n = x.new_empty(D, S, B, H)  # dL/d(x W_in + b_in)
        dh = grad[:, S - 1]  # dL/dh' at the last step
        for t in range(S - 1, -1, -1):
            g = d_gh[:, t]
            torch.mul(dh, d_n[:, t], out=d_gi_n[:, t])
            torch.mul(dh, d_z[:, t], out=g[..., H : 2 * H])
            torch.mul(d_gi_n[:, t], d_r[:, t], out=g[..., :H])
            torch.mul(d_gi_n[:, t], r[:, t], out=g[..., 2 * H :])
            if t:  # dL/dh of the step before: its output's gradient + the recurrence
                dh = torch.baddbmm(grad[:, t - 1], g, w_hh).addcmul_(dh, z[:, t])
        # The reset and update gates' pre-activations take x's and h's shares alike.
        d_gi = torch.cat((d_gh[..., : 2 * H], d_gi_n), 3).view(D, S * B, 3 * H)
        d_gh = d_gh.view(D, S * B, 3 * H)
        steps_first = x.transpose(1, 2).reshape(D, S * B, -1)  # rows in d_gi's order
        d_w_hh = torch.bmm(d_gh.transpose(1, 2), h_prev.reshape(D, S * B, H))
        d_w_ih = torch.bmm(d_gi.transpose(1, 2), steps_first)
        d_x = torch.bmm(d_gi, w_ih).view(D, S, B, -1).transpose(1, 2)
        return d_x, d_w_ih, d_w_hh, d_gi.sum(1), d_gh.sum(1)
