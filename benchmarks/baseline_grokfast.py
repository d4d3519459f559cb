"""A plain-PyTorch baseline written the way grokking research code usually is.

It follows the structure of ironjr/grokfast `main.py` (written from its description, not
copied): nn.MultiheadAttention blocks in (T, B, C) layout, logits for every position, a
per-epoch shuffle with torch.split batches, Grokfast EMA over a dict of named gradients,
`.item()` every step, and a full validation pass after every epoch. Used only by
benchmarks/train_throughput.py as the reference point.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):  # (T, B, C)
        mask = torch.full((len(x), len(x)), -float("inf"), device=x.device).triu_(1)
        h = self.ln_1(x)
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln_2(x))


class Decoder(nn.Module):
    def __init__(self, dim=128, layers=2, heads=4, tokens=99, seq_len=5):
        super().__init__()
        self.tok = nn.Embedding(tokens, dim)
        self.pos = nn.Embedding(seq_len, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, tokens, bias=False)

    def forward(self, x):  # (T, B) -> (T, B, V)
        h = self.tok(x) + self.pos(torch.arange(x.shape[0], device=x.device)).unsqueeze(1)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))


def gradfilter_ema(model, grads, alpha=0.98, lamb=2.0):
    if grads is None:
        grads = {n: p.grad.data.detach() for n, p in model.named_parameters() if p.grad is not None}
    for n, p in model.named_parameters():
        if p.grad is not None:
            grads[n] = grads[n] * alpha + p.grad.data.detach() * (1 - alpha)
            p.grad.data = p.grad.data + grads[n] * lamb
    return grads


def run_baseline(train_x, train_y, val_x, val_y, vocab: int, steps: int, batch_size=512, seed=0, device="cpu"):
    """Train for `steps` optimizer steps; return (seconds, steps done, last val acc).

    train_x: (N, T) rows [a, op, b, =]; the answer is predicted at the last position.
    device: where the model and data live (the plain loop as its authors would move it there).
    """
    torch.manual_seed(seed)
    train_x, train_y, val_x, val_y = (t.to(device) for t in (train_x, train_y, val_x, val_y))
    model = Decoder(tokens=vocab, seq_len=train_x.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.005, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: min(u / 10, 1))
    grads, done, val_acc = None, 0, 0.0
    start = time.perf_counter()
    while done < steps:
        perm = torch.randperm(len(train_x), device=device)
        for xb, yb in zip(torch.split(train_x[perm], batch_size), torch.split(train_y[perm], batch_size)):
            model.train()
            logits = model(xb.T)[-1]  # (B, V)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            grads = gradfilter_ema(model, grads)
            opt.step()
            sched.step()
            _ = loss.item(), (logits.argmax(-1) == yb).float().mean().item()
            done += 1
            if done >= steps:
                break
        model.eval()
        with torch.no_grad():  # full validation after every epoch
            hits = sum((model(xb.T)[-1].argmax(-1) == yb).sum().item()
                       for xb, yb in zip(torch.split(val_x, batch_size), torch.split(val_y, batch_size)))
        val_acc = hits / len(val_y)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, done, val_acc
