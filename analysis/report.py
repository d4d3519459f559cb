"""The grokking-speed report: analyse loaded results and write report.html (self-contained),
report.md, figures/*.png and summary.csv — all or nothing.

Writing is atomic per run of `write_report`: everything is rendered into a fresh temporary
folder beside the output folder first; only when every file is complete are they moved into
place (each with an atomic rename), so an error leaves the previous report, or nothing, and
never a half-written one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import sections
from analysis.context import Context
from analysis.document import Document, to_html, to_markdown
from analysis.grokking import DEFAULT_DELAY_BOUNDARY
from analysis.headline import headline
from analysis.importance import param_importances
from analysis.load import load
from analysis.safe_text import csv_safe_frame
from analysis.summary import choose_pair, rank_trials, trial_summary
from groktune.errors import UserError
from groktune.events import event_patience
from groktune.layout import REPORT_FIGURES, REPORT_FILES, REPORT_HTML, REPORT_MD, SUMMARY_CSV, VERIFIED

OUTPUTS = (*REPORT_FILES, REPORT_FIGURES)


@dataclass
class ReportOptions:
    threshold: float | None = None
    """Accuracy that counts as reached; None takes train.target_val_acc of the config, else 0.99."""
    patience: int | None = None
    """Evals in a row to reach/leave it; None takes train.target_patience (if > 0), else 3."""
    delay_boundary: float = DEFAULT_DELAY_BOUNDARY
    phase_x: str | None = None
    """Hyperparameter on the x axis of the phase diagram and steps map (None: a sensible pick)."""
    phase_y: str | None = None
    size_key: str = "model.d_model"
    """Model-size column for model-wise double descent."""
    max_tasks: int = 6
    """Draw learning and norm curves for at most this many tasks."""


def resolve(options: ReportOptions, config: dict) -> tuple[float, int]:
    """The threshold and patience to use: explicit options, else the run's own target rule."""
    train = config.get("train") or {}
    threshold = options.threshold if options.threshold is not None else train.get("target_val_acc", 0.99)
    patience = options.patience
    if patience is None:
        patience = event_patience(int(train.get("target_patience") or 0))
    return float(threshold), int(patience)


def build_report(results, options: ReportOptions | None = None) -> tuple[Document, pd.DataFrame]:
    """Analyse results into the report document and the per-trial summary table.

    Args:
        results: analysis.Results from analysis.load.
        options: ReportOptions (defaults when None).
    Returns:
        (document, summary) where summary has one row per trial, best first.
    Raises:
        ResultsError: a chosen phase-diagram key is not in the results.
    """
    options = options or ReportOptions()
    threshold, patience = resolve(options, results.config)
    summary = rank_trials(trial_summary(results, threshold=threshold, patience=patience,
                                        delay_boundary=options.delay_boundary))
    imp = param_importances(summary, results.searched, results.params)
    pair = choose_pair(summary, results.searched, imp.values, options.phase_x, options.phase_y)
    tasks = sorted(summary["task"].unique())[: options.max_tasks]
    ctx = Context(results, summary, threshold, patience, options.delay_boundary, pair,
                           imp, options.size_key, options.max_tasks, tasks)
    name = (results.config or {}).get("name") or Path(results.path).name
    doc = Document(title=f"Grokking-speed report: {name}",
                   subtitle=f"{results.kind} {results.path} · {len(summary)} trial(s)",
                   sections=[s for s in (build(ctx) for build in sections.BUILDERS) if s is not None],
                   headline=headline(summary, results.searched, threshold, _verified(results.path)))
    return doc, summary


def _verified(path) -> pd.DataFrame | None:
    """A sweep folder's verified.csv (the verification stage), or None."""
    file = Path(path) / VERIFIED
    return pd.read_csv(file) if file.is_file() else None


def write_report(doc: Document, summary: pd.DataFrame, out: str | Path) -> dict[str, Path]:
    """Write report.html, report.md, figures/*.png and summary.csv into `out`, all or nothing.

    Args:
        doc: the report document.
        summary: the per-trial table, written as summary.csv.
        out: the output folder (created; earlier outputs of these names are replaced).
    Returns:
        Output name -> path.
    """
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; give --out a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / REPORT_FIGURES).mkdir()
        for fig in doc.figures():
            (tmp / REPORT_FIGURES / fig.name).write_bytes(fig.png)
        (tmp / REPORT_HTML).write_text(to_html(doc), encoding="utf-8")
        (tmp / REPORT_MD).write_text(to_markdown(doc), encoding="utf-8")
        csv_safe_frame(summary).to_csv(tmp / SUMMARY_CSV, index=False)  # no formula injection
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out / name for name in OUTPUTS}


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished outputs from `tmp` into `out` (same filesystem, atomic renames)."""
    if not out.exists():
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp made it private; give it a normal folder's mode
        os.rename(tmp, out)  # the common case: the whole folder appears at once
        return
    old = out / f".figures.old.{os.getpid()}"
    if (out / REPORT_FIGURES).exists():
        os.rename(out / REPORT_FIGURES, old)
    try:
        os.rename(tmp / REPORT_FIGURES, out / REPORT_FIGURES)
    except OSError:
        if old.exists():
            os.rename(old, out / REPORT_FIGURES)  # put the previous figures back
        raise
    for name in (SUMMARY_CSV, REPORT_MD, REPORT_HTML):  # html last: paths.check_report_out reads it as "ours"
        os.replace(tmp / name, out / name)
    shutil.rmtree(old, ignore_errors=True)


def make_report(path: str | Path, out: str | Path, options: ReportOptions | None = None) -> dict[str, Path]:
    """Load results from `path`, analyse them and write the report into `out`.

    Args:
        path: a sweep dir, a run dir or a folder of run dirs.
        out: the output folder.
        options: ReportOptions.
    Returns:
        Output name -> path.
    Raises:
        ResultsError: the results folder is missing, empty or malformed.
    """
    doc, summary = build_report(load(path), options)
    return write_report(doc, summary, out)
