"""Greedy and batched beam search over a :class:`~seq2seq.model.Seq2Seq` (or an
:class:`~seq2seq.ensemble.Ensemble` of them).

Both decode a whole batch at once; sentences that are done leave the batch, so the
remaining steps only pay for the sentences still being decoded. Each sentence's
output is limited to ``max_len_a * source_length + max_len_b`` tokens and holds at
least one token (EOS cannot come first).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.ensemble import Ensemble
from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import BOS_ID, EOS_ID


@dataclass
class Hypothesis:
    """One translation: ids without BOS/EOS, its score and attention (T, S).

    ``score`` is the sum of token log-probabilities (EOS included when produced),
    divided by the length penalty for beam search.
    """

    tokens: list[int]
    score: float
    attention: torch.Tensor | None = None
    finished: bool = True


def max_lengths(src_lengths: torch.Tensor, a: float, b: int) -> list[int]:
    """Per-sentence output limits: ``a * len + b`` tokens (EOS excluded)."""
    return [int(a * n + b) for n in src_lengths.tolist()]


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty ``((5 + length) / 6) ** alpha`` (1 when alpha is 0)."""
    return ((5.0 + length) / 6.0) ** alpha if alpha else 1.0


# no_grad, not inference_mode: under inference_mode autocast casts every weight
# again at every step (its cast cache is off), 4% of a bf16 beam search here.
@torch.no_grad()
def greedy_search(
    model: Seq2Seq | Ensemble,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    return_attention: bool = False,
) -> list[Hypothesis]:
    """Pick the most probable token at each step. src (B, S) -> B hypotheses."""
    device = src.device
    batch = src.size(0)
    limits = max_lengths(src_lengths, max_len_a, max_len_b)
    enc = model.encode(src, src_lengths)
    state = model.initial_state(enc)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    active = list(range(batch))  # original index of each row still decoding
    tokens: list[list[int]] = [[] for _ in range(batch)]
    scores = [0.0] * batch
    attention: list[list[torch.Tensor]] = [[] for _ in range(batch)]
    finished = [False] * batch
    step = 0
    while active:
        out = model.step(prev, state, enc)
        log_probs = torch.log_softmax(out.logits.float(), dim=-1)  # (b, V)
        if step == 0:
            log_probs[:, EOS_ID] = float("-inf")  # no empty translations
        best_scores, best = log_probs.max(dim=-1)  # (b,), (b,)
        best_list, score_list = best.tolist(), best_scores.tolist()
        keep = []
        for row, sentence in enumerate(active):
            if step >= limits[sentence]:
                continue  # length limit reached before EOS
            token = best_list[row]
            scores[sentence] += score_list[row]
            if return_attention:
                attention[sentence].append(out.weights[row].float().cpu())
            if token == EOS_ID:
                finished[sentence] = True
                continue
            tokens[sentence].append(token)
            keep.append(row)
        step += 1
        if len(keep) < len(active):
            if not keep:
                break
            rows = torch.tensor(keep, device=device)
            enc = enc.select(rows)
            best = best.index_select(0, rows)
            out_state = out.state.select(rows)
            active = [active[r] for r in keep]
        else:
            out_state = out.state
        prev, state = best, out_state
    return [
        Hypothesis(
            tokens[i],
            scores[i],
            torch.stack(attention[i])[:, : int(src_lengths[i])]
            if attention[i]
            else None,
            finished[i],
        )
        for i in range(batch)
    ]


