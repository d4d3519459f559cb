"""Packed trials (search.pack, orchestrator.sweep.packing): points drawn up front, grouped by structure
into packs, each pack one Ray trial, each point its own row and curve.

Fast tier: packing and splitting on plain data, and the config's refusals.
Full tier (real local Ray, the crash tier): a sweep with pack 8 over lr, weight decay and two seeds, whose driver
is SIGKILLed mid-pack, just after a point stopped inside it, and resumed: one row, one ledger
record and one TensorBoard run per point, each with its own status; no point that had stopped
trains again; every point's curve equal to the same point trained alone (loop mode: bitwise,
wall_time aside); and a packed PBT sweep, killed after its first round and resumed, equal to one
that ran through.
"""

import json
import time

import pandas as pd
import pytest

from orchestrator.config.experiment import config_from_dict
from orchestrator.config.tree import ConfigError
from orchestrator.sweep.packing import DONE_KEY, OUTCOMES_KEY, PACK_KEY, POINTS_KEY, make_packs, split_pack
from tests.conftest import TINY, deep_merge
from tests.orchestrator.driver_kill import kill_driver_when
from tests.orchestrator.test_cmd_sweep import groktune, write_config


def test_points_of_one_structure_share_packs_of_at_most_k():
    points = [{"model.d_model": d, "optim.lr": i} for i, d in enumerate([16, 32, 16, 16, 32, 16, 16])]
    packs = make_packs(points, 3, key=lambda p: p["model.d_model"])
    assert [[p["optim.lr"] for p in pack] for pack in packs] == [[0, 2, 3], [5, 6], [1, 4]]
    assert all(len({p["model.d_model"] for p in pack}) == 1 for pack in packs)


def test_a_pack_trial_splits_into_one_trial_per_point():
    pack = [{"optim.lr": 1e-3}, {"optim.lr": 1e-2}]
    rec = lambda j, step, acc: {"member": j, "step": step, "val_acc": acc, "grok_score": acc}  # noqa: E731
    rows = [
        {"trial_id": "t", "step": 10, "device": "cpu", POINTS_KEY: json.dumps([rec(0, 10, 0.1), rec(1, 10, 0.9)])},
        {"trial_id": "t", "step": 20, "device": "cpu", POINTS_KEY: json.dumps([rec(0, 20, 0.2)])},  # point 1 stopped
        {"trial_id": "t", "step": 20, "device": "cpu", POINTS_KEY: json.dumps([rec(0, 20, 0.2)]),
         OUTCOMES_KEY: json.dumps([{"status": "budget", "steps_to_target": None},
                                   {"status": "grokked", "steps_to_target": 10}])},
    ]
    split = list(split_pack("t", rows, pack, "budget"))
    assert [(tid, point, status) for tid, _, point, status in split] == [
        ("t_p0", pack[0], "budget"), ("t_p1", pack[1], "grokked")]
    p0, p1 = split[0][1], split[1][1]
    assert [r["val_acc"] for r in p1] == [0.9, 0.9] and p1[-1]["steps_to_target"] == 10
    assert p0[-1]["status"] == "budget" and all(r["device"] == "cpu" and "member" not in r for r in p0)
    running = list(split_pack("t", rows[:2], pack, None))  # no closing report yet: no status
    assert [status for *_, status in running] == [None, None]


