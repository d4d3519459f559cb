"""Rotary position embeddings (Su et al. 2021), shared by the model and prefix sharing."""

from __future__ import annotations

import torch


def rotary_tables(seq_len: int, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (T, head_dim/2) for rotary position embeddings (Su et al. 2021)."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    angles = torch.outer(torch.arange(seq_len, device=device).float(), inv_freq)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x (..., hd) by the angles cos/sin (broadcast to (..., hd/2)):
    (B, H, T, hd) with tables (T, hd/2), or rows (R, H, hd) with their positions' (R, 1, hd/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., hd/2)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., hd/2, 2)
    return out.flatten(-2)
