"""orchestrator/sweep/console.py: the sweep's progress line, and a sweep's console as a person sees it.

Fast tier: the pure line formatter and ETA maths; the printer's throttling with an explicit clock.
Slow tier: a real TPE + ASHA sweep as a subprocess (the session's, tests/shared_sweep.py; stdout
not a TTY) prints at most 30 lines while sweeping, none of them a warning or a traceback, then
the final summary.
"""

import io
import pickle
import re
import sys

import pytest

from orchestrator.sweep.console import (
    PLAIN_EVERY_S,
    PLAIN_IDLE_S,
    LinePrinter,
    eta_seconds,
    fmt_duration,
    header_lines,
    progress_line,
)
from tests import shared_sweep


# --- fast: the pure formatter ----------------------------------------------------------------

def test_eta_is_elapsed_per_finished_trial_times_remaining():
    assert eta_seconds(done_here=4, remaining=12, elapsed=20.0) == pytest.approx(60.0)
    assert eta_seconds(done_here=0, remaining=12, elapsed=20.0) is None  # no pace yet
    assert eta_seconds(done_here=5, remaining=0, elapsed=20.0) == 0.0


def test_durations_read_as_seconds_minutes_hours():
    assert [fmt_duration(x) for x in (0, 42.4, 185, 7620, None, -1)] == ["0s", "42s", "3m05s", "2h07m", "?", "?"]


def test_progress_line_counts_statuses_best_and_times():
    line = progress_line({"grokked": 4, "pruned": 3, "error": 1, "budget": 0}, running=2, pending=6,
                         best=840.0, elapsed=31.0, eta=40.0)
    assert line == ("trials 8/16 done, 2 running, 6 pending | grokked 4 pruned 3 error 1"
                    " | best 840 steps | 31s, ETA 40s")
    assert "\n" not in line and "\r" not in line


def test_progress_line_before_any_result():
    line = progress_line({}, running=0, pending=16, best=None, elapsed=0.2, eta=None)
    assert line == "trials 0/16 done, 0 running, 16 pending | no results yet | best - | 0s, ETA ?"


def test_header_names_experiment_trials_resources_and_results(tmp_path):
    lines = header_lines("demo", 16, {"cpu": 1, "gpu": 0}, {"CPU": 2.0, "memory": 1e9}, tmp_path)
    assert lines == ["groktune sweep demo: 16 trials, 1 CPU / 0 GPU per trial on 2 CPUs / 0 GPUs",
                     f"results -> {tmp_path}",
                     f"follow live: tensorboard --logdir {tmp_path / 'tensorboard'}   or   groktune status {tmp_path}"]


# --- fast: when lines reach the terminal -------------------------------------------------------

def test_plain_output_prints_only_changed_counts_at_most_every_period():
    out = io.StringIO()
    printer = LinePrinter(out, is_tty=False)
    a = progress_line({}, 1, 3, None, 1.0, None)
    b = progress_line({"pruned": 1}, 1, 2, None, 2.0, None)
    assert printer.update(a, now=0.0)
    assert not printer.update(b, now=1.0)  # changed, but within the period
    assert not printer.update(progress_line({}, 1, 3, None, 9.0, None), now=PLAIN_EVERY_S + 1)  # only time moved
    assert printer.update(b, now=PLAIN_EVERY_S + 1)
    assert printer.update(b, now=PLAIN_EVERY_S + 2 + PLAIN_IDLE_S)  # a sign of life after a long quiet
    assert out.getvalue().splitlines() == [a, b, b]


def test_tty_output_rewrites_one_line_in_place_and_messages_do_not_break_it():
    out = io.StringIO()
    printer = LinePrinter(out, is_tty=True)
    printer.update("trials 0/2 long line", now=0.0)
    printer.update("trials 1/2", now=1.0)
    printer.message("groktune: trial t1 errored")
    printer.update("trials 2/2", now=1.1)  # redrawn at once after a message
    printer.close()
    text = out.getvalue()
    assert text.count("\n") == 2  # the message and the closing newline
    assert "\rtrials 1/2" + " " * len(" long line") in text  # the shorter line blanks the longer one's tail
    assert text.endswith("\rtrials 2/2\n")


# --- fast: flags and the callback's pickling -------------------------------------------------

def test_flags_pick_the_verbosity():
    from orchestrator.cli.main import build_parser, main
    from orchestrator.cli.sweep import verbosity
    from orchestrator.sweep.console import NORMAL, QUIET, VERBOSE

    parse = build_parser().parse_args
    assert [verbosity(parse(["sweep", "c.yaml", *flags])) for flags in ([], ["-v"], ["-vv"], ["--quiet"])] == \
        [NORMAL, VERBOSE, VERBOSE + 1, QUIET]
    assert main(["sweep", "c.yaml", "-v", "--quiet"]) == 2  # one or the other


def test_progress_callback_pickles_without_its_stream():
    from orchestrator.sweep.callbacks import Progress

    restored = pickle.loads(pickle.dumps(Progress(16, stream=sys.stdout)))  # as into tuner.pkl
    assert restored.total == 16 and restored.stream is None and restored.printer.stream is sys.stdout


# --- slow: a real sweep's whole console (the session's TPE + ASHA sweep, tests/shared_sweep.py) ---

@pytest.mark.slow
def test_a_sweep_console_fits_in_30_lines_without_warnings(tpe_asha_sweep):
    n, exp = shared_sweep.TRIALS, tpe_asha_sweep.exp
    stdout, stderr = tpe_asha_sweep.stdout, tpe_asha_sweep.stderr
    output = stdout + stderr
    assert tpe_asha_sweep.returncode == 0, output[-3000:]
    lines = stdout.splitlines()
    summary_at = next(i for i, line in enumerate(lines) if re.match(r"\d+ trials: ", line))
    sweeping = lines[:summary_at] + stderr.splitlines()  # stderr: everything is "while sweeping"
    assert len(sweeping) <= 30, "\n".join(sweeping)
    assert not [line for line in sweeping if "warn" in line.lower() or "Traceback" in line], "\n".join(sweeping)
    assert lines[0].startswith(f"groktune sweep {shared_sweep.NAME}: {n} trials, 1 CPU / 0 GPU per trial on ")
    assert lines[1] == f"results -> {exp}"
    progress = [line for line in sweeping if line.startswith("trials ")]
    assert progress and progress[-1].startswith(f"trials {n}/{n} done, 0 running, 0 pending")
    assert lines[summary_at].startswith(f"{n} trials: ") and lines[-1].startswith("sweep took ")
