"""SearchConfig: the `search:` section of an experiment YAML (used only by `groktune sweep`).

    search:
      space:
        optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
        optim.weight_decay: {uniform: [0.0, 2.0]}
        train.batch_size: {choice: [128, 256, 512]}
        model.d_model: {quniform: [32, 128, 32]}
        task.op: {grid: ["x+y", "x*y"]}
      algorithm: tpe        # tpe | random | grid | pbt      (orchestrator.search.algos.SEARCHERS)
      scheduler: asha       # asha | hyperband | fifo | pbt  (orchestrator.search.algos.SCHEDULERS)
      seeds_per_trial: 3    # each trial trains seeds s, s+1000, s+2000 as one population; reports the median
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any

from groktune.errors import SetupError
from orchestrator.search.algos import SCHEDULERS, SEARCHERS
from orchestrator.search.multi_objective import check_objectives
from groktune.space import Dist, parse_space
from orchestrator.search.space import check_keys_exist
from orchestrator.storage.optuna_study import check_storage
from trials.choices import VECTORIZE, resolve_vectorize

MAX_SEEDS = 1000
# (field, low, high): sizes and budgets refused before anything is started. The highs are far
# beyond any real sweep; they keep a typo (num_samples: 1e9) from queueing a billion trials.
LIMITS = (
    ("num_samples", 1, 1_000_000),
    ("grace_period", 1, 1_000_000_000),
    ("reduction_factor", 2, 1000),
    ("perturbation_interval", 1, 1_000_000_000),
    ("cpus_per_trial", 0, 1024),
    ("gpus_per_trial", 0, 64),
    ("seeds_per_trial", 1, 1000),
    ("pack", 1, 1024),
    ("max_failures", 0, 1000),
    ("max_concurrent", 0, 100_000),
    ("checkpoint_every", 0, 1_000_000_000),
)


@dataclass
class VerifyConfig:
    """The verification stage after a sweep (orchestrator.sweep.verify): top configs on fresh seeds."""

    top: int = -1
    """Configs to re-train; -1: 3 when the objective is speed (metric grok_score), else 0 (off)."""
    seeds: int = 3
    """Fresh seeds per config, never used by the search."""


@dataclass
class SearchConfig:
    space: dict[str, Any] = field(default_factory=dict)
    """Dotted config key -> {distribution: arguments}; distributions as in groktune.space.DISTRIBUTIONS.
    Parsed once, by validate(), into `params`, which is what the sweep reads."""
    algorithm: str = "tpe"
    """tpe (Optuna, seeded) | random (each draw trained at every grid value and seed) | grid (every
    combination once; num_samples ignored) | pbt | nsga2 (Optuna's NSGA-II, for several objectives)"""
    scheduler: str = "asha"
    """asha | hyperband | fifo | pbt (pbt goes with algorithm pbt; both perturb optim/train keys only)"""
    metric: str | list[str] = "grok_score"
    """What the scheduler and searcher optimise; see orchestrator.sweep.objective.grok_score (lower is better).
    A list (with mode a list of equal length) is a multi-objective search: orchestrator.search.multi_objective."""
    mode: str | list[str] = "min"
    """min | max for metric (a list of the same length for several objectives)."""
    num_samples: int = 12
    """Configurations sampled (each run once per seed; grid dimensions multiply it)."""
    max_concurrent: int = 0
    """Trials running at once; 0 = as many as the resources allow."""
    reuse_actors: bool = True
    """Run the next trial in a finished trial's worker process instead of starting a new one:
    the worker's start-up and imports (torch, the first optimizer's torch._dynamo import) are
    paid once per worker, not per trial (~3 s per trial on a 2-core CPU: benchmarks/README.md
    "Sweep overhead" and "Sweep throughput"). The price: a trial's peak_memory_mb on CPU is its
    worker's peak so far, and memory a trial leaves behind stays with the worker; false gives
    each trial a fresh process."""
    grace_period: int = 200
    """ASHA/HyperBand: optimizer steps before a trial can first be stopped."""
    reduction_factor: int = 3
    """ASHA/HyperBand: each rung keeps 1 / reduction_factor of the trials."""
    perturbation_interval: int = 500
    """PBT: optimizer steps between exploit/explore rounds."""
    cpus_per_trial: float = 1.0
    """CPUs Ray reserves per trial; the trial's torch threads follow it."""
    gpus_per_trial: float = 0.0
    """Fractions pack trials: 0.25 runs four trials on one GPU. A trial's train.device follows it
    (auto: cuda when > 0, else cpu; a device that does not fit is refused before Ray starts)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Each sampled config is trained once per seed (the experiment seed is replaced)."""
    seeds_per_trial: int = 1
    """K > 1: every trial trains its sampled config with K seeds, seed + 1000 i for i < K, as one
    population in one process (trials.train.train_population) and reports the members' median; its
    steps_to_target is the median member's. Needs a single entry in `seeds`."""
    population_vectorize: str = VECTORIZE[0]
    """With seeds_per_trial > 1 (and packed trials, `pack`): auto (vmap on a CUDA device, loop
    elsewhere) | loop (each member its own modules; its curve is bitwise its separate run's, and
    on CPU as fast as vmap or faster at grokfast size, benchmarks/README.md "Vectorised
    populations") | vmap (stacked parameters, batched kernels for all members: faster for very
    small models and on GPUs; equal to separate runs up to float rounding)."""
    pack: int = 1
    """K > 1: each Ray trial trains up to K sampled points as one population (orchestrator.sweep.packing;
    points differing in model shape, batch size, task or optimizer family go to different packs);
    every point stays a trial of its own: its row, curve, ledger status and TensorBoard run.
    random/grid draw the points up front; tpe asks Optuna for a batch of points at a time (split
    into packs by structure) and tells each point its own value; asha cuts each point at its rungs
    inside its pack; hyperband does so in asynchronous brackets (each point in one); pbt makes each
    pack's points one population that exploits and explores per point (orchestrator.search.point_pbt)."""
    max_failures: int = 2
    """Retries of a failed trial, each from its last checkpoint."""
    checkpoint_every: int = 0
    """Steps between trial checkpoints; 0 uses train.checkpoint_every."""
    optuna_storage: str = ""
    """Where the TPE study lives, so optuna-dashboard can follow it live: an RDB URL
    (sqlite:///study.db) or a JournalStorage file (journal:PATH, or a path ending in .log /
    .journal); empty keeps it in memory. orchestrator.storage.optuna_study."""
    tracking: list[str] = field(default_factory=list)
    """Trackers that also get every trial's metrics at its optimizer steps: mlflow, wandb (each
    skipped with a warning when not installed; configured by their own environment variables,
    MLFLOW_TRACKING_URI, WANDB_MODE, ...: orchestrator.sweep.tracking)."""
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    """After the search, its top configs re-trained on fresh seeds (orchestrator.sweep.verify)."""

    @property
    def params(self) -> dict[str, Dist]:
        """The space as typed distributions (groktune.space.Dist by key, in YAML order), parsed
        once by validate(); every consumer of the space reads this, never `space` again. A
        SearchConfig that was never validated is parsed on first use."""
        parsed = self.__dict__.get("_params")
        if parsed is None or parsed[0] != self.space:  # not validated, or `space` replaced since
            self.__dict__["_params"] = parsed = (dict(self.space), parse_space(self.space))
        return parsed[1]

    def validate(self) -> None:
        for name, allowed in (
            ("algorithm", tuple(SEARCHERS)),  # the registries: a name they lack is refused here
            ("scheduler", tuple(SCHEDULERS)),
            ("population_vectorize", VECTORIZE),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}: got {value!r}, allowed: {', '.join(allowed)}")
        for name, low, high in LIMITS:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name}: got {value:g}, must be in [{low:g}, {high:g}]")
        if not -1 <= self.verify.top <= 100:
            raise ValueError(f"verify.top: got {self.verify.top}, must be in [-1, 100] (-1: 3 when the metric is grok_score)")
        if not 1 <= self.verify.seeds <= 100:
            raise ValueError(f"verify.seeds: got {self.verify.seeds}, must be in [1, 100]")
        if self.cpus_per_trial <= 0:
            raise ValueError(f"cpus_per_trial: got {self.cpus_per_trial}, must be > 0")
        if not self.seeds:
            raise ValueError("seeds: empty list; give at least one seed")
        if len(self.seeds) > MAX_SEEDS:
            raise ValueError(f"seeds: {len(self.seeds)} seeds, at most {MAX_SEEDS}")
        for seed in self.seeds:
            if not 0 <= seed <= 2**31 - 1:
                raise ValueError(f"seeds: got {seed}, each must be in [0, {2**31 - 1}]")
        check_storage(self.optuna_storage)  # RDB URL or journal file; one line otherwise
        if self.seeds_per_trial > 1 and len(self.seeds) > 1:
            raise ValueError(f"seeds_per_trial: got {self.seeds_per_trial} with {len(self.seeds)} seeds; "
                             f"give one seed (each trial trains seed + 1000 i for i < seeds_per_trial)")
        for name in self.tracking:
            if name not in ("mlflow", "wandb"):
                raise ValueError(f"tracking: got {name!r}, allowed: mlflow, wandb")
        check_algorithm(self.params, self.algorithm, self.scheduler)  # params: parsed and checked here, once
        if self.pack > 1:
            searcher = SEARCHERS[self.algorithm]
            scheduler = SCHEDULERS[self.scheduler]
            if not ((searcher.packs or searcher.build_packs is not None)
                    and (scheduler.packs or scheduler.cuts_points is not None or scheduler.perturbs_points is not None)):
                raise ValueError(f"pack: got {self.pack} with algorithm {self.algorithm} and scheduler {self.scheduler}; "
                                 f"packed trials need algorithm {_pack_searchers()} and scheduler "
                                 f"{_pack_schedulers()}")
            if self.seeds_per_trial > 1:
                raise ValueError(f"pack: got {self.pack} with seeds_per_trial {self.seeds_per_trial}; "
                                 f"pack the seeds instead (list them in search.seeds)")
            if searcher.build_packs is not None and isinstance(self.metric, list):
                raise ValueError(f"pack: got {self.pack} with algorithm {self.algorithm} and several metrics; "
                                 f"packed trials tell one objective per point (give one metric, or pack: 1)")
        check_objectives(self, [n for n, spec in SCHEDULERS.items() if spec.multi_objective],
                         [n for n, spec in SEARCHERS.items() if spec.multi_objective])  # metric/mode

    def check_against(self, cfg: Any) -> None:
        """Cross-check the space against the experiment config (every key must exist), and a
        population trial (seeds_per_trial > 1) against what trials.train's populations support."""
        check_keys_exist(self.params, cfg)
        members = max(self.seeds_per_trial, self.pack)
        if members > 1:
            from trials.train import check_population  # deferred: torch, only for populations

            key = "seeds_per_trial" if self.seeds_per_trial > 1 else "pack"
            try:
                # the driver may have no GPU: "auto" is checked as loop unless the config names CUDA
                device = "cuda" if cfg.train.device.startswith("cuda") else "cpu"
                check_population([cfg] * members, resolve_vectorize(self.population_vectorize, device))
            except SetupError as err:
                reason = str(err).removeprefix("population: ")
                raise ValueError(f"search.{key}: got {members} (one population per trial), "
                                 f"but {reason}, or set search.{key}: 1") from None


