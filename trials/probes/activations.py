"""Activation statistics on a fixed probe batch, captured with forward hooks that live only for
the duration of one probe forward pass (nothing stays registered between probes).

Layers (names as in model.named_modules()):
- transformer: `blocks.i.ff` (kind "hidden": the feed-forward units after the nonlinearity, i.e.
  the input of blocks.i.ff.down, which also covers swiglu) and `blocks.i` (kind "resid": the
  residual stream after the block);
- mlp: every activation module of `body` (kind "hidden").
Statistics are taken over every row and position of the batch (all T positions, also in
the last block, which the training forward runs on the answer position only).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from trials.model import ACTIVATION_MODULES

# Every activation trials.model builds (its registry, so a new one is probed too), plus common ones.
ACTIVATIONS = (*ACTIVATION_MODULES.values(), nn.SiLU, nn.Tanh)


def activation_layers(model: nn.Module) -> dict[str, tuple[nn.Module, str, str]]:
    """name -> (module to hook, "pre" (its input) or "post" (its output), kind hidden|resid)."""
    layers: dict[str, tuple[nn.Module, str, str]] = {}
    blocks = getattr(model, "blocks", None)
    if blocks is not None:
        for i, block in enumerate(blocks):
            layers[f"blocks.{i}.ff"] = (block.ff.down, "pre", "hidden")
            layers[f"blocks.{i}"] = (block, "post", "resid")
        return layers
    for name, module in model.named_modules():
        if isinstance(module, ACTIVATIONS):
            layers[name] = (module, "post", "hidden")
    return layers


@contextlib.contextmanager
def capture(layers: dict[str, tuple[nn.Module, str, str]]):
    """Register hooks that store each layer's activation in the yielded dict; always removed."""
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name, (module, where, _) in layers.items():
        if where == "pre":
            handles.append(module.register_forward_pre_hook(
                lambda mod, args, name=name: store.__setitem__(name, args[0].detach())))
        else:
            handles.append(module.register_forward_hook(
                lambda mod, args, out, name=name: store.__setitem__(name, out.detach())))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def summarize(act: torch.Tensor, threshold: float) -> dict[str, torch.Tensor]:
    """Statistics of one layer's activations (..., units).

    Returns:
        mean, std (over every element), dead_frac (share of units never above `threshold`),
        unit_mean (units,), unit_active (units,): share of rows where the unit is above threshold.
    """
    rows = act.float().reshape(-1, act.shape[-1])  # (B*T, units)
    above = rows > threshold
    return {"mean": rows.mean(), "std": rows.std(unbiased=False),
            "dead_frac": (~above.any(0)).float().mean(),
            "unit_mean": rows.mean(0), "unit_active": above.float().mean(0)}


@torch.no_grad()
def activation_stats(model: nn.Module, x: torch.Tensor, threshold: float = 0.0) -> dict[str, dict]:
    """Run `x` through `model` (eval mode) and summarise every probed layer.

    Returns:
        layer name -> summarize(...) plus "kind".
    """
    layers = activation_layers(model)
    was_training = model.training
    model.eval()
    try:
        with capture(layers) as store:
            # a transformer scores every position here (its last block otherwise skips all but one)
            model(x, last_only=False) if hasattr(model, "blocks") else model(x)
    finally:
        model.train(was_training)
    return {name: {**summarize(store[name], threshold), "kind": layers[name][2]} for name in layers if name in store}
