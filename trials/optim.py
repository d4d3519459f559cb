"""Optimisers and learning-rate schedules.

The optimizers of trials.choices.OPTIMIZERS (AdamW: decoupled weight decay, Loshchilov & Hutter
2019; Adam: L2 added to the gradient; SGD with momentum; Lion; Muon with AdamW for the
non-matrix parameters), with ⊥Grad before and weight-norm clipping after any of them
(trials.optim_extra has those formulas), dispatched on each name's rule from that one table (an
unknown name is refused, never run as another). Written with torch's multi-tensor `_foreach_`
kernels: one kernel launch per operation over all parameters, no host syncs, and state that is
plain tensors (checkpointable with weights_only=True). Tests check each step against torch.optim.

One class for one model and for K members stacked along dim 0 (trials.stacked): the
hyperparameters (`HPARAMS`) are floats for one model and (K,) tensors for a stack, and every
formula is written once with trials.scalars, which takes either.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from trials import scalars
from trials.choices import SCHEDULES, UPDATES, optimizer_rule
from trials.config import OptimConfig
from trials.optim_extra import clip_weight_norms_, lion_update, muon_update, orthogonal_grads
from trials.scalars import Scalar, column, is_zero, per_member

HPARAMS = ("lr", "weight_decay", "beta1", "beta2", "eps", "momentum", "muon_lr", "muon_momentum",
           "weight_norm_clip", "grad_clip")
"""The OptimConfig scalars each member of a stack may set for itself (trials.stacked)."""


def hparams(cfgs: list[OptimConfig], device: torch.device | None = None) -> dict[str, Scalar]:
    """The HPARAMS of one OptimConfig as floats (device None), or of K as (K,) float32 tensors."""
    if device is None:
        (cfg,) = cfgs
        return {k: float(getattr(cfg, k)) for k in HPARAMS}
    return {k: torch.tensor([float(getattr(c, k)) for c in cfgs], dtype=torch.float32, device=device)
            for k in HPARAMS}


def param_groups(model: nn.Module, no_decay: list[str]) -> list[dict]:
    """Split parameters into a decayed group and a no-decay group.

    Args:
        no_decay: any of "bias" (1-d bias vectors), "norm" (LayerNorm/RMSNorm weights),
            "embedding" (token and position embeddings).
    Returns:
        [{"params": [...], "names": [...], "decay": True}, {..., "decay": False}]
    """
    norm_types = (nn.LayerNorm,)
    exempt: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, norm_types) or type(module).__name__ == "RMSNorm"
        for pname, p in module.named_parameters(recurse=False):
            if ("norm" in no_decay and is_norm) or ("embedding" in no_decay and isinstance(module, nn.Embedding)):
                exempt.add(id(p))
            elif "bias" in no_decay and pname == "bias":
                exempt.add(id(p))
    groups = {True: {"params": [], "names": [], "decay": True}, False: {"params": [], "names": [], "decay": False}}
    for name, p in model.named_parameters():
        group = groups[id(p) not in exempt]
        group["params"].append(p)
        group["names"].append(name)
    return [g for g in groups.values() if g["params"]]


class Optimizer(torch.optim.Optimizer):
    """The optimizer cfg.name names (trials.choices.OPTIMIZERS) over parameter groups.

    Set the learning rate with `set_lr` before each `step()`. A torch.optim.Optimizer subclass,
    so torch.amp.GradScaler can unscale and skip its steps.

    Args:
        groups: param_groups(...) of one model, or of stacked (K, *shape) tensors.
        cfg: the OptimConfig (its name, loss and switches; its scalars unless `hp` is given).
        hidden: names of the matrices Muon updates.
        hp: per-member scalars (hparams(cfgs, device)) for stacked tensors; None: cfg's floats.

    Raises:
        ValueError: cfg.name is not in trials.choices.OPTIMIZERS (one line, allowed names).
    """

    def __init__(self, groups: list[dict], cfg: OptimConfig, hidden: set[str] | None = None,
                 hp: dict[str, Scalar] | None = None):
        self.rule = optimizer_rule(cfg.name)
        self.hp = hp if hp is not None else hparams([cfg])
        self.stacked = isinstance(self.hp["lr"], torch.Tensor)
        # Muon's matrices, by identity (names are only known here); the rest get AdamW
        self.hidden = {id(p) for g in groups for n, p in zip(g["names"], g["params"]) if n in (hidden or ())}
        defaults = dict(lr=cfg.lr, weight_decay=cfg.weight_decay, t=0)
        torch_groups = [{"params": g["params"], "names": g["names"], "decay": g["decay"]} for g in groups]
        super().__init__(torch_groups, defaults)
        self.cfg = cfg
        self._set_decay()

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim API
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            group["t"] += 1
            for p in params:
                if not self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
                    if self._second_moment(p):
                        self.state[p]["exp_avg_sq"] = torch.zeros_like(p)
            grads = [p.grad for p in params]
            if self.cfg.orthogonal_grad:  # ⊥Grad wraps whichever update follows
                grads = orthogonal_grads(params, grads, self.stacked)
            self.UPDATES[self.rule.update](self, params, grads, group)  # the rule's family, by name
            clip_weight_norms_(params, self.hp["weight_norm_clip"], self.cfg.weight_norm_clip_mode, self.stacked)

    def _second_moment(self, p) -> bool:
        return self.rule.update == "adam" or (self.rule.update == "muon" and id(p) not in self.hidden)

    def _decay(self, params, grads, group):
        """Weight decay by the rule: decoupled (in place on params) or L2 (returns new grads)."""
        lr, wd = group["lr"], group["weight_decay"]
        if is_zero(wd):
            return grads
        if self.rule.decay == "decoupled":
            torch._foreach_mul_(params, per_member(1.0 - lr * wd, params))  # p <- p (1 - lr wd)
            return grads
        return scalars.axpy(grads, params, wd)  # L2 penalty in the gradient

    def _moments(self, params, key: str) -> list[torch.Tensor]:
        return [self.state[p][key] for p in params]

    def _adam(self, params, grads, group) -> None:
        hp, t = self.hp, group["t"]
        b1, b2, eps, lr = hp["beta1"], hp["beta2"], hp["eps"], group["lr"]
        m, v = self._moments(params, "exp_avg"), self._moments(params, "exp_avg_sq")
        grads = self._decay(params, grads, group)
        torch._foreach_lerp_(m, grads, per_member(1.0 - b1, grads))  # m <- b1 m + (1 - b1) g
        torch._foreach_mul_(v, per_member(b2, v))
        scalars.addcmul_(v, grads, grads, 1.0 - b2)  # v <- b2 v + (1 - b2) g^2
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, per_member(scalars.sqrt(1.0 - b2**t), denom))
        torch._foreach_add_(denom, per_member(eps, denom))  # sqrt(v / (1 - b2^t)) + eps
        scalars.addcdiv_(params, m, denom, -lr / (1.0 - b1**t))

    def _lion(self, params, grads, group) -> None:
        self._decay(params, grads, group)  # decoupled: w <- w (1 - lr wd), then w <- w - lr sign(c)
        signs = lion_update(grads, self._moments(params, "exp_avg"), self.hp["beta1"], self.hp["beta2"])
        scalars.axpy_(params, signs, -group["lr"])

    def _muon(self, params, grads, group) -> None:
        """Muon on the hidden matrices at muon_lr (times the schedule), AdamW on the rest."""
        rest = [i for i, p in enumerate(params) if id(p) not in self.hidden]
        if rest:
            self._adam([params[i] for i in rest], [grads[i] for i in rest], group)
        lr = group["lr"] * self.hp["muon_lr"] / self.hp["lr"]  # group["lr"] is cfg.lr times the schedule
        wd = group["weight_decay"]
        for p, g in zip(params, grads):
            if id(p) in self.hidden:
                update = muon_update(g, self.state[p]["exp_avg"], column(self.hp["muon_momentum"], g))
                if not is_zero(wd):
                    p.mul_(column(1.0 - lr * wd, p))
                scalars.axpy_([p], [update], -lr)

    def _sgd(self, params, grads, group) -> None:
        lr = group["lr"]
        buf = self._moments(params, "exp_avg")
        grads = self._decay(params, grads, group)
        if not is_zero(self.hp["momentum"]):
            if group["t"] == 1:
                torch._foreach_copy_(buf, grads)  # torch.optim.SGD starts the buffer at g
            else:
                torch._foreach_mul_(buf, per_member(self.hp["momentum"], buf))
                torch._foreach_add_(buf, grads)
            grads = buf
        scalars.axpy_(params, grads, -lr)

    UPDATES = {"adam": _adam, "sgd": _sgd, "lion": _lion, "muon": _muon}
    """Update family (trials.choices.UPDATES) -> its method; the rule of the name picks one."""

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore moments and step counts; hyperparameters stay those of this run's config.

        A resumed or PBT-perturbed trial may change lr (set every step) or weight decay: the
        checkpoint's values must not override the new config.
        """
        super().load_state_dict(state_dict)
        self._set_decay()

    def _set_decay(self) -> None:
        for group in self.param_groups:
            group["weight_decay"] = self.hp["weight_decay"] if group.get("decay", True) else 0.0

    def set_lr(self, lr: Scalar) -> None:
        """This step's learning rate: a float, or a (K,) tensor for stacked members."""
        for group in self.param_groups:
            group["lr"] = lr


