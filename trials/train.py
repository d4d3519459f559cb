"""`train(config, report)`: the training loop. Knows nothing of Ray, Optuna or the CLI.

    records = []
    result = train(cfg, lambda record, save=None: records.append(record))

`report(record, save)` is called once per eval with a flat dict of metrics; `save` is None or,
when a checkpoint is due, a function `save(directory) -> path` that writes one there. The
caller decides where checkpoints go (a run dir, a Ray Tune checkpoint, nowhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from groktune.layout import losses_finite
from tasks import TokenStream
from trials.checkpoint import load_checkpoint, load_model_state, restore_rng, rng_state, to_cpu, to_device
from trials.evalplan import StopRule
from trials.loop import Clock, Loop, Save, TrainResult, stop_rule
from trials.losses import training_loss
from trials.metrics import eval_tensors, grouped_norms, perplexity, score_lm, score_split
from trials.optim import lr_multiplier
from trials.probes import ProbeCollector
from trials.setup import Run, build_run, config_sections


class Reporter(Protocol):
    def __call__(self, record: dict, save: Save | None = None) -> None: ...


@dataclass
class Progress(Clock):
    """The loop's Clock plus the last record: what goes into checkpoints besides the modules."""

    last_record: dict = field(default_factory=dict)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "last_record": self.last_record}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.last_record = dict(state["last_record"])


def train(cfg: Any, report: Reporter | None = None, *, resume_from: str | Path | None = None,
          artifacts_dir: str | Path | None = None) -> TrainResult:
    """Train `cfg` (an orchestrator ExperimentConfig) and report one record per eval.

    The loop's schedule (evals, checkpoints, stopping) is trials.loop.Loop's, as a population's.

    Args:
        report: called as report(record, save) at every eval; see the module docstring.
        resume_from: a checkpoint file or folder to continue from (same task and model config).
        artifacts_dir: the run's folder; probe arrays go to <artifacts_dir>/probes/*.npz (and
            TensorBoard). None: probe scalars still go into the records, arrays nowhere.
    Returns:
        TrainResult with the status, the step val accuracy first reached the target and stayed
        there (None if it did not), the last step, wall time and the last record.
    """
    run = build_run(cfg)
    tc = cfg.train
    rule = stop_rule(tc)
    loop = Loop(tc, Progress)
    prog = loop.clock
    if resume_from is not None:
        _restore(run, rule, prog, load_checkpoint(resume_from, config_sections(cfg)))
    probes = _probe_collector(run, loop.plan, artifacts_dir, prog.step)
    # An epoch is one pass over the training examples (training tokens for lm).
    n_train = run.data.n_train / (run.data.seq_len if isinstance(run.data, TokenStream) else 1)
    stop = None
    for step, at_eval in loop.steps():
        lr = cfg.optim.lr * lr_multiplier(step, cfg.optim, tc.steps)
        run.optimizer.set_lr(lr)
        grad_stats = _train_step(run, step, want_norms=at_eval)
        loop.tick(_batch_size(run))
        if not at_eval:
            continue
        record = _evaluate(run, prog, lr, grad_stats, n_train, loop.wall())
        finite = losses_finite(record)
        stop = rule.update(prog.step, record["val_acc"], record["val_loss"], finite)
        loop.finished = stop is not None
        if probes is not None and finite and probes.due(prog.step, final=loop.at_end):
            probes.collect(prog.step, record)
        prog.last_record = record
        save = loop.checkpoint(lambda: _state(run, rule, prog))
        if report is not None:
            report(record, save)
    if probes is not None:
        probes.close()
    return loop.result(rule, stop, prog.last_record)


def _probe_collector(run: Run, plan: frozenset[int], artifacts_dir, start_step: int):
    """The run's ProbeCollector, or None when probes are off (then nothing probe-related runs)."""
    probes_cfg = getattr(run.cfg, "probes", None)
    if probes_cfg is None or not probes_cfg.kinds:
        return None
    return ProbeCollector(run, sorted(plan), artifacts_dir, start_step)


