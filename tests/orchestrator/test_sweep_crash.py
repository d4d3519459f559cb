"""Crash consistency of a sweep: SIGKILL the driver at random moments, --resume each time.

Nothing finished is lost: no status, and no eval of a finished trial's learning curve. Every
finished trial's curve after the kills (curves.parquet, and the trial's own result.json) equals,
eval for eval, the curve it had when it finished (its ledger record as first seen after a kill),
holds every eval its plan made up to its last step, and (grid + FIFO) equals the same point's
curve in an uninterrupted sweep. The "completion" kills land just after a trial finished, while
others finish.

Slow tier: a real local Ray, real training of tiny models (x+y mod 11), through the real CLI.

Why grid search + FIFO: the comparison with an uninterrupted sweep must be meaningful. A grid's
points are fixed (BasicVariantGenerator with a seed) and FIFO never stops a trial, so each
point's status is its training's own (seeded, and record-for-record reproducible across
checkpoint resumes), whatever order trials finish in after the resumes. TPE's or ASHA's choices
depend on the order results arrive, which a resume legitimately changes.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from groktune.layout import FINAL_STATUSES, SCHEDULER_STATE
from orchestrator.config.experiment import load_config
from orchestrator.sweep.ledger import REPLAY_KEY, count_starts, read_ledger
from orchestrator.sweep.results import lineage, read_results
from trials.evalplan import eval_steps
from tests.orchestrator.rayprocs import members, session_root, still_alive
from tests.orchestrator.test_cmd_sweep import ROOT, groktune, write_config

GRID = [3e-4, 3e-3, 1e-2, 1e3]  # budget, budget/grokked, grokked, diverged
SEEDS = [0, 1]
PHASES = ["startup", "mid-trial", "completion", "startup", "mid-trial", "completion", "mid-trial"]


def crash_config(tmp_path):
    return write_config(
        tmp_path,
        task={"name": "modular", "op": "x+y", "p": 11, "train_fraction": 0.7},
        model={"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32},
        train={"steps": 500, "batch_size": 64, "eval_every": 25, "checkpoint_every": 50, "eval_dense_until": 0,
               "target_val_acc": 0.6, "target_patience": 2, "per_class_metrics": False},
        search={"space": {"optim.lr": {"grid": GRID}}, "algorithm": "grid", "scheduler": "fifo",
                "seeds": SEEDS, "cpus_per_trial": 1, "max_failures": 1, "checkpoint_every": 50})


def total_starts(exp: Path) -> int:
    return sum(len(f.read_text().splitlines()) for f in (exp / "ledger").glob("*.starts")) if exp.exists() else 0


def wait_for(cond, driver, phase: str, timeout=90.0) -> None:
    """Poll until `cond()` holds or the driver has ended (the sweep finished first); a driver still
    running at the timeout fails the test: the phase to kill in was never reached."""
    deadline = time.monotonic() + timeout
    while driver.poll() is None and not cond():
        assert time.monotonic() < deadline, f"the driver never reached {phase} in {timeout:.0f} s"
        time.sleep(0.05)


def kill_at_random_moment(cfg: Path, storage: Path, exp: Path, phase: str, rng: random.Random, log) -> bool:
    """Start the driver (resuming when the folder is resumable), kill it in `phase`; False if it
    finished first. After the kill, no process of its Ray session may be left (raysession's
    watchdog ends them)."""
    from orchestrator.sweep.folder import resumable

    args = [sys.executable, "-m", "orchestrator.cli.main", "sweep", str(cfg), "--storage", str(storage)]
    if exp.exists() and resumable(exp):
        args.append("--resume")
    starts0, ledgered0 = total_starts(exp), len(read_ledger(exp)) if exp.exists() else 0
    driver = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        if phase == "startup":
            time.sleep(rng.uniform(0.5, 8.0))
        elif phase == "mid-trial":
            wait_for(lambda: total_starts(exp) > starts0, driver, "a trial's start")
            time.sleep(rng.uniform(0.2, 2.5))
        else:  # just after the driver learned that a trial finished
            wait_for(lambda: exp.exists() and len(read_ledger(exp)) > ledgered0, driver, "a trial's end")
            time.sleep(rng.uniform(0.0, 0.4))
        finished = driver.poll() is not None
        recorded = members(driver.pid)
        root = session_root(recorded)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 30
        while still_alive(recorded, root) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not still_alive(recorded, root), f"Ray processes outlived the driver killed in {phase}"
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # teardown only, should the check above fail
        except ProcessLookupError:
            pass
    time.sleep(1.0)
    return not finished


# What a learning curve is, for comparing two copies of it (wall and CPU times differ by run).
CURVE_KEYS = ("step", "train_loss", "train_acc", "val_loss", "val_acc", "param_norm", "grad_norm", "grok_score")


def curve_of(rows) -> list[tuple]:
    """A trial's curve as comparable tuples, one per eval of the history it ended with (NaN as a string)."""
    return [tuple("nan" if isinstance(v, float) and v != v else v for v in (r.get(k) for k in CURVE_KEYS))
            for r in lineage(list(rows))]


