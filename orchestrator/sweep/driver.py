"""A sweep: the Ray Tune Tuner over the trials adapter, started fresh or restored.

    cfg = load_config("configs/demo_sweep.yaml")
    outcome = run_sweep(cfg, storage="results", name=None, address=None, resume=False)

STORAGE/NAME/ holds Ray's own layout (one folder per trial with result.json, params.json,
checkpoints; the experiment state Tune restores from), plus tensorboard/ (one run per trial, at
optimizer steps: orchestrator.sweep.callbacks.StepTensorBoard), experiment.yaml (the resolved experiment config, search included), driver.heartbeat (JSON, the heartbeat
`groktune status` reads), ledger/ (one record per finished trial, the source of every status:
orchestrator.sweep.ledger) and, at the end, curves.parquet and trials.parquet (orchestrator.sweep.results),
then, where the objective is speed, verification.csv and verified.csv: the top configs re-trained
on fresh seeds (orchestrator.sweep.verify).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from groktune.errors import UserError
from groktune.layout import EXPERIMENT as EXPERIMENT_FILE
from groktune.layout import FINAL_STATUSES, write_atomic
from groktune.versions import write_versions
from orchestrator.config.experiment import ExperimentConfig, dump_config, load_config
from orchestrator.config.trial import maker_for
from orchestrator.search.algos import (
    build_scheduler,
    build_searcher,
    checkpoint_every,
    clones_checkpoints,
    expected_trials,
    num_samples,
    pack_count,
    point_pbt,
    packs_searched,
    param_space,
    point_rungs,
)
from orchestrator.search.multi_objective import tune_objective
from orchestrator.session.start import start_ray, stop_ray
from orchestrator.storage.location import tune_storage_for
from orchestrator.sweep.console import NORMAL, header_lines, quiet_ray
from orchestrator.sweep.folder import check_fresh, check_resume, reconcile, resumable, tune_trial_ids
from orchestrator.sweep.ledger import read_ledger, run_with_ledger
from orchestrator.sweep.objective import ScoreState
from orchestrator.sweep.packing import PACK_KEY, is_pack_record, make_packs, sample_points
from orchestrator.sweep.results import collect
from orchestrator.config.trial import maker_for
from orchestrator.sweep.verify import verify

# Ray (and the adapter and callbacks, which import Ray and torch) are imported inside the
# functions that use them: `groktune sweep` refuses a bad config before Ray is even imported.

SNAPSHOT_S = "2"
CHECKPOINT_PERIOD_S = 20.0
"""With search.checkpoint_every unset: a trial hands Tune at most one checkpoint per this many
seconds of its wall time (orchestrator.sweep.adapter.CheckpointPolicy), so a failure loses at
most ~20 s of a trial's work, trials shorter than that never checkpoint, and no trial
checkpoints twice within one experiment snapshot (SNAPSHOT_S) before its closing report."""


@dataclass
class SweepOutcome:
    path: Path
    wall_time: float
    trials: object  # pandas DataFrame of trials.parquet
    verified: object = None  # pandas DataFrame of verified.csv (orchestrator.sweep.verify), or None


def experiment_dir(cfg: ExperimentConfig, storage: str | Path, name: str | None) -> Path:
    return Path(storage).expanduser().resolve() / (name or cfg.name)


def saved_config(cfg: ExperimentConfig, path: Path) -> ExperimentConfig:
    """The config a resumed sweep runs: the one saved in its folder (a note if it differs)."""
    saved = path / EXPERIMENT_FILE
    resumed = load_config(saved) if saved.exists() else cfg
    if dump_config(resumed) != dump_config(cfg):
        print(f"groktune: note: resuming with the config saved in {saved}, not the one given", flush=True)
    return resumed


def check_resources(search) -> None:
    """Refuse per-trial resources that no node of the connected cluster has (they would wait forever).

    Args:
        search: the SearchConfig (cpus_per_trial, gpus_per_trial).
    Raises:
        UserError naming the key, the value and the most one node offers.
    """
    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for key, resource, want in (("cpus_per_trial", "CPU", search.cpus_per_trial),
                                ("gpus_per_trial", "GPU", search.gpus_per_trial)):
        most = max((float(n.get("Resources", {}).get(resource, 0.0)) for n in nodes), default=0.0)
        if want > most:
            raise UserError(f"search.{key}: got {want:g}, but no node of the Ray cluster offers that many "
                            f"{resource}s (the largest of {len(nodes)} node(s) has {most:g})")


def build_trainable(cfg: ExperimentConfig, path: Path, orphans: dict | None = None):
    """The adapter with its config maker and scorer bound, and the per-trial resources.

    Every trial goes through orchestrator.sweep.ledger.run_with_ledger: a trial the ledger has
    finished (or the orphan it claims, see `orphans`) reports its ledgered result instead of
    training again.

    With search.seeds_per_trial > 1 a trial trains its point with that many seeds as one
    population in one process (orchestrator.sweep.adapter.population_trainable), on the same resources;
    with search.pack > 1 a trial trains a pack of points (orchestrator.sweep.adapter.pack_trainable).
    """
    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    from ray import tune

    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    from orchestrator.sweep.adapter import pack_trainable, population_trainable, trainable

    s = cfg.search
    maker = maker_for(cfg, {"train.checkpoint_every": checkpoint_every(s, cfg.train.checkpoint_every)})
    ledger = {"exp": str(path), "orphans": dict(orphans or {}), "checkpoints": checkpoint_policy(s)}
    if s.pack > 1:
        bound = tune.with_parameters(run_with_ledger, inner=pack_trainable, make_config=maker, scorer=ScoreState,
                                     vectorize=s.population_vectorize, rungs=point_rungs(s, cfg.train.steps, path),
                                     pbt=point_pbt(s, cfg.seed), exp_dir=str(path), **ledger)
    elif s.seeds_per_trial > 1:
        bound = tune.with_parameters(run_with_ledger, inner=population_trainable, make_members=maker.members,
                                     scorer=ScoreState, vectorize=s.population_vectorize, **ledger)
    else:
        bound = tune.with_parameters(run_with_ledger, inner=trainable, make_config=maker, scorer=ScoreState, **ledger)
    return tune.with_resources(bound, {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial})


def packed_space(cfg: ExperimentConfig) -> dict:
    """search.pack > 1: the Tuner's param_space, one grid value per pack of points drawn up front
    (orchestrator.sweep.packing); the same packs every time for one config (a resume rebuilds them)."""
    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    from ray import tune

    # deferred: torch, only once a sweep runs
    from trials.train import structural_values

    maker = maker_for(cfg)
    points = sample_points(param_space(cfg.search), cfg.search.num_samples, cfg.seed)
    packs = make_packs(points, cfg.search.pack,
                       lambda point: structural_values(maker(point)))
    return {PACK_KEY: tune.grid_search(packs)}


def sweep_space(cfg: ExperimentConfig) -> tuple[dict, int]:
    """(param_space, num_samples) of the Tuner: the search space, or packs of drawn points, or
    nothing and the number of packs a searcher asks for (packs_searched: TPE)."""
    if packs_searched(cfg.search):
        return {}, pack_count(cfg.search)
    if cfg.search.pack > 1:
        return packed_space(cfg), 1
    return param_space(cfg.search), num_samples(cfg.search)


def checkpoint_policy(search):
    """Which offered saves become Tune checkpoints (orchestrator.sweep.adapter.CheckpointPolicy).

    Args:
        search: the SearchConfig.
    Returns:
        Every save when PBT clones checkpoints or search.checkpoint_every asks for those steps;
        else, when failed trials are retried (max_failures > 0), one per CHECKPOINT_PERIOD_S at
        most; else none (nothing would read them).
    """
    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    from orchestrator.sweep.adapter import CheckpointPolicy

    if clones_checkpoints(search) or search.checkpoint_every:
        return CheckpointPolicy(enabled=True, min_interval_s=0.0)
    return CheckpointPolicy(enabled=search.max_failures > 0, min_interval_s=CHECKPOINT_PERIOD_S)


def trial_dirname(trial) -> str:
    """Short trial folder names (Ray's default spells every parameter out)."""
    return f"trial_{trial.trial_id}"


def build_tuner(cfg: ExperimentConfig, path: Path, callbacks: Sequence = (), verbosity: int = NORMAL):
    """A fresh Tuner; `callbacks` are extra Tune callbacks (benchmarks/sweep_overhead.py's clock).

    `verbosity` (orchestrator.sweep.console): NORMAL adds the progress line and keeps Tune silent;
    VERBOSE (and up) brings back Tune's own tables instead; QUIET prints neither.
    """
    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    from ray import tune

    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    from orchestrator.sweep.callbacks import Heartbeat, LedgerCallback, Progress, logger_callbacks

    s = cfg.search
    space, samples = sweep_space(cfg)
    n_points = sum(map(len, space[PACK_KEY]["grid_search"])) if PACK_KEY in space else expected_trials(s)
    progress = [Progress(n_points)] if verbosity == NORMAL else []
    tune_config = tune.TuneConfig(
        **tune_objective(s),  # one metric; None with several (the searcher holds the lists)
        search_alg=build_searcher(s, cfg.seed, path.name),  # None for packs drawn up front
        scheduler=build_scheduler(s, cfg.train.steps, path),
        num_samples=samples,
        max_concurrent_trials=s.max_concurrent or None,
        reuse_actors=s.reuse_actors,  # on by default: a worker takes trial after trial (SearchConfig)
        trial_dirname_creator=trial_dirname,
        trial_name_creator=trial_dirname,
    )
    run_config = tune.RunConfig(
        name=path.name,
        storage_path=tune_storage_for(path),  # path's parent, or a bucket (orchestrator.sweep.bucket)
        failure_config=tune.FailureConfig(max_failures=s.max_failures),
        # PBT restores trials from other trials' checkpoints, possibly older than the newest ones.
        # Else 3: Tune forces an extra experiment snapshot when a trial checkpoints num_to_keep
        # times between two snapshots; under checkpoint_policy a trial makes at most two there
        # (one periodic, then its closing one), so none is forced.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None if clones_checkpoints(s) else 3),
        callbacks=[LedgerCallback(str(path)), Heartbeat(str(path)), *progress,
                   *logger_callbacks(s, path), *callbacks],
        # 0: no per-trial boxes or result tables (the Progress line replaces them); -v: 1, -vv: 2.
        verbose=max(0, verbosity - 1),
    )
    return tune.Tuner(build_trainable(cfg, path), param_space=space, tune_config=tune_config, run_config=run_config)


def restore_tuner(cfg: ExperimentConfig, path: Path):
    """Tuner.restore after reconciling the ledger with the state Tune restores (sweep_folder):
    finished trials stay finished (TERMINATED ones are not started; others replay their ledger
    record), unfinished ones continue from their last checkpoints, errored ones stay errors
    (error is final: their retries ran out); the searcher's and scheduler's state come back."""
    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    from ray import tune

    orphans = reconcile(path)
    finished = sum(r.get("status") in FINAL_STATUSES and not is_pack_record(r) for r in read_ledger(path).values())
    print(f"groktune: resuming {path.name}: {len(tune_trial_ids(path))} trial(s) in Tune's saved state, "
          f"{finished} finished in the ledger (kept, not trained again)", flush=True)
    return tune.Tuner.restore(
        str(path), trainable=build_trainable(cfg, path, orphans), resume_unfinished=True, resume_errored=False,
        param_space=sweep_space(cfg)[0],
    )


def outermost_new(path: Path) -> Path | None:
    """The outermost folder that creating `path` would create (--storage may be new too); None if it exists."""
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def check_creatable(path: Path) -> None:
    """Create the sweep folder `path` (and its missing parents), then remove what was created:
    a --storage where no folder can be made (read-only, a file in the way, no permission) is
    one line here, before Ray starts, instead of an error from inside Tune."""
    created = outermost_new(path)
    if created is None:
        return
    try:
        path.mkdir(parents=True)
    except OSError as err:
        raise UserError(f"--storage: cannot create the sweep folder {path} ({err.strerror or type(err).__name__})") from None
    finally:
        shutil.rmtree(created, ignore_errors=True)


def print_header(cfg: ExperimentConfig, path: Path) -> None:
    """The console header (orchestrator.sweep.console.header_lines) with the connected cluster's resources."""
    # deferred: Ray (and what imports it) only once a sweep runs; see the note above
    import ray

    s = cfg.search
    lines = header_lines(path.name, expected_trials(s), {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial},
                         ray.cluster_resources(), path)
    print("\n".join(lines), flush=True)


def run_sweep(cfg: ExperimentConfig, storage: str | Path, name: str | None,
              address: str | None = None, resume: bool = False, callbacks: Sequence = (),
              verbosity: int = NORMAL, verify_winners: bool = True) -> SweepOutcome:
    """Run (or resume) a sweep to the end; write both parquet files; return the trials table.

    All-or-nothing: the folder is checked, Ray started and the resources checked before
    anything is written; a sweep that fails before Tune saved any state leaves no folder it
    created. `callbacks`: extra Tune callbacks for a fresh sweep (not used on resume).
    `verify_winners`: run the verification stage at the end (orchestrator.sweep.verify; a sweep
    into a bucket runs it itself, once the results are pulled back).
    `verbosity`: orchestrator.sweep.console's QUIET / NORMAL / VERBOSE (a resume keeps the console
    the sweep was started with: Tune restores its callbacks from tuner.pkl).
    """
    if cfg.search is None:
        raise UserError("search: missing; a sweep config needs a `search:` section (see configs/demo_sweep.yaml)")
    path = experiment_dir(cfg, storage, name)
    if resume:
        check_resume(path)
        cfg = saved_config(cfg, path)
    else:
        check_fresh(path)
    # Tune snapshots its state at most this often (default "auto": 10 s or more); the ledger
    # keeps finished trials whatever the period, a shorter one only loses less unfinished work.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", SNAPSHOT_S)
    started = time.perf_counter()
    check_creatable(path)
    created = outermost_new(path)
    start_ray(address)
    try:
        check_resources(cfg.search)
        if verbosity >= NORMAL:
            print_header(cfg, path)
        with quiet_ray(verbosity):
            if resume:
                tuner = restore_tuner(cfg, path)
            else:
                # Tune's loggers come from logger_callbacks, not added by Tune (a resume keeps the
                # folder's own: old folders relied on Tune's for result.json).
                os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
                tuner = build_tuner(cfg, path, callbacks, verbosity)  # creates the folder (Tune writes tuner.pkl)
                write_atomic(path / EXPERIMENT_FILE, dump_config(cfg))
            write_versions(path)  # what produced these results, read back by the report
            tuner.fit()
    except BaseException:
        if created is not None and path.exists() and not resumable(path):
            shutil.rmtree(created, ignore_errors=True)  # nothing resumable yet: leave nothing behind
        raise
    finally:
        stop_ray()
    _, trials = collect(path)
    # Only a sweep that ran to its end is verified: one stopped by Ctrl-C (Tune returns from fit)
    # has unfinished trials and is resumed, then verified, with --resume.
    finished = len(trials) > 0 and bool(trials["status"].isin(FINAL_STATUSES).all())
    verified = verify(cfg, trials, path) if verify_winners and finished else None  # after Ray stopped: its CPUs are free
    return SweepOutcome(path=path, wall_time=time.perf_counter() - started, trials=trials, verified=verified)


__all__ = ["EXPERIMENT_FILE", "SweepOutcome", "build_tuner", "check_creatable", "check_resources", "experiment_dir", "restore_tuner",
           "print_header", "run_sweep", "saved_config"]
