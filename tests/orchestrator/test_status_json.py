"""`groktune status DIR [--json] [--limit N]` (orchestrator/sweep/status.py, cmd_status.py).

Fast tier, on a sweep folder written with the sweep's own writers (the ledger's write_record,
the Heartbeat callback, Tune's result.json / params.json lines): one trial finished, one still
running. The text has the per-trial table (live trials first), --json one object with the
sweep's state, counts, best and every trial; a dead driver reads `stopped`; bad folders and
a bad --limit are one line, exit 2. A running and a finished real sweep: test_time_axis.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from groktune.layout import EXPERIMENT, HEARTBEAT
from orchestrator.config.experiment import config_from_dict, dump_config
from orchestrator.sweep.ledger import write_record
from orchestrator.sweep.status import describe, status_data

ROOT = Path(__file__).resolve().parents[2]

CONFIG = {
    "name": "st",
    "task": {"name": "modular", "op": "x+y", "p": 13},
    "train": {"steps": 300},
    "search": {"space": {"optim.lr": {"grid": [0.001, 0.003, 0.01]}, "optim.weight_decay": {"grid": [1.0]}},
               "algorithm": "grid", "scheduler": "fifo"},
}


def result_line(trial_id: str, step: int, val_acc: float, point: dict, **extra) -> dict:
    return {"trial_id": trial_id, "step": step, "val_acc": val_acc, "train_acc": 1.0, "grok_score": 500.0 - step,
            "config": point, "node_ip": "127.0.0.1", "hostname": "h", "node_id": "f00dcafe1234", "training_iteration": 1,
            **extra}


@pytest.fixture()
def sweep(tmp_path) -> Path:
    """A sweep folder: trial aaa grokked (ledgered), trial bbb running (two reports), one pending."""
    exp = tmp_path / "st"
    exp.mkdir()
    (exp / EXPERIMENT).write_text(dump_config(config_from_dict(CONFIG)))
    done = {"optim.lr": 0.003, "optim.weight_decay": 1.0}
    rows = [result_line("aaa", 100, 0.5, done), result_line("aaa", 200, 1.0, done),
            result_line("aaa", 200, 1.0, done, status="grokked", steps_to_target=160, grok_score=160.0)]
    live = {"optim.lr": 0.001, "optim.weight_decay": 1.0}
    for tid, point, lines in (("aaa", done, rows), ("bbb", live, [result_line("bbb", 20, 0.1, live),
                                                                   result_line("bbb", 40, 0.2, live)])):
        (exp / f"trial_{tid}").mkdir()
        (exp / f"trial_{tid}" / "params.json").write_text(json.dumps(point))
        (exp / f"trial_{tid}" / "result.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    write_record(exp, "aaa", "grokked", done, rows[-1])
    return exp


def beat(exp: Path, finished: bool, pid: int | None = None) -> None:
    from orchestrator.sweep.callbacks import Heartbeat  # the sweep's own writer

    Heartbeat(str(exp)).write([], finished=finished)
    if pid is not None:  # the same heartbeat, from a driver that has died
        data = json.loads((exp / HEARTBEAT).read_text())
        (exp / HEARTBEAT).write_text(json.dumps({**data, "pid": pid}))


def status(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "status", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_text_has_a_per_trial_table_with_live_trials_first(sweep):
    beat(sweep, finished=False)
    text = describe(sweep)
    lines = text.splitlines()
    assert lines[0] == "sweep st: 3 trials planned, 2 started; 1 running, 1 pending, 1 finished (1 grokked)"
    assert "driver: running" in text
    table = lines[lines.index("") + 1:]
    assert table[0].split() == ["trial", "status", "lr", "weight_decay", "seed", "step", "val_acc", "to", "target", "node"]
    assert table[1].split() == ["bbb", "running", "0.001", "1", "0", "40", "0.200", "-", "f00dcafe"]
    assert table[2].split() == ["aaa", "grokked", "0.003", "1", "0", "200", "1.000", "160", "f00dcafe"]
    assert describe(sweep, limit=1).splitlines()[-1].startswith("... 1 more trial(s)")


def test_json_is_one_object_with_state_counts_best_and_trials(sweep):
    beat(sweep, finished=False)
    proc = status(sweep, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "running" and data["driver"]["pid"] == os.getpid()
    assert (data["planned"], data["started"], data["counts"]) == (3, 2, {"grokked": 1, "running": 1})
    assert data["best"]["trial_id"] == "aaa" and data["best"]["steps_to_target"] == 160
    assert [t["trial_id"] for t in data["trials"]] == ["bbb", "aaa"]
    live = data["trials"][0]
    assert live["params"] == {"optim.lr": 0.001, "optim.weight_decay": 1.0}
    assert (live["status"], live["step"], live["val_acc"], live["steps_to_target"]) == ("running", 40, 0.2, None)
    assert live["node"]["node_id"] == "f00dcafe1234"
    assert status_data(sweep)["trials"] == data["trials"]  # the CLI prints exactly status_data


def test_finished_and_dead_drivers(sweep):
    beat(sweep, finished=True)
    assert status_data(sweep)["status"] == "finished"
    beat(sweep, finished=False, pid=2**22 + 12345)  # no such process
    data = status_data(sweep)
    assert data["status"] == "stopped" and "resume with groktune sweep CONFIG --resume" in describe(sweep)
    (sweep / HEARTBEAT).unlink()
    assert status_data(sweep)["status"] == "not started"


@pytest.mark.parametrize("case, needle", [
    ("missing", "no such sweep folder"),
    ("not_a_sweep", "not a groktune sweep folder"),
    ("bad_heartbeat", "driver.heartbeat: not valid JSON"),
    ("bad_limit", "--limit: got -1"),
])
def test_bad_folders_are_one_line_exit_2(sweep, tmp_path, capsys, case, needle):
    from orchestrator.cli.main import main

    args = {"missing": [tmp_path / "nope"], "not_a_sweep": [tmp_path], "bad_limit": [sweep, "--limit", "-1"],
            "bad_heartbeat": [sweep, "--json"]}[case]
    if case == "bad_heartbeat":
        (sweep / HEARTBEAT).write_text("{torn")
    rc = main(["status", *map(str, args)])
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(errors) == 1 and needle in errors[0], err
    assert out == ""