def parquet_curves(exp: Path) -> dict[str, list[tuple]]:
    curves = pd.read_parquet(exp / "curves.parquet")
    return {tid: curve_of(g.to_dict("records")) for tid, g in curves.groupby("trial_id")}


def check_curves(cfg: Path, exp: Path, seen: dict, reference: dict | None = None) -> int:
    """Every finished trial's curve after the kills equals its curve when it finished.

    Args:
        seen: {trial_id: (ledger record when first seen, starts)}; the record's curve is what the
            trial's result.json held the moment it finished. Trials that finished after the last
            kill are checked against their record too.
        reference: {(lr, seed): curve} of an uninterrupted sweep (grid + FIFO), or None.
    Returns:
        How many finished trials were compared.
    """
    train = load_config(cfg).train
    got = parquet_curves(exp)
    points = pd.read_parquet(exp / "trials.parquet").set_index("trial_id")
    compared = 0
    # Trials first seen finished after a kill, then every other one (its one record, never rewritten).
    records = {tid: rec for tid, (rec, _) in seen.items()}
    records.update({tid: rec for tid, rec in read_ledger(exp).items() if tid not in records})
    for tid, rec in records.items():
        if rec["status"] not in FINAL_STATUSES or rec["replay_of"] not in (None, tid):
            continue
        want = curve_of(rec["curve"])
        assert want, tid
        last = want[-1][0]
        assert [c[0] for c in want] == [s for s in eval_steps(train, train.steps) if s <= last], tid  # no eval missing
        assert got.get(tid) == want, (tid, len(got.get(tid, [])), len(want))  # curves.parquet: eval for eval
        own = exp / f"trial_{tid}"
        if own.is_dir():
            assert curve_of(read_results(own)) == want, tid  # the trial's own result.json, not shortened
        if reference is not None:
            key = (float(points.loc[tid, "optim.lr"]), int(points.loc[tid, "seed"]))
            assert [c[:5] for c in want] == [c[:5] for c in reference[key]], (tid, key)
        compared += 1
    return compared


def point_curves(exp: Path) -> dict:
    trials = pd.read_parquet(exp / "trials.parquet").set_index("trial_id")
    return {(float(trials.loc[t, "optim.lr"]), int(trials.loc[t, "seed"])): c for t, c in parquet_curves(exp).items()}


def point_statuses(exp: Path) -> dict:
    trials = pd.read_parquet(exp / "trials.parquet")
    return {(float(r["optim.lr"]), int(r["seed"])): r["status"] for _, r in trials.iterrows()}


def kill_repeatedly(cfg: Path, storage: Path, seed: int, log_path: Path) -> tuple[int, dict]:
    """Run the sweep of `cfg`, SIGKILLing its driver once per PHASES entry (resuming each time).

    Returns:
        (kills, {trial_id: (ledger record, training starts) when first seen ledgered}).
    """
    exp = storage / "clitest"
    rng = random.Random(seed)  # seeded: the same moments in every CI run
    kills, seen = 0, {}
    with open(log_path, "w") as log:
        for phase in PHASES:
            if not kill_at_random_moment(cfg, storage, exp, phase, rng, log):
                break  # the sweep finished before this kill
            kills += 1
            for tid, rec in (read_ledger(exp) if exp.exists() else {}).items():
                seen.setdefault(tid, (rec, count_starts(exp, tid)))
    return kills, seen


