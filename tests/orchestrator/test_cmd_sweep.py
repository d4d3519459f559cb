"""`groktune sweep / collect / status` through the real CLI.

Fast tier: bad inputs exit 2 with one line before Ray is imported, let alone started.
Slow tier (real local Ray, real training of tiny models): the session's TPE+ASHA sweep
(tests/shared_sweep.py) wrote both parquet files; a trial that raises once is retried from its
checkpoint; a diverging trial ends `diverged` while the sweep goes on; a SIGKILLed driver is resumed with --resume; a sweep of
population trials (search.seeds_per_trial) reports the median of its members' separate runs.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from groktune.layout import FINAL_STATUSES
from tests import shared_sweep
from tests.orchestrator.driver_kill import kill_driver_when, poll_tables, tune_snapshot

ROOT = Path(__file__).resolve().parents[2]
FINAL = set(FINAL_STATUSES)  # the one definition (groktune.layout)

BASE = {
    "name": "clitest",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 23, "train_fraction": 0.6},
    "model": {"n_layers": 1, "d_model": 32, "n_heads": 4, "d_ff": 128},
    "optim": {"lr": 3e-3, "weight_decay": 1.0},
    "train": {"steps": 300, "batch_size": 128, "eval_every": 50, "checkpoint_every": 100,
              "per_class_metrics": False},
    # checkpoint_every: exactly every 100 steps (unset, a sweep checkpoints at most every 20 s of
    # a trial, orchestrator.sweep.driver.checkpoint_policy); the retry and resume tests count on those steps.
    # verify.top 0: no verification stage after these sweeps (tests/orchestrator/test_verify.py covers it).
    "search": {"space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}, "num_samples": 2, "checkpoint_every": 100,
               "verify": {"top": 0}},
}


def write_config(tmp_path, name="sweep.yaml", **sections):
    data = json.loads(json.dumps(BASE))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def groktune(*args, env=None, timeout=600, fail_once=None, **kw):
    """The CLI in a subprocess; fail_once="FLAGFILE@STEP" runs it through tests/orchestrator/fail_once.py."""
    full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    entry = ["orchestrator.cli.main"] if fail_once is None else ["tests.orchestrator.fail_once", str(fail_once)]
    return subprocess.run([sys.executable, "-m", *entry, *map(str, args)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout, **kw)


# --- fast: validation happens before Ray ------------------------------------------------------

PROBE = """
import contextlib, io, json, sys
from orchestrator.cli.main import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    out.append([rc, err.getvalue()])
print(json.dumps({"results": out, "ray_imported": "ray" in sys.modules}))
"""

BAD_SPACES = [
    ({"optim.lrr": {"loguniform": [1e-4, 1e-2]}}, "search.space.optim.lrr: unknown key"),
    ({"train.batch_size": {"choice": []}}, "search.space.train.batch_size.choice: needs a non-empty list"),
    ({"optim.lr": {"loguniform": [1e-2, 1e-4]}}, "search.space.optim.lr.loguniform: low 0.01 >= high 0.0001"),
    ({"optim.lr": {"uniform": [-1e-3, 1e-2]}}, "search.space.optim.lr.uniform: every value must be > 0"),
    ({"optim.lr": {"gaussian": [0, 1]}}, "search.space.optim.lr: unknown distribution 'gaussian'"),
]


def test_bad_spaces_exit_2_with_one_line_and_never_import_ray(tmp_path):
    """Each bad space (and an unknown algorithm) through the CLI's main, in one fresh interpreter."""
    cases = [(write_config(tmp_path, f"bad{i}.yaml", search={**BASE["search"], "space": space}), needle)
             for i, (space, needle) in enumerate(BAD_SPACES)]
    cases.append((write_config(tmp_path, "algo.yaml", search={**BASE["search"], "algorithm": "hyperopt"}),
                  "search.algorithm: got 'hyperopt', allowed: tpe, random, grid, pbt, nsga2"))
    argvs = [["sweep", str(cfg), "--storage", str(tmp_path / "res")] for cfg, _ in cases]
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "RAY_TMPDIR": str(tmp_path / "raytmp")})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for (cfg, needle), (rc, err) in zip(cases, report["results"]):
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1, (cfg.name, rc, err)
        assert lines[0].startswith("groktune: error: ") and needle in lines[0], lines[0]
    assert report["ray_imported"] is False
    assert not (tmp_path / "raytmp").exists() and not (tmp_path / "res").exists()
    assert time.monotonic() - started < 60


