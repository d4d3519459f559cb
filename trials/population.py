"""`train_population(cfgs, report)`: K runs of one architecture trained together in one process.

    cfgs = [with_values(cfg, {"seed": s}) for s in range(8)]          # K seeds
    cfgs = [with_values(cfg, {"optim.lr": lr}) for lr in (1e-3, 3e-3)]  # K hyperparameter points
    result = train_population(cfgs, lambda record, save=None: records.append(record))
    result.median_steps_to_target

Members share the task, model and train sections and the optimizer's kind; they may differ in
`seed` and in the per-member optimizer values (PER_MEMBER_KEYS). Each member is built by
trials.setup.build_run exactly as its separate run would be (same initialisation, data split,
batch draws and noise generator), then the members' parameters are stacked into one (K, P)
tensor and trained with torch.func (trials.population_model) and a per-member optimizer
(trials.population_optim). Every eval reports one record per live member, in train()'s format
plus "member" (the member's index in `cfgs`).

Equality with separate runs (tests/trials/test_population.py): the stacked optimizer and filters
round exactly as trials.optim and trials.filters do, so with vectorize="loop" (one
functional_call per member) every record is bitwise its separate run's on CPU. With
vectorize="vmap" (the default: one batched kernel per op for all members) the batched matrix
products, CPU math attention, vmap's LayerNorm decomposition and the plain forward instead of
prefix sharing (trials/shared_prefix.py needs torch.unique, which vmap cannot batch) change a few
gradient bits from step 1 on, and Adam amplifies those along the trajectory: ~1e-7 relative at first, ~1e-5 on
norms by step 60. Dropout masks differ from separate runs (the members draw them from one
global generator), so with dropout the curves agree in distribution only.

A member that grokked, diverged or early-stopped is dropped from the stacked tensors at that
eval: its parameters stop changing, it costs nothing more, and the others go on undisturbed.
Not supported: the lm task, fp16 (one grad scaler per member), probes, checkpoints and resume
(`save` is always None). train.compile and activation checkpointing are ignored.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from tasks import TokenStream
from trials.errors import SetupError
from trials.evalplan import StopRule, eval_steps
from trials.optim import lr_multiplier
from trials.population_model import StackedModel, build_layout, flatten_members, member_norms
from trials.population_optim import PopulationOptimizer
from trials.setup import build_run
from trials.train import Reporter, TrainResult

PER_MEMBER_KEYS = ("optim.lr", "optim.weight_decay", "optim.beta1", "optim.beta2", "optim.momentum",
                   "optim.grokfast.alpha", "optim.grokfast.lamb", "optim.noise.eta", "optim.noise.gamma")
"""Config keys (besides seed and name) whose values may differ between members."""


@dataclass
class PopulationResult:
    members: list[TrainResult]
    """One TrainResult per config, in the order given."""
    median_steps_to_target: float | None
    """Median over members of steps_to_target, a member that did not grok counting as infinity;
    None when that median is infinite (at least half did not grok)."""
    grokked_fraction: float
    wall_time: float


def median_steps_to_target(results: list[TrainResult]) -> float | None:
    """Median steps to target with non-grokked members as +inf; None if the median is +inf."""
    values = [r.steps_to_target if r.status == "grokked" and r.steps_to_target is not None else math.inf
              for r in results]
    med = statistics.median(values) if values else math.inf
    return None if math.isinf(med) else float(med)


def _flat_dict(obj, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_flat_dict(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_population(cfgs: list) -> None:
    """Raise SetupError (one line) unless the configs can train as one population."""
    if not cfgs:
        raise SetupError("population: needs at least one config")
    sections = ("task", "model", "optim", "train", "probes")

    def shared(cfg) -> dict[str, Any]:
        flat = _flat_dict({s: dataclasses.asdict(getattr(cfg, s)) for s in sections if hasattr(cfg, s)})
        return {k: v for k, v in flat.items() if k not in PER_MEMBER_KEYS}

    first = shared(cfgs[0])
    for i, cfg in enumerate(cfgs[1:], start=1):
        for key, value in shared(cfg).items():
            if first.get(key) != value:
                raise SetupError(
                    f"population: member {i} differs from member 0 in {key} ({value!r} vs {first.get(key)!r}); "
                    f"members may differ only in seed, {', '.join(PER_MEMBER_KEYS)}")
    cfg = cfgs[0]
    if cfg.task.name == "lm":
        raise SetupError("population: task.name 'lm' is not supported; use an algorithmic task")
    if cfg.train.precision == "fp16":
        raise SetupError("population: train.precision fp16 is not supported; use fp32 or bf16")
    if getattr(getattr(cfg, "probes", None), "kinds", None):
        raise SetupError("population: probes are not supported; set probes.kinds: []")


class _Population:
    """The live members' stacked state: parameters, optimizer, data and batch samplers."""

    def __init__(self, cfgs: list, vectorize: str, attention: str):
        runs = [build_run(c) for c in cfgs]
        first = runs[0]
        if isinstance(first.data, TokenStream):
            raise SetupError("population: task.name 'lm' is not supported; use an algorithmic task")
        self.cfgs, self.device, self.members = cfgs, first.device, list(range(len(cfgs)))
        self.layout = build_layout(first.model, cfgs[0].optim.no_decay)
        self.model = StackedModel(first.model, self.layout, first.autocast, vectorize, attention)
        self.flat = flatten_members([r.model for r in runs], self.layout, self.device).requires_grad_()
        self.opt = PopulationOptimizer([c.optim for c in cfgs], [r.noise for r in runs], self.layout, self.device)
        self.samplers = [r.sampler for r in runs]
        for name in ("train_x", "train_y", "val_x", "val_y"):  # (K, N, T) and (K, N)
            setattr(self, name, torch.stack([getattr(r.data, name) for r in runs]))
        self.n_train = first.data.n_train
        self.class_index = first.class_index
        self.n_classes = int(first.class_index.max()) + 1
        self.batch = first.sampler.batch

    def keep(self, positions: list[int]) -> None:
        """Keep only the members at these row positions."""
        index = torch.tensor(positions, device=self.device)
        self.flat = self.flat.detach()[index].requires_grad_()
        for name in ("train_x", "train_y", "val_x", "val_y"):
            setattr(self, name, getattr(self, name)[index])
        self.opt.keep(positions)
        self.samplers = [self.samplers[i] for i in positions]
        self.members = [self.members[i] for i in positions]

    def train_step(self, step: int, lr_factor: float, want_norms: bool) -> dict | None:
        """One optimizer step for every live member; returns grad norms (K,) when asked."""
        tc, oc = self.cfgs[0].train, self.cfgs[0].optim
        self.flat.grad = None
        idx = torch.stack([s.next() for s in self.samplers])  # (K, B)
        rows = torch.arange(len(self.members), device=self.device).unsqueeze(1)  # (K, 1)
        for chunk in idx.chunk(tc.grad_accum, dim=1):
            x, y = self.train_x[rows, chunk], self.train_y[rows, chunk]  # (K, b, T), (K, b)
            losses = self.model.losses(self.flat, x, y, oc.label_smoothing)  # (K,)
            (losses.sum() / tc.grad_accum).backward()  # each row gets its own member's gradient
        grad = self.flat.grad
        pre_clip = self.opt.filter_and_clip(grad, step)
        stats = {"total": pre_clip} if pre_clip is not None else None
        if want_norms:
            total, per_layer = member_norms(grad, self.layout)
            stats = {"total": pre_clip if pre_clip is not None else total, "per_layer": per_layer}
        self.opt.step(self.flat, grad, lr_factor)
        return stats

    def evaluate(self, step: int, examples: int, lr_factor: float, stats, wall: float) -> list[dict]:
        """One record per live member, in trials.train's format plus "member"."""
        tc = self.cfgs[0].train
        K = len(self.members)
        budget = 1 << 17 if self.device.type == "cuda" else 1 << 14  # member-examples per vmapped chunk
        chunk = 8192 if self.model.loop else max(256, min(8192, budget // K))  # 8192: score_split's
        per_class = self.class_index if tc.per_class_metrics else None
        m = tc.eval_max_examples or self.n_train
        val = self.model.score(self.flat, self.val_x, self.val_y, per_class, self.n_classes, chunk)
        train = self.model.score(self.flat, self.train_x[:, :m], self.train_y[:, :m], None, self.n_classes, chunk)
        pnorm, p_layers = member_norms(self.flat.detach(), self.layout)
        nan = torch.full((K,), float("nan"), device=self.device)
        tensors = {"train_loss": train["loss"], "train_acc": train["acc"], "val_loss": val["loss"],
                   "val_acc": val["acc"], "param_norm": pnorm, "grad_norm": stats["total"] if stats else nan}
        if tc.per_class_metrics:
            tensors.update({f"param_norm/{k}": v for k, v in p_layers.items()})
            if stats and "per_layer" in stats:
                tensors.update({f"grad_norm/{k}": v for k, v in stats["per_layer"].items()})
        values = torch.stack([t.detach().float() for t in tensors.values()]).cpu().tolist()  # the one sync
        classes = val["per_class"].cpu().tolist() if tc.per_class_metrics else None
        records = []
        for j, member in enumerate(self.members):
            record = {"step": step, "epoch": examples / self.n_train, "lr": self.cfgs[member].optim.lr * lr_factor}
            record.update((k, v[j]) for k, v in zip(tensors, values))
            record["wall_time"] = wall
            if classes is not None:
                record["val_acc_per_class"] = classes[j]
            record["member"] = member
            records.append(record)
        return records


def train_population(cfgs: list, report: Reporter | None = None, *, vectorize: str = "vmap",
                     attention: str = "auto") -> PopulationResult:
    """Train the configs as one population; report(record, None) once per live member per eval.

    Args:
        cfgs: ExperimentConfigs that pass check_population (same architecture, task, schedule).
        report: called with each member's record (train()'s keys plus "member"); save is None.
        vectorize: "vmap" or "loop", attention: "auto", "math" or "native"; see
            trials.population_model.StackedModel.
    Returns:
        PopulationResult: per-member TrainResults (as train() would return them) and the median
        steps to target.
    """
    check_population(cfgs)
    pop = _Population(cfgs, vectorize, attention)
    tc, oc = cfgs[0].train, cfgs[0].optim
    rules = [StopRule(tc.target_val_acc, tc.target_patience, tc.early_stop_patience) for _ in cfgs]
    results: list[TrainResult | None] = [None] * len(cfgs)
    last: list[dict] = [{} for _ in cfgs]
    plan = set(eval_steps(tc, tc.steps))
    step, examples, started = 0, 0, time.perf_counter()
    while step < tc.steps and pop.members:
        lr_factor = lr_multiplier(step, oc, tc.steps)
        at_eval = step + 1 in plan
        stats = pop.train_step(step, lr_factor, want_norms=at_eval)
        step += 1
        examples += pop.batch
        if not at_eval:
            continue
        wall = time.perf_counter() - started
        keep = []
        for position, record in enumerate(pop.evaluate(step, examples, lr_factor, stats, wall)):
            member = record["member"]
            finite = all(math.isfinite(record[k]) for k in ("train_loss", "val_loss", "param_norm"))
            stop = rules[member].update(step, record["val_acc"], record["val_loss"], finite)
            last[member] = record
            if report is not None:
                report(record, None)
            if stop is None:
                keep.append(position)
            else:
                results[member] = _result(rules[member], stop, step, wall, record)
        if len(keep) < len(pop.members):
            pop.keep(keep)
    wall = time.perf_counter() - started
    for member in pop.members:
        results[member] = _result(rules[member], None, step, wall, last[member])
    done = [r for r in results if r is not None]
    return PopulationResult(
        members=done,
        median_steps_to_target=median_steps_to_target(done),
        grokked_fraction=sum(r.status == "grokked" for r in done) / len(done),
        wall_time=wall,
    )


def _result(rule: StopRule, stop: str | None, step: int, wall: float, record: dict) -> TrainResult:
    status = rule.final_status(stop)
    return TrainResult(status=status, steps_to_target=rule.streak_start if status == "grokked" else None,
                       final_step=step, wall_time=wall, final=dict(record))
