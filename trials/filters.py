"""Gradient filters applied between backward and the optimizer step.

Grokfast (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow Gradients"):
  EMA: mu_t = alpha mu_{t-1} + (1 - alpha) g_t;   g_t <- g_t + lamb mu_t
  MA:  once `window` gradients are stored, g_t <- g_t + lamb mean(g_{t-w+1..t})
Annealed Gaussian gradient noise (Neelakantan et al. 2015): g_t <- g_t + N(0, sigma_t^2) with
  sigma_t^2 = eta / (1 + t)^gamma.
State is plain tensors so checkpoints load with weights_only=True.

Grokfast also filters K members stacked along dim 0 (trials.stacked) with per-member alpha and
lamb ((K,) tensors, trials.scalars); gradient noise is drawn per member from its own generator
(`apply_to` one member's slices), so a stacked member gets its separate run's draws.
"""

from __future__ import annotations

import torch

from trials import scalars
from trials.checkpoint import generator_state, restore_generator
from trials.config import GrokfastConfig, NoiseConfig
from trials.scalars import Scalar, per_member


class Grokfast:
    def __init__(self, params: list[torch.Tensor], cfg: GrokfastConfig, alpha: Scalar | None = None,
                 lamb: Scalar | None = None):
        self.cfg = cfg
        self.params = params
        self.alpha = cfg.alpha if alpha is None else alpha
        self.lamb = cfg.lamb if lamb is None else lamb
        self.ema: list[torch.Tensor] | None = None
        self.window: list[list[torch.Tensor]] = []  # MA: up to `window` past gradients
        self.total: list[torch.Tensor] | None = None  # MA: sum of the stored gradients

    @torch.no_grad()
    def apply(self, finite: torch.Tensor | None = None) -> None:
        """Filter the parameters' gradients in place and update the filter's state.

        Args:
            finite: with a grad scaler (fp16), a 0-d bool device tensor saying whether every
                gradient is finite (grads_finite). An overflow step, which the scaler skips, then
                leaves the filter's state as it was: folded in, its inf would poison every later
                gradient, so every later step would be skipped too. EMA masks the update on the
                device (no host sync); MA asks the host (one sync, on fp16 steps only).
        """
        grads = [p.grad for p in self.params]
        if self.cfg.kind == "ema":
            if self.ema is None:
                self.ema = [g.detach().clone() for g in grads]  # Grokfast starts mu_0 = g_0
                if finite is not None:  # an overflow on the first step: start from zeros instead
                    self.ema = [torch.where(finite, e, torch.zeros_like(e)) for e in self.ema]
            elif finite is None:
                torch._foreach_lerp_(self.ema, grads, per_member(1.0 - self.alpha, grads))
            else:
                new = torch._foreach_lerp(self.ema, grads, per_member(1.0 - self.alpha, grads))
                self.ema = [torch.where(finite, n, e) for n, e in zip(new, self.ema)]
            scalars.axpy_(grads, self.ema, self.lamb)
        elif self.cfg.kind == "ma":
            if finite is not None and not bool(finite):
                return  # the scaler skips this step; the window keeps only finite gradients
            # A running sum keeps the cost O(params) per step instead of O(params * window).
            if self.total is None:
                self.total = [torch.zeros_like(g) for g in grads]
            self.window.append([g.detach().clone() for g in grads])
            torch._foreach_add_(self.total, self.window[-1])
            if len(self.window) > self.cfg.window:
                torch._foreach_sub_(self.total, self.window.pop(0))
            if len(self.window) == self.cfg.window:
                scalars.axpy_(grads, self.total, self.lamb / self.cfg.window)

    def state_dict(self) -> dict:
        return {"ema": self.ema, "window": self.window, "total": self.total}

    def load_state_dict(self, state: dict) -> None:
        self.ema, self.window, self.total = state["ema"], state["window"], state["total"]


def grads_finite(params: list[torch.Tensor]) -> torch.Tensor:
    """0-d bool tensor on the device: every gradient of `params` is finite (no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.ones((), dtype=torch.bool)
    return torch.stack([g.isfinite().all() for g in grads]).all()


class GradientNoise:
    def __init__(self, params: list[torch.Tensor], cfg: NoiseConfig, seed: int, device):
        self.cfg = cfg
        self.params = params
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def sigma(self, step: int) -> float:
        """Standard deviation of the noise added at optimizer step `step` (0-based)."""
        return (self.cfg.eta / (1.0 + step) ** self.cfg.gamma) ** 0.5

    @torch.no_grad()
    def apply(self, step: int) -> None:
        self.apply_to(step, [p.grad for p in self.params])

    @torch.no_grad()
    def apply_to(self, step: int, grads: list[torch.Tensor]) -> None:
        """Add this step's noise to `grads` (this run's gradients, or its slices of stacked ones)."""
        if self.cfg.eta == 0:
            return
        std = self.sigma(step)
        for g in grads:
            noise = torch.randn(g.shape, generator=self.generator, device=g.device, dtype=g.dtype)
            g.add_(noise, alpha=std)

    def state_dict(self) -> dict:
        """The generator's state, tagged with its device; nothing at zero noise (nothing drawn)."""
        return {"generator": generator_state(self.generator)} if self.cfg.eta else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore onto this run's device (trials.checkpoint.restore_generator: a state written on
        another kind of device reseeds the generator from it); ignored at zero noise."""
        if self.cfg.eta and state.get("generator") is not None:
            restore_generator(self.generator, state["generator"])
