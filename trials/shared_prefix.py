"""Exact computation sharing over repeated prefixes in a causal transformer's batch.

In a causal decoder the hidden state at position t is a function of the tokens 0..t only. A
batch of x*y mod 97 examples [a, op, b, =] has 512 sequences but at most 97 distinct prefixes
[a] and [a, op], so half of the per-position work (norms, projections, MLPs) repeats the same
computation. This module computes each distinct prefix once:

- `plan_prefixes(x)` finds the distinct prefixes at every position ("rows") and, for each row,
  the rows of its own shorter prefixes (the keys and values it attends to);
- the first block's input at a row is embed(token) + pos(position), so its norm and q/k/v
  projections are computed once per distinct (token, position);
- `Transformer.forward` then runs every block on rows (R, C) instead of (B, T, C), the last
  block only on the rows of full sequences, and gathers the logits back to (B, V).

The result equals the plain forward up to float rounding (sums happen in another order), and
autograd gives the same gradients, because gathering a row for several examples sums their
gradients. Dropout would draw one mask per row instead of per example, so the model uses this
path only when no dropout is active (see `Transformer.can_share_prefixes`). Finding the rows
(torch.unique, row counts) reads sizes on the host, a sync per position on an accelerator, so
trials.setup turns sharing on for CPU runs only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trials.rotary import apply_rotary


@dataclass
class PrefixPlan:
    """Index tables for one batch x (B, T). Rows are grouped by position, position 0 first."""

    row_pos: torch.Tensor
    """(R,) position of each row's last token."""
    context: torch.Tensor
    """(R, T) row of the prefix ending at position s, for s <= row_pos; the row itself after it."""
    visible: torch.Tensor
    """(R, T) bool: s <= row_pos (the causal mask on context)."""
    last_start: int
    """Rows last_start: are the distinct full sequences."""
    example_row: torch.Tensor
    """(B,) for each example, its full sequence's row minus last_start."""
    input_row: torch.Tensor
    """(R,) index into the distinct (position, token) pairs, the first block's inputs."""
    input_pos: torch.Tensor
    """(U,) position of each distinct (position, token) pair."""
    input_tok: torch.Tensor
    """(U,) token of each distinct (position, token) pair."""


def plan_prefixes(x: torch.Tensor) -> PrefixPlan:
    """The distinct prefixes of a batch of token sequences x (B, T) and their attention context."""
    B, T = x.shape
    device = x.device
    base = int(x.max()) + 1
    key = torch.zeros(B, dtype=torch.long, device=device)
    inverses, reps, offsets = [], [], []
    offset = 0
    for t in range(T):
        # Prefix t is (prefix t-1, token t); its key is (id of prefix t-1) * base + token < B*base.
        _, inv = torch.unique(key * base + x[:, t], return_inverse=True)
        n = int(inv.max()) + 1
        rep = torch.empty(n, dtype=torch.long, device=device).scatter_(0, inv, torch.arange(B, device=device))
        inverses.append(inv)
        reps.append(rep)  # one example holding each distinct prefix
        offsets.append(offset)
        offset += n
        key = inv
    contexts, positions, tokens = [], [], []
    for t in range(T):
        rep = reps[t]
        own = offsets[t] + torch.arange(len(rep), device=device)
        cols = [offsets[s] + inverses[s][rep] for s in range(t + 1)] + [own] * (T - 1 - t)
        contexts.append(torch.stack(cols, dim=1))  # (n_t, T)
        positions.append(torch.full_like(rep, t))
        tokens.append(x[rep, t])
    row_pos = torch.cat(positions)
    pair, input_row = torch.unique(row_pos * base + torch.cat(tokens), return_inverse=True)
    return PrefixPlan(
        row_pos=row_pos,
        context=torch.cat(contexts),
        visible=torch.arange(T, device=device) <= row_pos[:, None],
        last_start=offsets[-1],
        example_row=inverses[-1],
        input_row=input_row,
        input_pos=pair // base,
        input_tok=pair % base,
    )


def block_on_rows(block, h: torch.Tensor, plan: PrefixPlan, rope, gather: torch.Tensor | None,
                  queries: slice) -> torch.Tensor:
    """One pre-norm block on rows; returns the new hidden state of the rows in `queries`.

    Args:
        h: (U, C) the block's input; row r of the batch is h[gather[r]] (gather None: U = R).
        rope: (cos, sin) tables (T, hd/2) for rotary positions, else None.
        queries: the rows whose output is needed (all rows, or the full sequences in the last block).
    """
    attn = block.attn
    C = h.shape[1]
    H = attn.n_heads
    hd = C // H
    n = block.norm1(h)
    if gather is not None:
        # The first block: q, k and v are functions of (position, token), so they are computed
        # once per distinct pair (U of them), and so are all U x U query-key products.
        q, k, v = attn.qkv(n).view(-1, 3, H, hd).unbind(1)  # each (U, H, hd)
        if rope is not None:
            q, k = (_rotate(t, *rope, plan.input_pos) for t in (q, k))
        q_src = gather[queries]  # (Rq,) the U row of each query row
        kv_src = gather[plan.context[queries]]  # (Rq, T) the U rows it attends to
        residual = take(h, q_src)  # (Rq, C)
        U = h.shape[0]
        if U * U <= 4 * kv_src.numel():  # the product table is small next to the rows
            table = torch.einsum("uhd,vhd->uvh", q, k).reshape(U * U, H)  # (U*U, H)
            scores = take(table, q_src[:, None] * U + kv_src)  # (Rq, T, H)
        else:
            scores = (take(q, q_src).unsqueeze(1) * take(k, kv_src)).sum(-1)
    else:  # keys and values for every row, queries only where outputs are needed
        w, b = attn.qkv.weight, attn.qkv.bias
        k, v = F.linear(n, w[C:], b[C:]).view(-1, 2, H, hd).unbind(1)  # each (R, H, hd)
        q = F.linear(n[queries], w[:C], b[:C]).view(-1, H, hd)  # (Rq, H, hd)
        if rope is not None:
            q, k = _rotate(q, *rope, plan.row_pos[queries]), _rotate(k, *rope, plan.row_pos)
        kv_src = plan.context[queries]  # (Rq, T)
        residual = h[queries]
        scores = (q.unsqueeze(1) * take(k, kv_src)).sum(-1)  # (Rq, T, H)
    visible = plan.visible[queries][..., None]  # (Rq, T, 1)
    weights = (scores.float() / math.sqrt(hd)).masked_fill(~visible, float("-inf")).softmax(1).to(v.dtype)
    y = (weights.unsqueeze(-1) * take(v, kv_src)).sum(1)  # (Rq, H, hd)
    h_q = residual + attn.proj(y.reshape(-1, C))
    return h_q + block.ff(block.norm2(h_q))


def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] along dim 0: (U, ...) -> (*index.shape, ...).

    index_select, whose backward is ~10x faster on CPU than that of x[index], and sums the
    gradients of a repeated row in float32 under bf16 autocast (one row may feed every example:
    the "=" token at the last position), as the plain forward's matmuls do
    (tests/trials/test_shared_prefix.py checks both).
    """
    return x.index_select(0, index.flatten()).view(*index.shape, *x.shape[1:])


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotary rotation of rows x (R, H, hd), each at its own position pos (R,)."""
    return apply_rotary(x, cos[pos].unsqueeze(1), sin[pos].unsqueeze(1))  # tables (R, 1, hd/2)
