"""What `groktune sweep` prints while it sweeps: a header, one progress line, nothing from Ray.

    print("\\n".join(header_lines("demo_sweep", 16, {"cpu": 1, "gpu": 0}, {"CPU": 2.0}, path)))
    printer = LinePrinter(sys.stdout)
    printer.update(progress_line(done, running=2, pending=5, best=840, elapsed=31.0, eta=40.0))

The line is pure (counts in, text out: `progress_line`, `eta_seconds`); LinePrinter decides
when it reaches the terminal: rewritten in place with \\r on a TTY (at most every
TTY_EVERY_S), else one plain line when the counts changed and PLAIN_EVERY_S passed (or
PLAIN_IDLE_S passed without change), so a log of a long sweep stays short. The counts come
from the Tune callback orchestrator.sweep.callbacks.Progress. `quiet_ray` mutes Ray's and
Tune's own output for a normal run; `-v` keeps it.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

from groktune.layout import FINAL_STATUSES, TENSORBOARD

# Verbosity of `groktune sweep`: --quiet, default, -v (Ray's tables), -vv (Ray's trial details).
QUIET, NORMAL, VERBOSE = 0, 1, 2
TTY_EVERY_S = 0.5
PLAIN_EVERY_S = 5.0
PLAIN_IDLE_S = 60.0


def fmt_duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h07m`; `?` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta_seconds(done_here: int, remaining: int, elapsed: float) -> float | None:
    """Time left, at the pace this driver has finished trials so far.

    Args:
        done_here: trials finished since this driver started (not those a resume restored).
        remaining: trials not finished yet (running or pending).
        elapsed: seconds since this driver started.
    Returns:
        Seconds, 0 when nothing remains, None before the first trial finished.
    """
    if remaining <= 0:
        return 0.0
    if done_here <= 0 or elapsed <= 0:
        return None
    return elapsed / done_here * remaining


def progress_line(done: dict[str, int], running: int, pending: int, best: float | None,
                  elapsed: float, eta: float | None) -> str:
    """One line: trial counts, final statuses, best steps to target, elapsed and ETA.

    Args:
        done: {final status: count} of finished trials (keys from FINAL_STATUSES; others ignored).
        running: trials training now (paused ones included).
        pending: trials not started yet (including those the searcher has not sampled).
        best: fewest steps to target among grokked trials, None when none grokked.
        elapsed: seconds since the sweep started.
        eta: seconds left (eta_seconds), None when unknown.
    Returns:
        e.g. `trials 9/16 done, 2 running, 5 pending | grokked 4 pruned 5 | best 840 steps | 31s, ETA 40s`.
    """
    finished = sum(done.get(s, 0) for s in FINAL_STATUSES)
    total = finished + running + pending
    outcomes = " ".join(f"{s} {done[s]}" for s in FINAL_STATUSES if done.get(s))
    best_text = f"best {best:.0f} steps" if best is not None else "best -"
    return (f"trials {finished}/{total} done, {running} running, {pending} pending"
            f" | {outcomes or 'no results yet'} | {best_text}"
            f" | {fmt_duration(elapsed)}, ETA {fmt_duration(eta)}")


def header_lines(experiment: str, trials: int, per_trial: dict, cluster: dict, path: Path) -> list[str]:
    """The sweep's header: experiment, trial count, resources per trial and of the cluster, results.

    Args:
        experiment: the experiment's name.
        trials: trials to run (search.num_samples after seeds/populations).
        per_trial: {"cpu": n, "gpu": n} each trial asks for.
        cluster: Ray's cluster_resources() ({"CPU": n, "GPU": n, ...}).
        path: the experiment folder.
    Returns:
        Three lines; the last says how to follow the sweep while it runs.
    """
    cpus, gpus = cluster.get("CPU", 0), cluster.get("GPU", 0)
    return [
        f"groktune sweep {experiment}: {trials} trials, {per_trial['cpu']:g} CPU / {per_trial['gpu']:g} GPU "
        f"per trial on {cpus:g} CPUs / {gpus:g} GPUs",
        f"results -> {path}",
        f"follow live: tensorboard --logdir {path / TENSORBOARD}   or   groktune status {path}",
    ]


class LinePrinter:
    """Writes successive progress lines to `stream`, in place on a TTY, sparsely otherwise."""

    def __init__(self, stream: TextIO, is_tty: bool | None = None):
        self.stream = stream
        self.tty = stream.isatty() if is_tty is None else is_tty
        self.shown = ""  # the last line written
        self.shown_at = -1e18
        self.width = 0  # characters of the in-place line, to blank a shorter successor

    def due(self, now: float | None = None) -> bool:
        """Whether an update could be written now (callers skip counting when not)."""
        now = time.monotonic() if now is None else now
        return now - self.shown_at >= (TTY_EVERY_S if self.tty else PLAIN_EVERY_S)

    def update(self, line: str, now: float | None = None, force: bool = False) -> bool:
        """Show `line` if due (or `force`) and, off a TTY, if it says something new; True if written."""
        now = time.monotonic() if now is None else now
        if not force and not self.due(now):
            return False
        # Off a TTY only the counts matter: the elapsed/ETA tail alone is no reason for a new line.
        same = line.rsplit(" | ", 1)[0] == self.shown.rsplit(" | ", 1)[0]
        if not self.tty and same and not force and now - self.shown_at < PLAIN_IDLE_S:
            return False
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.shown, self.shown_at = line, now
        return True

    def message(self, text: str) -> None:
        """A line of its own (an errored trial) that does not break the in-place line."""
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
            self.shown_at = -1e18  # redraw the progress line at the next update
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the in-place line so what follows starts on a fresh line."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


# Below VERBOSE: RAY_AIR_NEW_OUTPUT=0 picks Tune's legacy output engine, which at verbose=0
# prints nothing (the new engine prints its "Configuration for experiment" box and a
# TensorBoard hint at any verbosity). The snapshot warning fires whenever a trial saved
# num_to_keep checkpoints between two experiment snapshots, which every 1-5 s trial of a small
# sweep does; it asks for nothing a user can act on, so a normal run does not show it.
_QUIET_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
_RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air")


@contextmanager
def quiet_ray(verbosity: int) -> Iterator[None]:
    """Below VERBOSE, inside the block: Tune silent, Ray's driver logging at ERROR; put back after.

    Enter after ray.init, which sets the "ray" logger's level itself.
    """
    if verbosity >= VERBOSE:
        yield
        return
    env = {k: os.environ.get(k) for k in _QUIET_ENV}
    levels = {name: logging.getLogger(name).level for name in _RAY_LOGGERS}
    os.environ.update(_QUIET_ENV)
    for name in _RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


__all__ = ["NORMAL", "QUIET", "VERBOSE", "LinePrinter", "eta_seconds", "fmt_duration", "header_lines",
           "progress_line", "quiet_ray"]
