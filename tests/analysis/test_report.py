"""analysis.report: the four outputs, their sections and figures, and all-or-nothing writing."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest

from analysis import figures, report
from analysis.load import load
from analysis.report import ReportOptions, build_report, make_report, resolve, write_report
from orchestrator.errors import UserError
from tests.analysis.synth import write_run, write_sweep

# A 1x1 PNG: tests that check plumbing, not pictures, skip matplotlib's rendering.
TINY_PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                         "0000000b49444154789c63f80f040009fb03fdfb5e6b2b0000000049454e44ae426082")

SECTIONS = ["Summary per task", "Time to generalise (Kaplan–Meier)", "Seeds: every config",
            "Learning curves", "Collapses after generalising", "Steps to generalise over the searched",
            "Hyperparameter importances", "Phase diagram", "Double descent",
            "Parameter norms", "All trials", "What was run"]


# Sections that apply only to some results; the report leaves them out elsewhere.
ONLY_WHEN_THEY_APPLY = ["Steps to generalise over the searched", "Phase diagram", "Pareto front",
                        "Learning-dynamics probes"]


def check_outputs(out, n_trials, sections=SECTIONS):
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs, "no figures written"
    assert all((out / "figures" / p).read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(pngs)
    assert sorted(re.findall(r"\]\(figures/([^)]+)\)", md)) == pngs
    for title in sections:
        assert title in html and title in md
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == n_trials and {"trial_id", "phase", "generalized_step"} <= set(summary)
    return html, md, pngs


@pytest.fixture
def fast_png(monkeypatch):
    monkeypatch.setattr(figures, "to_png", lambda fig: TINY_PNG)


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    path = write_sweep(root / "s", n_trials=14)
    paths = make_report(path, root / "out")
    return root / "out", paths


def test_sweep_report_has_all_outputs_and_figures(sweep_report):
    out, paths = sweep_report
    assert set(paths) == {"report.html", "report.md", "summary.csv", "figures"}
    html, md, pngs = check_outputs(out, 14)
    for name in ("steps_map.png", "steps_by_param.png", "importances.png", "phase_diagram.png",
                 "double_descent.png", "curves_t0_modular_x_y_best.png", "norms_t0_modular_x_y.png"):
        assert name in pngs
    assert "optim.lr × optim.weight_decay" in md
    assert "Model-wise (median final val error over model.d_model" in md
    assert "Versions of the environment that wrote this report" in md
    assert not list(out.parent.glob(".out.*"))  # no temporary folder left behind
    # one objective (grok_score, min) and no probes: neither section, nor a paragraph about its absence
    assert "Pareto front" not in md and "Pareto front" not in html and "Learning-dynamics probes" not in md


def test_single_run_report(tmp_path):
    run = write_run(tmp_path / "run", "grokking")
    make_report(run, tmp_path / "out")
    applies = [t for t in SECTIONS if t not in ONLY_WHEN_THEY_APPLY]
    html, md, pngs = check_outputs(tmp_path / "out", 1, applies)
    assert "curves_t0_modular_x_y_best.png" in pngs
    assert "Too few trials for importances" in md
    # one run: nothing searched, no pair to map, one objective, no probes: those sections are left out
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert "All trials" in headings and not [h for h in headings for t in ONLY_WHEN_THEY_APPLY if h.startswith(t)], headings
    assert "phase_diagram.png" not in pngs and "steps_map.png" not in pngs
    assert "| torch | 2.13.0 |" in md  # versions recorded in result.json
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700


def test_rewriting_replaces_outputs_and_drops_stale_figures(tmp_path, fast_png):
    out = tmp_path / "out"
    out.mkdir()
    (out / "figures").mkdir()
    (out / "figures" / "stale.png").write_bytes(b"old")
    (out / "mine.txt").write_text("kept")
    make_report(write_run(tmp_path / "run"), out)
    assert not (out / "figures" / "stale.png").exists()
    assert (out / "mine.txt").read_text() == "kept"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("existing", [False, True])
def test_an_error_while_writing_leaves_no_half_written_report(tmp_path, monkeypatch, fast_png, existing):
    run = write_run(tmp_path / "run")
    out = tmp_path / "out"
    if existing:
        make_report(run, out)
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    doc, summary = build_report(load(run))

    def boom(_doc):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "to_markdown", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(doc, summary, out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    else:
        assert not out.exists()


def test_an_error_while_analysing_writes_nothing(tmp_path, monkeypatch):
    run = write_run(tmp_path / "run")
    monkeypatch.setattr(figures, "to_png", lambda fig: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(MemoryError):
        make_report(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_out_must_be_a_folder(tmp_path, fast_png):
    (tmp_path / "file").write_text("x")
    doc, summary = build_report(load(write_run(tmp_path / "run")))
    with pytest.raises(UserError, match="exists and is not a folder"):
        write_report(doc, summary, tmp_path / "file")


def test_options_default_to_the_runs_own_target_rule():
    cfg = {"train": {"target_val_acc": 0.95, "target_patience": 5}}
    assert resolve(ReportOptions(), cfg) == (0.95, 5)
    assert resolve(ReportOptions(threshold=0.9, patience=2), cfg) == (0.9, 2)
    assert resolve(ReportOptions(), {"train": {"target_patience": 0}}) == (0.99, 3)
    assert resolve(ReportOptions(), {}) == (0.99, 3)


def test_chosen_phase_axes_are_used(tmp_path, fast_png):
    res = load(write_sweep(tmp_path / "s", n_trials=10))
    doc, _ = build_report(res, ReportOptions(phase_x="model.d_model", phase_y="optim.lr"))
    captions = [f.caption for f in doc.figures()]
    assert "Phase of each trial by model.d_model × optim.lr" in captions


def test_every_searched_parameter_is_in_the_all_trials_table(tmp_path, fast_png):
    res = load(write_sweep(tmp_path / "s", n_trials=10))
    doc, _ = build_report(res)
    section = next(s for s in doc.sections if s.title == "All trials")
    table = next(b for b in section.blocks if hasattr(b, "frame"))
    assert set(res.searched) <= set(table.frame.columns)
    assert {"outcome", "n_collapses", "seed_steps"} <= set(table.frame.columns)
    assert doc.headline.startswith("Fastest: ") and " of 10 trial(s) generalised" in doc.headline


def test_degenerate_importances_print_undetermined_in_the_report(tmp_path, fast_png):
    path = write_sweep(tmp_path / "s", n_trials=16)
    curves = pd.read_parquet(path / "curves.parquet")
    never = sorted(curves["trial_id"].unique())[:12]  # 12 of 16 never generalise
    curves.loc[curves["trial_id"].isin(never), "val_acc"] = 0.01
    curves.to_parquet(path / "curves.parquet")
    doc, _ = build_report(load(path))
    section = next(s for s in doc.sections if s.title == "Hyperparameter importances")
    table = next(b for b in section.blocks if hasattr(b, "frame"))
    assert table.frame["importance"].str.startswith("undetermined (").all()
    assert not any(getattr(b, "name", "") == "importances.png" for b in section.blocks)
