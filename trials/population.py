"""`train_population(cfgs, report)`: K runs of one architecture trained together in one process.

    cfgs = [with_values(cfg, {"seed": s}) for s in range(8)]          # K seeds
    cfgs = [with_values(cfg, {"optim.lr": lr}) for lr in (1e-3, 3e-3)]  # K hyperparameter points
    result = train_population(cfgs, lambda ev, save=None: records.extend(ev.records))
    result.median_steps_to_target

Members share the task, model and train sections and the optimizer's kind; they may differ in
`seed` and in the per-member optimizer values (PER_MEMBER_KEYS). Each member is built by
trials.setup.build_run exactly as its separate run would be (same initialisation, data split,
batch draws and noise generator), then the members' parameters are stacked into one (K, P)
tensor and trained with torch.func (trials.population_model) and a per-member optimizer
(trials.population_optim). Every eval calls report(PopulationEval, save) once: one record per
live member in train()'s format plus "member" (the member's index in `cfgs`), every member's
latest record and the fraction grokked so far; `PopulationEval.median_record()` folds them into
one record (what a sweep reports for a trial of K seeds, orchestrator.sweep.adapter).

Equality with separate runs (tests/trials/test_population.py): the stacked optimizer and filters
round exactly as trials.optim and trials.filters do, so with vectorize="loop" (the default, as
in the config's search.population_vectorize: both take trials.choices.VECTORIZE[0]; one
functional_call per member) every record is bitwise its separate run's on CPU. With
vectorize="vmap" (one batched kernel per op for all members) the batched matrix
products, CPU math attention, vmap's LayerNorm decomposition and the plain forward instead of
prefix sharing (trials/shared_prefix.py needs torch.unique, which vmap cannot batch) change a few
gradient bits from step 1 on, and Adam amplifies those along the trajectory: ~1e-7 relative at first, ~1e-5 on
norms by step 60. Dropout masks differ from separate runs (the members draw them from one
global generator), so with dropout the curves agree in distribution only.

A member that grokked, diverged or early-stopped is dropped from the stacked tensors at that
eval: its parameters stop changing, it costs nothing more, and the others go on undisturbed.

Evals, checkpoints and the end follow trials.loop.Loop, as in train() (a checkpoint every
train.checkpoint_every steps, at the last step, and when every member stopped): `save` is then a
function writing checkpoint.pt (trials.checkpoint) with the live members' stacked parameters,
optimizer and filter buffers, noise generators and batch samplers, every member's stop rule,
last record and (once stopped) result, the RNG state and the step; `resume_from` continues from
one, and the curves after a resume are bitwise the uninterrupted ones, in both modes
(tests/trials/test_population.py). Not supported: the lm task, fp16 (one grad scaler per
member), probes. train.compile and activation checkpointing are ignored; train.train_metrics
"batches" is too (train loss/accuracy always come from a pass over the train split).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from groktune.layout import losses_finite
from tasks import TokenStream
from trials.checkpoint import load_checkpoint, restore_rng, rng_state, to_cpu
from trials.choices import VECTORIZE
from trials.errors import SetupError
from trials.evalplan import StopRule
from trials.loop import Loop, TrainResult, stop_rule
from trials.metrics import EVAL_CHUNK, eval_tensors
from trials.optim import lr_multiplier
from trials.population_model import StackedModel, build_layout, flatten_members, member_norms
from trials.population_optim import PopulationOptimizer, unsupported_methods
from trials.population_summary import PopulationEval, PopulationReporter, PopulationResult, median_steps_to_target
from trials.setup import build_run, config_sections

PER_MEMBER_KEYS = ("optim.lr", "optim.weight_decay", "optim.beta1", "optim.beta2", "optim.momentum",
                   "optim.grokfast.alpha", "optim.grokfast.lamb", "optim.noise.eta", "optim.noise.gamma")
"""Config keys (besides seed and name) whose values may differ between members."""


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
    reason = unsupported_methods(cfg.optim)  # Lion, Muon, StableMax, ⊥Grad, weight-norm clipping: single runs only
    if reason:
        raise SetupError(f"population: {reason}")


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
        # long: an empty list (every live member stopped at this eval) would make a float tensor
        index = torch.tensor(positions, dtype=torch.long, device=self.device)
        self.flat = self.flat.detach()[index].requires_grad_()
        for name in ("train_x", "train_y", "val_x", "val_y"):
            setattr(self, name, getattr(self, name)[index])
        self.opt.keep(positions)
        self.samplers = [self.samplers[i] for i in positions]
        self.members = [self.members[i] for i in positions]

    def state_dict(self) -> dict:
        """The live members and their stacked parameters, optimizer and sampler state."""
        return {"members": list(self.members), "flat": self.flat.detach(), "optimizer": self.opt.state_dict(),
                "samplers": [s.state_dict() for s in self.samplers]}

    def load_state_dict(self, state: dict) -> None:
        self.keep([self.members.index(m) for m in state["members"]])
        self.flat = state["flat"].to(self.device).requires_grad_()
        self.opt.load_state_dict(state["optimizer"])
        for sampler, sampler_state in zip(self.samplers, state["samplers"], strict=True):
            sampler.load_state_dict(sampler_state)

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
        self.opt.apply_filters(grad, step)
        stats = None
        if want_norms:  # before clipping, total and per layer from one computation (as trials.train)
            total, per_layer = member_norms(grad, self.layout)
            stats = {"total": total, "per_layer": per_layer}
        self.opt.clip(grad)
        self.opt.step(self.flat, grad, lr_factor)
        return stats

    def evaluate(self, step: int, examples: int, lr_factor: float, stats, wall: float) -> list[dict]:
        """One record per live member, in trials.train's format plus "member"."""
        tc = self.cfgs[0].train
        K = len(self.members)
        budget = 1 << 17 if self.device.type == "cuda" else 1 << 14  # member-examples per vmapped chunk
        chunk = EVAL_CHUNK if self.model.loop else max(256, min(8192, budget // K))
        per_class = self.class_index if tc.per_class_metrics else None
        m = tc.eval_max_examples or self.n_train
        val = self.model.score(self.flat, self.val_x, self.val_y, per_class, self.n_classes, chunk)
        train = self.model.score(self.flat, self.train_x[:, :m], self.train_y[:, :m], None, self.n_classes, chunk)
        nan = torch.full((K,), float("nan"), device=self.device)
        tensors = eval_tensors(train, val, member_norms(self.flat.detach(), self.layout), stats, nan,
                               tc.per_class_metrics)
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


@dataclass
class _Members:
    """Each member's stop rule, result and latest record (by member index in `cfgs`)."""

    rules: list[StopRule]
    results: list[TrainResult | None]
    """By member: None while it trains, its result once it stopped."""
    last: list[dict]
    """By member: its latest record."""

    def update(self, loop: Loop, records: list[dict]) -> list[int]:
        """Fold one eval's records into the stop rules; return the positions of those that go on."""
        keep = []
        for position, record in enumerate(records):
            member, rule = record["member"], self.rules[record["member"]]
            finite = losses_finite(record)
            stop = rule.update(loop.clock.step, record["val_acc"], record["val_loss"], finite)
            self.last[member] = record
            if stop is None:
                keep.append(position)
            else:
                self.results[member] = loop.result(rule, stop, record)
        return keep

    def grokked_fraction(self) -> float:
        statuses = [r.status if r else rule.final_status(None) for r, rule in zip(self.results, self.rules)]
        return statuses.count("grokked") / len(statuses)


def train_population(cfgs: list, report: PopulationReporter | None = None, *, vectorize: str = VECTORIZE[0],
                     attention: str = "auto", resume_from: str | Path | None = None) -> PopulationResult:
    """Train the configs as one population; call report(PopulationEval, save) once per eval.

    The loop's schedule (evals, checkpoints, stopping) is trials.loop.Loop's, as train()'s.

    Args:
        cfgs: ExperimentConfigs that pass check_population (same architecture, task, schedule).
        report: called at every eval with the members' records (see PopulationEval) and `save`:
            None, or when a checkpoint is due (as in train()) a function save(directory) -> path.
        vectorize: "loop" (the default) or "vmap", attention: "auto", "math" or "native"; see
            trials.population_model.StackedModel.
        resume_from: a checkpoint (file or folder) that `save` wrote for the same task, model and
            number of members.
    Returns:
        PopulationResult: per-member TrainResults (as train() would return them) and the median
        steps to target.
    """
    check_population(cfgs)
    pop = _Population(cfgs, vectorize, attention)
    tc, oc = cfgs[0].train, cfgs[0].optim
    loop = Loop(tc)
    members = _Members(rules=[stop_rule(tc) for _ in cfgs], results=[None] * len(cfgs), last=[{} for _ in cfgs])
    if resume_from is not None:
        _restore(pop, loop, members, load_checkpoint(resume_from, _sections(cfgs)))
    for step, at_eval in loop.steps():
        lr_factor = lr_multiplier(step, oc, tc.steps)
        stats = pop.train_step(step, lr_factor, want_norms=at_eval)
        loop.tick(pop.batch)
        if not at_eval:
            continue
        records = pop.evaluate(loop.clock.step, loop.clock.examples, lr_factor, stats, loop.wall())
        keep = members.update(loop, records)
        if len(keep) < len(pop.members):  # a member that stopped is dropped from the stacked tensors
            pop.keep(keep)
        loop.finished = not pop.members
        save = loop.checkpoint(lambda: _state(pop, loop, members))
        if report is not None:
            report(PopulationEval(loop.clock.step, records, list(members.last), members.grokked_fraction()), save)
    for member in pop.members:
        members.results[member] = loop.result(members.rules[member], None, members.last[member])
    done = [r for r in members.results if r is not None]
    return PopulationResult(
        members=done,
        median_steps_to_target=median_steps_to_target(done),
        grokked_fraction=sum(r.status == "grokked" for r in done) / len(done),
        wall_time=loop.wall(),
    )


def _sections(cfgs: list) -> dict:
    """The config sections a population checkpoint must match: task, model and member count."""
    return {**config_sections(cfgs[0]), "population": {"members": len(cfgs)}}


def _state(pop: _Population, loop: Loop, members: _Members) -> dict:
    """Everything needed to continue exactly where this eval left off (tensors copied to CPU)."""
    return to_cpu({
        "config": _sections(pop.cfgs),
        "population": pop.state_dict(),
        **rng_state(pop.device),  # dropout masks
        "rules": [rule.state_dict() for rule in members.rules],
        "results": [None if r is None else dataclasses.asdict(r) for r in members.results],
        "last": members.last,
        "progress": loop.clock.state_dict(),
    })


def _restore(pop: _Population, loop: Loop, members: _Members, state: dict) -> None:
    pop.load_state_dict(state["population"])
    restore_rng(state, pop.device)
    for rule, rule_state in zip(members.rules, state["rules"], strict=True):
        rule.load_state_dict(rule_state)
    members.results = [None if r is None else TrainResult(**r) for r in state["results"]]
    members.last = [dict(r) for r in state["last"]]
    loop.clock.load_state_dict(state["progress"])