def test_a_packs_points_are_recorded_with_the_evals_its_staged_file_lost_before_its_latest_checkpoint(tmp_path):
    """A driver killed after a pack restarted, before Tune synced its mended staging file, leaves
    a hole in the pack's result.json; each point's record takes the evals from the latest checkpoint."""
    from types import SimpleNamespace

    from ray.tune import Checkpoint

    from orchestrator.sweep.ledger import read_ledger
    from orchestrator.sweep.packing import record_points

    pack = [{"optim.lr": 1e-3}, {"optim.lr": 1e-2}]
    rec = lambda j, step: {"member": j, "step": step, "val_acc": step / 100 + j / 10}  # noqa: E731
    rows = [{"step": s, "device": "cpu", POINTS_KEY: json.dumps([rec(0, s), rec(1, s)])} for s in (10, 20, 30, 40, 50)]
    rows[-1][OUTCOMES_KEY] = json.dumps([{"status": "budget", "steps_to_target": None}] * 2)
    ckpt = tmp_path / "checkpoint_000004"
    ckpt.mkdir()
    (ckpt / "tune_state.json").write_text(json.dumps({"curve": rows[:4]}))
    staging = tmp_path / "staging"
    staging.mkdir()
    tune_rows = [{**r, "training_iteration": i + 1} for i, r in enumerate(rows)]
    (staging / "result.json").write_text("".join(json.dumps(r) + "\n" for r in tune_rows[:1] + tune_rows[3:]))
    trial = SimpleNamespace(trial_id="t", config={"pack": pack}, local_path=str(staging),
                            checkpoint=Checkpoint.from_directory(str(ckpt)), last_result=tune_rows[-1])
    exp = tmp_path / "exp"
    assert sorted(record_points(exp, trial, "budget")) == ["t_p0", "t_p1"]
    ledger = read_ledger(exp)
    for j in (0, 1):
        curve = ledger[f"t_p{j}"]["curve"]
        assert [r["step"] for r in curve] == [10, 20, 30, 40, 50, 50]  # the closing row repeats the last eval
        assert [r["val_acc"] for r in curve[:5]] == [s / 100 + j / 10 for s in (10, 20, 30, 40, 50)]
        assert ledger[f"t_p{j}"]["status"] == "budget"


@pytest.mark.parametrize("search, needle", [
    ({"algorithm": "nsga2"},
     "search.pack: got 4 with algorithm nsga2 and scheduler fifo; packed trials need algorithm tpe, random, "
     "grid or pbt and scheduler asha, hyperband, fifo or pbt"),
    ({"algorithm": "random", "seeds_per_trial": 2}, "search.pack: got 4 with seeds_per_trial 2"),
    ({"algorithm": "tpe", "metric": ["grok_score", "val_loss"], "mode": ["min", "min"]},
     "search.pack: got 4 with algorithm tpe and several metrics"),
])
def test_packs_are_refused_where_they_cannot_run_in_one_line(search, needle):
    data = deep_merge(TINY, {"search": {"space": {"optim.lr": {"loguniform": [1e-4, 1e-2]}}, "num_samples": 2,
                                        "scheduler": "fifo", "pack": 4}})
    data["search"].update(search)
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert needle in str(err.value) and "\n" not in str(err.value)


