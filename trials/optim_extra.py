"""The grokking methods beyond Adam and SGD that trials.optim.Optimizer runs.

- ⊥Grad (Prieto et al. 2025, `optim.orthogonal_grad`): each parameter tensor's gradient loses its
  component along the tensor, g_perp = g - (g.w / (w.w + 1e-30)) w, and is rescaled back to
  ||g|| (as the paper's orthograd.py does: the projection changes the direction, not the step
  size). Applied to the gradient the base optimizer sees, so it wraps any optimizer.
- Weight-norm clipping (Clip-to-Grok 2026, `optim.weight_norm_clip`, `..._mode`): after every
  step each row (or each whole matrix) of every 2-D parameter is scaled down to l2 norm <= c.
  2-D parameters are all weight matrices here, the token/position embeddings and the unembedding
  head included (an embedding row is one token's vector); biases and norm gains are left alone.
- Lion (Chen et al. 2023): c = b1 m + (1 - b1) g, w <- w - lr (sign(c) + wd w),
  m <- b2 m + (1 - b2) g; b1, b2 are optim.beta1/beta2.
- Muon (Jordan et al. 2024): on hidden 2-D weight matrices (not embeddings, not the head):
  m <- mu m + (1 - mu) g (momentum lerp), Nesterov u = (1 - mu) g + mu m, u <- NS5(u) (five
  quintic Newton-Schulz iterations towards the orthogonal polar factor), scaled by
  sqrt(max(1, rows / cols)), w <- w (1 - lr_m wd) - lr_m u. Run in float32 (the reference runs
  NS in bfloat16 on GPU; float32 keeps CPU runs exact and resumable). Other parameters: AdamW.
"""

from __future__ import annotations

import torch

NS_COEFFS = (3.4445, -4.7750, 2.0315)
"""The published quintic Newton-Schulz coefficients (Jordan et al. 2024)."""


@torch.no_grad()
def orthogonal_grads(params: list[torch.Tensor], grads: list[torch.Tensor], eps: float = 1e-30) -> list[torch.Tensor]:
    """⊥Grad: each gradient with its component along its parameter removed, rescaled to ||g||.

    Args:
        params: parameter tensors.
        grads: their gradients (same order and shapes); not modified.
    Returns:
        New gradient tensors, g_perp * ||g|| / (||g_perp|| + eps) per tensor.
    """
    out = []
    for w, g in zip(params, grads):
        wf, gf = w.reshape(-1), g.reshape(-1)
        coef = torch.dot(wf, gf) / (torch.dot(wf, wf) + eps)  # no host sync: stays a tensor
        perp = gf - coef * wf
        out.append((perp * (gf.norm() / (perp.norm() + eps))).view_as(g))
    return out


@torch.no_grad()
def clip_weight_norms_(params: list[torch.Tensor], max_norm: float, mode: str) -> None:
    """Scale each row (mode "row") or each matrix ("matrix") of the 2-D params to l2 norm <= max_norm.

    Args:
        params: any parameters; only those with ndim == 2 are clipped (in place).
        max_norm: the bound c; 0 turns clipping off.
        mode: row | matrix.
    """
    if max_norm <= 0:
        return
    for p in params:
        if p.ndim != 2:
            continue
        if mode == "row":
            norms = torch.linalg.vector_norm(p, dim=1, keepdim=True)  # (rows, 1)
        else:
            norms = torch.linalg.vector_norm(p)
        # rows within the bound get factor 1 exactly (min), so clipping is a no-op there
        p.mul_(torch.clamp(max_norm / norms.clamp(min=1e-30), max=1.0))


def newton_schulz5(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximate the orthogonal polar factor U V^T of g (2-D) by quintic Newton-Schulz.

    The iteration X <- a X + (b A + c A^2) X with A = X X^T drives every singular value of the
    (Frobenius-normalised) X towards ~1 (into roughly [0.7, 1.2] with these coefficients, which
    trade exactness for speed), so the result is close to, not equal to, U V^T.

    Args:
        g: (rows, cols) matrix.
        steps: iterations (5 published).
    Returns:
        (rows, cols) matrix in g's dtype.
    """
    a, b, c = NS_COEFFS
    x = g / (g.norm() + eps)
    tall = g.size(0) > g.size(1)
    if tall:  # iterate on the wide orientation: A is the smaller Gram matrix
        x = x.mT
    for _ in range(steps):
        gram = x @ x.mT  # (r, r), r = min(rows, cols)
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if tall else x


@torch.no_grad()
def muon_update(grad: torch.Tensor, buf: torch.Tensor, momentum: float, steps: int = 5) -> torch.Tensor:
    """Muon's update direction for one matrix; updates the momentum buffer in place.

    Args:
        grad: (rows, cols) gradient.
        buf: its momentum buffer (same shape), updated to mu buf + (1 - mu) grad.
        momentum: mu.
    Returns:
        NS5(Nesterov momentum) * sqrt(max(1, rows / cols)).
    """
    buf.lerp_(grad, 1.0 - momentum)
    nesterov = grad.lerp(buf, momentum)  # (1 - mu) g + mu buf
    return newton_schulz5(nesterov, steps) * max(1.0, grad.size(0) / grad.size(1)) ** 0.5


@torch.no_grad()
def lion_update(grads: list[torch.Tensor], exp_avg: list[torch.Tensor], beta1: float,
                beta2: float) -> list[torch.Tensor]:
    """Lion's update direction sign(b1 m + (1 - b1) g); then m <- b2 m + (1 - b2) g in place.

    Args:
        grads: gradients.
        exp_avg: their momentum buffers m (updated in place).
    Returns:
        The sign tensors (entries -1, 0, 1).
    """
    interp = torch._foreach_lerp(exp_avg, grads, 1.0 - beta1)  # b1 m + (1 - b1) g
    signs = torch._foreach_sign(interp)
    torch._foreach_lerp_(exp_avg, grads, 1.0 - beta2)
    return list(signs)


__all__ = ["NS_COEFFS", "clip_weight_norms_", "lion_update", "muon_update", "newton_schulz5", "orthogonal_grads"]
