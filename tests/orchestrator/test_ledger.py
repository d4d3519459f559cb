"""The sweep ledger and the folder rules around it (orchestrator.sweep.ledger, orchestrator.sweep.folder).

Fast tier: plain files laid out as Tune and the ledger write them; no Ray is started.
"""

import json
import pickle

import pytest

from groktune.errors import UserError
from groktune.layout import ABANDONED, LEDGER
from orchestrator.config.experiment import config_from_dict, dump_config
from orchestrator.sweep.folder import check_fresh, check_resume, newest_state, reconcile, resumable
from orchestrator.sweep.ledger import (
    REPLAY_KEY,
    count_starts,
    final_status,
    note_start,
    read_ledger,
    replay_for,
    write_record,
)
from orchestrator.sweep.results import build_tables
from tests.conftest import TINY, deep_merge

SPACE = {"optim.lr": {"loguniform": [1e-4, 1e-2]}}


def final(step, status=None, **extra):
    r = {"step": step, "val_acc": 0.5, "train_loss": 1.0, "val_loss": 2.0, "grok_score": 900.0,
         "training_iteration": 7, "iterations_since_restore": 7, "time_total_s": 3.0, "pid": 1, "config": {}}
    if status:
        r["status"] = status
    return {**r, **extra}


def sweep_folder(tmp_path, trial_ids=(), session="2026-01-01_00-00-00"):
    """A folder as a sweep leaves it: experiment.yaml, tuner.pkl, one Tune session knowing trial_ids."""
    path = tmp_path / "exp"
    path.mkdir()
    (path / "experiment.yaml").write_text(dump_config(config_from_dict(deep_merge(TINY, {"search": {"space": SPACE}}))))
    (path / "tuner.pkl").write_bytes(pickle.dumps({"x": 1}))
    data = [[json.dumps({"trial_id": t, "status": "RUNNING"}), "{}"] for t in trial_ids]
    (path / f"experiment_state-{session}.json").write_text(json.dumps({"trial_data": data}))
    (path / f"searcher-state-{session}.pkl").write_bytes(pickle.dumps({"seen": list(trial_ids)}))
    return path


def test_final_status_rules():
    assert final_status({"status": "grokked"}, errored=False) == "grokked"
    assert final_status({"status": "diverged"}, errored=False) == "diverged"
    assert final_status({"step": 100}, errored=False) == "pruned"  # the scheduler stopped it
    assert final_status({"status": "grokked"}, errored=True) == "error"
    # A trainer's own early stop is recorded as the sweep says it (groktune.layout.sweep_status).
    assert final_status({"status": "early_stopped"}, errored=False) == "pruned"


def test_first_record_wins_and_is_strict_enough_json(tmp_path):
    assert write_record(tmp_path, "a", "budget", {"optim.lr": 1e-3}, final(300, "budget"))
    assert not write_record(tmp_path, "a", "pruned", {"optim.lr": 1e-3}, final(100))
    rec = read_ledger(tmp_path)["a"]
    assert rec["status"] == "budget" and rec["result"]["step"] == 300 and rec["config"] == {"optim.lr": 1e-3}
    assert not list((tmp_path / LEDGER).glob(".*"))  # no temp file left by the atomic write


def test_a_ledgered_trial_replays_its_own_record(tmp_path):
    write_record(tmp_path, "a", "grokked", {"optim.lr": 1e-3}, final(250, "grokked", steps_to_target=200))
    got = replay_for(tmp_path, "a", {"optim.lr": 1e-3}, orphans={})
    assert got[REPLAY_KEY] == "a" and got["status"] == "grokked" and got["steps_to_target"] == 200
    assert not {"training_iteration", "pid", "config", "time_total_s"} & set(got)
    assert replay_for(tmp_path, "b", {"optim.lr": 1e-3}, orphans={}) is None  # no record, no orphans: train