assert set(Optimizer.UPDATES) == set(UPDATES), "one method per update family of trials.choices"


def hidden_matrices(model: nn.Module) -> set[str]:
    """Names of the 2-D weights Muon updates: all but embeddings and the unembedding `head`."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head = getattr(model, "head", None)
    skip = embeddings | ({id(head.weight)} if isinstance(head, nn.Linear) else set())
    return {n for n, p in model.named_parameters() if p.ndim == 2 and id(p) not in skip}


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> Optimizer:
    """The Optimizer over param_groups(model, cfg.no_decay) (Muon: hidden_matrices(model))."""
    return Optimizer(param_groups(model, cfg.no_decay), cfg, hidden_matrices(model))


@torch.no_grad()
def clip_grad_norms_(params: list[torch.Tensor], max_norm: Scalar) -> torch.Tensor | None:
    """Clip the global L2 norm of the gradients to max_norm (0: off), per member when stacked.

    A float: torch.nn.utils.clip_grad_norm_ itself. A (K,) tensor: each member's norm over its
    slices of every gradient, the same coefficient max_norm / (norm + 1e-6) capped at 1, and
    members with max_norm 0 left alone.
    """
    if is_zero(max_norm):
        return None
    if not isinstance(max_norm, torch.Tensor):
        return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.linalg.vector_norm(torch.stack([g.flatten(1).norm(dim=1) for g in grads]), dim=0)  # (K,)
    coef = torch.where(max_norm > 0, (max_norm / (norms + 1e-6)).clamp(max=1.0), torch.ones_like(norms))
    torch._foreach_mul_(grads, per_member(coef, grads))
    return norms


def lr_multiplier(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """The schedule's factor on cfg.lr for optimizer step `step` (0-based).

    constant/cosine/linear/inverse_sqrt start with a linear warmup 0 -> 1 over warmup_steps;
    cosine and linear then decay to min_lr_ratio at total_steps; one_cycle matches
    torch.optim.lr_scheduler.OneCycleLR (cosine anneal, div_factor 25, final_div_factor 1e4).

    inverse_sqrt is Vaswani et al. 2017's rate d_model^-0.5 min(s^-0.5, s warmup^-1.5), with
    s = step + 1, divided by its peak d_model^-0.5 warmup^-0.5 so that the peak (at s = warmup)
    is cfg.lr: min(s / warmup, sqrt(warmup / s)). The normalisation cancels the paper's
    d_model^-0.5 factor, so the model width does not change the rate here; the paper's exact
    rates are lr = d_model^-0.5 warmup^-0.5 (7.0e-4 for d_model 512, warmup 4000). With
    warmup_steps 0 it is s^-0.5.

    Args:
        step: optimizer steps done before this one.
        cfg: the schedule, warmup_steps, min_lr_ratio and one_cycle_pct.
        total_steps: the run's budget (train.steps).
    Returns:
        The factor (cfg.lr times it is this step's learning rate).
    Raises:
        ValueError: cfg.schedule is not in trials.choices.SCHEDULES.
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule: got {cfg.schedule!r}, allowed: {', '.join(SCHEDULES)}")
    if cfg.schedule == "one_cycle":
        return _one_cycle(step, cfg.one_cycle_pct, total_steps)
    warm = cfg.warmup_steps
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "inverse_sqrt":
        return math.sqrt(max(warm, 1) / (step + 1))
    progress = min(1.0, (step - warm) / max(1, total_steps - warm))
    floor = cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (1.0 - floor) * (1.0 - progress)  # linear


def _one_cycle(step: int, pct: float, total: int, div: float = 25.0, final_div: float = 1e4) -> float:
    up_end = float(pct * total) - 1
    down_end = float(total) - 1
    start, peak, end = 1.0 / div, 1.0, 1.0 / (div * final_div)

    def cos_anneal(a: float, b: float, frac: float) -> float:
        return b + (a - b) / 2.0 * (math.cos(math.pi * frac) + 1)

    if step <= up_end:
        return cos_anneal(start, peak, step / up_end if up_end > 0 else 1.0)
    return cos_anneal(peak, end, min(1.0, (step - up_end) / (down_end - up_end)))
