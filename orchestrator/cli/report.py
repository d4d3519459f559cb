"""`groktune report PATH --out DIR`: the grokking-speed report of a sweep, a run or a folder of runs.

Writes DIR/report.html (one self-contained file), DIR/report.md, DIR/figures/*.png and
DIR/summary.csv. A missing, empty or malformed results folder is a ResultsError (a UserError):
one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from groktune.layout import REPORT_HTML
from orchestrator.errors import UserError
from orchestrator.cli.paths import check_report_out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write the grokking-speed report (HTML, Markdown, figures, CSV)",
        description="Analyse a sweep dir, a `groktune train` run dir or a folder of run dirs: "
                    "grokking events and phases, double descent, hyperparameter importances.")
    p.add_argument("path", help="results folder: a sweep dir, a run dir or a folder of run dirs")
    p.add_argument("--out", default=None,
                   help="output folder (default: PATH/report); an earlier report there is replaced; "
                        "any other non-empty folder needs --force, and files the report did not "
                        "write are never replaced or deleted")
    p.add_argument("--force", action="store_true",
                   help="allow --out to be a non-empty folder that is not a report folder")
    p.add_argument("--threshold", type=float, default=None,
                   help="accuracy that counts as reached (default: the config's "
                        "train.target_val_acc, else 0.99)")
    p.add_argument("--patience", type=int, default=None,
                   help="evals in a row above the threshold to reach it, and below to lose it "
                        "(default: the config's train.target_patience, else 3)")
    p.add_argument("--delay-boundary", type=float, default=1000,
                   help="steps between memorising and generalising that count as grokking "
                        "rather than comprehension (default: 1000, Liu et al. 2022)")
    p.add_argument("--phase-x", default=None, metavar="KEY",
                   help="x axis of the phase diagram and steps map, a dotted key such as optim.lr "
                        "(default: optim.lr x optim.weight_decay, else the two most important)")
    p.add_argument("--phase-y", default=None, metavar="KEY", help="y axis (see --phase-x)")
    p.add_argument("--size-key", default="model.d_model", metavar="KEY",
                   help="model-size column for model-wise double descent (default: model.d_model)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.threshold is not None and not 0 < args.threshold <= 1:
        raise UserError(f"--threshold: got {args.threshold}, must be in (0, 1]")
    if args.patience is not None and args.patience < 1:
        raise UserError(f"--patience: got {args.patience}, must be >= 1")
    if not 0 <= args.delay_boundary < float("inf"):  # written so that NaN fails too
        raise UserError(f"--delay-boundary: got {args.delay_boundary}, must be >= 0 and finite")


def run(args: argparse.Namespace) -> int:
    """parse -> load -> analyse -> write; analysis is imported here to keep `groktune` fast."""
    # deferred: analysis (pandas, matplotlib) only when this command runs; `groktune --help` stays fast
    from analysis import ReportOptions, build_report, load, write_report

    _check(args)
    out = Path(args.out) if args.out else Path(args.path) / "report"
    results = load(args.path)  # its errors name PATH first
    check_report_out(out, args.force)  # before any analysis: a refused --out costs little
    options = ReportOptions(threshold=args.threshold, patience=args.patience,
                            delay_boundary=args.delay_boundary, phase_x=args.phase_x,
                            phase_y=args.phase_y, size_key=args.size_key)
    doc, summary = build_report(results, options)
    paths = write_report(doc, summary, out)
    print(f"groktune: report written to {paths[REPORT_HTML]} (+ report.md, figures/, summary.csv)")
    return 0