def check_trial_device(device: str, gpus_per_trial: float) -> None:
    """Refuse a train.device that does not fit the GPUs Ray reserves per trial (ValueError, one line).

    Ray Tune places trials by their reservation: a trial given no GPU that trains on one runs
    outside Ray's accounting (or fails, by Ray version); a trial given a GPU that trains on the
    CPU leaves it idle; and a trial sees only its own GPUs, numbered from 0, so cuda:N names
    another trial's GPU or none. `auto` is resolved per trial by trial_device.
    """
    if re.fullmatch(r"cuda:[0-9]+", device):
        raise ValueError(f"train.device: got {device!r}; in a sweep each trial sees only the GPUs Ray gives it "
                         f"(as cuda:0), so use cuda or auto")
    if device == "cuda" and gpus_per_trial <= 0:
        raise ValueError("train.device: got 'cuda' with search.gpus_per_trial 0 (no GPU reserved per trial); "
                         "set search.gpus_per_trial > 0 (e.g. 0.25: four trials share a GPU), or train.device: auto")
    if device in ("cpu", "mps") and gpus_per_trial > 0:
        raise ValueError(f"train.device: got {device!r} with search.gpus_per_trial {gpus_per_trial:g}: the reserved "
                         f"GPU would idle; set train.device: auto (or cuda), or search.gpus_per_trial: 0")


