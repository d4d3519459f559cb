"""The report of a real sweep (tests/analysis/real_sweep.py): headline, Kaplan-Meier curves,
seed spread and the collapses section, from runs the project's own trainer produced."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_real_sweep_report_has_headline_km_seeds_and_collapses(real_sweep_report):
    sweep, out = real_sweep_report
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    trials = pd.read_parquet(sweep / "trials.parquet")
    summary = pd.read_csv(out / "summary.csv")
    assert len(trials) == 4 and trials["member_steps_to_target"].notna().any()
    # The headline: best config, steps over seeds, how many generalised and were stopped.
    assert 'id="headline"' in html and md.splitlines()[4].startswith("**")
    head = md.splitlines()[4]
    assert " of 4 trial(s) generalised" in head and "the scheduler stopped" in head
    assert "Kaplan–Meier" in head
    # Kaplan-Meier: the whole sweep and each grid dimension.
    for name in ("km_all.png", "km_0.png", "km_1.png"):
        assert (out / "figures" / name).is_file()
    km_part = html.split("Time to generalise (Kaplan–Meier)</h2>")[1].split("</section>")[0]
    assert "train.batch_size" in km_part and "optim.lr" in km_part
    # Seeds: every member's steps, in the seeds table and the summary.
    seeds_part = html.split("Seeds: every config over its seeds</h2>")[1].split("</section>")[0]
    for members in trials["member_steps_to_target"].dropna():
        by_seed = json.loads(members)
        line = ", ".join(f"{s}: {'never' if v is None else int(v)}" for s, v in by_seed.items())
        assert line in seeds_part
    # A trial ASHA stopped sent no closing report: its 3 seeds still count, named ?1..?3.
    stopped = trials["member_steps_to_target"].isna().sum()
    assert seeds_part.count("?3: ") == stopped
    assert summary["seeds_grokked"].str.endswith("/3").all()
    # Collapses: the section, and the columns in summary.csv.
    assert "## Collapses after generalising" in md and "Collapses after generalising</h2>" in html
    for col in ("n_collapses", "collapse_period", "at_target_share", "first_collapse_step",
                "first_collapse_depth"):
        assert col in summary
    # Versions written by the sweep itself are what the report shows as recorded.
    assert (sweep / "versions.json").is_file() and "Versions recorded with the results" in md
    # Pruned trials are never "confusion".
    pruned = summary[summary["outcome"] == "pruned"]
    assert not pruned["phase"].isin(["confusion", "memorization"]).any()
