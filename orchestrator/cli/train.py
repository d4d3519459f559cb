"""`groktune train CONFIG [--set K=V ...] [--out DIR] [--resume] [--force]`: one run into a run dir.

All-or-nothing: the config is validated and the environment checked (device,
precision, the LM file) before the run folder is created or touched; existing user files are
never overwritten; `--resume` checks the saved config.yaml against the config given.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from groktune.layout import CONFIG, METRICS, RESULT
from groktune.versions import write_versions
from orchestrator.config.experiment import config_to_dict, dump_config, load_config, read_yaml
from orchestrator.errors import UserError
from orchestrator.rundir import (
    CHECKPOINT_DIR,
    FINISHED,
    RESUME,
    RunDirReporter,
    create_run_dir,
    plan_run_dir,
    setup_differences,
    truncate_metrics,
    write_atomic,
)
from tasks.registry import build_task
from trials.checkpoint import checkpoint_step, load_checkpoint
from trials.errors import SetupError
from trials.setup import autocast_factory, config_sections, pick_device
from trials.train import train


def register(sub) -> None:
    p = sub.add_parser("train", help="train one model and write a run directory")
    p.add_argument("config", help="experiment YAML")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a config value, e.g. --set optim.lr=3e-4 (repeatable)")
    p.add_argument("--out", type=Path, help="run directory (default runs/NAME-TIMESTAMP)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; the seed, task and model "
                        "must match its config.yaml. On a finished run (result.json present) it says so, "
                        "changes nothing and exits 0")
    p.add_argument("--force", action="store_true",
                   help="allow --out to be a non-empty folder that is not a run folder (its own "
                        "config.yaml or result.json are still never overwritten)")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = load_config(args.config, args.overrides)  # validated before anything is written
    if args.resume and args.out is None:
        raise UserError("--resume needs --out DIR, the run directory to continue")
    out = args.out or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    mode = plan_run_dir(out, args.resume, args.force)
    if mode == FINISHED:
        print(f"groktune: {out} already finished ({RESULT} present); nothing to resume, nothing changed")
        return 0
    if args.resume:
        check_same_setup(out, cfg)
    check_environment(cfg)  # device, precision, LM file: before the folder is touched
    resume_from = None
    if mode == RESUME:
        state = load_checkpoint(out / CHECKPOINT_DIR, config_sections(cfg))
        truncate_metrics(out / METRICS, checkpoint_step(state, out / CHECKPOINT_DIR))
        resume_from = out / CHECKPOINT_DIR
        if (out / CONFIG).read_text() != dump_config(cfg):  # only train.*/optim.* may differ here
            write_atomic(out / CONFIG, dump_config(cfg))
    else:
        create_run_dir(out, dump_config(cfg))
    write_versions(out)  # what produced these results, read back by the report
    result = _train_with_progress(cfg, out, resume_from)
    write_atomic(out / RESULT, json.dumps(asdict(result), indent=2, default=str) + "\n")
    reached = f"step {result.steps_to_target}" if result.steps_to_target is not None else "not reached"
    print(
        f"{result.status}: val_acc {result.final.get('val_acc', float('nan')):.4f} at step {result.final_step}; "
        f"target {cfg.train.target_val_acc:g} {reached}; {result.wall_time:.1f}s -> {out}"
    )
    return 0


def check_same_setup(out: Path, cfg) -> None:
    """--resume: the saved config.yaml must match `cfg` on seed, task.* and model.* (UserError naming all)."""
    saved = read_yaml(out / CONFIG)
    diffs = setup_differences(saved, config_to_dict(cfg))
    if diffs:
        raise UserError(f"--resume {out}: the config differs from the run's {CONFIG} in what fixes its data "
                        f"and model: {'; '.join(diffs)}")


def check_environment(cfg) -> None:
    """Raise SetupError/DataError now for what train() would only find after the folder exists."""
    device = pick_device(cfg.train.device)
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise SetupError(f"train.device: got {cfg.train.device!r}, but only {torch.cuda.device_count()} "
                             f"CUDA device(s) are visible")
    autocast_factory(cfg.train.precision, device)
    if cfg.task.name == "lm":
        build_task(cfg.task, cfg.seed, "cpu")  # opens and measures the file (memory-mapped)
        if cfg.model.arch != "transformer":
            raise SetupError("model.arch: the lm task needs arch=transformer")


def _train_with_progress(cfg, out: Path, resume_from):
    bar = None
    if sys.stderr.isatty() and not os.environ.get("CI"):
        bar = tqdm(total=cfg.train.steps, unit="step", dynamic_ncols=True)

    def on_record(record: dict) -> None:
        if bar is not None:
            bar.n = record["step"]
            bar.set_postfix(train_acc=f"{record['train_acc']:.3f}", val_acc=f"{record['val_acc']:.3f}")
            bar.refresh()

    reporter = RunDirReporter(out, on_record)
    try:
        return train(cfg, reporter, resume_from=resume_from, artifacts_dir=out)
    finally:
        reporter.close()
        if bar is not None:
            bar.close()
