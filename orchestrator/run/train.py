"""Training one run into a run folder: what `groktune train` (and each GrokBench run) does.

All-or-nothing: the config is validated and the environment checked (device, precision, the LM
file) before the run folder is created or touched; existing user files are never overwritten;
`--resume` checks the saved config.yaml against the config given. Imports torch: the command
line (orchestrator.cli.train) imports this module only when it trains.
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

from groktune.errors import SetupError, UserError
from groktune.layout import CHECKPOINT_FILE, CONFIG, METRICS, RESULT
from groktune.readback import EVAL_RECORD, read_json_lines
from groktune.versions import write_versions
from orchestrator.config.experiment import config_to_dict, dump_config, load_config, read_yaml
from orchestrator.run.folder import (
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
from trials.checkpoint import checkpoint_step, load_checkpoint, load_model_state
from trials.model import build_model
from trials.setup import autocast_factory, config_sections, pick_device
from trials.train import train


def train_run(config: str | Path, overrides: list[str], out: Path | None, resume: bool, force: bool) -> int:
    """`groktune train`: validate, check the environment, then train one run into `out`.

    Args:
        config: the experiment YAML; overrides: `--set K=V` strings.
        out: the run folder (default runs/NAME-TIMESTAMP); resume: continue it from its last
            checkpoint; force: allow a non-empty folder that is not a run folder.
    Returns:
        0 (the exit status); bad input raises UserError/ConfigError/SetupError/DataError first.
    """
    cfg = load_config(config, overrides)  # validated before anything is written
    if resume and out is None:
        raise UserError("--resume needs --out DIR, the run directory to continue")
    out = out or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    mode = plan_run_dir(out, resume, force)
    if mode == FINISHED:
        print(f"groktune: {out} already finished ({RESULT} present); nothing to resume, nothing changed")
        return 0
    if resume:
        check_same_setup(out, cfg)
    check_environment(cfg)  # device, precision, LM file: before the folder is touched
    resume_from = None
    if mode == RESUME:
        # Everything the resume reads back is checked before the folder changes: the checkpoint
        # (a regular file, loaded with weights_only=True, for this task and model) and metrics.jsonl.
        state = load_checkpoint(out / CHECKPOINT_DIR, config_sections(cfg))
        check_weights_fit(cfg, state, out / CHECKPOINT_DIR / CHECKPOINT_FILE)
        if (out / METRICS).exists():
            read_json_lines(out / METRICS, EVAL_RECORD, torn_tail=True)
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


def check_weights_fit(cfg, state: dict, path: Path) -> None:
    """The checkpoint's tensors fit the model this config builds (shapes the config check cannot
    see, such as an LM file's vocabulary), checked on the CPU before the run folder changes."""
    data = build_task(cfg.task, cfg.seed, "cpu")
    load_model_state(build_model(cfg.model, data.vocab_size, data.seq_len), state, path)


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


__all__ = ["check_environment", "check_same_setup", "train_run"]
