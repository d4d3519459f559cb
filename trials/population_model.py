"""K models of one architecture as one flat (K, P) parameter tensor, run with torch.func.

The members' parameters live in one leaf tensor `flat` (K, P), one row per member, columns in
the optimizer's parameter-group order (decayed parameters first, then the no-decay group), so
the whole optimizer is a handful of (K, P) tensor ops with per-member (K, 1) coefficients and
`flat.grad` arrives in one piece (the backward of `split_with_sizes` is one `cat`). The model
runs through `torch.func.functional_call` on views of `flat`, vectorised over members by
`torch.func.vmap` (or, with vectorize="loop", called once per member on its row); the loss is
the sum of the members' losses, whose gradient with respect to a member's row is that member's
own gradient (members share nothing).

Two torch 2.13 vmap pitfalls are worked around here without touching trials/model.py:
- `F.linear` on a non-contiguous 3-D input (the last-position query `x[:, -1:]`) under vmap
  takes a broadcasting matmul path that copies the weight once per example (60-100x slower);
  `_ContiguousLinear` makes such inputs contiguous first (exact: same values).
- CPU `scaled_dot_product_attention` has no batching rule (a per-member loop with a warning);
  on CPU the math backend is used, which vmap batches (differs from the fused CPU kernel by
  float rounding, ~1e-7). On CUDA the flash/efficient kernels have batching rules.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode

from trials.choices import VECTORIZE, resolve_vectorize
from trials.metrics import grouped_norms
from trials.optim import param_groups


@dataclass
class Layout:
    """Where each parameter lives in a member's row of the flat tensor."""

    names: list[str]
    shapes: list[torch.Size]
    sizes: list[int]
    n_decay: int
    """Columns [0, n_decay) are the weight-decayed group."""
    named_order: list[int]
    """Indices into `names` in model.named_parameters() order (for norms like trials.metrics)."""


def build_layout(model: nn.Module, no_decay: list[str]) -> Layout:
    """The flat layout of `model`'s parameters in trials.optim.param_groups order."""
    names, shapes, n_decay = [], [], 0
    by_name = dict(model.named_parameters())
    for group in param_groups(model, no_decay):
        for name in group["names"]:
            names.append(name)
            shapes.append(by_name[name].shape)
            if group["decay"]:
                n_decay += by_name[name].numel()
    position = {n: i for i, n in enumerate(names)}
    return Layout(names, shapes, [s.numel() for s in shapes], n_decay,
                  [position[n] for n, _ in model.named_parameters()])


def flatten_members(models: list[nn.Module], layout: Layout, device) -> torch.Tensor:
    """(K, P) float32 tensor holding each member's parameters in layout order."""
    rows = []
    for model in models:
        by_name = dict(model.named_parameters())
        rows.append(torch.cat([by_name[n].detach().reshape(-1) for n in layout.names]))
    return torch.stack(rows).to(device)


def split_rows(flat: torch.Tensor, layout: Layout) -> list[torch.Tensor]:
    """Per-parameter views (K, n_i) of a (K, P) tensor."""
    return list(flat.split(layout.sizes, dim=1))


