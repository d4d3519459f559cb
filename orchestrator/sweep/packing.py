"""Packed trials (search.pack: K): up to K sampled points trained as one population in one Ray
trial, each point still its own row in trials.parquet and its own curve in curves.parquet.

    points = sample_points(param_space(cfg.search), cfg.search.num_samples, cfg.seed)  # on the driver
    packs = make_packs(points, k, key)                 # one structure per pack, <= k points each
    param_space = {PACK_KEY: tune.grid_search(packs)}  # one Ray trial per pack

The pack trainable (orchestrator.sweep.adapter.pack_trainable) reports, at every eval, the live
points' own records (with their own grok_score) as JSON text under POINTS_KEY, and closes with
each point's outcome under OUTCOMES_KEY; `split_pack` turns one pack trial's result rows back
into one (trial id, rows, point) per point for orchestrator.sweep.results. Points that differ in a
structural key (trials.config.STRUCTURAL: model shape, batch size, task, optimizer family) never
share a pack: `key` is trials.train.structural_values of the point's config, the same rule the
trainer checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from orchestrator.sweep.ledger import finished_curve, read_record, write_record

PACK_KEY = "pack"
"""The Ray trial's config key holding its points (a list of sampled points)."""
POINTS_KEY = "points"
"""Per eval: JSON list of the live points' records, each with "member" (its index in the pack)."""
OUTCOMES_KEY = "point_outcomes"
"""Closing report: JSON list of {"status", "steps_to_target"} per point, in pack order."""
POINT_KEY = "point"
"""In a point's record (under POINTS_KEY): its point now, once PBT has moved it (search.pack with
pbt: orchestrator.search.point_pbt); split_pack gives a point its latest."""
DONE_KEY = "points_done"
"""Per eval where points stopped (grokked, diverged, early-stopped, cut at a rung): JSON list of
{"member", "status", "steps_to_target"} of those points, so each gets its ledger record at once."""
TRIAL_FACTS = ("device", "cpu_time_s", "peak_memory_mb", "node_id", "hostname", "node_ip", "resumed_from_step",
               "training_iteration", "iterations_since_restore", "trial_id")
"""Per-trial keys of a pack's reports that every point of it shares."""


def sample_points(space: dict, num_samples: int, seed: int) -> list[dict]:
    """num_samples draws of the Tuner's param space (orchestrator.search.algos.param_space: grids
    expanded, seeds as today), on the driver. A draw is held over the grid dimensions (the seeds
    among them), as orchestrator.search.algos._variants does for unpacked random search."""
    from ray.tune.search.variant_generator import generate_variants  # deferred: Ray, only when a packed sweep starts

    rng = np.random.RandomState(seed)
    points = []
    for _ in range(max(1, num_samples)):
        for _, variant in generate_variants(space, constant_grid_search=True, random_state=rng):
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
    """Yield (point trial id, its rows, its point, its status) for every point of a pack.

    A point's point is its latest (POINT_KEY, once PBT moved it), else its drawn one. A point's
    status is the one it stopped with (DONE_KEY, mid-pack), else the closing report's
    (OUTCOMES_KEY), else the pack's own when it ended without one (an error), else None (live).
    Its last row carries its "status" and "steps_to_target" once it has a status.

    Args:
        rows: the pack trial's result rows (orchestrator.sweep.results.read_results).
        pack: its points, in pack order.
        pack_status: the pack's ledger status (None while it runs).
    """
    per_point: list[list[dict]] = [[] for _ in pack]
    latest = [dict(p) for p in pack]
    ended: dict[int, dict] = {}
    for row in rows:
        facts = {k: row[k] for k in TRIAL_FACTS if k in row}
        for record in json.loads(row.get(POINTS_KEY) or "[]"):
            j = int(record.pop("member"))
            if isinstance(record.get(POINT_KEY), dict):
                latest[j] = record.pop(POINT_KEY)
            per_point[j].append({**facts, **record})
        done = [dict(d) for d in json.loads(row.get(DONE_KEY) or "[]")]
        if OUTCOMES_KEY in row:
            done += [{"member": j, **o} for j, o in enumerate(json.loads(row[OUTCOMES_KEY]))]
        for outcome in done:
            j = int(outcome.pop("member"))
            if j in ended:
                continue  # the first word on a point is its outcome (a closing report repeats it)
            ended[j] = outcome
            if per_point[j]:
                per_point[j].append({**per_point[j][-1], **facts, **outcome})
    for j, point in enumerate(latest):
        status = ended[j]["status"] if j in ended else pack_status  # no word: the pack's (an error)
        yield point_trial_id(trial_id, j), per_point[j], point, status


def record_points(exp: str | Path, trial, status: str | None = None, result: dict | None = None) -> list[str]:
    """Write the ledger record of every point of pack `trial` that has a status and none yet.

    Called when a pack reports points that stopped (DONE_KEY) and when it ends (then `status`,
    the pack's own final status, is what points without a word of their own get: an error).
    A point's record is an unpacked trial's: its point as config, its last row as result, its
    curve, its status and steps_to_target; plus "pack" and "member". The rows are the pack's
    staging result.json and its latest result: `result` (Tune hands callbacks a result before it
    becomes trial.last_result, and its JSON logger writes it after the ledger callback), else
    trial.last_result; and the evals the pack's latest checkpoint carries that the staging file
    lost (a restart the driver was killed during: orchestrator.sweep.ledger.finished_curve).

    Returns:
        The point trial ids written now.
    """
    rows = finished_curve(trial, result if result is not None else trial.last_result)
    written = []
    for point_id, point_rows, point, point_status in split_pack(str(trial.trial_id), rows, trial.config[PACK_KEY],
                                                                status):
        if point_status is None or read_record(exp, point_id) is not None:
            continue
        result = dict(point_rows[-1]) if point_rows else {}
        stt = result.get("steps_to_target")
        steps = int(stt) if isinstance(stt, (int, float)) and not isinstance(stt, bool) and stt == stt else None
        if write_record(exp, point_id, point_status, point, result, point_rows, steps,
                        extra={"pack": str(trial.trial_id), "member": int(point_id.rsplit("_p", 1)[1])}):
            written.append(point_id)
    return written


def is_pack_record(record: dict) -> bool:
    """Whether a ledger record is a pack trial's own (its points have records of their own)."""
    return "points" in record


__all__ = ["DONE_KEY", "OUTCOMES_KEY", "PACK_KEY", "POINT_KEY", "POINTS_KEY", "is_pack_record", "make_packs", "point_trial_id", "record_points", "sample_points", "split_pack"]
