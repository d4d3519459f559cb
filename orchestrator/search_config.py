"""SearchConfig: the `search:` section of an experiment YAML (used only by `groktune sweep`).

    search:
      space:
        optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
        optim.weight_decay: {uniform: [0.0, 2.0]}
        train.batch_size: {choice: [128, 256, 512]}
        model.d_model: {quniform: [32, 128, 32]}
        task.op: {grid: ["x+y", "x*y"]}
      algorithm: tpe        # tpe | random | grid | pbt      (orchestrator.sweep_algos.SEARCHERS)
      scheduler: asha       # asha | hyperband | fifo | pbt  (orchestrator.sweep_algos.SCHEDULERS)
      seeds_per_trial: 3    # each trial trains seeds s, s+1000, s+2000 as one population; reports the median
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.space import check_algorithm, check_keys_exist, check_space
from orchestrator.sweep_algos import SCHEDULERS, SEARCHERS
from trials.choices import VECTORIZE
from trials.errors import SetupError

DISTRIBUTIONS = ("loguniform", "uniform", "quniform", "qloguniform", "randint", "choice", "grid")
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
    ("max_failures", 0, 1000),
    ("max_concurrent", 0, 100_000),
    ("checkpoint_every", 0, 1_000_000_000),
)


@dataclass
class SearchConfig:
    space: dict[str, Any] = field(default_factory=dict)
    """Dotted config key -> {distribution: arguments}; distributions as in DISTRIBUTIONS."""
    algorithm: str = "tpe"
    """tpe (Optuna, seeded) | random | grid (every combination once; num_samples ignored) | pbt"""
    scheduler: str = "asha"
    """asha | hyperband | fifo | pbt (pbt goes with algorithm pbt; both perturb optim/train keys only)"""
    metric: str = "grok_score"
    """What the scheduler and searcher optimise; see orchestrator.objective.grok_score (lower is better)."""
    mode: str = "min"
    num_samples: int = 12
    """Configurations sampled (each run once per seed; grid dimensions multiply it)."""
    max_concurrent: int = 0
    """Trials running at once; 0 = as many as the resources allow."""
    reuse_actors: bool = False
    """Run the next trial in a finished trial's worker process instead of starting a new one
    (saves the worker's start-up and imports, ~3 s per trial on a 2-core CPU: benchmarks/README.md
    "Sweep overhead"). Then a trial's peak_memory_mb on CPU is its worker's peak so far."""
    grace_period: int = 200
    """ASHA/HyperBand: optimizer steps before a trial can first be stopped."""
    reduction_factor: int = 3
    perturbation_interval: int = 500
    """PBT: optimizer steps between exploit/explore rounds."""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    """Fractions pack trials: 0.25 runs four trials on one GPU."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Each sampled config is trained once per seed (the experiment seed is replaced)."""
    seeds_per_trial: int = 1
    """K > 1: every trial trains its sampled config with K seeds, seed + 1000 i for i < K, as one
    population in one process (trials.population) and reports the members' median; its
    steps_to_target is the median member's. Needs a single entry in `seeds`."""
    population_vectorize: str = VECTORIZE[0]
    """With seeds_per_trial > 1: loop (one forward per member; each member's curve is bitwise its
    separate run's, and on CPU as fast as vmap or faster at grokfast size, benchmarks/README.md
    "Vectorised populations") | vmap (batched kernels for all members: faster for very small
    models and, unmeasured, on GPUs; equal to separate runs up to float rounding)."""
    max_failures: int = 2
    """Retries of a failed trial, each from its last checkpoint."""
    checkpoint_every: int = 0
    """Steps between trial checkpoints; 0 uses train.checkpoint_every."""
    optuna_storage: str = ""
    """Optional Optuna storage URL (e.g. sqlite:///study.db) so optuna-dashboard can show the study."""
    tracking: list[str] = field(default_factory=list)
    """Extra loggers: mlflow, wandb (used only when installed)."""

    def validate(self) -> None:
        for name, allowed in (
            ("algorithm", tuple(SEARCHERS)),  # the registries: a name they lack is refused here
            ("scheduler", tuple(SCHEDULERS)),
            ("mode", ("min", "max")),
            ("population_vectorize", VECTORIZE),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}: got {value!r}, allowed: {', '.join(allowed)}")
        for name, low, high in LIMITS:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name}: got {value:g}, must be in [{low:g}, {high:g}]")
        if self.cpus_per_trial <= 0:
            raise ValueError(f"cpus_per_trial: got {self.cpus_per_trial}, must be > 0")
        if not self.seeds:
            raise ValueError("seeds: empty list; give at least one seed")
        if len(self.seeds) > MAX_SEEDS:
            raise ValueError(f"seeds: {len(self.seeds)} seeds, at most {MAX_SEEDS}")
        for seed in self.seeds:
            if not 0 <= seed <= 2**31 - 1:
                raise ValueError(f"seeds: got {seed}, each must be in [0, {2**31 - 1}]")
        if self.optuna_storage and not self.optuna_storage.isprintable():
            raise ValueError("optuna_storage: got a URL with control characters")
        if self.seeds_per_trial > 1 and len(self.seeds) > 1:
            raise ValueError(f"seeds_per_trial: got {self.seeds_per_trial} with {len(self.seeds)} seeds; "
                             f"give one seed (each trial trains seed + 1000 i for i < seeds_per_trial)")
        for name in self.tracking:
            if name not in ("mlflow", "wandb"):
                raise ValueError(f"tracking: got {name!r}, allowed: mlflow, wandb")
        check_space(self.space)
        check_algorithm(self.space, self.algorithm, self.scheduler)

    def check_against(self, cfg: Any) -> None:
        """Cross-check the space against the experiment config (every key must exist), and a
        population trial (seeds_per_trial > 1) against what trials.population supports."""
        check_keys_exist(self.space, cfg)
        if self.seeds_per_trial > 1:
            from trials.population import check_population  # heavy (torch): only for populations

            try:
                check_population([cfg])
            except SetupError as err:
                reason = str(err).removeprefix("population: ")
                raise ValueError(f"search.seeds_per_trial: got {self.seeds_per_trial} (one population per trial), "
                                 f"but {reason}, or set search.seeds_per_trial: 1") from None