def member_norms(flat: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total and per-layer L2 norms per member, (K,) each: trials.metrics.grouped_norms per row.

    Member by member (K small reductions per eval), so each value is exactly the one its
    separate run reports.
    """
    totals, layers = [], []
    for row in flat.unbind(0):
        parts = row.split(layout.sizes)
        total, per_layer = grouped_norms([(layout.names[i], parts[i]) for i in layout.named_order])
        totals.append(total)
        layers.append(per_layer)
    return torch.stack(totals), {k: torch.stack([pl[k] for pl in layers]) for k in layers[0]}


class _ContiguousLinear(TorchFunctionMode):
    """Make F.linear inputs contiguous (see the module docstring: a vmap slow path)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.linear and not args[0].is_contiguous():
            args = (args[0].contiguous(), *args[1:])
        return func(*args, **(kwargs or {}))


class StackedModel:
    """Runs one architecture for K members given their flat parameters.

    Args:
        base: a model of the architecture (its parameter values are not used, its buffers are).
        vectorize: one of trials.choices.VECTORIZE, "auto" by default (vmap on CUDA, loop
            elsewhere: trials.choices.resolve_vectorize). "vmap" (torch.func.vmap
            over members: one batched kernel per op, which pays off where per-op overhead
            dominates, as on GPUs and for small models) or "loop" (functional_call once per
            member on its row: each member runs exactly the kernels of its separate run, so its
            curve is bitwise that run's; wins on CPUs for models large enough to be
            matmul-bound, where CPU bmm is slower than a loop of mm).
        attention: with vmap, "auto" (math backend on CPU, default kernels elsewhere), "math"
            or "native".
    """

    def __init__(self, base: nn.Module, layout: Layout, autocast, vectorize: str = VECTORIZE[0],
                 attention: str = "auto"):
        if vectorize not in VECTORIZE:
            raise ValueError(f"vectorize: got {vectorize!r}, allowed: {', '.join(VECTORIZE)}")
        if attention not in ("auto", "math", "native"):
            raise ValueError(f"attention: got {attention!r}, allowed: auto, math, native")
        device = next(base.parameters()).device
        vectorize = resolve_vectorize(vectorize, device.type)
        self.base, self.layout, self.autocast, self.loop = base, layout, autocast, vectorize == "loop"
        if not self.loop:  # prefix sharing finds distinct rows with torch.unique, which vmap cannot batch
            base.share_prefixes = False
        self.math_attention = attention == "math" or (attention == "auto" and device.type == "cpu")
        self._vmapped = vmap(self._member_logits, in_dims=(0, 0), randomness="different")

    def params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views (K, *shape) of the flat (K, P) tensor, by parameter name."""
        views = split_rows(flat, self.layout)  # (K, n_i) each
        return {n: t.view(-1, *s) for n, t, s in zip(self.layout.names, views, self.layout.shapes)}

    def _row_params(self, row: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of one member's row (P,), by parameter name."""
        return {n: t.view(s) for n, t, s in zip(self.layout.names, row.split(self.layout.sizes), self.layout.shapes)}

    def _member_logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, params, (x,))  # (B, V)

    def _contexts(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        if not self.loop:
            stack.enter_context(_ContiguousLinear())
            if self.math_attention:
                stack.enter_context(sdpa_kernel(SDPBackend.MATH))
            # A kernel without a batching rule makes vmap fall back to a per-member loop (correct,
            # slow) and warn: the warning is left to show, as the slowdown's only trace.
        stack.enter_context(self.autocast())
        return stack

    def _per_member(self, flat: torch.Tensor, x: torch.Tensor):
        """(member's logits (B, V), its row index) for each member, in loop mode."""
        for k, row in enumerate(flat.unbind(0)):  # one UnbindBackward: grads land in flat's rows
            yield functional_call(self.base, self._row_params(row), (x[k],)), k

    def logits(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Answer logits (K, B, V) for per-member inputs x (K, B, T)."""
        with self._contexts():
            if self.loop:
                return torch.stack([logits for logits, _ in self._per_member(flat, x)])
            return self._vmapped(self.params(flat), x)

    def losses(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        """Per-member mean cross-entropy (K,) of inputs x (K, B, T) against answers y (K, B)."""
        if self.loop:  # the separate run's own loss expression, member by member
            with self._contexts():
                return torch.stack([F.cross_entropy(logits.float(), y[k], label_smoothing=label_smoothing)
                                    for logits, k in self._per_member(flat, x)])
        logits = self.logits(flat, x).float()  # (K, B, V)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=label_smoothing, reduction="none")
        return loss.view(y.shape).mean(1)  # (K,)

    def _chunk_scores(self, flat, xb, yb) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed loss (K,) and hits (K, b) of one eval chunk."""
        if self.loop:
            with self._contexts():
                sums, hits = [], []
                for logits, k in self._per_member(flat, xb):
                    sums.append(F.cross_entropy(logits.float(), yb[k], reduction="sum"))
                    hits.append(logits.argmax(-1) == yb[k])
                return torch.stack(sums), torch.stack(hits)
        logits = self.logits(flat, xb).float()  # (K, b, V)
        loss = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
        return loss.view(yb.shape).sum(1), logits.argmax(-1) == yb

    @torch.no_grad()
    def score(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, class_index: torch.Tensor | None,
              n_classes: int, chunk: int) -> dict[str, torch.Tensor]:
        """Per-member loss and accuracy over a whole split, like trials.metrics.score_split.

        Args:
            x: (K, N, T) inputs; y: (K, N) answers; class_index: (V,) token -> class or None;
            chunk: examples per member per forward pass.
        Returns:
            {"loss": (K,), "acc": (K,), ["per_class": (K, n_classes)]}.
        """
        was_training = self.base.training
        self.base.eval()
        K, N = y.shape
        loss_sum = torch.zeros(K, device=y.device)
        hits = []
        for i in range(0, N, chunk):
            sums, chunk_hits = self._chunk_scores(flat, x[:, i : i + chunk], y[:, i : i + chunk])
            loss_sum += sums
            hits.append(chunk_hits)  # (K, b)
        self.base.train(was_training)
        correct = torch.cat(hits, dim=1).float()  # (K, N)
        out = {"loss": loss_sum / N, "acc": correct.mean(1)}
        if class_index is not None:
            cls = class_index[y]  # (K, N)
            totals = torch.zeros(K, n_classes, device=y.device).scatter_add_(1, cls, torch.ones_like(correct))
            out["per_class"] = torch.zeros_like(totals).scatter_add_(1, cls, correct) / totals.clamp_min(1)
        return out
