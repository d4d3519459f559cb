"""The names `trials` accepts for optimizers, architectures, activations, norms, schedules and
population modes: one table each, torch-free.

trials/config.py validates `optim.name`, `optim.schedule`, `model.arch`, `model.activation` and
`model.norm` against these keys (orchestrator's search.population_vectorize against VECTORIZE),
so an unknown name is refused at validation in one line and never falls through to a default.
The tables that build things are keyed by the same names:

- OPTIMIZERS (here: the update rules are plain data) drives trials.optim.Optimizer, which steps
  one model or K stacked members with the same code;
- trials.model.ACTIVATION_MODULES, NORM_MODULES and ARCH_MODULES build the torch modules for
  ACTIVATIONS, NORMS and ARCHS (trials.model checks at import that its tables have exactly
  these keys).

Adding an optimizer whose rule is an existing (update, decay) pair is one line in OPTIMIZERS; a
new update family is that line (naming the family) plus one method in trials.optim.Optimizer and
its entry in Optimizer.UPDATES, written with trials.scalars so that it also steps stacked
members. Adding an activation or a norm is one name here plus one builder line in trials.model.
"""

from __future__ import annotations

from dataclasses import dataclass

DECAYS = ("decoupled", "l2")


@dataclass(frozen=True)
class OptimizerRule:
    """What an optimizer name means.

    update: "adam" (bias-corrected first and second moments, Kingma & Ba 2015), "sgd" (plain
        or heavy-ball momentum, torch.optim.SGD's convention: the buffer starts at g), "lion"
        (sign of an interpolated momentum, Chen et al. 2023) or "muon" (Newton-Schulz
        orthogonalised Nesterov momentum on hidden weight matrices, Adam on the rest; Jordan
        et al. 2024). lion and muon live in trials.optim_extra.
    decay: "decoupled" (p <- p (1 - lr wd) before the update; Loshchilov & Hutter 2019) or "l2"
        (wd p added to the gradient, so Adam rescales it).
    """

    update: str
    decay: str


OPTIMIZERS: dict[str, OptimizerRule] = {
    "adamw": OptimizerRule(update="adam", decay="decoupled"),
    "adam": OptimizerRule(update="adam", decay="l2"),
    "sgd": OptimizerRule(update="sgd", decay="l2"),
    "lion": OptimizerRule(update="lion", decay="decoupled"),
    "muon": OptimizerRule(update="muon", decay="decoupled"),
}
"""Optimizer name -> its rule. The first is the config default."""

UPDATES = tuple(dict.fromkeys(rule.update for rule in OPTIMIZERS.values()))
"""The update families the names use; trials.optim.Optimizer.UPDATES has one method for each
(checked at import)."""

ARCHS = ("transformer", "mlp")
"""Model architectures (the first is the default). Built by trials.model.ARCH_MODULES."""

INITS = ("normal", "xavier", "pytorch")
"""Initial weights (the first is the default): GPT-style N(0, 0.02), Xavier-uniform, or each torch
module's own default (nn.Embedding N(0, 1), nn.Linear Kaiming-uniform). Applied by
trials.model.init_weights."""

ACTIVATIONS = ("gelu", "relu", "swiglu")
"""Feed-forward (transformer) and hidden-layer (MLP) nonlinearities; swiglu = silu(a) * b over a
doubled up-projection (Shazeer 2020). Built by trials.model.ACTIVATION_MODULES."""

NORMS = ("layernorm", "rmsnorm", "none")
"""Normalisation layers, computed in float32. Built by trials.model.NORM_MODULES."""

SCHEDULES = ("constant", "cosine", "linear", "inverse_sqrt", "one_cycle")
"""Learning-rate schedules (trials.optim.lr_multiplier)."""

LOSSES = ("cross_entropy", "stablemax")
"""Training losses (trials.losses.training_loss); stablemax is Prieto et al. 2025's StableMax
cross-entropy. The first is the default."""

WEIGHT_NORM_CLIP_MODES = ("row", "matrix")
"""optim.weight_norm_clip_mode (trials.optim_extra.clip_weight_norms_): each row of every 2-D
weight to l2 norm <= c, or each whole matrix (Frobenius norm). The first is the default."""

VECTORIZE = ("auto", "loop", "vmap")
"""How a population steps its members (trials.train): loop (each member its own modules, bitwise
its lone run), vmap (stacked parameters, batched kernels: trials.stacked) or auto (vmap on CUDA,
loop elsewhere). The first is the default: trials.train.train_population and the config's
search.population_vectorize both take it from here, so they cannot disagree."""


def resolve_vectorize(vectorize: str, device_type: str) -> str:
    """"loop" or "vmap": what `auto` means on this kind of device; other names pass through."""
    if vectorize == "auto":
        return "vmap" if device_type == "cuda" else "loop"
    return vectorize

assert all(r.decay in DECAYS for r in OPTIMIZERS.values())


def optimizer_rule(name: str) -> OptimizerRule:
    """The rule for an optimizer name.

    Args:
        name: an OptimConfig.name.
    Returns:
        Its OptimizerRule.
    Raises:
        ValueError: one line naming the value and the allowed names (never a fallback).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optim.name: got {name!r}, allowed: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


__all__ = ["ACTIVATIONS", "ARCHS", "DECAYS", "LOSSES", "NORMS", "OPTIMIZERS", "SCHEDULES", "UPDATES", "VECTORIZE",
           "WEIGHT_NORM_CLIP_MODES", "OptimizerRule", "optimizer_rule", "resolve_vectorize"]
