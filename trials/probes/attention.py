"""Attention maps per head, recomputed from q and k in a probe-only hook.

The model's Attention calls F.scaled_dot_product_attention, which never materialises the
weights; the normal forward stays as it is. For a probe, a forward pre-hook on every
Attention module recomputes softmax(q k^T / sqrt(hd)) with the causal mask from the same
input (and rotary tables) the module receives; the hooks are removed right after.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from trials.model import Attention
from trials.rotary import apply_rotary


def attention_weights(attn: Attention, h: torch.Tensor, rope=None) -> torch.Tensor:
    """Causal attention weights of one Attention module on its input h (B, T, C).

    Returns:
        (B, H, T, T) float32; row t holds the weights of query t over keys 0..t.
    """
    B, T, C = h.shape
    hd = C // attn.n_heads
    q, k, _ = attn.qkv(h).split(C, dim=2)  # each (B, T, C)
    q, k = (t.view(B, T, attn.n_heads, hd).transpose(1, 2).float() for t in (q, k))  # (B, H, T, hd)
    if rope is not None:
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)  # (B, H, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(-1)


@torch.no_grad()
def attention_maps(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Attention weights of every attention layer on the examples x (B, T), in eval mode.

    Returns:
        module name (e.g. "blocks.0.attn") -> (B, H, T, T) weights.
    """
    maps: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, Attention):
            def hook(mod, args, name=name):
                maps[name] = attention_weights(mod, args[0], args[1] if len(args) > 1 else None)
            handles.append(module.register_forward_pre_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(x, last_only=False)  # the plain forward, so every Attention module runs
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return maps


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the last query position's attention, over examples and heads."""
    last = weights[:, :, -1, :].clamp_min(1e-30)  # (B, H, T)
    return -(last * last.log()).sum(-1).mean()
