"""One member of a training population: its built run, stop rule and latest record, and what a
step, an eval and a checkpoint do to one model.

trials.train drives K >= 1 members through one loop. In loop mode each member is stepped by
`train_step` on its own modules, exactly as a lone run is (K = 1 is `groktune train`); in
vmap mode trials.stacked steps the members' stacked copies and writes them back into these
runs before anything reads them. A member's checkpoint state (`member_state`) has the same
format whether it trained alone or in a population, so any member resumes alone or in another
population.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from tasks.lm import TokenStream
from trials.checkpoint import load_model_state, rng_state, to_cpu, to_device
from trials.evalplan import StopRule
from trials.filters import grads_finite
from trials.loop import TrainResult
from trials.losses import training_loss
from trials.metrics import eval_tensors, grouped_norms, score_lm, score_split
from trials.optim import clip_grad_norms_
from trials.setup import Run, config_sections


@dataclass
class Member:
    """One model of the population and how far it got."""

    index: int
    """Its position in the configs given."""
    run: Run
    rule: StopRule
    last: dict = field(default_factory=dict)
    """Its latest eval record."""
    result: TrainResult | None = None
    """None while it trains; how it ended once it stopped."""
    snapshot: dict | None = None
    """Its checkpoint state when it stopped (a population's later checkpoints still hold it)."""
    rng: dict | None = None
    """Its own global RNG states (dropout masks) while members take turns (loop mode, K > 1)."""

    @property
    def cfg(self) -> Any:
        return self.run.cfg


def batch_size(run: Run) -> int:
    return run.sampler.batch if run.sampler is not None else run.cfg.train.batch_size


def train_step(run: Run, step: int, want_norms: bool) -> dict[str, Any] | None:
    """One optimizer step: micro-batches, filters, clipping, update. No host syncs."""
    tc, oc = run.cfg.train, run.cfg.optim
    run.optimizer.zero_grad(set_to_none=True)
    for x, y in _micro_batches(run):
        with run.autocast():
            if isinstance(run.data, TokenStream):
                logits = run.forward(x, last_only=False).flatten(0, 1)  # (B*T, V)
                y = y.flatten()
            else:
                logits = run.forward(x)  # (b, V): the answer position only
            loss = training_loss(logits, y, oc) / tc.grad_accum  # optim.loss (trials.losses)
        (run.scaler.scale(loss) if run.scaler else loss).backward()
        if tc.train_metrics == "batches":
            accumulate_batch_metrics(run, logits.detach(), y, loss.detach() * tc.grad_accum)
    finite = None
    if run.scaler:
        run.scaler.unscale_(run.optimizer)
        finite = grads_finite([p for _, p in run.named_params])  # the scaler skips an overflow step
    run.grokfast.apply(finite)
    run.noise.apply(step)
    stats = None
    if want_norms:  # before clipping; total and per layer from one computation, so they agree
        named = [(n, p.grad) for n, p in run.named_params if p.grad is not None]
        total, per_layer = grouped_norms(named)
        stats = {"total": total, "per_layer": per_layer}
    if oc.grad_clip > 0:
        clip_grad_norms_([p for _, p in run.named_params if p.grad is not None], oc.grad_clip)
    if run.scaler:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    return stats


def accumulate_batch_metrics(run: Run, logits: torch.Tensor, y: torch.Tensor, mean_loss: torch.Tensor) -> None:
    """Add one micro-batch to the on-device window of train metrics (no host sync)."""
    if run.cfg.optim.label_smoothing or run.cfg.optim.loss != "cross_entropy":  # log plain CE, as the full pass
        mean_loss = F.cross_entropy(logits.float(), y)
    w = run.batch_window
    n = y.numel()
    w["loss"] = w.get("loss", 0.0) + mean_loss * n
    w["hits"] = w.get("hits", 0.0) + (logits.argmax(-1) == y).sum()
    w["count"] = w.get("count", 0) + n


def _window_metrics(run: Run) -> dict[str, torch.Tensor]:
    """Mean train loss/acc over the batches since the last eval; resets the window."""
    w, run.batch_window = run.batch_window, {}
    return {"loss": w["loss"] / w["count"], "acc": w["hits"] / w["count"]}


def _micro_batches(run: Run):
    """Yield grad_accum (x, y) micro-batches making up one optimizer step."""
    tc = run.cfg.train
    if isinstance(run.data, TokenStream):
        bs = max(1, tc.batch_size // tc.grad_accum)
        for _ in range(tc.grad_accum):
            yield run.data.get_batch("train", bs, run.batch_generator, run.device)
        return
    idx = run.sampler.next()  # (B,)
    for chunk in idx.chunk(tc.grad_accum):
        yield run.data.train_x[chunk], run.data.train_y[chunk]


def scores(run: Run) -> tuple[dict, dict]:
    """(train, val) scores of the run's model: {"loss", "acc", ...} tensors on the device."""
    tc = run.cfg.train
    data = run.data
    if isinstance(data, TokenStream):
        val = score_lm(run.model, data.val_batches(tc.batch_size or 64, run.device), run.autocast)
    else:
        per_class = run.class_index if tc.per_class_metrics else None
        groups = data.val_group if len(data.group_names) > 1 else None  # mixtures: per operation
        val = score_split(run.model, data.val_x, data.val_y, per_class, autocast=run.autocast, groups=groups,
                          n_groups=len(data.group_names), n_classes=len(data.answer_tokens))
    return train_scores(run, val), val


def train_scores(run: Run, val: dict, full=None) -> dict:
    """The train split's scores: the batch window (train_metrics batches), else `full()` or a pass."""
    tc, data = run.cfg.train, run.data
    if tc.train_metrics == "batches":
        return _window_metrics(run)
    if full is not None:
        return full()
    if isinstance(data, TokenStream):
        fixed = torch.Generator().manual_seed(run.cfg.seed + 3)  # the same train windows every eval
        train_windows = [data.get_batch("train", data.val_windows, fixed, run.device)]
        return score_lm(run.model, train_windows, run.autocast)
    m = tc.eval_max_examples or len(data.train_y)
    return score_split(run.model, data.train_x[:m], data.train_y[:m], None, autocast=run.autocast)


def record_tensors(run: Run, train: dict, val: dict, named_params, grad_stats) -> dict[str, torch.Tensor]:
    """The metric tensors of one member's eval record (trials.metrics.eval_tensors)."""
    data = run.data
    per_op = ({name: val["per_group"][g] for g, name in enumerate(data.group_names)}  # mixtures: val_acc/<op>
              if "per_group" in val else None)
    nan = torch.full((), float("nan"), device=run.device)
    return eval_tensors(train, val, grouped_norms(named_params), grad_stats, nan, run.cfg.train.per_class_metrics,
                        per_op)


def member_state(member: Member, clock: dict) -> dict:
    """Everything needed to continue this member exactly where it is (tensors copied to CPU).

    Args:
        clock: the loop's Clock.state_dict() (the step, examples, wall time, next checkpoint).
    """
    run = member.run
    rng = member.rng if member.rng is not None else rng_state(run.device)
    return to_cpu({
        "config": config_sections(run.cfg),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict() if run.scaler else {},
        "grokfast": run.grokfast.state_dict(),
        "noise": run.noise.state_dict(),
        "sampler": run.sampler.state_dict() if run.sampler else {},
        "batch_generator": run.batch_generator.get_state(),
        **rng,
        "rule": member.rule.state_dict(),
        "progress": {**clock, "last_record": member.last},
    })


def restore_member(member: Member, state: dict) -> None:
    """Load member_state() into a freshly built member (the global RNG is the caller's)."""
    run = member.run
    dev = run.device
    load_model_state(run.model, state)  # one-line CheckpointError on a shape mismatch
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scaler and state["scaler"]:
        run.scaler.load_state_dict(state["scaler"])
    run.grokfast.load_state_dict(to_device(state["grokfast"], dev))
    run.noise.load_state_dict(state["noise"])
    if run.sampler:
        run.sampler.load_state_dict(state["sampler"])
    run.batch_generator.set_state(state["batch_generator"])
    member.rule.load_state_dict(state["rule"])
    member.last = dict(state["progress"]["last_record"])


__all__ = ["Member", "accumulate_batch_metrics", "batch_size", "member_state", "record_tensors", "restore_member",
           "scores", "train_scores", "train_step"]
