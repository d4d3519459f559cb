"""`train(config, report)` and `train_population(configs, report)`: the one training loop, for
K >= 1 models. Knows nothing of Ray, Optuna or the CLI.

    records = []
    result = train(cfg, lambda record, save=None: records.append(record))           # one run, K = 1
    result = train_population(cfgs, lambda ev, save=None: records.extend(ev.records))  # K members

`report(record, save)` (train) is called once per eval with a flat dict of metrics;
`report(PopulationEval, save)` (train_population) once per eval with one such record per live
member plus "member" (its index in `cfgs`). `save` is None or, when a checkpoint is due, a
function `save(directory) -> path` that writes one there. The caller decides where checkpoints
go (a run dir, a Ray Tune checkpoint, nowhere).

Members share what makes them one population (trials.config.STRUCTURAL: the task, the model's shape, the
train section, the optimizer's family and switches) and may differ in every per-member scalar:
lr, weight decay, betas, eps, momentum, warmup and schedule, grad clip, gradient noise, Grokfast
alpha/lamb, weight-norm clip, Muon's lr and momentum, label smoothing, init scale, dropout rates
and the seed (initialisation, data split, batches). Two ways to step them (trials.choices.VECTORIZE):

- loop: each member is its own modules, stepped in turn by trials.member.train_step, the code a
  lone run steps; each member keeps its own global RNG state (dropout), so its curve is bitwise
  its lone run's. The default on CPUs.
- vmap: the members' parameters stacked, one batched kernel per op (trials.stacked); equal to
  the lone runs up to float rounding. The default on CUDA.

One schedule for all (trials.loop.Loop): evals, checkpoints, the end. A member that grokked,
diverged or early-stopped leaves at that eval; the others go on. A population's checkpoint
holds each member's state in a lone run's format (trials.member.member_state), so a member can
resume alone or in another population.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Protocol

import torch

from groktune.errors import SetupError
from groktune.layout import losses_finite
from tasks.lm import TokenStream
from trials.checkpoint import load_checkpoint, restore_rng, rng_state, to_cpu
from trials.choices import VECTORIZE, resolve_vectorize
from trials.config import STRUCTURAL, is_structural
from trials.loop import Loop, Save, TrainResult, stop_rule
from trials.member import Member, batch_size, member_state, record_tensors, restore_member, scores, train_step
from trials.metrics import perplexity
from trials.optim import lr_multiplier
from trials.population_summary import PopulationEval, PopulationReporter, PopulationResult, median_steps_to_target
from trials.probes import ProbeCollector
from trials.setup import build_run, config_sections, pick_device



class Reporter(Protocol):
    def __call__(self, record: dict, save: Save | None = None) -> None: ...


class Cut(Protocol):
    def __call__(self, records: list[dict]) -> Iterable[int]: ...


class Clone(Protocol):
    def __call__(self, records: list[dict]) -> dict[int, tuple[int, Any]]: ...


def train(cfg: Any, report: Reporter | None = None, *, resume_from: str | Path | None = None,
          artifacts_dir: str | Path | None = None) -> TrainResult:
    """Train `cfg` (an orchestrator ExperimentConfig) alone and report one record per eval.

    Args:
        report: called as report(record, save) at every eval; see the module docstring.
        resume_from: a checkpoint file or folder to continue from (same task and model config).
        artifacts_dir: the run's folder; probe arrays go to <artifacts_dir>/probes/*.npz (and
            TensorBoard). None: probe scalars still go into the records, arrays nowhere.
    Returns:
        TrainResult with the status, the step val accuracy first reached the target and stayed
        there (None if it did not), the last step, wall time and the last record.
    """
    def on_eval(evaluation: PopulationEval, save: Save | None = None) -> None:
        if report is not None:
            report(evaluation.records[0], save)

    return _train([cfg], on_eval, "loop", "auto", resume_from, artifacts_dir, tag=False).members[0]


def train_population(cfgs: list, report: PopulationReporter | None = None, *, vectorize: str = VECTORIZE[0],
                     attention: str = "auto", resume_from: str | Path | None = None,
                     cut: Cut | None = None, clone: Clone | None = None,
                     finished: dict[int, TrainResult] | None = None) -> PopulationResult:
    """Train the configs as one population; call report(PopulationEval, save) once per eval.

    Args:
        cfgs: ExperimentConfigs that pass check_population.
        report: called at every eval with the members' records (see PopulationEval) and `save`.
        vectorize: one of trials.choices.VECTORIZE: auto (vmap on CUDA, loop elsewhere), loop, vmap.
        attention: with vmap, "auto" or "math" (SDPA's math backend, batched by vmap everywhere) or
            "native" (the device's default kernels).
        resume_from: a checkpoint (file or folder) that `save` wrote for the same configs.
        cut: called at every eval, after the members' own stop rules and before the checkpoint,
            with the records of the members that go on; the members it returns (indices) stop
            there as early_stopped (a scheduler's rung cut-off: orchestrator.sweep.adapter).
        clone: called at every eval after `cut`, with the records of the members that go on;
            returns {member: (source member, new config)}: each such member continues from its
            source's state at this step (weights, optimizer moments, filters, stop rule, RNG
            streams, batches) under the new config, as a lone run resumed from the source's
            checkpoint with that config would (PBT's exploit and explore, per point of a pack:
            orchestrator.search.point_pbt). The new config must fit the population.
        finished: members that already ended elsewhere (index -> TrainResult: a resumed pack's
            points whose end the sweep's ledger holds but the checkpoint predates); they do not
            train again and end with that result.
    Returns:
        PopulationResult: per-member TrainResults (as train() would return them) and the median
        steps to target.
    """
    if vectorize not in VECTORIZE:
        raise SetupError(f"vectorize: got {vectorize!r}, allowed: {', '.join(VECTORIZE)}")
    mode = resolve_vectorize(vectorize, pick_device(cfgs[0].train.device).type) if cfgs else vectorize
    check_population(cfgs, mode)
    return _train(cfgs, report, mode, attention, resume_from, None, tag=True, cut=cut, clone=clone, finished=finished)


def _flat(obj, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def structural_values(cfg: Any) -> dict[str, Any]:
    """The values of cfg's STRUCTURAL keys, flat: equal for every member of one population."""
    sections = {s: dataclasses.asdict(getattr(cfg, s)) for s in ("task", "model", "optim", "train", "probes")
                if getattr(cfg, s, None) is not None}
    return {k: v for k, v in _flat(sections).items()
            if is_structural(k)}


def check_population(cfgs: list, vectorize: str = "loop") -> None:
    """Raise SetupError (one line) unless the configs can train as one population."""
    if not cfgs:
        raise SetupError("population: needs at least one config")
    first = structural_values(cfgs[0])
    for i, cfg in enumerate(cfgs[1:], start=1):
        for key, value in structural_values(cfg).items():
            if first.get(key) != value:
                raise SetupError(f"population: member {i} differs from member 0 in {key} ({value!r} vs "
                                 f"{first.get(key)!r}); members share {', '.join(STRUCTURAL)}")
    cfg = cfgs[0]
    if len(cfgs) > 1 and getattr(getattr(cfg, "probes", None), "kinds", None):
        raise SetupError("population: probes run in single runs only; set probes.kinds: []")
    if vectorize == "vmap":
        if cfg.task.name == "lm":
            raise SetupError("population: task.name 'lm' trains in loop mode only; set vectorize loop")
        if cfg.train.precision == "fp16":
            raise SetupError("population: train.precision fp16 trains in loop mode only (one grad scaler per member)")


class LoopEngine:
    """Members stepped in turn on their own modules, each exactly as its lone run."""

    def step(self, live: list[Member], step: int, lrs: list[float], want_norms: bool) -> list:
        out = []
        for m, lr in zip(live, lrs):
            m.run.optimizer.set_lr(lr)
            if m.rng is not None:  # its own dropout stream, as if it trained alone
                restore_rng(m.rng, m.run.device)
            out.append(train_step(m.run, step, want_norms))
            if m.rng is not None:
                m.rng = rng_state(m.run.device)
        return out

    def scores(self, live: list[Member]) -> list:
        return [(*scores(m.run), m.run.named_params) for m in live]

    def sync(self) -> None:
        """Nothing to write back: the runs are the members."""

    def keep(self, live: list[Member]) -> None:
        """Nothing to rebuild."""

    def rebuild(self, live: list[Member]) -> None:
        """Nothing to rebuild: each step reads the members' runs."""


def _build(cfgs: list, mode: str) -> list[Member]:
    members = []
    for i, cfg in enumerate(cfgs):
        run = build_run(cfg)
        own_rng = rng_state(run.device) if mode == "loop" and len(cfgs) > 1 else None  # right after its init
        members.append(Member(i, run, stop_rule(cfg.train), rng=own_rng))
    return members


def _train(cfgs: list, report, mode: str, attention: str, resume_from, artifacts_dir, tag: bool,
           cut: Cut | None = None, clone: Clone | None = None,
           finished: dict[int, TrainResult] | None = None) -> PopulationResult:
    cfgs = list(cfgs)  # a clone replaces its member's config here, not in the caller's list
    members = _build(cfgs, mode)
    tc = cfgs[0].train
    loop = Loop(tc)
    if resume_from is not None:
        _restore(members, loop, load_checkpoint(resume_from, _sections(cfgs)))
    for index, result in (finished or {}).items():
        m = members[index]
        if m.result is None:
            m.result, m.last = result, m.last or {**result.final, "member": index}
    live = [m for m in members if m.result is None]
    loop.finished = not live  # every member ended before this start: nothing to train
    if mode == "vmap":
        from trials.stacked import Stacked  # deferred: torch.func, loaded only for vmap populations

        engine = Stacked(live, attention)
    else:
        engine = LoopEngine()
    first = members[0].run
    probes = _probe_collector(first, loop.plan, artifacts_dir, loop.clock.step) if len(members) == 1 else None
    # An epoch is one pass over the training examples (training tokens for lm).
    n_train = first.data.n_train / (first.data.seq_len if isinstance(first.data, TokenStream) else 1)
    for step, at_eval in loop.steps():
        lrs = [m.cfg.optim.lr * lr_multiplier(step, m.cfg.optim, tc.steps) for m in live]
        grad_stats = engine.step(live, step, lrs, at_eval)
        loop.tick(batch_size(first))
        if not at_eval:
            continue
        records = _evaluate(engine, live, lrs, grad_stats, loop.clock.examples / n_train, loop, tag)
        for m, record in zip(live, records):
            m.last = record
            stop = m.rule.fold(record)
            record.update(m.rule.facts())  # the event, computed once here; the sweep's score reads it
            if stop is not None:
                m.result = loop.result(m.rule, stop, record)
        if cut is not None:
            _cut(cut, live, loop)
        going = [m for m in live if m.result is None]
        ended = {m.index: m.result for m in live if m.result is not None}
        loop.finished = not going
        if probes is not None and losses_finite(records[0]) and probes.due(loop.clock.step, final=loop.at_end):
            probes.collect(loop.clock.step, records[0])
        if len(going) < len(live):
            _leave(engine, live, going, loop, len(members))
        if clone is not None and going:
            _clone(clone, engine, going, loop, cfgs, mode)
        live = going
        save = loop.checkpoint(lambda: _snapshot(engine, members, loop, cfgs))
        if report is not None:
            report(PopulationEval(loop.clock.step, records, [m.last for m in members], _grokked(members), ended), save)
    if probes is not None:
        probes.close()
    for m in live:
        m.result = loop.result(m.rule, None, m.last)
    done = [m.result for m in members]
    return PopulationResult(members=done, median_steps_to_target=median_steps_to_target(done),
                            grokked_fraction=sum(r.status == "grokked" for r in done) / len(done),
                            wall_time=loop.wall())


def _cut(cut: Cut, live: list[Member], loop: Loop) -> None:
    """Stop the members `cut` names among those still going, as early_stopped."""
    going = {m.index: m for m in live if m.result is None}
    for index in set(cut([m.last for m in going.values()])):
        m = going[index]
        m.result = loop.result(m.rule, "early_stopped", m.last)


def _clone(clone: Clone, engine, going: list[Member], loop: Loop, cfgs: list, mode: str) -> None:
    """Give the members `clone` names their sources' states and new configs (see train_population);
    `cfgs` (the population's, this loop's own list) takes the new configs."""
    moves = clone([m.last for m in going])
    if not moves:
        return
    engine.sync()
    by_index = {m.index: m for m in going}
    clock = loop.clock.state_dict()
    states = {j: member_state(by_index[i], clock) for j, (i, _) in moves.items()}  # all read before any is written
    device = going[0].run.device
    for j, (_, cfg) in moves.items():
        m = by_index[j]
        own_last = m.last
        stream = rng_state(device)
        m.run = build_run(cfg)  # the new config's optimizer and filters, its data and batches
        restore_rng(stream, device)  # building reseeds the global stream; the population's goes on
        restore_member(m, states[j])
        if m.rng is not None:
            m.rng = {key: states[j][key] for key in m.rng}
        m.last = own_last  # this eval's record stays its own; its next is the clone's
        cfgs[j] = cfg
    check_population(cfgs, mode)
    engine.rebuild(going)


def _leave(engine, live: list[Member], going: list[Member], loop: Loop, k: int) -> None:
    """Members that stopped at this eval leave the engine; a population keeps their last state."""
    engine.sync()
    if k > 1:
        clock = {**loop.clock.state_dict(), "elapsed": loop.wall()}
        for m in live:
            if m.result is not None:
                m.snapshot = member_state(m, clock)
    engine.keep(going)


def _grokked(members: list[Member]) -> float:
    """Members grokked so far (an event by groktune.events' rule, stopped or not) / K."""
    statuses = [m.result.status if m.result else m.rule.final_status(None) for m in members]
    return statuses.count("grokked") / len(statuses)


def _evaluate(engine, live: list[Member], lrs: list[float], grad_stats: list, epoch: float, loop: Loop,
              tag: bool) -> list[dict]:
    """One record per live member; one device-to-host copy for all of them: per member its
    scalars, then its per-class accuracies."""
    per_member, parts = [], []
    for m, (train_s, val_s, named), stats in zip(live, engine.scores(live), grad_stats):
        tensors = record_tensors(m.run, train_s, val_s, named, stats)
        classes = (val_s["per_class"].float() if m.cfg.train.per_class_metrics and "per_class" in val_s
                   else None)
        parts.append(torch.stack([t.detach().float() for t in tensors.values()]))
        if classes is not None:
            parts.append(classes)
        per_member.append((tensors, 0 if classes is None else classes.numel()))
    host = torch.cat(parts).cpu().tolist()  # the one sync
    wall = loop.wall()
    records, at = [], 0
    for m, lr, (tensors, n_classes) in zip(live, lrs, per_member):
        record = {"step": loop.clock.step, "epoch": epoch, "lr": lr}
        record.update(zip(tensors, host[at : at + len(tensors)]))
        at += len(tensors)
        record["wall_time"] = wall
        if isinstance(m.run.data, TokenStream):
            record["val_ppl"], record["train_ppl"] = perplexity(record["val_loss"]), perplexity(record["train_loss"])
        elif n_classes:
            record["val_acc_per_class"] = host[at : at + n_classes]
        at += n_classes
        if tag:
            record["member"] = m.index
        records.append(record)
    return records


def _probe_collector(run, plan: frozenset[int], artifacts_dir, start_step: int):
    """The run's ProbeCollector, or None when probes are off (then nothing probe-related runs)."""
    probes_cfg = getattr(run.cfg, "probes", None)
    if probes_cfg is None or not probes_cfg.kinds:
        return None
    return ProbeCollector(run, sorted(plan), artifacts_dir, start_step)


def _sections(cfgs: list) -> dict:
    """The config sections a checkpoint must match: task and model (and the member count)."""
    sections = config_sections(cfgs[0])
    return sections if len(cfgs) == 1 else {**sections, "population": {"members": len(cfgs)}}


def _snapshot(engine, members: list[Member], loop: Loop, cfgs: list) -> dict:
    """The checkpoint state now: a lone run's member_state, or each member's for a population."""
    engine.sync()
    clock = loop.clock.state_dict()
    if len(members) == 1:
        return member_state(members[0], clock)
    return to_cpu({
        "config": _sections(cfgs),
        "members": [m.snapshot if m.snapshot is not None else member_state(m, clock) for m in members],
        "results": [None if m.result is None else dataclasses.asdict(m.result) for m in members],
        "progress": clock,
    })


def _restore(members: list[Member], loop: Loop, state: dict) -> None:
    if len(members) == 1:
        states, results = [state], [None]
    else:
        states, results = state["members"], state["results"]
    live_state = None
    for m, member_saved, result in zip(members, states, results, strict=True):
        restore_member(m, member_saved)
        if m.rng is not None:
            m.rng = {key: member_saved[key] for key in m.rng}
        if result is not None:
            m.result, m.snapshot = TrainResult(**result), member_saved
        elif live_state is None:
            live_state = member_saved
    restore_rng(live_state or states[0], members[0].run.device)  # the global stream (dropout)
    loop.clock.load_state_dict(state["progress"])


__all__ = ["Clone", "Cut", "PopulationEval", "PopulationResult", "Reporter", "TrainResult", "check_population",
           "median_steps_to_target", "resolve_vectorize", "structural_values", "train", "train_population"]