def finish_and_check(cfg: Path, storage: Path, seen: dict, expected: int) -> dict:
    """Resume to the end; assert 0 finished trials lost or trained again; return the ledger."""
    exp = storage / "clitest"
    last = groktune("sweep", cfg, "--storage", storage, *(["--resume"] if exp.exists() else []))
    assert last.returncode == 0, last.stderr[-3000:]
    ledger = read_ledger(exp)
    trials = pd.read_parquet(exp / "trials.parquet").set_index("trial_id")
    for tid, (rec, starts) in seen.items():
        assert ledger[tid] == rec  # never rewritten
        if rec["status"] != "abandoned" and rec["replay_of"] in (None, tid):
            assert trials.loc[tid, "status"] == rec["status"]  # 0 finished trials lost
        assert count_starts(exp, tid) == starts, tid  # 0 finished trials trained again
    trained = [json.dumps(r["config"], sort_keys=True) for r in ledger.values()
               if r["status"] != "abandoned" and r["replay_of"] in (None, r["trial_id"])]
    assert len(trained) == len(set(trained)) == expected == len(trials)  # every point finished once
    replays = sum(REPLAY_KEY in line for f in exp.glob("trial_*/result.json") for line in f.read_text().splitlines())
    print(f"{len(seen)} trials ledgered before a kill; {replays} ledger replays instead of training")
    return ledger


@pytest.mark.slow
@pytest.mark.full
def test_driver_killed_at_random_moments_loses_and_reruns_nothing(tmp_path):
    cfg = crash_config(tmp_path)
    reference = groktune("sweep", cfg, "--storage", tmp_path / "ref")
    assert reference.returncode == 0, reference.stderr[-3000:]
    want = point_statuses(tmp_path / "ref" / "clitest")
    assert len(want) == len(GRID) * len(SEEDS)
    reference = point_curves(tmp_path / "ref" / "clitest")

    kills, seen = kill_repeatedly(cfg, tmp_path / "res", 20261130, tmp_path / "drivers.log")
    assert kills >= 5, (tmp_path / "drivers.log").read_text()[-3000:]
    finish_and_check(cfg, tmp_path / "res", seen, len(want))
    assert point_statuses(tmp_path / "res" / "clitest") == want  # the same outcome as uninterrupted
    compared = check_curves(cfg, tmp_path / "res" / "clitest", seen, reference)
    assert compared > 0
    print(f"grid + FIFO: {kills} kills; {compared} finished trials' curves unchanged")


@pytest.mark.slow
@pytest.mark.full
def test_tpe_asha_sweep_killed_at_random_moments_loses_and_reruns_nothing(tmp_path):
    """The measured case: TPE + ASHA (searcher and scheduler state must come back). The
    outcome may differ from an uninterrupted sweep's (ASHA's cut-offs depend on arrival order),
    so this checks only that nothing finished is lost or trained again."""
    cfg = crash_config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["search"].update(algorithm="tpe", scheduler="asha", space={"optim.lr": {"loguniform": [1e-4, 3e-2]}}, seeds=[0], num_samples=6,
                          grace_period=100, reduction_factor=2)
    cfg.write_text(yaml.safe_dump(data))
    kills, seen = kill_repeatedly(cfg, tmp_path / "res", 7, tmp_path / "drivers.log")
    assert kills >= 5, (tmp_path / "drivers.log").read_text()[-3000:]
    ledger = finish_and_check(cfg, tmp_path / "res", seen, 6)
    statuses = sorted(r["status"] for r in ledger.values() if r["replay_of"] in (None, r["trial_id"]))
    # ASHA's state came back across the resumes: every trial it stopped is in its saved decisions
    # (Ray's snapshot has none of it; a stale copy of it once overwrote the live file on resume).
    asha = json.loads((tmp_path / "res" / "clitest" / SCHEDULER_STATE).read_text())
    pruned = {t for t, r in ledger.items() if r["status"] == "pruned" and r["replay_of"] in (None, t)}
    assert pruned <= set(asha["stopped"]), (pruned, asha)
    first_rung = asha["rungs"][0][-1]  # [milestone, {trial_id: value}], the lowest rung
    reached = {t for t, r in ledger.items() if r["replay_of"] in (None, t) and r["status"] != "abandoned"
               and r["result"].get("step", 0) >= first_rung[0]}
    assert reached <= set(first_rung[1]), (reached, asha)  # each result at the rung is remembered
    compared = check_curves(cfg, tmp_path / "res" / "clitest", seen)
    assert compared > 0
    print(f"TPE + ASHA: {kills} kills; statuses {statuses}; {compared} finished trials' curves unchanged")
