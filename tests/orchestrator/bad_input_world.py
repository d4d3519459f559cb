"""The folder every bad-input case runs in: valid configs, bad files, run, sweep and report folders.

tests/orchestrator/test_bad_input.py builds it fresh for each case (in tmp_path, the case's
cwd), snapshots it, runs the CLI in-process and checks that nothing in it changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.conftest import TINY, deep_merge
from tests.orchestrator.bad_input_damage import damaged_runs, damaged_sweeps

SEARCH = {"space": {"optim.lr": {"loguniform": [1e-4, 1e-2]}}, "num_samples": 2, "cpus_per_trial": 1}


def _laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _yaml(extra: dict) -> str:
    return yaml.safe_dump(deep_merge(TINY, extra), sort_keys=False)


# Config files (name -> text or bytes) the cases name.
CONFIG_FILES: dict[str, str | bytes] = {
    "dup_top.yaml": "name: a\nname: b\n",
    "dup_nested.yaml": "optim:\n  lr: 0.1\n  lr: 0.2\n",
    "laughs.yaml": _laughs(),
    "recursive.yaml": "task: &a [*a]\n",
    "binary.yaml": b"\x00\x01\x02\x03groktune",
    "latin1.yaml": b"name: caf\xe9\n",
    "unclosed.yaml": "task: [1, 2\n",
    "list.yaml": "- 1\n- 2\n",
    "scalar.yaml": "hello\n",
    "deep.yaml": "a: " + "[" * 3000 + "]" * 3000 + "\n",
    "pytag.yaml": "name: !!python/object/apply:os.system ['echo hi']\n",
    "tabs.yaml": "task:\n\tname: modular\n",
    "complex_key.yaml": "? [1, 2]\n: 3\n",
    "int_key.yaml": "1: 2\n",
    "unknown.yaml": "nme: x\n",
    "task_scalar.yaml": "task: 3\n",
    "model_null.yaml": "model: null\n",
    "name_dotdot.yaml": _yaml({"name": "../../x"}),
    "name_slash.yaml": _yaml({"name": "a/b"}),
    "name_newline.yaml": _yaml({"name": "x\n"}),
    "name_empty.yaml": _yaml({"name": ""}),
    "name_int.yaml": "name: 123\n",
    "name_dots.yaml": "name: ..\n",
    "seed_huge.yaml": "seed: 1e30\n",
    "seed_neg.yaml": "seed: -1\n",
    "seed_nan.yaml": "seed: .nan\n",
    "lr_nested.yaml": "optim: {lr: {a: 1}}\n",
    "p_list.yaml": "task: {p: [1, 2]}\n",
    "lr_inf.yaml": "optim: {lr: .inf}\n",
    "steps_huge.yaml": "train: {steps: 1e12}\n",
    "dup_search.yaml": _yaml({"search": SEARCH}) + "search:\n  num_samples: 3\n",
    "anchor_junk.yaml": "x: &x {a: 1}\ntask: *x\n",
    "utf16.yaml": "name: x\n".encode("utf-16"),
}

BAD_CHECKPOINT = b"not a checkpoint at all"


def make_run(root: Path, argv_main) -> Path:
    """Train the tiny config for 10 steps once: a finished run folder with a final checkpoint."""
    cfg = root / "plain.yaml"
    cfg.write_text(_yaml({}))
    run = root / "run"
    assert argv_main(["train", str(cfg), "--out", str(run), "--set", "train.steps=10"]) == 0
    return run


def vocab_checkpoint(src: Path, dst: Path) -> None:
    """A checkpoint whose config matches but whose embedding has 3 more rows (another vocabulary)."""
    import torch

    state = torch.load(src, map_location="cpu", weights_only=True)
    name = next(k for k, v in state["model"].items() if v.dim() == 2)
    w = state["model"][name]
    state["model"][name] = torch.zeros(w.shape[0] + 3, w.shape[1])
    torch.save(state, dst)


def partial_checkpoints(src: Path, dst_dir: Path) -> dict[str, Path]:
    """Loadable checkpoints that are not whole run checkpoints: parts missing, config a list."""
    import torch

    state = torch.load(src, map_location="cpu", weights_only=True)
    out = {}
    for name, broken in {"noopt": {k: v for k, v in state.items() if k != "optimizer"},
                         "listconfig": {**state, "config": [1, 2]},
                         "notdict": [1, 2, 3]}.items():
        out[name] = dst_dir / f"part_{name}.pt"
        torch.save(broken, out[name])
    return out


def build_world(root: Path, run: Path, vocab_ckpt: Path) -> None:
    """Everything the cases refer to, relative to `root` (the cwd of each case)."""
    (root / "cfg.yaml").write_text(_yaml({"search": SEARCH}))
    (root / "plain.yaml").write_text(_yaml({}))
    for name, text in CONFIG_FILES.items():
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (root / "afile").write_text("just a file\n")
    (root / "empty").mkdir()
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("mine\n")
    (root / "foreign_cfg").mkdir()
    (root / "foreign_cfg" / "config.yaml").write_text("my: own config\n")
    (root / "foreign_res").mkdir()
    (root / "foreign_res" / "result.json").write_text("{}\n")
    (root / "foreign_csv").mkdir()
    (root / "foreign_csv" / "summary.csv").write_text("a,b\n1,2\n")
    (root / "short.bin").write_bytes(b"0123456789")
    shutil.copytree(run, root / "run")
    shutil.copytree(run, root / "ckpt", ignore=shutil.ignore_patterns("result.json", "tensorboard"))
    shutil.copytree(root / "ckpt", root / "badckpt")
    (root / "badckpt" / "checkpoints" / "checkpoint.pt").write_bytes(BAD_CHECKPOINT)
    shutil.copytree(root / "ckpt", root / "vocabckpt")
    shutil.copy(vocab_ckpt, root / "vocabckpt" / "checkpoints" / "checkpoint.pt")
    for part in sorted(vocab_ckpt.parent.glob("part_*.pt")):
        shutil.copytree(root / "ckpt", root / part.stem)
        shutil.copy(part, root / part.stem / "checkpoints" / "checkpoint.pt")
    shutil.copytree(root / "ckpt", root / "noconfig")
    (root / "noconfig" / "config.yaml").unlink()
    _sweeps(root)
    _reports(root)
    damaged_sweeps(root)
    damaged_runs(root)


def _sweeps(root: Path) -> None:
    experiment = (root / "cfg.yaml").read_text()
    for name, text in {"sweep": experiment, "sweepbin": b"\x00\x00bin", "sweepdup": "name: a\nname: b\n",
                       "sweepbad": "search: [1\n", "sweeplist": "- 1\n"}.items():
        (root / name).mkdir()
        (root / name / "experiment.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    (root / "badpq").mkdir()
    (root / "badpq" / "experiment.yaml").write_text(experiment)
    for name in ("curves.parquet", "trials.parquet"):
        (root / "badpq" / name).write_bytes(b"PAR1 junk")
    (root / "emptypq").mkdir()
    import pandas as pd

    for name in ("curves.parquet", "trials.parquet"):
        pd.DataFrame().to_parquet(root / "emptypq" / name)


def _reports(root: Path) -> None:
    rep = root / "rep_foreign"
    (rep / "figures").mkdir(parents=True)
    (rep / "report.html").write_text("<html></html>")
    (rep / "report.md").write_text("![a](figures/a.png)\n")
    (rep / "figures" / "a.png").write_bytes(b"png")
    (rep / "figures" / "mine.txt").write_text("not the report's\n")
    for name, files in {
        "run_badmetrics": {"metrics.jsonl": "{not json\n", "config.yaml": (root / "plain.yaml").read_text()},
        "run_binconfig": {"metrics.jsonl": (root / "run" / "metrics.jsonl").read_text(), "config.yaml": "\x00"},
        "run_dupconfig": {"metrics.jsonl": (root / "run" / "metrics.jsonl").read_text(),
                          "config.yaml": "seed: 1\nseed: 2\n"},
        "run_nometrics_cols": {"metrics.jsonl": '{"a": 1}\n'},
    }.items():
        (root / name).mkdir()
        for fname, text in files.items():
            (root / name / fname).write_text(text)
