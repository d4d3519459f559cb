"""Packed trials (search.pack: K): up to K sampled points trained as one population in one Ray
trial, each point still its own row in trials.parquet and its own curve in curves.parquet.

    points = sample_points(cfg.search, cfg.seed)       # on the driver, from the search space
    packs = make_packs(points, k, key)                 # one structure per pack, <= k points each
    param_space = {PACK_KEY: tune.grid_search(packs)}  # one Ray trial per pack

The pack trainable (orchestrator.sweep.adapter.pack_trainable) reports, at every eval, the live
points' own records (with their own grok_score) as JSON text under POINTS_KEY, and closes with
each point's outcome under OUTCOMES_KEY; `split_pack` turns one pack trial's result rows back
into one (trial id, rows, point) per point for orchestrator.sweep.results. Points that differ in a
structural key (trials.train.STRUCTURAL: model shape, batch size, task, optimizer family) never
share a pack: `key` is trials.train.structural_values of the point's config, the same rule the
trainer checks.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from orchestrator.search.algos import param_space

PACK_KEY = "pack"
"""The Ray trial's config key holding its points (a list of sampled points)."""
POINTS_KEY = "points"
"""Per eval: JSON list of the live points' records, each with "member" (its index in the pack)."""
OUTCOMES_KEY = "point_outcomes"
"""Closing report: JSON list of {"status", "steps_to_target"} per point, in pack order."""
TRIAL_FACTS = ("device", "cpu_time_s", "peak_memory_mb", "node_id", "hostname", "node_ip", "resumed_from_step",
               "training_iteration", "iterations_since_restore", "trial_id")
"""Per-trial keys of a pack's reports that every point of it shares."""


def sample_points(search: Any, seed: int) -> list[dict]:
    """search.num_samples draws of the space (grids expanded, seeds as today), on the driver."""
    from ray.tune.search.variant_generator import generate_variants  # deferred: Ray, only when a packed sweep starts

    space = param_space(search)
    rng = np.random.RandomState(seed)
    points = []
    for _ in range(max(1, search.num_samples)):
        for _, variant in generate_variants(space, random_state=rng):
            points.append(dict(variant))
    return points


def make_packs(points: list[dict], k: int, key: Callable[[dict], Any]) -> list[list[dict]]:
    """The points grouped by key(point) (first-seen order), each group cut into packs of <= k.

    Args:
        points: sampled points.
        k: most points per pack.
        key: the structural key of a point (points with equal keys may share a pack).
    Returns:
        Packs of points, every point in exactly one, in sampling order within a pack.
    """
    groups: dict[str, list[dict]] = {}
    for p in points:
        groups.setdefault(json.dumps(key(p), sort_keys=True, default=str), []).append(p)
    return [g[i : i + k] for g in groups.values() for i in range(0, len(g), k)]


def point_trial_id(trial_id: str, j: int) -> str:
    """The trial id of point j of a pack trial."""
    return f"{trial_id}_p{j}"


def split_pack(trial_id: str, rows: list[dict], pack: list[dict], pack_status: str | None):
    """Yield (point trial id, its rows, its point, its ledger status) for every point of a pack.

    Args:
        rows: the pack trial's result rows (orchestrator.sweep.results.read_results).
        pack: its points, in pack order.
        pack_status: the pack's ledger status (None while it runs).
    """
    per_point: list[list[dict]] = [[] for _ in pack]
    outcomes = None
    for row in rows:
        facts = {k: row[k] for k in TRIAL_FACTS if k in row}
        for record in json.loads(row.get(POINTS_KEY) or "[]"):
            j = int(record.pop("member"))
            per_point[j].append({**facts, **record})
        if OUTCOMES_KEY in row:
            outcomes = json.loads(row[OUTCOMES_KEY])
            for j, outcome in enumerate(outcomes):
                if per_point[j]:
                    per_point[j].append({**per_point[j][-1], **facts, **outcome})
    for j, point in enumerate(pack):
        status = None
        if outcomes is not None:
            status = outcomes[j]["status"]
        elif pack_status is not None:
            status = pack_status  # the pack ended without a closing report (an error)
        yield point_trial_id(trial_id, j), per_point[j], point, status


__all__ = ["OUTCOMES_KEY", "PACK_KEY", "POINTS_KEY", "make_packs", "point_trial_id", "sample_points", "split_pack"]