def test_unknown_algorithm_via_the_console_script(tmp_path):
    cfg = write_config(tmp_path, search={**BASE["search"], "algorithm": "hyperopt"})
    proc = subprocess.run(["groktune", "sweep", str(cfg), "--set", "search.num_samples=3"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "groktune: error: search.algorithm: got 'hyperopt', allowed: tpe, random, grid, pbt, nsga2"
    assert not (tmp_path / "results").exists()


def test_config_without_search_and_bad_folders_exit_2(tmp_path, capsys):
    from orchestrator.cli.main import main

    data = {k: v for k, v in BASE.items() if k != "search"}
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(data))
    assert main(["sweep", str(tmp_path / "plain.yaml"), "--storage", str(tmp_path)]) == 2
    assert "no `search:` section" in capsys.readouterr().err
    for cmd in ("collect", "status"):
        assert main([cmd, str(tmp_path)]) == 2
        assert "not a groktune sweep folder" in capsys.readouterr().err
    assert main(["sweep", str(write_config(tmp_path)), "--storage", str(tmp_path / "none"), "--resume"]) == 2
    assert "holds no sweep to resume" in capsys.readouterr().err


def test_resume_of_a_folder_stopped_before_any_tune_state_says_so(tmp_path, capsys):
    """A driver killed during start-up leaves experiment.yaml and tuner.pkl but no Tune state."""
    from orchestrator.cli.main import main

    stuck = tmp_path / "res" / "clitest"
    stuck.mkdir(parents=True)
    (stuck / "experiment.yaml").write_text("name: clitest\n")
    (stuck / "tuner.pkl").write_bytes(b"")
    assert main(["sweep", str(write_config(tmp_path)), "--storage", str(tmp_path / "res"), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped before Tune saved any state" in err[0], err


# --- slow: real sweeps ----------------------------------------------------------------------


@pytest.mark.slow
def test_start_up_failures_leave_nothing_and_a_stuck_folder_reruns(tmp_path):
    """Resources no node offers and a bad Optuna storage: one line, exit 2, no folder created.
    A folder left by a start-up kill (experiment.yaml, tuner.pkl, no Tune state) reruns."""
    res = tmp_path / "res"
    for search, needle in (({"cpus_per_trial": 1000}, "search.cpus_per_trial: got 1000, but no node"),
                           ({"gpus_per_trial": 64}, "search.gpus_per_trial: got 64, but"),  # no GPU here / no node
                           ({"optuna_storage": "postgresql://nobody@127.0.0.1:1/none"}, "search.optuna_storage: cannot open")):
        cfg = write_config(tmp_path, search={**BASE["search"], **search})
        proc = groktune("sweep", cfg, "--storage", res, timeout=180)
        errors = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr[-2000:]
        assert not res.exists(), list(res.rglob("*"))
    stuck = res / "clitest"
    stuck.mkdir(parents=True, exist_ok=True)
    (stuck / "experiment.yaml").write_text("name: clitest\n")
    (stuck / "tuner.pkl").write_bytes(b"")
    cfg = write_config(tmp_path, search={**BASE["search"], "num_samples": 1},
                       train={**BASE["train"], "steps": 100})
    proc = groktune("sweep", cfg, "--storage", res)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(pd.read_parquet(stuck / "trials.parquet")) == 1


@pytest.mark.slow
def test_errored_trials_make_the_sweep_exit_1(tmp_path):
    """A trial that fails every time (max_failures 0) ends `error`; the sweep says how many, exit 1."""
    cfg = write_config(tmp_path, search={"space": {"optim.lr": {"grid": [3e-3]}}, "algorithm": "grid",
                                         "scheduler": "fifo", "max_failures": 0},
                       train={**BASE["train"], "steps": 100})
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res",
                    fail_once=f"{tmp_path / 'flag'}@50")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 trial(s) errored" in proc.stderr
    trials = pd.read_parquet(tmp_path / "res" / "clitest" / "trials.parquet")
    assert list(trials["status"]) == ["error"]


def read_result_lines(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_tpe_asha_sweep_writes_both_tables(tpe_asha_sweep, tmp_path):
    """The session's TPE + ASHA sweep (tests/shared_sweep.py); collect and a rerun on a copy of it."""
    n = shared_sweep.TRIALS
    assert f"{n} trials:" in tpe_asha_sweep.stdout and "best:" in tpe_asha_sweep.stdout
    exp = tpe_asha_sweep.exp
    curves, trials = pd.read_parquet(exp / "curves.parquet"), pd.read_parquet(exp / "trials.parquet")
    assert len(trials) == n and trials["trial_id"].is_unique
    assert set(trials["status"]) <= FINAL - {"error"}
    for col in ("optim.lr", "train.batch_size", "seed", "status", "steps_to_target", "final_val_acc",
                "final_train_acc", "final_val_loss", "wall_time", "device", "peak_memory_mb", "cpu_time_s", "task"):
        assert col in trials, col
    assert (trials["task"] == "modular:x+y").all() and (trials["device"] == "cpu").all()
    assert not curves.duplicated(["trial_id", "step"]).any()
    for tid, rows in curves.groupby("trial_id").size().items():
        tdir = next(exp.glob(f"*{tid}*"))
        steps = {r["step"] for r in read_result_lines(tdir) if "step" in r}
        assert rows == len(steps)  # one row per eval
        # TensorBoard: one run per trial in the sweep's tensorboard/ (orchestrator.sweep.callbacks)
        assert list((exp / "tensorboard").glob(f"trial_{tid}_*/events.out.tfevents.*"))
    assert (exp / "experiment.yaml").exists()
    assert "optim.lr" in yaml.safe_load((exp / "experiment.yaml").read_text())["search"]["space"]
    status = groktune("status", exp)
    assert status.returncode == 0 and f"{n} trials planned, {n} started" in status.stdout
    assert "driver: finished" in status.stdout
    storage, copy = tpe_asha_sweep.copy_to(tmp_path)
    (copy / "curves.parquet").unlink()
    assert groktune("collect", copy).returncode == 0 and (copy / "curves.parquet").exists()
    again = groktune("sweep", tpe_asha_sweep.config, "--storage", storage)
    assert again.returncode == 2 and "already holds a sweep" in again.stderr


@pytest.mark.slow
def test_failed_trial_retries_from_checkpoint_and_divergence_does_not_stop_the_sweep(tmp_path):
    cfg = write_config(tmp_path, search={"space": {"optim.lr": {"grid": [3e-3, 1e3]}}, "algorithm": "grid",
                                         "scheduler": "fifo", "max_failures": 2})
    flag = tmp_path / "failed-once"
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res", fail_once=f"{flag}@250")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert flag.read_text().strip() == "250"  # the hook fired once, at the eval at step 250
    exp = tmp_path / "res" / "clitest"
    trials = pd.read_parquet(exp / "trials.parquet").set_index("optim.lr")
    assert trials.loc[1e3, "status"] == "diverged" and trials.loc[1e3, "final_step"] < 300
    good = trials.loc[3e-3]
    assert good["status"] in ("grokked", "budget") and good["final_step"] == 300 and good["restarts"] == 1
    rows = read_result_lines(next(exp.glob(f"*{good['trial_id']}*")))
    restart = [r for r in rows if r.get("iterations_since_restore") == 1 and r["training_iteration"] > 1]
    assert len(restart) == 1
    first_after = restart[0]
    assert first_after["resumed_from_step"] == 200  # the checkpoint at step 200, not step 0
    assert 200 < first_after["step"] <= 250
    curves = pd.read_parquet(exp / "curves.parquet")
    assert curves[curves.trial_id == good["trial_id"]]["step"].is_monotonic_increasing


@pytest.mark.slow
@pytest.mark.full  # a driver kill and resume: the crash tier
def test_sigkilled_driver_resumes_without_rerunning_finished_trials(tmp_path):
    cfg = write_config(tmp_path, train={**BASE["train"], "steps": 1200, "target_patience": 0},
                       search={"space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}, "num_samples": 5,
                               "scheduler": "fifo"})
    exp = tmp_path / "res" / "clitest"
    # killed once a trial finished (Tune then snapshots its state with it) and another runs past 200
    kill_driver_when(cfg, tmp_path, lambda: poll_tables(
        exp, lambda t: t["status"].isin(FINAL).sum() >= 1 and (t["status"] == "running").any()
        and (t["final_step"] >= 200).any(), timeout=400),
        # Tune's snapshot holds a trial the ledger has finished: the resume starts from that state
        snapshotted=lambda t: {i for i, st in tune_snapshot(exp).items() if st == "TERMINATED"}
        & set(t[t["status"].isin(FINAL)]["trial_id"]))
    from orchestrator.sweep.results import build_tables

    _, before = build_tables(exp)
    finished = before[before["status"].isin(FINAL)]["trial_id"].tolist()
    assert finished and (len(before) < 5 or not before["status"].isin(FINAL).all())
    lines_before = {t: read_result_lines(next(exp.glob(f"*{t}*"))) for t in finished}
    # running at the kill with a checkpoint (every 100 steps): must continue from it, not step 0.
    # One that Tune's last snapshot already holds as TERMINATED ended its training: not resumed.
    ended = {t for t, s in tune_snapshot(exp).items() if s == "TERMINATED"}
    cut_short = [t for t in before[(before["status"] == "running") & (before["final_step"] >= 100)]["trial_id"]
                 if t not in ended]
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res", "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = pd.read_parquet(exp / "trials.parquet")
    assert len(trials) == 5 and trials["status"].isin(FINAL - {"error"}).all(), trials[["trial_id", "status"]]
    for tid in finished:  # not trained again: no new evals (at most the closing report repeated)
        after = read_result_lines(next(exp.glob(f"*{tid}*")))
        new = after[len(lines_before[tid]):]
        assert after[: len(lines_before[tid])] == lines_before[tid]
        assert all("status" in r for r in new), new
    for tid in cut_short:
        after = read_result_lines(next(exp.glob(f"*{tid}*")))
        restarts = [r for r in after if r.get("iterations_since_restore") == 1 and r["training_iteration"] > 1]
        # the first report after the restart is past the first checkpoint: training did not start over
        assert restarts and all(r["step"] > 100 for r in restarts), (tid, restarts)


@pytest.mark.slow
def test_a_population_sweep_reports_the_median_of_separate_member_runs(tmp_path):
    """seeds_per_trial=3: each trial trains its lr with seeds 0, 1000, 2000 as one population
    (loop mode). Its steps_to_target, per-member steps and median val_acc curve equal those of
    three separate train() runs exactly, also for the trial that fails once and resumes from its
    population checkpoint; collect rebuilds the same tables."""
    import statistics

    from orchestrator.config.experiment import load_config
    from orchestrator.config.trial import maker_for
    from trials.train import median_steps_to_target
    from trials.train import train

    # x+y mod 13 on a 32-wide transformer: at lr 3e-3 two of the three seeds generalise within 400 steps
    cfg = write_config(
        tmp_path,
        task={"name": "modular", "op": "x+y", "p": 13, "train_fraction": 0.8},
        model={"n_layers": 1, "d_model": 32, "n_heads": 4, "d_ff": 64},
        train={"steps": 400, "batch_size": 64, "eval_dense_until": 0, "eval_every": 20, "checkpoint_every": 100,
               "target_val_acc": 0.9, "target_patience": 2, "per_class_metrics": False},
        search={"space": {"optim.lr": {"grid": [3e-3, 1e-2]}}, "algorithm": "grid", "scheduler": "fifo",
                "seeds_per_trial": 3, "max_failures": 1})
    flag = tmp_path / "failed-once"
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res", fail_once=f"{flag}@250")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert flag.exists()
    exp = tmp_path / "res" / "clitest"
    trials = pd.read_parquet(exp / "trials.parquet").set_index("optim.lr")
    curves = pd.read_parquet(exp / "curves.parquet")
    assert len(trials) == 2 and trials["restarts"].sum() == 1
    retried = trials[trials["restarts"] == 1]["trial_id"].iloc[0]
    restart = [r for r in read_result_lines(next(exp.glob(f"*{retried}*")))
               if r.get("iterations_since_restore") == 1 and r["training_iteration"] > 1]
    assert restart[0]["resumed_from_step"] == 200  # from the population checkpoint, not from step 0
    maker = maker_for(load_config(cfg))
    for lr, row in trials.iterrows():
        members = maker.members({"optim.lr": lr})
        curves_by_member, results = [], []
        for member in members:
            records = []
            results.append(train(member, lambda record, save=None: records.append(record)))
            curves_by_member.append(records)
        median = median_steps_to_target(results)
        assert row["status"] == ("grokked" if median is not None else "budget")
        assert (pd.isna(row["steps_to_target"]) if median is None else row["steps_to_target"] == median)
        assert json.loads(row["member_steps_to_target"]) == {
            str(m.seed): r.steps_to_target for m, r in zip(members, results)}
        assert row["final_grokked_fraction"] == sum(r.status == "grokked" for r in results) / 3
        # the median curve: at each eval, the median over members of their latest val_acc
        got = curves[curves.trial_id == row["trial_id"]].set_index("step")
        for step, value in got["val_acc"].items():
            latest = [[r for r in recs if r["step"] <= step][-1]["val_acc"] for recs in curves_by_member]
            assert value == statistics.median(latest), step
        assert got["members_live"].iloc[-1] == sum(r.final_step == 400 for r in results)
    assert set(trials["status"]) == {"grokked", "budget"}  # lr 3e-3 groks (median member), 1e-2 does not
    (exp / "trials.parquet").unlink()
    assert groktune("collect", exp).returncode == 0
    pd.testing.assert_frame_equal(pd.read_parquet(exp / "trials.parquet").set_index("optim.lr"), trials)


@pytest.mark.slow
def test_max_concurrent_holds_for_random_search_and_workers_are_reused(tmp_path):
    """Tune ignores max_concurrent_trials for a BasicVariantGenerator; the generator must get it.
    With reuse_actors, the three serial trials run in one worker process. Each trial must last
    over 2 s (Ray's timestamps are whole seconds): 800 steps took only ~1 s in a reused worker."""
    cfg = write_config(tmp_path, train={**BASE["train"], "steps": 2400, "target_val_acc": 1.0, "target_patience": 1000},
                       search={**BASE["search"], "algorithm": "random", "scheduler": "fifo",
                               "num_samples": 3, "max_concurrent": 1, "reuse_actors": True})
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res", "--name", "serial")
    assert proc.returncode == 0, proc.stderr[-3000:]
    spans, pids = [], set()
    for tdir in (tmp_path / "res" / "serial").glob("trial_*"):
        rows = read_result_lines(tdir)
        pids.update(r["pid"] for r in rows)
        # Ray's timestamps are whole seconds; a trial began time_total_s before its first result.
        spans.append((rows[0]["timestamp"] - rows[0]["time_total_s"], rows[-1]["timestamp"]))
    spans.sort()
    assert len(spans) == 3 and all(end - start > 2 for start, end in spans), spans
    for (_, end), (next_start, _) in zip(spans, spans[1:]):
        assert next_start >= end - 1, spans  # one trial at a time, 1 s slack for the rounding
    assert len(pids) == 1, pids