def test_an_orphan_is_replayed_once_by_a_trial_with_its_point(tmp_path):
    write_record(tmp_path, "old", "budget", {"optim.lr": 1e-3}, final(300, "budget"))
    orphans = {"old": {"optim.lr": 1e-3}}
    assert replay_for(tmp_path, "new1", {"optim.lr": 2e-3}, orphans) is None  # another point
    assert replay_for(tmp_path, "new1", {"optim.lr": 1e-3}, orphans)[REPLAY_KEY] == "old"
    assert replay_for(tmp_path, "new2", {"optim.lr": 1e-3}, orphans) is None  # claimed by new1
    assert replay_for(tmp_path, "new1", {"optim.lr": 1e-3}, orphans)[REPLAY_KEY] == "old"  # new1 again (resumed)


def test_starts_are_counted(tmp_path):
    assert count_starts(tmp_path, "a") == 0
    note_start(tmp_path, "a")
    note_start(tmp_path, "a")
    assert count_starts(tmp_path, "a") == 2


def test_tables_take_statuses_from_the_ledger_only(tmp_path):
    """Ray's experiment_state says RUNNING for every trial; the ledger decides. A ledgered trial
    without a folder gets its row; a replay of an orphan and an abandoned trial get none."""
    path = sweep_folder(tmp_path, trial_ids=("a", "b", "c", "r", "x"))
    for tid, rows in {"a": [final(100), final(200)], "b": [final(100)], "r": [], "x": [final(100)]}.items():
        tdir = path / f"trial_{tid}"
        tdir.mkdir()
        (tdir / "params.json").write_text(json.dumps({"optim.lr": 1e-3}))
        (tdir / "result.json").write_text("".join(json.dumps({**r, "trial_id": tid}) + "\n" for r in rows))
    write_record(path, "a", "budget", {"optim.lr": 1e-3}, final(300, "budget"))  # result.json lags: ends at 200
    write_record(path, "c", "diverged", {"optim.lr": 5e-3}, final(50, "diverged"))  # no folder at all
    write_record(path, "r", "budget", {"optim.lr": 5e-3}, final(50, "diverged", **{REPLAY_KEY: "c"}))
    write_record(path, "x", ABANDONED, {"optim.lr": 1e-3}, {})
    curves, trials = build_tables(path)
    t = trials.set_index("trial_id")
    assert sorted(t.index) == ["a", "b", "c"]
    assert t.loc["a", "status"] == "budget" and t.loc["a", "final_step"] == 300
    assert t.loc["b", "status"] == "running"
    assert t.loc["c", "status"] == "diverged" and t.loc["c", "optim.lr"] == 5e-3
    assert sorted(curves[curves.trial_id == "a"]["step"]) == [100, 200, 300]
    assert REPLAY_KEY not in curves and f"final_{REPLAY_KEY}" not in trials


def test_a_torn_newest_session_is_not_resumable_until_moved_aside(tmp_path):
    path = sweep_folder(tmp_path, trial_ids=("a",), session="2026-01-01_00-00-00")
    assert resumable(path)
    (path / "experiment_state-2026-01-02_00-00-00.json").write_text('{"trial_data": [[')  # torn by a kill
    (path / "searcher-state-2026-01-02_00-00-00.pkl").write_bytes(b"\x80\x04")
    assert not resumable(path)  # Tune would pick the torn one
    check_resume(path)  # moves it aside
    assert newest_state(path).name == "experiment_state-2026-01-01_00-00-00.json" and resumable(path)
    assert (path / ".torn-searcher-state-2026-01-02_00-00-00.pkl").exists()