def _poll_step(exp, step: int, timeout: float, then_a_point: int = 0) -> set[str]:
    """Wait until the pack trial reported an eval at or past `step` (its checkpoint is then saved)
    and, with `then_a_point`, a point has a ledger record or the pack is past that step; return
    the point ids the ledger holds then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for result in exp.glob("*/result.json"):
            steps = [json.loads(line).get("step", 0) for line in result.read_text().splitlines() if line.strip()]
            points = {f.stem for f in (exp / "ledger").glob("*_p*.json")}
            if steps and max(steps) >= step and (not then_a_point or points or max(steps) >= then_a_point):
                return points
        time.sleep(0.5)
    raise AssertionError(f"the pack did not reach step {step} in time")


def packed_config(tmp_path, target: float, **search):
    """A sweep config of 8 tiny points (x+y mod 13, d=16, 400 steps) in one pack of 8, in loop
    mode, over lr and weight decay; `search` adds the searcher, scheduler and sampling."""
    return write_config(
        tmp_path,
        task={"name": "modular", "op": "x+y", "p": 13, "train_fraction": 0.8},
        model={"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32},
        train={"steps": 400, "batch_size": 64, "eval_dense_until": 0, "eval_every": 20, "checkpoint_every": 100,
               "target_val_acc": target, "target_patience": 2, "per_class_metrics": False},
        search={"space": {"optim.lr": {"loguniform": [3e-4, 3e-2]}, "optim.weight_decay": {"uniform": [0.1, 1.0]}},
                "pack": 8, "population_vectorize": "loop", "checkpoint_every": 100, **search})


@pytest.mark.slow
@pytest.mark.full  # a driver kill and resume: the crash tier
def test_a_packed_sweep_survives_a_driver_kill_and_equals_points_trained_alone(tmp_path):
    from orchestrator.config.experiment import load_config
    from orchestrator.config.trial import maker_for
    from orchestrator.sweep.ledger import count_starts, lineage, read_ledger
    from trials.train import train

    # target 0.5: some points reach it mid-pack (and stop there), others run the whole budget
    cfg = packed_config(tmp_path, 0.5, algorithm="random", scheduler="fifo", num_samples=4, seeds=[0, 1])
    exp = tmp_path / "res" / "clitest"
    # Mid-pack, past a checkpoint, as soon as a point stopped (grokked) inside the pack.
    before = {}
    kill_driver_when(cfg, tmp_path, lambda: before.update(points=_poll_step(exp, 120, 500, then_a_point=380)))
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res", "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = pd.read_parquet(exp / "trials.parquet")
    curves = pd.read_parquet(exp / "curves.parquet")
    assert len(trials) == 8 and trials["trial_id"].is_unique and trials["trial_id"].str.endswith(
        tuple(f"_p{j}" for j in range(8))).all()
    assert trials["status"].isin({"grokked", "budget"}).all(), trials[["trial_id", "status"]]
    assert set(trials["status"]) == {"grokked", "budget"}
    assert sorted(trials["seed"]) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert trials["restarts"].max() >= 1  # the pack continued from its checkpoint after the kill
    # Every point is a trial of its own in the ledger (status, steps_to_target, curve) and in
    # TensorBoard; the pack's own record lists them and counts in no table.
    ledger = read_ledger(exp)
    points = {tid: rec for tid, rec in ledger.items() if "pack" in rec}
    assert set(points) == set(trials["trial_id"])
    packs = [rec for rec in ledger.values() if "points" in rec]
    assert len(packs) == 1 and sorted(packs[0]["points"]) == sorted(points)
    assert count_starts(exp, packs[0]["trial_id"]) == 2  # trained once before the kill, continued once after
    # A point that had stopped before the kill is not trained again after it (its ledger record
    # says it ended, whatever the pack's older checkpoint holds): no report of it after the restart.
    rows = [r for r in packs[0]["curve"] if "step" in r]
    restart = max(i for i, r in enumerate(rows) if r.get("iterations_since_restore") == 1)
    after = [json.loads(r.get(POINTS_KEY) or "[]") + json.loads(r.get(DONE_KEY) or "[]") for r in rows[restart:]]
    members = {f"{packs[0]['trial_id']}_p{rec['member']}" for recs in after for rec in recs}
    assert before["points"] and not members & before["points"], (before, members)
    for _, row in trials.iterrows():
        rec = points[row["trial_id"]]
        assert rec["status"] == row["status"] and rec["config"]["seed"] == row["seed"]
        assert rec.get("steps_to_target") == (None if pd.isna(row["steps_to_target"]) else int(row["steps_to_target"]))
        assert [r["step"] for r in lineage(rec["curve"])] == curves[curves.trial_id == row["trial_id"]]["step"].tolist()
    runs = sorted(d.name for d in (exp / "tensorboard").iterdir())
    assert len(runs) == 8 and all(any(name.startswith(f"trial_{tid}_") for name in runs) for tid in points), runs
    status = groktune("status", exp, "--json")
    assert status.returncode == 0, status.stderr
    maker = maker_for(load_config(cfg))
    for _, row in trials.iterrows():
        point = {"optim.lr": row["optim.lr"], "optim.weight_decay": row["optim.weight_decay"], "seed": row["seed"]}
        records = []
        result = train(maker(point), lambda record, save=None: records.append(record))
        got = curves[curves.trial_id == row["trial_id"]].sort_values("step")
        assert got["step"].tolist() == [r["step"] for r in records]
        for key in ("val_acc", "val_loss", "train_loss", "param_norm", "lr"):
            assert got[key].tolist() == [r[key] for r in records], (row["trial_id"], key)
        assert row["status"] == result.status
        assert (None if pd.isna(row["steps_to_target"]) else int(row["steps_to_target"])) == result.steps_to_target


@pytest.mark.slow
@pytest.mark.full  # a driver kill and resume: the crash tier
def test_packed_pbt_moves_points_inside_their_pack_and_a_killed_sweep_resumes_to_the_same_tables(tmp_path):
    """search.pack 8 with pbt: the pack's points are one population; at every round the bottom
    quarter continues from a top-quarter point with explored lr and weight decay. A sweep whose
    driver is SIGKILLed after the first round and resumed ends with the tables of one that ran
    through: the same moved points, statuses and curves (loop mode: bitwise, wall time aside)."""
    from orchestrator.sweep.ledger import read_ledger

    cfg = packed_config(tmp_path, 0.9, algorithm="pbt", scheduler="pbt", num_samples=8, perturbation_interval=100)
    through = groktune("sweep", cfg, "--storage", tmp_path / "through")
    assert through.returncode == 0, through.stderr[-3000:]
    exp = tmp_path / "res" / "clitest"
    kill_driver_when(cfg, tmp_path, lambda: _poll_step(exp, 160, 500))  # past the first round and its checkpoint
    resumed = groktune("sweep", cfg, "--storage", tmp_path / "res", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    tables = {}
    for name, folder in (("through", tmp_path / "through" / "clitest"), ("resumed", exp)):
        trials = pd.read_parquet(folder / "trials.parquet").sort_values("trial_id", ignore_index=True)
        curves = pd.read_parquet(folder / "curves.parquet").drop(columns=["wall_time"])
        tables[name] = trials, curves.sort_values(["trial_id", "step"], ignore_index=True), read_ledger(folder)
    trials, curves, ledger = tables["through"]
    pack = next(rec for rec in ledger.values() if "points" in rec)
    drawn = pack["config"][PACK_KEY]
    assert len(trials) == 8 and trials["trial_id"].str.endswith(tuple(f"_p{j}" for j in range(8))).all()
    moved = [j for j in range(8) if trials.loc[j, "optim.lr"] != pytest.approx(drawn[j]["optim.lr"])]
    assert moved, "no point was moved"
    for j in moved:  # a moved point's row and ledger record hold its latest point, inside the space
        record = ledger[trials.loc[j, "trial_id"]]
        assert record["config"]["optim.lr"] == trials.loc[j, "optim.lr"] and 3e-4 <= trials.loc[j, "optim.lr"] <= 3e-2
        assert 0.1 <= trials.loc[j, "optim.weight_decay"] <= 1.0
        lrs = curves[curves.trial_id == trials.loc[j, "trial_id"]]["lr"]
        assert lrs.nunique() >= 2  # its curve runs under its drawn lr, then under the moved one
    steps = curves.groupby("trial_id")["step"].apply(list)
    assert all(s == sorted(set(s)) for s in steps)  # one record per eval, no step twice
    r_trials, r_curves, _ = tables["resumed"]
    assert r_trials["restarts"].max() >= 1  # the pack continued from its checkpoint after the kill
    rename = dict(zip(r_trials["trial_id"], trials["trial_id"]))  # the ids differ between the sweeps, the points not
    keys = ["trial_id", "optim.lr", "optim.weight_decay", "seed", "status", "steps_to_target", "final_val_acc"]
    pd.testing.assert_frame_equal(r_trials.assign(trial_id=r_trials["trial_id"].map(rename))[keys], trials[keys])
    metrics = ["trial_id", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "param_norm", "grok_score"]
    r_curves = r_curves.assign(trial_id=r_curves["trial_id"].map(rename)).sort_values(["trial_id", "step"],
                                                                                    ignore_index=True)
    pd.testing.assert_frame_equal(r_curves[metrics], curves[metrics])
