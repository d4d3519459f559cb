"""The damaged folders of the bad-input world: a finished sweep and a finished run, copied once
per damage (a key of the wrong type, a file cut short, text that is not JSON), each with the one
line the CLI must print. tests/orchestrator/bad_input_world.py builds them into its world.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

# A finished 2-trial sweep as the sweep writes it (experiment.yaml, one folder per trial with
# Tune's params.json and result.json, the ledger, the heartbeat, ASHA's state), collected once,
# then copied once per damage below. Built from plain files: status, collect and report read
# only these, never Ray.
TRIAL_IDS = ("a1b2c_00000", "a1b2c_00001")
RAY_RESULT = {"done": False, "date": "2026-12-04_12-00-00", "timestamp": 1796380800, "time_this_iter_s": 0.1,
              "time_total_s": 1.0, "pid": 4242, "hostname": "host", "node_ip": "127.0.0.1", "time_since_restore": 1.0,
              "checkpoint_dir_name": None}


def _eval(step: int, val_acc: float, iteration: int, **extra) -> dict:
    return {"step": step, "epoch": step / 4, "lr": 1e-3, "train_loss": 1.0 / step, "train_acc": 0.9, "val_loss": 2.0,
            "val_acc": val_acc, "grad_norm": 0.5, "param_norm": 3.0, "wall_time": step / 10, "grok_score": 100.0,
            "device": "cpu", "cpu_time_s": step / 20, "peak_memory_mb": 120.0, "node_id": "n1",
            "resumed_from_step": 0, "training_iteration": iteration, "iterations_since_restore": iteration, **extra}


def finished_sweep(folder: Path, experiment: str) -> None:
    """Write a finished 2-trial sweep (one grokked, one budget) into `folder` and collect it."""
    import json
    import time

    from orchestrator.sweep.ledger import write_record  # deferred: the test module imports this file early
    from orchestrator.sweep.results import collect

    folder.mkdir()
    (folder / "experiment.yaml").write_text(experiment)
    for tid, lr, status in zip(TRIAL_IDS, (1e-3, 3e-3), ("grokked", "budget")):
        point = {"optim.lr": lr, "seed": 0}
        rows = [_eval(s, acc, i + 1) for i, (s, acc) in enumerate(((1, 0.1), (10, 0.5), (20, 0.95)))]
        rows.append({**rows[-1], "status": status, "steps_to_target": 20 if status == "grokked" else None,
                     "training_iteration": 4, "iterations_since_restore": 4})
        lines = [{**RAY_RESULT, **r, "trial_id": tid, "config": point} for r in rows]
        tdir = folder / f"trial_{tid}"
        tdir.mkdir()
        (tdir / "params.json").write_text(json.dumps(point, indent=2, sort_keys=True))
        (tdir / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
        curve = [{k: v for k, v in line.items() if k != "config"} for line in lines]
        write_record(folder, tid, status, point, {**lines[-1], "done": True}, curve)
    (folder / "driver.heartbeat").write_text(json.dumps({
        "pid": 999999, "host": "host", "updated": time.time(), "finished": True, "trials": {"TERMINATED": 2},
        "resources": {"total": {"CPU": 2.0}, "available": {"CPU": 2.0}}}, indent=1))
    (folder / "scheduler.state").write_text(json.dumps({"rungs": [[[10.0, {TRIAL_IDS[0]: 100.0}]]], "stopped": [],
                                                        "num_stopped": 0}))
    (folder / "tuner.pkl").write_bytes(b"Tune's pickle (not read before the ledger is checked)")
    collect(folder)


def _json_edit(path: Path, edit) -> None:
    import json

    data = json.loads(path.read_text())
    path.write_text(json.dumps(edit(data)))


def _line_edit(path: Path, number: int, edit) -> None:
    """Replace line `number` (1-based) of a JSON-lines file by edit(its record) (text: as is)."""
    import json

    lines = path.read_text().splitlines()
    new = edit(json.loads(lines[number - 1]))
    lines[number - 1] = new if isinstance(new, str) else json.dumps(new)
    path.write_text("\n".join(lines) + "\n")


def _set(key_path: str, value):
    """An edit that sets a key path ("a/b/0": list indices as numbers) to `value`; "<del>" deletes it."""
    def edit(data):
        parts = key_path.split("/")
        node = data
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = int(parts[-1]) if isinstance(node, list) else parts[-1]
        if value == "<del>":
            del node[last]
        else:
            node[last] = value
        return data
    return edit


def _all_records(text: str):
    def damage(folder: Path) -> None:
        for f in (folder / "ledger").glob("*.json"):
            f.write_text(text)
    return damage


def _truncate(rel: str):
    def damage(folder: Path) -> None:
        f = folder / rel
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2])
    return damage


def _record(key_path: str, value, which: int = 0):
    return lambda folder: _json_edit(folder / "ledger" / f"{TRIAL_IDS[which]}.json", _set(key_path, value))


def _result_line(number: int, key_path: str | None, value):
    edit = (lambda r: value) if key_path is None else _set(key_path, value)
    return lambda folder: _line_edit(folder / f"trial_{TRIAL_IDS[1]}" / "result.json", number, edit)


def _params(key_path: str | None, value):
    path = lambda folder: folder / f"trial_{TRIAL_IDS[1]}" / "params.json"  # noqa: E731
    if key_path is None:
        return lambda folder: path(folder).write_text(value)
    return lambda folder: _json_edit(path(folder), _set(key_path, value))


def _heartbeat(key_path: str, value):
    return lambda folder: _json_edit(folder / "driver.heartbeat", _set(key_path, value))


def _experiment(old: str, new: str):
    def damage(folder: Path) -> None:
        f = folder / "experiment.yaml"
        text = f.read_text()
        assert old in text, old
        f.write_text(text.replace(old, new, 1))
    return damage


def _yaml_set(rel: str, key_path: str, value):
    def damage(folder: Path) -> None:
        f = folder / rel
        f.write_text(yaml.safe_dump(_set(key_path, value)(yaml.safe_load(f.read_text())), sort_keys=False))
    return damage


# name -> (damage, which commands see it, what the one line must name). S: status, C: collect,
# R: report. The ledger is read by all three; a trial's params.json and result.json by status
# and collect (report reads the collected tables); the heartbeat by status.
SWEEP_DAMAGES = {
    "ledger-all-text": (_all_records("this is not JSON\n"), "SCR", "ledger/a1b2c_00000.json: not valid JSON"),
    "ledger-all-list": (_all_records("[1, 2, 3]"), "SCR", "ledger/a1b2c_00000.json: expected a JSON object, got a list"),
    "ledger-all-empty": (_all_records(""), "SCR", "ledger/a1b2c_00000.json: not valid JSON"),
    "ledger-truncated": (_truncate(f"ledger/{TRIAL_IDS[1]}.json"), "SCR", "a1b2c_00001.json: not valid JSON, truncated"),
    "ledger-status-number": (_record("status", 3), "SCR", "a1b2c_00000.json: status: got 3, expected a string"),
    "ledger-status-running": (_record("status", "running"), "SCR", "status: got \"running\", expected one of"),
    "ledger-status-missing": (_record("status", "<del>"), "SCR", "a1b2c_00000.json: status: missing"),
    "ledger-trial-id-list": (_record("trial_id", ["a"]), "SCR", "trial_id: got [\"a\"], expected a string"),
    "ledger-config-string": (_record("config", "abc"), "SCR", "config: got \"abc\", expected a JSON object"),
    "ledger-config-seed": (_record("config/seed", "abc"), "SCR", "a1b2c_00000.json: seed: got \"abc\", expected an integer"),
    "ledger-result-list": (_record("result", [1]), "SCR", "result: got [1], expected a JSON object"),
    "ledger-result-step": (_record("result/step", "abc"), "SCR", "result.step: got \"abc\", expected an integer"),
    "ledger-result-val-acc": (_record("result/val_acc", "0.9"), "SCR", "result.val_acc: got \"0.9\", expected a number"),
    "ledger-curve-object": (_record("curve", {"a": 1}), "SCR", "a1b2c_00000.json: curve: got {\"a\": 1}, expected a list"),
    "ledger-curve-step": (_record("curve/1/step", "x", 1), "SCR", "a1b2c_00001.json: curve[1].step: got \"x\""),
    "ledger-curve-entry-list": (_record("curve/0", [1, 2], 1), "SCR", "curve[0].expected a JSON object"),
    "result-step-string": (_result_line(1, "step", "abc"), "SC", "result.json: line 1: step: got \"abc\""),
    "result-val-acc-string": (_result_line(2, "val_acc", "high"), "SC", "result.json: line 2: val_acc: got \"high\""),
    "result-line-list": (_result_line(2, None, [1, 2]), "SC", "result.json: line 2 is not a JSON object"),
    "result-line-torn": (_result_line(1, None, '{"step": 1, "val'), "SC", "result.json: line 1 is not a JSON object"),
    "result-config-list": (_result_line(3, "config", [1]), "SC", "result.json: line 3: config: got [1]"),
    "params-seed-string": (_params("seed", "abc"), "SC", "params.json: seed: got \"abc\", expected an integer"),
    "params-lr-string": (_params("optim.lr", "abc"), "SC", "params.json: optim.lr: got 'abc', expected a number"),
    "params-list": (_params(None, "[1, 2]"), "SC", "params.json: expected a JSON object, got a list"),
    "params-truncated": (_params(None, '{"optim.lr": 0.001, "se'), "SC", "params.json: not valid JSON, truncated"),
    "params-not-json": (_params(None, "lr = 3"), "SC", "params.json: not valid JSON"),
    "heartbeat-list": (lambda f: (f / "driver.heartbeat").write_text("[]"), "S", "driver.heartbeat: expected a JSON object"),
    "heartbeat-updated": (_heartbeat("updated", "yesterday"), "S", "driver.heartbeat: updated: got \"yesterday\""),
    "heartbeat-finished": (_heartbeat("finished", "yes"), "S", "driver.heartbeat: finished: got \"yes\""),
    "heartbeat-pid": (_heartbeat("pid", [1]), "S", "driver.heartbeat: pid: got [1]"),
    "heartbeat-resources": (_heartbeat("resources/total/CPU", "2"), "S", "resources.total.CPU: got '2'"),
    "heartbeat-truncated": (_truncate("driver.heartbeat"), "S", "driver.heartbeat: not valid JSON, truncated"),
    "experiment-steps": (_experiment("steps: ", "steps: abc #"), "SCR", "experiment.yaml: train.steps: got 'abc'"),
    "experiment-space-list": (_yaml_set("experiment.yaml", "search/space", [1]), "SCR", "experiment.yaml: search.space: got [1]"),
    "experiment-task-list": (_yaml_set("experiment.yaml", "task", [1]), "SCR", "experiment.yaml: task: got [1]"),
    "experiment-seeds-string": (_yaml_set("experiment.yaml", "search/seeds", "abc"), "SCR", "experiment.yaml: search.seeds"),
    "experiment-lr-string": (_yaml_set("experiment.yaml", "optim/lr", "fast"), "SCR", "experiment.yaml: optim.lr: got 'fast'"),
    "experiment-truncated": (_truncate("experiment.yaml"), "SCR", "experiment.yaml"),
}


def damaged_sweeps(root: Path) -> None:
    """`sweep2` (finished, intact) and one copy of it per SWEEP_DAMAGES entry, `dmg-<name>`."""
    base = root / "sweep2"
    finished_sweep(base, (root / "cfg.yaml").read_text())
    for name, (damage, _, _) in SWEEP_DAMAGES.items():
        shutil.copytree(base, root / f"dmg-{name}")
        damage(root / f"dmg-{name}")


# A finished run (`groktune train`): its result.json, metrics.jsonl and config.yaml damaged.
def _run_file(rel: str, edit):
    return lambda folder: _json_edit(folder / rel, edit)


def _metrics_line(number: int, key_path: str | None, value):
    edit = (lambda r: value) if key_path is None else _set(key_path, value)
    return lambda folder: _line_edit(folder / "metrics.jsonl", number, edit)


def _yaml_edit(rel: str, old: str, new: str):
    def damage(folder: Path) -> None:
        f = folder / rel
        text = f.read_text()
        assert old in text, (old, text)
        f.write_text(text.replace(old, new, 1))
    return damage


RUN_DAMAGES = {
    "result-final-step": (_run_file("result.json", _set("final_step", "abc")), "result.json: final_step: got \"abc\""),
    "result-status-number": (_run_file("result.json", _set("status", 5)), "result.json: status: got 5"),
    "result-list": (_run_file("result.json", lambda d: [d]), "result.json: expected a JSON object, got a list"),
    "result-final-list": (_run_file("result.json", _set("final", [1])), "result.json: final: got [1]"),
    "result-final-val-acc": (_run_file("result.json", _set("final/val_acc", "x")), "result.json: final.val_acc: got \"x\""),
    "result-steps-to-target": (_run_file("result.json", _set("steps_to_target", "abc")), "steps_to_target: got \"abc\""),
    "result-wall-time": (_run_file("result.json", _set("wall_time", {})), "result.json: wall_time: got {}"),
    "result-truncated": (_truncate("result.json"), "result.json: not valid JSON, truncated"),
    "metrics-step-string": (_metrics_line(1, "step", "abc"), "metrics.jsonl: line 1: step: got \"abc\""),
    "metrics-val-acc-string": (_metrics_line(2, "val_acc", "x"), "metrics.jsonl: line 2: val_acc: got \"x\""),
    "metrics-line-list": (_metrics_line(1, None, [1]), "metrics.jsonl: line 1 is not a JSON object"),
    "metrics-line-torn": (_metrics_line(1, None, '{"step": 1, "tr'), "metrics.jsonl: line 1 is not a JSON object"),
    "config-seed-string": (_yaml_edit("config.yaml", "seed: 0", "seed: abc"), "config.yaml: seed: got 'abc'"),
    "config-train-list": (_yaml_set("config.yaml", "train", [1]), "config.yaml: train: got [1]"),
    "config-lr-list": (_yaml_set("config.yaml", "optim/lr", [0.1]), "config.yaml: optim.lr: got [0.1]"),
    "config-p-string": (_yaml_edit("config.yaml", "p: 7", "p: seven"), "config.yaml: task.p: got 'seven'"),
}


def damaged_runs(root: Path) -> None:
    """One copy of the finished `run` per RUN_DAMAGES entry, `rdmg-<name>`."""
    for name, (damage, _) in RUN_DAMAGES.items():
        shutil.copytree(root / "run", root / f"rdmg-{name}")
        damage(root / f"rdmg-{name}")
    # Probe files: steps that are strings, and an NPZ cut short.
    import numpy as np

    for name, write in {"probe-strings": lambda f: np.savez(f, step=np.array(["1", "2"]), norm=np.ones(2)),
                        "probe-truncated": lambda f: f.write_bytes(b"PK\x03\x04 cut")}.items():
        shutil.copytree(root / "run", root / f"rdmg-{name}")
        (root / f"rdmg-{name}" / "probes").mkdir()
        write(root / f"rdmg-{name}" / "probes" / "weights.npz")
    # A resumable run whose checkpoint is a folder (resume once trained from step 0 over it),
    # and ones whose metrics.jsonl is damaged (resume would keep the records before the damage).
    shutil.copytree(root / "ckpt", root / "ckpt-dir")
    (root / "ckpt-dir" / "checkpoints" / "checkpoint.pt").unlink()
    (root / "ckpt-dir" / "checkpoints" / "checkpoint.pt").mkdir()
    (root / "ckpt-dir" / "checkpoints" / "checkpoint.pt" / "x").write_text("x")
    shutil.copytree(root / "ckpt", root / "ckpt-metrics")
    _metrics_line(1, "step", "abc")(root / "ckpt-metrics")
    shutil.copytree(root / "ckpt", root / "ckpt-metrics-list")
    _metrics_line(2, None, [1])(root / "ckpt-metrics-list")
    shutil.copytree(root / "ckpt", root / "ckpt-dirs")
    shutil.rmtree(root / "ckpt-dirs" / "checkpoints")
    (root / "ckpt-dirs" / "checkpoints").write_text("not a folder")