def test_fresh_and_resume_rules_for_folders(tmp_path):
    check_fresh(tmp_path / "absent")
    with pytest.raises(UserError, match="holds no sweep to resume"):
        check_resume(tmp_path / "absent")
    path = sweep_folder(tmp_path)
    with pytest.raises(UserError, match="already holds a sweep"):
        check_fresh(path)
    for f in path.glob("*-2026-*"):
        f.unlink()  # killed during start-up: experiment.yaml and tuner.pkl, no Tune state
    check_fresh(path)  # a rerun treats it as empty
    with pytest.raises(UserError, match="stopped before Tune saved any state"):
        check_resume(path)
    (path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a groktune sweep folder"):
        check_fresh(path)


def test_reconcile_finds_orphans_abandons_unknown_folders_and_releases_claims(tmp_path):
    path = sweep_folder(tmp_path, trial_ids=("known",))
    write_record(path, "orphan", "grokked", {"optim.lr": 1e-3}, final(200, "grokked"))
    write_record(path, "known", "budget", {"optim.lr": 2e-3}, final(300, "budget"))
    for tid in ("known", "half", "orphan"):
        (path / f"trial_{tid}").mkdir()
        (path / f"trial_{tid}" / "params.json").write_text(json.dumps({"optim.lr": 4e-3}))
    (path / LEDGER / "orphan.claim").write_text("lost-with-the-state")
    orphans = reconcile(path)
    assert orphans == {"orphan": {"optim.lr": 1e-3}}
    assert not (path / LEDGER / "orphan.claim").exists()
    ledger = read_ledger(path)
    assert ledger["half"]["status"] == ABANDONED and ledger["known"]["status"] == "budget"


def curve_rows(n, tid="a"):
    return [{**final(10 * (i + 1), "budget" if i == n - 1 else None), "trial_id": tid} for i in range(n)]


def staged_trial(tmp_path, tid="a"):
    """What restore_curve reads of a Tune Trial: its id, point and staging folder."""
    from types import SimpleNamespace

    staging = tmp_path / "staging" / f"trial_{tid}"
    staging.mkdir(parents=True)
    return SimpleNamespace(trial_id=tid, config={"optim.lr": 1e-3}, local_path=str(staging), checkpoint=None)


def test_a_replayed_finished_trial_gets_its_whole_curve_back(tmp_path):
    from orchestrator.sweep.ledger import restore_curve

    path = sweep_folder(tmp_path, ["a"])
    rows = curve_rows(5)
    write_record(path, "a", "budget", {"optim.lr": 1e-3}, rows[-1], rows)
    trial = staged_trial(tmp_path)
    staged = tmp_path / "staging" / "trial_a" / "result.json"
    assert restore_curve(path, trial)  # nothing staged (restored without a checkpoint)
    assert [json.loads(line)["step"] for line in staged.read_text().splitlines()] == [10, 20, 30, 40, 50]
    assert not restore_curve(path, trial)  # whole already: left as it is
    staged.write_text(json.dumps({**rows[-1], "config": {}}) + "\n")  # the one line a replay once left
    assert restore_curve(path, trial)
    assert len(staged.read_text().splitlines()) == 5


def test_a_trial_restarted_from_a_checkpoint_gets_the_evals_its_lagging_result_json_lacks(tmp_path):
    """The sweep folder's result.json Tune restarts a trial with lags its checkpoint; the evals the
    checkpoint carries (the adapter's reports up to it) are put back before the trial appends."""
    from ray.tune import Checkpoint

    from orchestrator.sweep.ledger import lineage, read_curve, restore_curve

    path = sweep_folder(tmp_path, ["a"])
    rows = curve_rows(6)
    ckpt = tmp_path / "checkpoint_000004"
    ckpt.mkdir()
    carried = [{k: v for k, v in r.items() if k not in ("config", "training_iteration")} for r in rows[:4]]
    (ckpt / "tune_state.json").write_text(json.dumps({"curve": carried}))
    trial = staged_trial(tmp_path)
    trial.checkpoint = Checkpoint.from_directory(str(ckpt))
    staged = tmp_path / "staging" / "trial_a" / "result.json"
    staged.write_text("".join(json.dumps(r) + "\n" for r in rows[:2] + rows[3:6]))  # eval 30 never copied
    assert restore_curve(path, trial)
    mended = read_curve(staged)
    assert [r["step"] for r in mended] == [10, 20, 30, 40]  # after 40 the trial reports again
    assert mended[2] == carried[2] and mended[1] == {k: v for k, v in rows[1].items() if k != "config"}
    assert not restore_curve(path, trial)  # whole already: left as it is
    with open(staged, "a") as f:  # the restarted trial appends from its checkpoint on
        f.writelines(json.dumps(r) + "\n" for r in rows[4:])
    assert [r["step"] for r in lineage(read_curve(staged))] == [10, 20, 30, 40, 50, 60]
    (ckpt / "tune_state.json").write_text("{torn")  # unreadable here: the trial names it when it restores
    staged.write_text(json.dumps(rows[0]) + "\n")
    assert not restore_curve(path, trial) and len(staged.read_text().splitlines()) == 1


def test_a_finished_trial_is_recorded_with_the_evals_its_staged_file_lost_before_its_latest_checkpoint(tmp_path):
    """A driver killed after a restart but before Tune synced the mended file leaves a staging
    result.json with a hole; the record takes the missing evals from the latest checkpoint."""
    from ray.tune import Checkpoint

    from orchestrator.sweep.ledger import read_ledger, record_trial

    path = sweep_folder(tmp_path, ["a"])
    rows = curve_rows(6)
    ckpt = tmp_path / "checkpoint_000009"
    ckpt.mkdir()
    carried = [{k: v for k, v in r.items() if k not in ("config", "training_iteration")} for r in rows]
    (ckpt / "tune_state.json").write_text(json.dumps({"curve": carried}))
    trial = staged_trial(tmp_path)
    trial.checkpoint, trial.last_result = Checkpoint.from_directory(str(ckpt)), rows[-1]
    staged = tmp_path / "staging" / "trial_a" / "result.json"
    staged.write_text("".join(json.dumps(r) + "\n" for r in rows[:2] + rows[4:]))  # evals 30 and 40 lost
    record_trial(path, trial, errored=False)
    curve = read_ledger(path)["a"]["curve"]
    assert [r["step"] for r in curve] == [10, 20, 30, 40, 50, 60]
    assert curve[2]["val_acc"] == carried[2]["val_acc"] and curve[4] == {k: v for k, v in rows[4].items() if k != "config"}


def test_reconcile_restores_a_lagging_result_json_of_a_finished_trial(tmp_path):
    path = sweep_folder(tmp_path, ["a"])
    rows = curve_rows(6)
    write_record(path, "a", "budget", {"optim.lr": 1e-3}, rows[-1], rows)
    tdir = path / "trial_a"
    tdir.mkdir()
    (tdir / "params.json").write_text(json.dumps({"optim.lr": 1e-3}))
    (tdir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))  # Tune's copy lagged
    reconcile(path)
    assert [json.loads(line)["step"] for line in (tdir / "result.json").read_text().splitlines()] == [10, 20, 30, 40, 50, 60]
    curves, _ = build_tables(path)
    assert list(curves["step"]) == [10, 20, 30, 40, 50, 60]