def trial_device(device: str, gpus_per_trial: float) -> str:
    """A trial's train.device: `auto` becomes cuda when Ray reserves GPUs for it, else cpu."""
    if device != "auto":
        return device
    return "cuda" if gpus_per_trial > 0 else "cpu"


def _pack_searchers() -> str:
    """The searchers that take search.pack > 1 (drawn up front, or asking pack by pack)."""
    names = [n for n, spec in SEARCHERS.items() if spec.packs or spec.build_packs is not None]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _pack_schedulers() -> str:
    """The schedulers that take search.pack > 1 (never cutting a pack, or cutting its points)."""
    names = [n for n, spec in SCHEDULERS.items()
             if spec.packs or spec.cuts_points is not None or spec.perturbs_points is not None]
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def _names(table: dict, flag: str) -> str:
    """The table's names whose spec has `flag` set, as "a, b or c"."""
    names = [name for name, spec in table.items() if getattr(spec, flag)]
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def check_algorithm(dists: dict[str, Dist], algorithm: str, scheduler: str) -> None:
    """Combinations of a space, a searcher and a scheduler that cannot run; ValueError one-liners.

    Every rule asks a property of the SEARCHERS / SCHEDULERS entry (orchestrator.search.algos),
    never a name, so a new searcher or scheduler states its needs in its own table line.

    Args:
        dists: the parsed space (SearchConfig.params).
        algorithm: a SEARCHERS key; scheduler: a SCHEDULERS key (both already validated).
    """
    searcher, sched = SEARCHERS[algorithm], SCHEDULERS[scheduler]
    if searcher.defers_to_scheduler != sched.needs_mutations:
        pair = algorithm if searcher.defers_to_scheduler else scheduler
        raise ValueError(f"algorithm: {algorithm} with scheduler {scheduler}; {pair} needs algorithm: "
                         f"{_names(SEARCHERS, 'defers_to_scheduler')} and scheduler: "
                         f"{_names(SCHEDULERS, 'needs_mutations')} together")
    for key, d in dists.items():
        if d.kind == "grid" and not searcher.grid_dimensions:
            raise ValueError(f"space.{key}: grid needs algorithm {_names(SEARCHERS, 'grid_dimensions')} "
                             f"({algorithm} samples; use choice)")
        if searcher.exhaustive and not d.discrete:
            raise ValueError(f"space.{key}: algorithm {algorithm} needs grid or choice values, got {d.kind}")
        if key == "train.steps":
            raise ValueError("space.train.steps: the step budget is fixed per sweep; set train.steps outside the space")
        if sched.clones_checkpoints and key.split(".")[0] in ("task", "model"):
            raise ValueError(f"space.{key}: {scheduler} can only perturb optim/train keys "
                             f"(checkpoints are cloned between trials of one task and model)")
    if searcher.needs_space and not dists:
        raise ValueError(f"space: empty; {algorithm} needs at least one distribution")
