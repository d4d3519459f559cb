"""The per-member optimizer and gradient filters of a population, on flat (K, P) tensors.

Mirrors trials.optim.Optimizer (the rules of trials.choices.OPTIMIZERS, the one table both paths
dispatch on: update family and decay style by name, unknown names refused; no-decay group, bias
corrections) and
trials.filters (Grokfast EMA/MA, annealed gradient noise) and the clipping in trials.train, with
a value per member for lr, weight_decay, beta1, beta2, momentum, Grokfast alpha/lamb and noise
eta/gamma. Per-member scalars are computed in float64 (as Python computes the single run's
scalars) and rounded to float32 (as the kernels round a Python scalar), then broadcast as (K, 1)
columns, so each member's arithmetic matches its separate run operation for operation. The
expressions are chosen to round as the single run's kernels do on CPU: `x.addcmul_(y, c)` where
trials.optim has `x.add_(y, alpha=c)` (both fuse the multiply-add), `p.addcdiv_(c m, d)` where it
has `p.addcdiv_(m, d, value=c)` (the CPU kernel computes (c m) / d). With vectorize="loop"
(trials.population_model) every member's curve is then bitwise its separate run's on CPU.
"""

from __future__ import annotations

import torch

from trials.choices import OPTIMIZERS, UPDATES, optimizer_rule
from trials.population_model import Layout, split_rows

PER_MEMBER = ("lr", "weight_decay", "beta1", "beta2", "momentum")

def unsupported_methods(optim) -> str | None:
    """Why a population cannot train with this OptimConfig, or None when it can.

    The newer grokking methods (Lion, Muon, StableMax, ⊥Grad, weight-norm clipping) run in single runs
    only; a population refuses them at validation time in one line instead of training something
    else.

    Args:
        optim: an OptimConfig.
    Returns:
        A one-line reason naming the setting and its supported value, or None.
    """
    rule = optimizer_rule(optim.name)
    if rule.update not in POPULATION_UPDATES:
        allowed = [n for n, r in OPTIMIZERS.items() if r.update in POPULATION_UPDATES]
        return f"optim.name {optim.name!r} is not supported; use {', '.join(allowed)}"
    if optim.loss != "cross_entropy":
        return f"optim.loss {optim.loss!r} is not supported; use cross_entropy"
    if optim.orthogonal_grad:
        return "optim.orthogonal_grad is not supported; set it to false"
    if optim.weight_norm_clip:
        return "optim.weight_norm_clip is not supported; set it to 0"
    return None