@torch.no_grad()
def beam_search(
    model: Seq2Seq | Ensemble,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    beam_size: int,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    alpha: float = 1.0,
    n_best: int = 1,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Batched beam search: src (B, S) -> for each sentence its ``n_best`` best
    hypotheses, sorted by score (best first).

    At each step the ``beam_size`` best extensions of a sentence's live beams are
    kept; an extension ending in EOS is moved to the sentence's finished list. A
    sentence is done once its live beams cannot beat its ``beam_size`` best finished
    hypotheses (see :func:`_done`) or it reaches its length limit (then its live
    beams count as unfinished hypotheses).
    """
    if n_best > beam_size:
        raise ValueError(f"n_best={n_best} is larger than beam_size={beam_size}")
    device = src.device
    batch, k = src.size(0), beam_size
    limits = max_lengths(src_lengths, max_len_a, max_len_b)
    enc = model.encode(src, src_lengths).select(
        torch.arange(batch, device=device).repeat_interleave(k)
    )
    state = model.initial_state(enc)  # b * k rows
    prev = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    # Only the first beam is live at the start: the others would duplicate it.
    beam_scores = torch.full((batch, k), float("-inf"), device=device)
    beam_scores[:, 0] = 0.0
    history = torch.empty((batch * k, 0), dtype=torch.long, device=device)
    attn_history: torch.Tensor | None = None  # (b * k, t, S)
    active = list(range(batch))
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    step = 0
    while active:
        b = len(active)
        out = model.step(prev, state, enc)
        log_probs = torch.log_softmax(out.logits.float(), dim=-1)  # (b * k, V)
        if step == 0:
            log_probs[:, EOS_ID] = float("-inf")  # no empty translations
        vocab = log_probs.size(-1)
        candidates = (beam_scores.view(-1, 1) + log_probs).view(b, k * vocab)
        top_scores, top_ids = candidates.topk(k, dim=-1)  # (b, k)
        origin = top_ids // vocab  # (b, k) beam each candidate extends
        token = top_ids % vocab  # (b, k)
        rows = (origin + torch.arange(b, device=device).unsqueeze(1) * k).view(-1)
        history = torch.cat((history.index_select(0, rows), token.view(-1, 1)), dim=1)
        if return_attention:
            weights = out.weights.float().index_select(0, rows).unsqueeze(1)
            attn_history = (
                weights
                if attn_history is None
                else torch.cat((attn_history.index_select(0, rows), weights), dim=1)
            )
        is_eos = token == EOS_ID  # (b, k)
        top_scores = top_scores.masked_fill(is_eos, float("-inf"))
        eos_list = is_eos.tolist()
        score_list = candidates.gather(1, top_ids).tolist()
        alive_best = top_scores.max(dim=1).values.tolist()  # (b,)
        step += 1
        keep = []
        for row, sentence in enumerate(active):
            hyps = finished[sentence]
            for j in range(k):
                if eos_list[row][j] and score_list[row][j] > float("-inf"):
                    hyps.append(
                        _hypothesis(
                            history,
                            attn_history,
                            row * k + j,
                            score_list[row][j],
                            step - 1,
                            alpha,
                            src_lengths[sentence],
                            True,
                        )
                    )
            if _done(hyps, alive_best[row], k, step, alpha):
                continue
            if step >= limits[sentence]:
                for j in range(k):
                    score = float(top_scores[row, j])
                    if score > float("-inf"):
                        hyps.append(
                            _hypothesis(
                                history,
                                attn_history,
                                row * k + j,
                                score,
                                step,
                                alpha,
                                src_lengths[sentence],
                                False,
                            )
                        )
                continue
            keep.append(row)
        if not keep:
            break
        state = out.state.select(rows)
        if len(keep) < b:
            keep_rows = torch.tensor(keep, device=device)
            beam_rows = (
                keep_rows.unsqueeze(1) * k + torch.arange(k, device=device)
            ).view(-1)
            top_scores = top_scores.index_select(0, keep_rows)
            token = token.index_select(0, keep_rows)
            history = history.index_select(0, beam_rows)
            if attn_history is not None:
                attn_history = attn_history.index_select(0, beam_rows)
            state = state.select(beam_rows)
            enc = enc.select(beam_rows)
            active = [active[r] for r in keep]
        beam_scores = top_scores
        prev = token.view(-1)
    results = []
    for hyps in finished:
        hyps.sort(key=lambda h: h.score, reverse=True)
        results.append(hyps[:n_best])
    return results


def _done(
    hyps: list[Hypothesis], alive_best: float, k: int, step: int, alpha: float
) -> bool:
    """A sentence is done when no live beam is left, or when it has ``k`` finished
    hypotheses and its best live beam, even if it ended at the next step, would not
    beat the k-th of them (exact when ``alpha`` is 0: scores only fall)."""
    if alive_best == float("-inf"):
        return True
    if len(hyps) < k:
        return False
    kth = sorted((h.score for h in hyps), reverse=True)[k - 1]
    return kth >= alive_best / length_penalty(step + 1, alpha)


def _hypothesis(
    history: torch.Tensor,
    attn_history: torch.Tensor | None,
    row: int,
    score: float,
    length: int,
    alpha: float,
    src_length: torch.Tensor,
    finished: bool,
) -> Hypothesis:
    """A finished hypothesis from row ``row`` of the history (first ``length`` tokens
    are the output; EOS, when present, follows them)."""
    tokens = history[row, :length].tolist()
    scored_length = length + (1 if finished else 0)
    attention = None
    if attn_history is not None:
        attention = attn_history[row, :scored_length, : int(src_length)].cpu()
    return Hypothesis(
        tokens, score / length_penalty(scored_length, alpha), attention, finished
    )