def test_tables_take_a_finished_curve_from_the_ledger_not_a_rewritten_result_json(tmp_path):
    path = sweep_folder(tmp_path, [])
    rows = curve_rows(4)
    write_record(path, "a", "budget", {"optim.lr": 1e-3}, rows[-1], rows)
    tdir = path / "trial_a"
    tdir.mkdir()
    (tdir / "params.json").write_text(json.dumps({"optim.lr": 1e-3}))
    (tdir / "result.json").write_text(json.dumps({**rows[-1], REPLAY_KEY: "a"}) + "\n")  # one line left
    curves, trials = build_tables(path)
    assert list(curves["step"]) == [10, 20, 30, 40] and trials.loc[0, "status"] == "budget"


@pytest.mark.parametrize("text, needle", [
    ("not json", "a.json: not valid JSON"),
    ("[1, 2]", "a.json: expected a JSON object, got a list"),
    ('{"trial_id": "a", "status": "budget", "config": {}, "result": {"step": "abc"}}', "a.json: result.step: got \"abc\""),
    ('{"trial_id": "a", "status": "budget", "config": {}}', "a.json: result: missing"),
    ('{"trial_id": "a", "status": "budget", "config": {}, "result": {}, "curve": [{"val_acc": [1]}]}',
     "a.json: curve[0].val_acc: got [1], expected a number"),
])
def test_a_damaged_record_is_named_not_skipped(tmp_path, text, needle):
    path = sweep_folder(tmp_path, [])
    (path / LEDGER).mkdir()
    (path / LEDGER / "a.json").write_text(text)
    with pytest.raises(UserError, match=None) as err:
        read_ledger(path)
    assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError):
        build_tables(path)  # never a table with the trial shown as running
