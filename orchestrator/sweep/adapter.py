"""The Ray Tune function trainables: `train(cfg, report)` with its records sent to `tune.report`.

Orchestration, not training: it imports Ray, so it lives here and trials/ stays Ray-free. `trainable` is handed, through
`tune.with_parameters`, a `make_config(tune_config) -> ExperimentConfig` and a `scorer` class
(orchestrator.sweep.objective's ScoreState), so the trial config and the objective stay with the
orchestrator. `population_trainable` (search.seeds_per_trial > 1) is handed
`make_members(tune_config) -> [ExperimentConfig]` instead and trains them as one population
(trials.train.train_population); it reports the members' median record, scored the same way.

Per eval it reports the trainer's record plus the score, the device, CPU time and peak memory;
when the trainer offers a checkpoint and the sweep's CheckpointPolicy wants it, it is written to
a temp folder with the score state and handed to Ray (`tune.Checkpoint.from_directory`). On start it restores from
`tune.get_checkpoint()`: a retried trial continues from its last checkpoint, and a PBT trial
cloned from another continues from that trial's weights under its own (perturbed) config —
the learning rate is applied every step from the config, so a new lr takes effect at once.
After training it reports the final record once more with `status` and `steps_to_target`
(and a checkpoint marked finished), so a trial Ray starts again after a driver crash returns at
once instead of training past its end.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import ray
import torch
from ray import tune

from groktune.errors import DamagedFile
from groktune.layout import FINAL_STATUSES, TUNE_STATE, sweep_status, trainer_status
from groktune.readback import TUNE_STATE_DATA, read_json_object
from orchestrator.sweep.ledger import read_record
from orchestrator.sweep.packing import DONE_KEY, OUTCOMES_KEY, PACK_KEY, POINT_KEY, POINTS_KEY, point_trial_id
from tasks.classes import chance_level
from trials.loop import TrainResult
from trials.train import train, train_population
from trials.setup import pick_device


@dataclass(frozen=True)
class CheckpointPolicy:
    """Which of the saves the trainer offers become Tune checkpoints (orchestrator.sweep.driver builds it).

    The trainer offers a save every train.checkpoint_every steps and at its end. A Tune checkpoint
    is not free: the worker writes it, Ray copies it into the trial's folder and the driver books
    it (~0.2 s each on a busy 2-core machine, benchmarks/README.md "Sweep overhead"; 16 per trial
    cost 3 s per trial there), and a trial that checkpoints CheckpointConfig.num_to_keep times
    between two experiment snapshots forces an extra snapshot (Ray's "Experiment state
    snapshotting ... may become a bottleneck" warning). So a sweep hands on only what something
    can use, at a period in seconds; the last step's save always goes with the closing report.
    """

    enabled: bool = True
    """False: no checkpoints at all (no failure retries and no PBT: nothing would read them)."""
    min_interval_s: float = 0.0
    """Hand on a save only this long after the trial's start or its previous checkpoint (a
    failure then loses at most about this much work); 0: every save offered."""


EVERY_SAVE = CheckpointPolicy()


def trainable(config: dict, *, make_config: Callable[[dict], Any], scorer: type,
              checkpoints: CheckpointPolicy = EVERY_SAVE) -> None:
    """Run one trial; `config` is the sampled point (dotted keys, maybe "seed"); `checkpoints`
    says which offered saves become Tune checkpoints."""
    cfg = make_config(config)

    def fit(report: _Reporter, resume_from: Path | None) -> dict:
        # Probe arrays (when probes are on) go to the trial's own folder in the experiment dir.
        result = train(cfg, report, resume_from=resume_from, artifacts_dir=tune.get_context().get_trial_dir())
        return {"status": result.status, "steps_to_target": result.steps_to_target}

    _run_trial(cfg, scorer, fit, checkpoints)


def population_trainable(config: dict, *, make_members: Callable[[dict], list], scorer: type,
                         vectorize: str, checkpoints: CheckpointPolicy = EVERY_SAVE) -> None:
    """Run one trial as a population: the sampled point once per member seed, in this process.

    Reports the members' median record (PopulationEval.median_record: its event is the median of
    the members' own events, so a grokked median scores median_steps_to_target) per eval with its
    score, `members_live`, `grokked_fraction` and `failure_rate` (1 - grokked_fraction; so far,
    the last eval's is the final one), and each member's latest `member_val_acc` /
    `member_train_acc` (lists in `member_seeds` order); the closing report's status and steps_to_target are the median member's, with each member's steps to
    target by seed in `member_steps_to_target` (JSON text: Tune results are flat scalars).
    """
    cfgs = make_members(config)
    seeds = json.dumps([int(c.seed) for c in cfgs])

    def fit(report: _Reporter, resume_from: Path | None) -> dict:
        def on_eval(evaluation, save=None) -> None:
            record = evaluation.median_record()
            record.update(members_live=len(evaluation.records), grokked_fraction=evaluation.grokked_fraction,
                          # an objective of multi-objective sweeps (orchestrator.search.multi_objective)
                          failure_rate=1.0 - evaluation.grokked_fraction,
                          # Each member's own curve, so the analysis finds every seed's event with
                          # the one event rule and draws the spread across seeds, also for a trial
                          # the scheduler stops before its closing report.
                          member_seeds=seeds, member_val_acc=[float(r["val_acc"]) for r in evaluation.latest],
                          member_train_acc=[float(r["train_acc"]) for r in evaluation.latest])
            report(record, save)

        result = train_population(cfgs, on_eval, vectorize=vectorize, resume_from=resume_from)
        by_seed = {str(c.seed): r.steps_to_target for c, r in zip(cfgs, result.members)}
        return {"status": result.status, "steps_to_target": result.median_steps_to_target,
                "member_steps_to_target": json.dumps(by_seed)}

    _run_trial(cfgs[0], scorer, fit, checkpoints)


PACK_SCORES = "pack_scores.json"
"""Each point's score state, saved beside a pack's checkpoint."""


def pack_trainable(config: dict, *, make_config: Callable[[dict], Any], scorer: type, vectorize: str,
                   checkpoints: CheckpointPolicy = EVERY_SAVE, rungs: Any = None, pbt: Any = None,
                   exp_dir: str | None = None) -> None:
    """Run one pack (search.pack): its points (config[PACK_KEY]) as one population, each its own trial.

    Every eval reports the pack's median record (what Tune's progress line sees) and, under
    POINTS_KEY, each live point's own record with its own grok_score (its own ScoreState); an
    eval where points stopped names them under DONE_KEY (their ledger records are written then);
    the closing report adds each point's outcome under OUTCOMES_KEY: its status, steps_to_target
    and last scalars. orchestrator.sweep.packing.split_pack turns these back into one trial per
    point. `rungs` (orchestrator.search.point_rungs.PointRungs, with ASHA) judges each point at
    its rungs; a point below a rung's cut-off stops inside the pack (pruned), the rest go on.
    `pbt` (orchestrator.search.point_pbt.PointPBT) makes the pack's points one PBT population: at
    its rounds a point in the bottom quantile continues from a top point's state with explored
    values (trials.train's `clone`); its records then carry its new point under POINT_KEY. The
    checkpoint holds every point's own state (a lone run's format, trials.member.member_state),
    the points' score states and current points, so a retried or resumed pack continues every point where it was;
    a point whose end the sweep's ledger (in `exp_dir`) holds but the checkpoint predates (it
    stopped after the checkpoint, then the driver died) does not train again.
    """
    first = make_config(config[PACK_KEY][0])
    chance = chance_level(first.task)
    trial_id = tune.get_context().get_trial_id()

    def fit(report: _Reporter, resume_from: Path | None) -> dict:
        saved = {}
        if resume_from is not None and (resume_from / PACK_SCORES).exists():
            saved = json.loads((resume_from / PACK_SCORES).read_text())
        points = [dict(p) for p in saved.get("points", config[PACK_KEY])]  # PBT moves them
        moved = set(saved.get("moved", []))  # points PBT has moved: their records carry their point
        last_round = int(saved.get("round", 0))
        cfgs = [make_config(p) for p in points]
        states = [scorer.from_dict(saved.get(str(j), {}), chance=chance) for j in range(len(cfgs))]
        # member -> (step, its score there): one update per eval; a resume keeps a stopped point's last
        scored = {int(j): (int(step), float(v)) for j, (step, v) in saved.get("last", {}).items()}

        def point_record(record: dict) -> dict:
            j, step = record["member"], int(record["step"])
            if scored.get(j, (None,))[0] != step:
                tc = cfgs[j].train
                scored[j] = (step, states[j].update(record, tc.target_val_acc, tc.steps))
            moved_point = {POINT_KEY: points[j]} if j in moved else {}
            return {**{k: _plain(v) for k, v in record.items()}, "grok_score": scored[j][1], **moved_point}

        def cut(records: list[dict]) -> list[int]:
            if rungs is None:
                return []
            return [r["member"] for r in records
                    if rungs.stops(point_trial_id(trial_id, r["member"]), point_record(r))]

        def clone(records: list[dict]) -> dict[int, tuple[int, Any]]:
            nonlocal last_round
            step = int(records[0]["step"])
            if pbt is None or not pbt.due(step, last_round):
                return {}
            last_round = step
            moves = pbt.exploit(step, [point_record(r) for r in records], dict(enumerate(points)),
                                json.dumps(config[PACK_KEY], sort_keys=True, default=str))
            for j, (i, point) in moves.items():  # this eval's record and score stay j's own; then i's state goes on
                points[j], states[j] = point, scorer.from_dict(states[i].state_dict(), chance=chance)
                moved.add(j)
            return {j: (i, make_config(point)) for j, (i, point) in moves.items()}

        def on_eval(evaluation, save=None) -> None:
            live = [point_record(record) for record in evaluation.records]
            summary = evaluation.median_record()
            summary.update(members_live=len(evaluation.records), grokked_fraction=evaluation.grokked_fraction)
            summary[POINTS_KEY] = json.dumps(live)
            if evaluation.ended:
                summary[DONE_KEY] = json.dumps([{"member": j, **_outcome(r)} for j, r in evaluation.ended.items()])

            def save_all(folder, save=save):
                path = save(folder)
                scores = {str(j): s.state_dict() for j, s in enumerate(states)}
                scores["last"] = {str(j): list(v) for j, v in scored.items()}
                scores.update(points=points, moved=sorted(moved), round=last_round)
                (Path(folder) / PACK_SCORES).write_text(json.dumps(scores, default=_plain))
                return path

            report(summary, save_all if save is not None else None)

        result = train_population(cfgs, on_eval, vectorize=vectorize, resume_from=resume_from, cut=cut, clone=clone,
                                  finished=_ledgered_points(exp_dir, trial_id, len(cfgs)))
        # a point's last score: its last eval's here, or its ledgered one (_ledgered_points)
        outcomes = [{**_outcome(r), "grok_score": scored[j][1] if j in scored else None, **_last_scalars(r.final)}
                    for j, r in enumerate(result.members)]
        return {"status": result.status, "steps_to_target": result.median_steps_to_target,
                OUTCOMES_KEY: json.dumps(outcomes)}

    _run_trial(first, scorer, fit, checkpoints)


def _ledgered_points(exp_dir: str | None, trial_id: str, k: int) -> dict[int, TrainResult]:
    """{member: TrainResult} of the pack's points that the ledger holds as ended (not an error)."""
    out = {}
    for j in range(k):
        record = read_record(exp_dir, point_trial_id(trial_id, j)) if exp_dir else None
        if record is None or record["status"] not in FINAL_STATUSES or record["status"] == "error" or not record.get("curve"):
            continue
        last = {key: v for key, v in record["curve"][-1].items() if key not in ("status", "steps_to_target")}
        stt = record.get("steps_to_target")
        out[j] = TrainResult(status=trainer_status(record["status"]), steps_to_target=None if stt is None else int(stt),
                             final_step=int(last["step"]), wall_time=float(last.get("wall_time") or 0.0), final=last)
    return out


