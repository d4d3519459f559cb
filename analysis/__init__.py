"""groktune analysis: load saved results, detect grokking events, phases and double descent,
and write the grokking-speed report. Reads only saved results; never imports the trainer.

    from analysis import load, detect_grokking, make_report
    results = load("results/modmul_sweep")
    make_report("results/modmul_sweep", "report/")
"""

from analysis.double_descent import DoubleDescent, detect_double_descent, model_wise_double_descent
from analysis.grokking import PHASES, GrokEvents, classify_phase, detect_grokking, sustained_onset
from analysis.headline import headline
from analysis.importance import Importances, param_importances
from analysis.load import Results, load
from analysis.report import ReportOptions, build_report, make_report, write_report
from analysis.seeds import config_table, seed_units
from analysis.summary import OUTCOMES, rank_trials, task_table, trial_summary
from analysis.survival import Survival, kaplan_meier

__all__ = [
    "DoubleDescent",
    "GrokEvents",
    "OUTCOMES",
    "Importances",
    "PHASES",
    "ReportOptions",
    "Results",
    "Survival",
    "build_report",
    "classify_phase",
    "config_table",
    "detect_double_descent",
    "detect_grokking",
    "headline",
    "kaplan_meier",
    "load",
    "make_report",
    "model_wise_double_descent",
    "param_importances",
    "rank_trials",
    "seed_units",
    "sustained_onset",
    "task_table",
    "trial_summary",
    "write_report",
]