class PopulationOptimizer:
    """State and update rule for the live members' rows of a flat parameter tensor.

    Args:
        optims: each member's OptimConfig (same name, eps, no_decay, Grokfast kind/window).
        noises: each member's trials.filters.GradientNoise (its seeded generator and sigma).
    Raises:
        ValueError: the name is not in trials.choices.OPTIMIZERS (one line, allowed names).
    """

    def __init__(self, optims: list, noises: list, layout: Layout, device: torch.device):
        first = optims[0]
        self.rule = optimizer_rule(first.name)
        reason = unsupported_methods(first)
        if reason:  # never train another rule than the one named
            raise ValueError(f"population: {reason}")
        self.name, self.eps, self.layout = first.name, first.eps, layout
        self.grokfast_kind, self.window = first.grokfast.kind, first.grokfast.window
        self.clip_to = first.grad_clip
        self.exact = device.type == "cpu"  # reductions as the single run does them (K small ops)

        def column(values) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float64, device=device)

        self.hp = {k: column([getattr(o, k) for o in optims]) for k in PER_MEMBER}
        # Host copies decide which terms run at all, without a device sync per step.
        self.decays = [o.weight_decay != 0 for o in optims]
        self.momenta = [o.momentum != 0 for o in optims]
        self.hp["gf_alpha"] = column([o.grokfast.alpha for o in optims])
        self.hp["gf_lamb"] = column([o.grokfast.lamb for o in optims])
        self.noises = list(noises)
        self.t = 0
        self.exp_avg: torch.Tensor | None = None
        self.exp_avg_sq: torch.Tensor | None = None
        self.ema: torch.Tensor | None = None
        self.ma_window: list[torch.Tensor] = []
        self.ma_total: torch.Tensor | None = None

    def keep(self, members: list[int]) -> None:
        """Keep only the members at these row positions (a stopped member is dropped)."""
        index = torch.tensor(members, dtype=torch.long, device=self.hp["lr"].device)  # [] when all stopped
        self.hp = {k: v[index] for k, v in self.hp.items()}
        self.noises = [self.noises[i] for i in members]
        self.decays = [self.decays[i] for i in members]
        self.momenta = [self.momenta[i] for i in members]
        for name in ("exp_avg", "exp_avg_sq", "ema", "ma_total"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name)[index])
        self.ma_window = [w[index] for w in self.ma_window]

    def state_dict(self) -> dict:
        """The live members' buffers, noise generators and step count (hyperparameters come from
        the configs, so a restored PBT clone trains with its own)."""
        return {"t": self.t, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "ema": self.ema,
                "ma_window": self.ma_window, "ma_total": self.ma_total,
                "noise": [n.state_dict() for n in self.noises]}

    def load_state_dict(self, state: dict) -> None:
        """Restore state_dict() onto an optimizer already cut down to the same live members."""
        device = self.hp["lr"].device
        self.t = int(state["t"])
        for name in ("exp_avg", "exp_avg_sq", "ema", "ma_total"):
            setattr(self, name, None if state[name] is None else state[name].to(device))
        self.ma_window = [w.to(device) for w in state["ma_window"]]
        for noise, noise_state in zip(self.noises, state["noise"], strict=True):
            noise.load_state_dict(noise_state)

    @staticmethod
    def _col(x64: torch.Tensor) -> torch.Tensor:
        return x64.float().unsqueeze(1)  # (K, 1) float32

    @torch.no_grad()
    def apply_filters(self, grad: torch.Tensor, step: int) -> None:
        """Grokfast, then gradient noise, in place on grad (K, P) (then `clip`, in trials.train's order)."""
        lamb = self.hp["gf_lamb"]
        if self.grokfast_kind == "ema":
            if self.ema is None:
                self.ema = grad.clone()  # Grokfast starts mu_0 = g_0
            else:
                self.ema.lerp_(grad, self._col(1.0 - self.hp["gf_alpha"]))
            grad.addcmul_(self.ema, self._col(lamb))
        elif self.grokfast_kind == "ma":
            if self.ma_total is None:
                self.ma_total = torch.zeros_like(grad)
            self.ma_window.append(grad.clone())
            self.ma_total.add_(self.ma_window[-1])
            if len(self.ma_window) > self.window:
                self.ma_total.sub_(self.ma_window.pop(0))
            if len(self.ma_window) == self.window:
                grad.addcmul_(self.ma_total, self._col(lamb / self.window))
        self._add_noise(grad, step)

    @torch.no_grad()
    def clip(self, grad: torch.Tensor) -> None:
        """Clip each member's global gradient norm to grad_clip in place, as clip_grad_norm_."""
        if self.clip_to <= 0:
            return
        if self.exact:  # clip_grad_norm_'s own reduction (parameters in model order), member by member
            order = self.layout.named_order
            norms = []
            for row in grad.unbind(0):
                parts = row.split(self.layout.sizes)
                norms.append(torch.linalg.vector_norm(torch.stack(torch._foreach_norm([parts[i] for i in order]))))
            norms = torch.stack(norms)
        else:  # one batched reduction per parameter
            parts = split_rows(grad, self.layout)
            norms = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dim=1) for g in parts]), dim=0)
        coef = (self.clip_to / (norms + 1e-6)).clamp(max=1.0)  # as torch.nn.utils.clip_grad_norm_
        grad.mul_(coef.unsqueeze(1))

    def _add_noise(self, grad: torch.Tensor, step: int) -> None:
        """Each member draws from its own generator, parameter by parameter, like GradientNoise."""
        for k, noise in enumerate(self.noises):
            if noise.cfg.eta == 0:
                continue
            draws = [torch.randn(s, generator=noise.generator, device=grad.device, dtype=grad.dtype).reshape(-1)
                     for s in self.layout.shapes]
            grad[k].add_(torch.cat(draws), alpha=noise.sigma(step))

    @torch.no_grad()
    def step(self, params: torch.Tensor, grad: torch.Tensor, lr_factor: float) -> None:
        """One update of params (K, P) in place; the members' lr is their cfg lr times lr_factor."""
        self.t += 1
        lr = self.hp["lr"] * lr_factor  # (K,) float64, as cfg.optim.lr * lr_multiplier(...)
        wd = self.hp["weight_decay"]
        D = self.layout.n_decay
        if D and any(self.decays):
            grad = self._decay(params, grad, lr, wd, D)
        self.UPDATES[self.rule.update](self, params, grad, lr)  # unsupported_methods refused the rest

    def _decay(self, p, g, lr, wd, D) -> torch.Tensor:
        """Weight decay of the decayed columns [0, D) by the rule; returns the gradient to use."""
        if self.rule.decay == "decoupled":
            p[:, :D].mul_(self._col(1.0 - lr * wd))  # p <- p (1 - lr wd)
            return g
        g = g.clone()
        g[:, :D].addcmul_(p[:, :D], self._col(wd))  # L2 penalty in the gradient
        return g

    def _adam(self, p, g, lr) -> None:
        b1, b2, t = self.hp["beta1"], self.hp["beta2"], self.t
        if self.exp_avg is None:
            self.exp_avg, self.exp_avg_sq = torch.zeros_like(p), torch.zeros_like(p)
        m, v = self.exp_avg, self.exp_avg_sq
        m.lerp_(g, self._col(1.0 - b1))  # m <- b1 m + (1 - b1) g
        v.mul_(self._col(b2)).addcmul_(g * self._col(1.0 - b2), g)  # v <- b2 v + (1 - b2) g^2
        denom = v.sqrt().div_(self._col(torch.sqrt(1.0 - b2**t))).add_(self.eps)  # sqrt(v / (1 - b2^t)) + eps
        p.addcdiv_(m * self._col(-lr / (1.0 - b1**t)), denom)  # CPU addcdiv computes p + (value m) / denom

    def _sgd(self, p, g, lr) -> None:
        mom = self.hp["momentum"]
        if any(self.momenta):
            if self.exp_avg is None:
                self.exp_avg = g.clone()  # torch.optim.SGD starts the buffer at g
            else:
                self.exp_avg.mul_(self._col(mom)).add_(g)
            g = self.exp_avg
        p.addcmul_(g, self._col(-lr))

    UPDATES = {"adam": _adam, "sgd": _sgd}
    """The update families (trials.choices.UPDATES) a population runs, -> their method; the
    others (lion, muon) are refused in one line by unsupported_methods, never run as another."""


POPULATION_UPDATES = tuple(PopulationOptimizer.UPDATES)
assert set(POPULATION_UPDATES) <= set(UPDATES)