def _outcome(result) -> dict:
    """A point's status (as the ledger spells it) and steps_to_target, from its TrainResult."""
    return {"status": sweep_status(result.status), "steps_to_target": result.steps_to_target}


def _last_scalars(final: dict) -> dict:
    """A point's last record's scalars: with its score, what a searcher is told when its pack closes."""
    return {k: _plain(v) for k, v in final.items()
            if k != "member" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _run_trial(cfg: Any, scorer: type, fit: Callable[[_Reporter, Path | None], dict],
               checkpoints: CheckpointPolicy) -> None:
    """Restore from Tune's checkpoint, train with `fit(report, resume_from) -> outcome`, then send
    the closing report: the last eval's metrics updated with the outcome."""
    work = Path(tempfile.mkdtemp(prefix="groktune-trial-"))
    try:
        resume_from, saved = _restore(work / "restored")
        if saved.get("finished"):
            tune.report(saved["finished"])  # finished before a driver crash: nothing to redo
            return
        # Chance comes from this trial's task; the event from the trainer's records.
        state = scorer.from_dict(saved.get("score", {}), chance=chance_level(cfg.task))
        meter = _Meter(float(saved.get("cpu_time_s", 0.0)), str(_device_name(cfg)))
        report = _Reporter(cfg, state, meter, work, int(saved.get("resumed_from_step", 0)), checkpoints,
                           curve=saved.get("curve", []))
        report.last_metrics = dict(saved.get("last_metrics", {}))  # if resumed at the very end
        outcome = fit(report, resume_from)
        final = dict(report.last_metrics)
        final.update(outcome, resumed_from_step=report.resumed_from_step)  # the ledger maps its status
        report.send(final, report.last_save if report.closing_checkpoint() else None, finished=final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _restore(target: Path) -> tuple[Path | None, dict]:
    """Copy Tune's checkpoint (if any) to `target`; return (trainer checkpoint dir, adapter state)."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, {}
    checkpoint.to_directory(str(target))
    # Checked before training starts: a damaged state is one line naming it, not a resume from step 0.
    saved = read_json_object(target / TUNE_STATE, TUNE_STATE_DATA) if (target / TUNE_STATE).exists() else {}
    weights = sorted(target.glob("*.pt"))
    for f in weights:
        if not f.is_file():
            raise DamagedFile(f"{f}: not a regular file; the trial cannot resume from this checkpoint")
    return (target if weights else None), saved


class _Meter:
    """CPU time (summed over restarts), peak memory and Ray node of this trial's process."""

    def __init__(self, cpu_before: float, device: str):
        self.cpu_before = cpu_before
        self.cpu_start = time.process_time()
        self.device = device
        # Ray's own result has node_ip and hostname, the same for every node of one machine;
        # the node id tells the nodes apart (trials.parquet's node_id).
        self.node_id = ray.get_runtime_context().get_node_id()

    def snapshot(self) -> dict:
        cpu = self.cpu_before + time.process_time() - self.cpu_start
        if self.device.startswith("cuda"):
            peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return {"device": self.device, "cpu_time_s": cpu, "peak_memory_mb": peak, "node_id": self.node_id}


class _Reporter:
    """The `report(record, save)` handed to train()."""

    def __init__(self, cfg: Any, state: Any, meter: _Meter, work: Path, resumed_from_step: int,
                 policy: CheckpointPolicy = EVERY_SAVE, curve: list[dict] | None = None):
        self.cfg, self.state, self.meter, self.work, self.policy = cfg, state, meter, work, policy
        # Every report so far (the checkpoint's, then this run's): each checkpoint carries it, so
        # the driver can mend a result.json that lags the checkpoint a trial restarts from
        # (orchestrator.sweep.ledger.restore_curve).
        self.curve: list[dict] = list(curve or [])
        self.resumed_from_step = resumed_from_step  # the checkpoint's step, 0 on a fresh start
        self.last_metrics: dict = {}
        self.last_save = None
        self.last_checkpoint = time.monotonic()  # the trial's start, then its latest checkpoint
        self.checkpointed = resumed_from_step > 0  # Tune holds a checkpoint of this trial

    def __call__(self, record: dict, save=None) -> None:
        tc = self.cfg.train
        score = self.state.update(record, tc.target_val_acc, tc.steps)
        metrics = {k: _plain(v) for k, v in record.items()}
        metrics.update(self.meter.snapshot(), grok_score=score, resumed_from_step=self.resumed_from_step)
        self.last_metrics, self.last_save = metrics, save
        self.send(metrics, save if self.hands_on(save, int(record["step"])) else None)

    def hands_on(self, save, step: int) -> bool:
        """Whether the save offered at `step` becomes a Tune checkpoint now (CheckpointPolicy)."""
        if save is None or not self.policy.enabled or step >= self.cfg.train.steps:
            return False  # the last step's save goes with the closing report, not twice
        return time.monotonic() - self.last_checkpoint >= self.policy.min_interval_s

    def closing_checkpoint(self) -> bool:
        """Whether the closing report carries the last save, marked finished: always when every
        save is handed on; else only when Tune holds an older checkpoint of this trial, which a
        restart would otherwise resume from (a short trial that never checkpointed has none)."""
        return self.policy.enabled and (self.policy.min_interval_s == 0 or self.checkpointed)

    def send(self, metrics: dict, save, finished: dict | None = None) -> None:
        self.curve.append(metrics)
        if save is None:
            tune.report(metrics)
            return
        self.last_checkpoint, self.checkpointed = time.monotonic(), True
        folder = Path(tempfile.mkdtemp(prefix="ckpt-", dir=self.work))
        save(folder)
        adapter_state = {
            "score": self.state.state_dict(),
            "cpu_time_s": metrics.get("cpu_time_s", 0.0),
            "resumed_from_step": metrics["step"],
            "last_metrics": metrics,
            "finished": finished,
            "curve": self.curve,
        }
        (folder / TUNE_STATE).write_text(json.dumps(adapter_state, default=_plain))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        shutil.rmtree(folder, ignore_errors=True)  # Ray has copied it into the trial's storage


def _device_name(cfg: Any) -> str:
    try:
        return str(pick_device(cfg.train.device))
    except Exception:  # noqa: BLE001 - train() raises the real error a moment later
        return cfg.train.device


def _plain(value: Any) -> Any:
    """JSON-friendly metric values (Ray writes result.json; NaN/inf kept as floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


__all__ = ["EVERY_SAVE", "PACK_SCORES", "CheckpointPolicy", "pack_trainable", "population_trainable", "trainable"]