def _batch_size(run: Run) -> int:
    return run.sampler.batch if run.sampler is not None else run.cfg.train.batch_size


def _train_step(run: Run, step: int, want_norms: bool) -> dict[str, Any] | None:
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
            _accumulate_batch_metrics(run, logits.detach(), y, loss.detach() * tc.grad_accum)
    if run.scaler:
        run.scaler.unscale_(run.optimizer)
    run.grokfast.apply()
    run.noise.apply(step)
    stats = None
    if want_norms:  # before clipping; total and per layer from one computation, so they agree
        named = [(n, p.grad) for n, p in run.named_params if p.grad is not None]
        total, per_layer = grouped_norms(named)
        stats = {"total": total, "per_layer": per_layer}
    if oc.grad_clip > 0:
        params = [p for _, p in run.named_params if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, oc.grad_clip, foreach=True)
    if run.scaler:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    return stats


def _accumulate_batch_metrics(run: Run, logits: torch.Tensor, y: torch.Tensor, mean_loss: torch.Tensor) -> None:
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


def _evaluate(run: Run, prog: Progress, lr: float, grad_stats, n_train: float, wall: float) -> dict:
    """Score both splits and gather norms; one host sync at the end (`.tolist()`)."""
    tc = run.cfg.train
    data = run.data
    if isinstance(data, TokenStream):
        val = score_lm(run.forward, data.val_batches(tc.batch_size or 64, run.device), run.autocast)
    else:
        per_class = run.class_index if tc.per_class_metrics else None
        groups = data.val_group if len(data.group_names) > 1 else None  # mixtures: per operation
        val = score_split(run.forward, data.val_x, data.val_y, per_class, autocast=run.autocast, groups=groups)
    if tc.train_metrics == "batches":
        train = _window_metrics(run)
    elif isinstance(data, TokenStream):
        fixed = torch.Generator().manual_seed(run.cfg.seed + 3)  # the same train windows every eval
        train_windows = [data.get_batch("train", data.val_windows, fixed, run.device)]
        train = score_lm(run.forward, train_windows, run.autocast)
    else:
        m = tc.eval_max_examples or len(data.train_y)
        train = score_split(run.forward, data.train_x[:m], data.train_y[:m], None, autocast=run.autocast)
    per_op = ({name: val["per_group"][g] for g, name in enumerate(data.group_names)}  # mixtures: val_acc/<op>
              if "per_group" in val else None)
    tensors = eval_tensors(train, val, grouped_norms(run.named_params), grad_stats, torch.tensor(float("nan")),
                           tc.per_class_metrics, per_op)
    keys = list(tensors)
    values = torch.stack([t.detach().float().cpu() for t in tensors.values()]).tolist()  # the one sync
    record = {"step": prog.step, "epoch": prog.examples / n_train, "lr": lr}
    record.update(zip(keys, values))
    record["wall_time"] = wall
    if isinstance(data, TokenStream):
        record["val_ppl"], record["train_ppl"] = perplexity(record["val_loss"]), perplexity(record["train_loss"])
    elif tc.per_class_metrics:
        record["val_acc_per_class"] = val["per_class"].cpu().tolist()
    return record


def _state(run: Run, rule: StopRule, prog: Progress) -> dict:
    """Everything needed to continue exactly where this step left off (tensors copied to CPU)."""
    return to_cpu({
        "config": config_sections(run.cfg),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict() if run.scaler else {},
        "grokfast": run.grokfast.state_dict(),
        "noise": run.noise.state_dict(),
        "sampler": run.sampler.state_dict() if run.sampler else {},
        "batch_generator": run.batch_generator.get_state(),
        **rng_state(run.device),
        "rule": rule.state_dict(),
        "progress": prog.state_dict(),
    })


def _restore(run: Run, rule: StopRule, prog: Progress, state: dict) -> None:
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
    restore_rng(state, dev)
    rule.load_state_dict(state["rule"])
    prog.load_state_dict(state["progress"])
