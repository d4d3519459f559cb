"""`groktune train`: bad configs give one line and exit 2 with nothing written; a run dir; SIGKILL + --resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.cli.main import main
from tests.conftest import TINY, deep_merge


def write_cfg(tmp_path, extra=None, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(deep_merge(TINY, extra or {})))
    return path


BAD = [
    (["optim.lr=0"], "optim.lr: got 0.0, must be > 0"),
    (["optim.lr=-1e-3"], "optim.lr: got -0.001, must be > 0"),
    (["task.train_fraction=1.0"], "task.train_fraction"),
    (["task.train_fraction=0"], "task.train_fraction"),
    (["task.p=1"], "task.p"),
    (["task.op=x/y", "task.p=10"], "task.p: got 10, must be prime"),
    (["model.d_model=30", "model.n_heads=4"], "model.d_model: got 30, must be divisible by n_heads=4"),
    (["model.d_modle=32"], "model.d_modle: unknown key"),
    (["train.steps=ten"], "train.steps: got 'ten', expected int"),
    (["optim.schedule=exp"], "optim.schedule: got 'exp', allowed:"),
    (["task.op=x%y"], "task.op"),
    (["optim.grokfast.kind=fast"], "optim.grokfast.kind"),
    (["nonsense"], "expected KEY=VALUE"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[m for _, m in BAD])
def test_bad_config_is_one_line_exit_2_nothing_written(tmp_path, capsys, overrides, message):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    argv = ["train", str(cfg), "--out", str(out)]
    for o in overrides:
        argv += ["--set", o]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("groktune: error: ")
    assert message in err
    assert not out.exists()


@pytest.mark.parametrize("content,message", [
    ("task: [1, 2", "not valid YAML"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("task: 3\n", "task: got 3, expected a mapping"),
])
def test_bad_files(tmp_path, capsys, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_run_dir_contents_and_refusal_to_overwrite(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=20"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["steps"] == 20
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 20
    result = json.loads((out / "result.json").read_text())
    assert result["status"] in ("budget", "grokked") and result["final_step"] == 20
    assert (out / "checkpoints" / "checkpoint.pt").is_file()
    assert any((out / "tensorboard").iterdir())
    versions = json.loads((out / "versions.json").read_text())  # what produced the results, for the report
    assert {"python", "torch", "ray", "optuna", "numpy", "pandas", "groktune"} <= set(versions)
    before = (out / "metrics.jsonl").read_text()
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text() == before  # nothing lost


def test_corrupt_checkpoint_on_resume_is_one_line(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=10"]) == 0
    (out / "checkpoints" / "checkpoint.pt").write_bytes(b"garbage")
    (out / "result.json").unlink()  # as if killed before the end: a finished run is not resumed
    capsys.readouterr()
    assert main(["train", str(cfg), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable groktune checkpoint" in err


def test_resume_with_another_model_is_refused(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=10"]) == 0
    (out / "result.json").unlink()
    capsys.readouterr()
    assert main(["train", str(cfg), "--out", str(out), "--resume", "--set", "model.d_model=32"]) == 2
    assert "model.d_model: 16 -> 32" in capsys.readouterr().err


def _cli(*args, **kw):
    env = {**os.environ, "CI": "1"}
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_step(metrics: Path, step: int, proc, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics.exists():
            lines = metrics.read_text().splitlines()
            if lines and json.loads(lines[-1])["step"] >= step:
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout}s")


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    extra = {"train": {"steps": 1500, "checkpoint_every": 200, "eval_every": 100},
             "optim": {"grokfast": {"kind": "ema"}}}
    cfg = write_cfg(tmp_path, extra)
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = _cli("train", cfg, "--out", killed)
    _wait_for_step(killed / "metrics.jsonl", 700, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists()
    resumed = _cli("train", cfg, "--out", killed, "--resume")
    reference = _cli("train", cfg, "--out", full)
    for p in (resumed, reference):
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    a = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in a] == [r["step"] for r in b]  # no duplicated or missing evals
    for ra, rb in zip(a, b):
        ra.pop("wall_time"), rb.pop("wall_time")
        assert ra == rb
    ra = json.loads((full / "result.json").read_text())
    rb = json.loads((killed / "result.json").read_text())
    assert ra["final"]["val_acc"] == rb["final"]["val_acc"] and ra["status"] == rb["status"]


# --- run folders are all-or-nothing ---------------------------------------


def test_failed_environment_check_creates_no_folder(tmp_path, capsys):
    cfg = write_cfg(tmp_path, {"task": {"name": "lm", "path": str(tmp_path / "short.bin"), "context_length": 8}})
    (tmp_path / "short.bin").write_bytes(b"0123456789")
    out = tmp_path / "deep" / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    assert "too short for context_length 8" in capsys.readouterr().err
    assert not (tmp_path / "deep").exists()


def test_interrupted_before_first_checkpoint_can_be_rerun_and_resumed(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("seed: 0\n")  # what a run killed during set-up leaves
    (out / "metrics.jsonl").write_text("")
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=10"]) == 0
    assert json.loads((out / "result.json").read_text())["final_step"] == 10
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    # Killed after some evals but before its first checkpoint: --resume starts it again.
    (out / "result.json").unlink()
    import shutil

    shutil.rmtree(out / "checkpoints")
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=10", "--resume"]) == 0
    again = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert again == steps  # restarted, not appended


def test_resume_on_a_finished_run_changes_nothing(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=10"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=20", "--resume"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_force_writes_beside_user_files_and_never_over_them(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=5"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=5", "--force"]) == 0
    assert (out / "notes.txt").read_text() == "keep me\n" and (out / "result.json").is_file()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "config.yaml").write_text("their: config\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "theirs"), "--force"]) == 2
    assert (tmp_path / "theirs" / "config.yaml").read_text() == "their: config\n"


def test_resume_names_every_setup_key_that_differs(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=10"]) == 0
    (out / "result.json").unlink()
    capsys.readouterr()
    argv = ["train", str(cfg), "--out", str(out), "--resume", "--set", "seed=3", "--set", "task.train_fraction=0.4"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed: 0 -> 3" in err and "task.train_fraction: 0.5 -> 0.4" in err
    # train.* and optim.* may change on resume (a longer budget, say).
    assert main(["train", str(cfg), "--out", str(out), "--resume", "--set", "train.steps=15"]) == 0
    assert json.loads((out / "result.json").read_text())["final_step"] == 15


def test_checkpoint_of_another_vocabulary_is_one_line(tmp_path, capsys):
    import torch

    cfg = write_cfg(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=10"]) == 0
    (out / "result.json").unlink()
    path = out / "checkpoints" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    name = next(k for k, v in state["model"].items() if v.dim() == 2)
    state["model"][name] = torch.zeros(state["model"][name].shape[0] + 5, state["model"][name].shape[1])
    torch.save(state, path)
    capsys.readouterr()
    assert main(["train", str(cfg), "--out", str(out), "--resume", "--set", "train.steps=10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err and "in the checkpoint" in err
    assert not (out / "tensorboard").exists() or not any(
        p.stat().st_mtime > path.stat().st_mtime for p in (out / "tensorboard").rglob("*") if p.is_file())
