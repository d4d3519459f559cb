"""The sections of the grokking-speed report, each built from the analysed results.

Every builder takes a Context (results, per-trial summary, options) and returns a Section, or
None when the section does not apply to these results (a phase diagram with fewer than two
varying hyperparameters, parameter norms without a param_norm column, a Pareto front of one
objective, probes nobody asked for): the report leaves it out rather than printing a paragraph
about what is not there. A section that applies but whose data is missing says so in a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from analysis import environment, figures, sections_speed, speed_figures
from analysis.document import Code, Figure, Section, Table, Text
from analysis.double_descent import detect_double_descent, model_wise_double_descent
from analysis.grokking import detect_grokking
from analysis.importance import Importances
from analysis.pareto import pareto_section
from analysis.probes import probes_section
from analysis.summary import best_and_typical, log_scaled, member_curves, task_table, varying

if TYPE_CHECKING:
    from analysis.load import Results


@dataclass
class Context:
    """What every section builder reads: the results, the per-trial summary and the options."""

    results: Results
    summary: pd.DataFrame
    threshold: float
    patience: int
    delay_boundary: float
    pair: tuple[str, str] | None
    importances: Importances
    size_key: str = "model.d_model"
    max_tasks: int = 6
    tasks: list[str] = field(default_factory=list)

    def logs(self) -> dict[str, bool | str]:
        """Searched key -> its axis: True for a log axis (from the search space, else the
        values), "category" for a choice parameter (e.g. batch_size with 0 = full batch)."""
        space = self.results.space or {}
        return {k: "category" if isinstance(space.get(k), dict) and "choice" in space[k]
                else log_scaled(self.summary[k], space.get(k))
                for k in self.results.searched if k in self.summary}

    def events(self, trial_id: str):
        """The trial's GrokEvents under the report's rule (for its collapses)."""
        c = self.curve(trial_id)
        return detect_grokking(c["step"], c["train_acc"], c["val_acc"], threshold=self.threshold,
                               patience=self.patience, delay_boundary=self.delay_boundary)

    def seed_siblings(self, trial_id: str) -> list[pd.DataFrame]:
        """Curves of the other seeds of the same config: a population trial's member curves,
        or the other trials of the same searched values (search.seeds)."""
        members = member_curves(self.curve(trial_id))
        if members:
            return list(members.values())
        keys = [k for k in self.results.searched if k in self.summary and k != "seed"]
        if not keys or "seed" not in self.summary:
            return []
        row = self.row(trial_id)
        same = (self.summary[keys].astype(str) == row[keys].astype(str)).all(axis=1)
        others = self.summary.loc[same & (self.summary["trial_id"] != trial_id), "trial_id"]
        return [self.curve(t) for t in others if len(self.curve(t))]

    def curve(self, trial_id: str) -> pd.DataFrame:
        curves = self.results.curves
        return curves[curves["trial_id"] == trial_id]

    def row(self, trial_id: str) -> pd.Series:
        return self.summary[self.summary["trial_id"] == trial_id].iloc[0]


def slug(task: str, index: int) -> str:
    """A file-name-safe tag for a task, numbered so "x*y" and "x+y" stay apart."""
    return f"t{index}_" + (re.sub(r"[^A-Za-z0-9]+", "_", task).strip("_") or "task")


def overview(ctx: Context) -> Section:
    s = ctx.summary
    statuses = ", ".join(f"{k} {v}" for k, v in s["status"].value_counts().items())
    text = (f"{len(s)} trial(s) over {s['task'].nunique()} task(s); status: {statuses}. "
            f"An event is the first step an accuracy reached {ctx.threshold:g} and held it for "
            f"{ctx.patience} evals in a row; nothing later moves it (a later fall is a collapse). "
            f"A delay of {ctx.delay_boundary:g} steps or more between memorising and generalising "
            "is grokking, a shorter one comprehension (Liu et al. 2022). A trial that did not "
            "generalise is kept apart by how it ended: pruned (stopped by the scheduler before a "
            "verdict), budget, diverged, error; only one that used its budget can be in the "
            "memorization or confusion phase. Medians of steps are Kaplan–Meier medians with "
            "runs that never got there counted as censored. Steps are optimizer steps.")
    blocks = [Text(text), Table(task_table(s, ctx.results.searched), "Per task")]
    skipped = ctx.results.meta.get("skipped") or []
    if skipped:
        blocks.append(Text(f"{len(skipped)} run(s) could not be read and were left out: "
                           + "; ".join(skipped[:5])))
    return Section("Summary per task", blocks)


def learning_curves(ctx: Context) -> Section:
    blocks = []
    for i, task in enumerate(ctx.tasks):
        for role, tid in best_and_typical(ctx.summary[ctx.summary["task"] == task]).items():
            row = ctx.row(tid)
            events = {k: row.get(k) for k in ("memorized_step", "generalized_step", "dd_peak")}
            title = f"{task}: {role} trial {tid} ({row['phase']})"
            seed_steps = row.get("seed_steps")
            png = figures.learning_curves(
                ctx.curve(tid), events, title, ctx.threshold, collapses=ctx.events(tid).collapses,
                band=ctx.seed_siblings(tid), seed_steps=seed_steps if isinstance(seed_steps, str) else None)
            blocks.append(Figure(f"curves_{slug(task, i)}_{role}.png", png, title))
    if not blocks:
        blocks.append(Text("No trial has curves to draw."))
    n_tasks = ctx.summary["task"].nunique()
    if n_tasks > len(ctx.tasks):
        blocks.append(Text(f"Curves are drawn for the first {len(ctx.tasks)} of {n_tasks} tasks."))
    blocks.append(Text("The typical trial is the median-ranked one among trials that ran to a "
                       "verdict (generalised or used their budget), never one the scheduler "
                       "stopped. Red shading: collapses after generalising; a blue band: the "
                       "seeds of the same config (min–max; a population trial's own members); a "
                       "population trial's line is its members' median, with each seed's steps "
                       "written on it."))
    return Section("Learning curves (best and typical trials)", blocks)


def steps_over_params(ctx: Context) -> Section | None:
    keys = varying(ctx.summary, ctx.results.searched)
    if not keys:  # nothing was searched (or nothing varied): no map to draw
        return None
    blocks = []
    if ctx.pair:
        x, y = ctx.pair
        blocks.append(Figure("steps_map.png", figures.steps_map(ctx.summary, x, y, ctx.logs()),
                             f"Steps to generalise over {x} × {y}"))
    blocks.append(Figure("steps_by_param.png", speed_figures.steps_by_param(ctx.summary, keys, ctx.logs()),
                         "Steps to generalise against each searched hyperparameter"))
    return Section("Steps to generalise over the searched hyperparameters", blocks)


def importances(ctx: Context) -> Section:
    imp = ctx.importances
    blocks = [Text(imp.note)]
    if imp.undetermined:
        blocks.append(Table(pd.DataFrame({"parameter": list(imp.parameters),
                                          "importance": f"undetermined ({imp.undetermined})"})))
    if imp.values:
        blocks.append(Figure("importances.png",
                             speed_figures.importance_bars(imp.values, imp.evaluator, imp.spread),
                             f"Hyperparameter importances ({imp.evaluator})"))
        spread = [imp.spread.get(k) for k in imp.values]
        blocks.append(Table(pd.DataFrame({
            "parameter": list(imp.values), "importance": list(imp.values.values()),
            "bootstrap 2.5–97.5 %": [f"{a:.2f}–{b:.2f}" if a is not None else "–"
                                     for a, b in (x or (None, None) for x in spread)]})))
    if imp.warnings:
        blocks.append(Text("The evaluator warned: " + " | ".join(imp.warnings)))
    return Section("Hyperparameter importances", blocks)


def phase_diagram(ctx: Context) -> Section | None:
    if not ctx.pair:  # fewer than two hyperparameters vary across the trials
        return None
    x, y = ctx.pair
    counts = ctx.summary["phase"].value_counts()
    return Section("Phase diagram", [
        Text("Phases: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "."),
        Figure("phase_diagram.png", figures.phase_diagram(ctx.summary, x, y, ctx.logs()),
               f"Phase of each trial by {x} × {y}")])


def double_descent(ctx: Context) -> Section:
    s = ctx.summary
    found = s[s["dd_peak"].notna()] if "dd_peak" in s else s.iloc[0:0]
    blocks = [Text(f"Epoch-wise (val loss over steps): {len(found)} of {len(s)} trial(s) show a "
                   "second descent.")]
    points, model_dd = model_wise_double_descent(s, size_key=ctx.size_key)
    if len(points) >= 4:
        verdict = ("no second descent" if model_dd is None else
                   f"a peak at {ctx.size_key}={model_dd.peak:g} between minima at "
                   f"{model_dd.first_min:g} and {model_dd.second_min:g}")
        blocks.append(Text(f"Model-wise (median final val error over {ctx.size_key}, "
                           f"{len(points)} sizes): {verdict}."))
    else:
        blocks.append(Text(f"Model-wise: needs at least 4 values of {ctx.size_key}; "
                           f"these results have {len(points)}."))
        points = points.iloc[0:0]
    example, example_dd, label = None, None, ""
    if len(found):
        tid = found.sort_values("dd_rise", ascending=False)["trial_id"].iloc[0]
        example = ctx.curve(tid)
        example_dd = detect_double_descent(example["step"], example["val_loss"])
        label = f"trial {tid} (largest epoch-wise bump)"
    if example is not None or not points.empty:
        png = figures.double_descent_plot(points, model_dd, example, example_dd, ctx.size_key, label)
        blocks.append(Figure("double_descent.png", png, "Double descent: model-wise and epoch-wise"))
    if len(found):
        cols = ["trial_id", "task", "dd_first_min", "dd_peak", "dd_second_min", "dd_rise"]
        blocks.append(Table(found[cols].head(20), "Trials with an epoch-wise second descent (top 20)"))
    return Section("Double descent", blocks)


def norms(ctx: Context) -> Section | None:
    blocks = []
    if "param_norm" not in ctx.results.curves:
        return None
    for i, task in enumerate(ctx.tasks):
        picks = best_and_typical(ctx.summary[ctx.summary["task"] == task])
        curves = {f"{role} ({tid})": ctx.curve(tid) for role, tid in picks.items()}
        if curves:
            blocks.append(Figure(f"norms_{slug(task, i)}.png", figures.norm_curves(curves, task),
                                 f"{task}: val accuracy beside the parameter norm"))
    return Section("Parameter norms beside val accuracy", blocks)


def all_trials(ctx: Context, limit: int = 200) -> Section:
    # Every searched parameter is shown (the table scrolls sideways); other dotted config
    # columns and the double-descent details stay in summary.csv.
    cols = [c for c in ctx.summary.columns if not c.startswith("dd_") and c != "evals"]
    shown = [c for c in cols if "." not in c or c in ctx.results.searched]
    note = Text(f"The first {limit} of {len(ctx.summary)} trials; summary.csv has all, with "
                "every column.") if len(ctx.summary) > limit else Text("summary.csv has every column.")
    return Section("All trials", [note, Table(ctx.summary[shown].head(limit))])


def what_was_run(ctx: Context) -> Section:
    res = ctx.results
    recorded = environment.recorded_versions(res)
    blocks = [Text(f"Results: {res.kind} at {res.path} ({', '.join(res.meta.get('files', []))})."),
              Table(pd.DataFrame(list(environment.dates(res).items()), columns=["when", "date"])),
              Table(environment.hardware_table(res.trials), "Hardware (from the trials)")]
    if recorded:
        blocks.append(Table(pd.DataFrame(list(recorded.items()), columns=["package", "version"]),
                            "Versions recorded with the results"))
    else:
        blocks.append(Text("The results recorded no package versions."))
    blocks.append(Table(pd.DataFrame(list(environment.report_versions().items()),
                                     columns=["package", "version"]),
                        "Versions of the environment that wrote this report"))
    if res.kind == "runs":
        first = res.trials["trial_id"].iloc[0]
        blocks.append(Text(f"The config of run {first}; the runs differ in: "
                           f"{', '.join(res.searched) or 'nothing'}."))
    blocks.append(Code(yaml.safe_dump(res.config, sort_keys=False) if res.config
                       else "# no experiment config found with the results\n"))
    return Section("What was run", blocks)


def probes(ctx: Context) -> Section | None:
    """Learning-dynamics probes (analysis.probes); None when no trial recorded any."""
    return probes_section(ctx)


BUILDERS = (overview, sections_speed.survival, sections_speed.seeds, pareto_section, learning_curves,
            sections_speed.collapses, steps_over_params, importances, phase_diagram,
            double_descent, norms, probes, all_trials, what_was_run)
