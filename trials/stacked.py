"""Vectorised members: K models' parameters stacked (K, *shape), stepped with one batched kernel
per op (torch.func.vmap over torch.func.functional_call).

trials.train's vmap mode. The math of a step is the lone run's, on stacked tensors: the same
trials.optim.Optimizer and trials.filters.Grokfast with each member's scalars as (K,) tensors
(trials.optim.hparams, trials.scalars), each member's loss by trials.losses.training_loss with
its own OptimConfig (StableMax, label smoothing), its gradient noise from its own generator
(GradientNoise.apply_to its slices), its batches from its own sampler and data split. Members
whose dropout rates differ cannot share one vmapped module, so they form separate groups.

The members' runs (trials.member.Member.run) stay the record of each member: `sync()` writes the
stacked parameters, optimizer moments and filter buffers back into them before a checkpoint or
when a member stops, and a group is (re)built from them, so a resume or a member leaving the
stack goes through the one lone-run state format.

Equal to the lone runs up to float rounding, not bitwise: batched matrix products, CPU math
attention and no prefix sharing (trials/shared_prefix.py needs torch.unique, which vmap cannot
batch) round differently from step 1 on; dropout masks come from one generator for the stack.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from trials.filters import Grokfast
from trials.losses import training_loss
from trials.member import Member, accumulate_batch_metrics, train_scores
from trials.metrics import grouped_norms, split_scores
from trials.optim import Optimizer, clip_grad_norms_, hidden_matrices, hparams, param_groups

DROPOUTS = ("dropout_emb", "dropout_attn", "dropout_resid", "dropout_ff")


class Stacked:
    """The live members in vmapped groups (one per distinct set of dropout rates)."""

    def __init__(self, members: list[Member], attention: str = "auto"):
        self.attention = attention
        self.groups = _groups(members, attention)

    def step(self, live: list[Member], step: int, lrs: list[float], want_norms: bool) -> list:
        lr_of = {m.index: lr for m, lr in zip(live, lrs)}
        stats = {}
        for g in self.groups:
            stats.update(zip((m.index for m in g.members), g.step(step, [lr_of[m.index] for m in g.members], want_norms)))
        return [stats[m.index] for m in live]

    def scores(self, live: list[Member]) -> list:
        out = {}
        for g in self.groups:
            out.update(zip((m.index for m in g.members), g.scores()))
        return [out[m.index] for m in live]

    def sync(self) -> None:
        for g in self.groups:
            g.sync()

    def keep(self, live: list[Member]) -> None:
        """Rebuild the groups from the runs of the members that go on (after `sync`)."""
        self.sync()
        self.rebuild(live)

    def rebuild(self, live: list[Member]) -> None:
        """Regroup `live` from their runs as they are now (no sync: a clone has just replaced
        some runs, trials.train._clone), by their dropout rates as at the start."""
        self.groups = _groups(live, self.attention)


def _groups(members: list[Member], attention: str) -> list[_Group]:
    """The members in vmapped groups, one per distinct set of dropout rates, in member order."""
    by_dropout: dict[tuple, list[Member]] = defaultdict(list)
    for m in members:
        by_dropout[tuple(getattr(m.cfg.model, d) for d in DROPOUTS)].append(m)
    return [_Group(ms, attention) for ms in by_dropout.values()]


class _Group:
    """Members sharing one module structure and dropout rates, stacked."""

    def __init__(self, members: list[Member], attention: str):
        self.members = members
        runs = [m.run for m in members]
        first = runs[0]
        self.device, self.autocast = first.device, first.autocast
        self.base = first.model  # its structure and buffers; its own parameters are not read here
        self.base.share_prefixes = False  # torch.unique: vmap cannot batch it
        # "auto": the math backend on every device. CPU SDPA has no batching rule, and the GPU
        # check (benchmarks/README.md, H200) saw a vmapped population fail in the fused kernels'
        # backward (LSE alignment); "native" keeps the device's default kernels.
        self.math = attention in ("auto", "math")
        self.names = [n for n, _ in self.base.named_parameters()]
        self.params = {n: torch.stack([dict(r.model.named_parameters())[n].detach() for r in runs]).requires_grad_()
                       for n in self.names}  # (K, *shape) each
        oc = first.cfg.optim
        groups = [{"params": [self.params[n] for n in g["names"]], "names": g["names"], "decay": g["decay"]}
                  for g in param_groups(self.base, oc.no_decay)]
        self.order = [p for g in groups for p in g["params"]]  # the optimizer's (and filters') order
        optims = [r.cfg.optim for r in runs]
        self.hp = hparams(optims, self.device)
        self.opt = Optimizer(groups, oc, hidden_matrices(self.base), hp=self.hp)
        column = lambda key: torch.tensor([getattr(o.grokfast, key) for o in optims], device=self.device)  # noqa: E731
        self.grokfast = Grokfast(self.order, oc.grokfast, alpha=column("alpha"), lamb=column("lamb"))
        for name in ("train_x", "train_y", "val_x", "val_y"):  # (K, N, T) and (K, N)
            setattr(self, name, torch.stack([getattr(r.data, name) for r in runs]))
        self._vmapped = vmap(self._member_logits, in_dims=(0, 0), randomness="different")
        self._load_runs()

    # --- state: the runs are the record -----------------------------------------------------

    def _pairs(self):
        """(member k, the run's own parameter, the stacked one), in optimizer order."""
        for k, m in enumerate(self.members):
            own = [p for g in m.run.optimizer.param_groups for p in g["params"]]
            for p, stacked in zip(own, self.order, strict=True):
                yield k, p, stacked

    def _load_runs(self) -> None:
        """Stack the runs' optimizer moments, step counts and Grokfast buffers."""
        runs = [m.run for m in self.members]
        for g, own in zip(self.opt.param_groups, runs[0].optimizer.param_groups):
            g["t"] = own["t"]
        by_param = defaultdict(list)
        for _, p, stacked in self._pairs():
            by_param[id(stacked)].append(p)
        for stacked in self.order:
            owns = by_param[id(stacked)]
            states = [self.members[k].run.optimizer.state.get(p, {}) for k, p in enumerate(owns)]
            if states[0]:
                self.opt.state[stacked] = {key: torch.stack([s[key] for s in states]) for key in states[0]}
        gf = [r.grokfast for r in runs]
        stack = lambda lists: [torch.stack(ts) for ts in zip(*lists)]  # noqa: E731
        if gf[0].ema is not None:
            self.grokfast.ema = stack([f.ema for f in gf])
        if gf[0].total is not None:
            self.grokfast.total = stack([f.total for f in gf])
            self.grokfast.window = [stack([f.window[i] for f in gf]) for i in range(len(gf[0].window))]

    @torch.no_grad()
    def sync(self) -> None:
        """Write the stacked parameters, moments and buffers back into each member's run."""
        for k, p, stacked in self._pairs():
            p.copy_(stacked[k])
            run_opt = self.members[k].run.optimizer
            if stacked in self.opt.state:
                run_opt.state[p] = {key: v[k].clone() for key, v in self.opt.state[stacked].items()}
        for k, m in enumerate(self.members):
            for g, own in zip(self.opt.param_groups, m.run.optimizer.param_groups):
                own["t"] = g["t"]
            f = m.run.grokfast
            if self.grokfast.ema is not None:
                f.ema = [e[k].clone() for e in self.grokfast.ema]
            if self.grokfast.total is not None:
                f.total = [t[k].clone() for t in self.grokfast.total]
                f.window = [[w[k].clone() for w in ws] for ws in self.grokfast.window]

    # --- forward, step, eval ------------------------------------------------------------------

    def _member_logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, params, (x,))  # (B, V)

    def _contexts(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        if self.math:  # CPU SDPA has no batching rule; the math backend is batched
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        # Elsewhere a kernel without a batching rule makes vmap loop over members (correct, slow)
        # and warn: the warning is left to show, as the slowdown's only trace.
        stack.enter_context(self.autocast())
        return stack

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Answer logits (K, B, V) for per-member inputs x (K, B, T)."""
        with self._contexts():
            return self._vmapped(self.params, x)

    def step(self, step: int, lrs: list[float], want_norms: bool) -> list:
        """One optimizer step of every member; per member its grad norms (or None)."""
        tc = self.members[0].cfg.train
        K = len(self.members)
        for p in self.order:
            p.grad = None
        idx = torch.stack([m.run.sampler.next() for m in self.members])  # (K, B)
        rows = torch.arange(K, device=self.device).unsqueeze(1)  # (K, 1)
        for chunk in idx.chunk(tc.grad_accum, dim=1):
            x, y = self.train_x[rows, chunk], self.train_y[rows, chunk]  # (K, b, T), (K, b)
            logits = self.logits(x)  # (K, b, V)
            losses = [training_loss(logits[k], y[k], m.cfg.optim) for k, m in enumerate(self.members)]
            (torch.stack(losses).sum() / tc.grad_accum).backward()  # each row gets its own member's gradient
            if tc.train_metrics == "batches":
                for k, m in enumerate(self.members):
                    accumulate_batch_metrics(m.run, logits[k].detach(), y[k], losses[k].detach())
        grads = [p.grad for p in self.order]
        self.grokfast.apply()
        for k, m in enumerate(self.members):
            m.run.noise.apply_to(step, [g[k] for g in grads])
        stats = [None] * K
        if want_norms:  # before clipping, as the lone run
            for k in range(K):
                total, per_layer = grouped_norms([(n, self.params[n].grad[k]) for n in self.names])
                stats[k] = {"total": total, "per_layer": per_layer}
        if any(m.cfg.optim.grad_clip > 0 for m in self.members):
            clip_grad_norms_(self.order, self.hp["grad_clip"])
        self.opt.set_lr(torch.tensor(lrs, dtype=torch.float32, device=self.device))
        self.opt.step()
        return stats

    @torch.no_grad()
    def _score(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy (K,) and hits (K, N) over inputs x (K, N, T)."""
        K, N = y.shape
        budget = 1 << 17 if self.device.type == "cuda" else 1 << 14  # member-examples per vmapped chunk
        chunk = max(256, min(8192, budget // K))
        loss_sum = torch.zeros(K, device=self.device)
        hits = []
        for i in range(0, N, chunk):
            yb = y[:, i : i + chunk]
            logits = self.logits(x[:, i : i + chunk]).float()  # (K, b, V)
            loss_sum += F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view(yb.shape).sum(1)
            hits.append(logits.argmax(-1) == yb)
        return loss_sum, torch.cat(hits, dim=1)

    def scores(self) -> list:
        """Per member: (train scores, val scores, its named parameters), as trials.member.scores."""
        was_training = self.base.training
        self.base.eval()
        val_loss, val_hits = self._score(self.val_x, self.val_y)
        train_pass = None
        tc = self.members[0].cfg.train
        if tc.train_metrics != "batches":
            m = tc.eval_max_examples or self.train_y.shape[1]
            train_pass = self._score(self.train_x[:, :m], self.train_y[:, :m])
        self.base.train(was_training)
        out = []
        for k, member in enumerate(self.members):
            run, data = member.run, member.run.data
            per_class = run.class_index if tc.per_class_metrics else None
            groups = data.val_group if len(data.group_names) > 1 else None
            val = split_scores(val_loss[k], val_hits[k], self.val_y[k], per_class, groups,
                               len(data.group_names), len(data.answer_tokens))
            full = None
            if train_pass is not None:
                full = lambda k=k: split_scores(train_pass[0][k], train_pass[1][k], self.train_y[k, : train_pass[1].shape[1]])  # noqa: E731
            named = [(n, self.params[n].detach()[k]) for n in self.names]
            out.append((train_scores(run, val, full), val, named))
        return out


__all__ = ["Stacked"]
