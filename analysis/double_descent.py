"""Double descent: a curve of error that falls, rises and falls again. Pure functions.

Epoch-wise double descent is read off one run's val loss (or error) over steps; model-wise
double descent off the final val error of many trials over model size (Nakkiran et al. 2019,
"Deep Double Descent"; Davies et al. 2023 tie it to grokking).

The detector works on log(1 + x), where both steps and model sizes are naturally spaced. With
enough points (>= SMOOTH_MIN_POINTS) the curve is first resampled onto an even log grid, so an
uneven eval schedule weighs every decade alike, and smoothed (a running median against
outliers, then a running mean against noise); shorter curves are used as they are. The bump
must come after a first descent (its first minimum is not the curve's first point), and rise
and then fall by at least `min_rise` on the smoothed curve; by default that is the
largest of 10% of the curve's range, 5% of its largest value (a 3.15 -> 3.25 -> 2.7 wiggle of
a val loss is not double descent) and three times its noise level (estimated from the
differences of the raw curve), which keeps monotone noisy curves from raising false alarms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SMOOTH_MIN_POINTS = 15
GRID_POINTS = 256
REL_MIN_RISE = 0.10
REL_LEVEL = 0.05
NOISE_SIGMAS = 3.0


@dataclass(frozen=True)
class DoubleDescent:
    """A fall-rise-fall in a curve; positions are x values of the input."""

    first_min: float
    peak: float
    second_min: float
    rise: float
    """How far the (smoothed) curve climbs from the first minimum to the peak."""
    fall: float
    """How far it descends from the peak to the second minimum."""


def _running(values: np.ndarray, width: int, reducer) -> np.ndarray:
    """Centred running reduction with a window shrunk at the ends."""
    half = width // 2
    n = values.size
    return np.array([reducer(values[max(0, i - half): min(n, i + half + 1)]) for i in range(n)])


def noise_level(y: np.ndarray) -> float:
    """Robust standard deviation of white noise on a smooth curve (MAD of first differences)."""
    if y.size < 3:
        return 0.0
    d = np.diff(y)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def _prepare(x, y, log_x: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted finite points with repeated x averaged: (x, u = position on the axis, y)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if log_x and x.size and x.min() < 0:
        raise ValueError("x: negative values cannot be placed on a log axis; pass log_x=False")
    ux, inverse = np.unique(x, return_inverse=True)
    uy = np.bincount(inverse, weights=y) / np.bincount(inverse) if x.size else y
    return ux, (np.log1p(ux) if log_x else ux), uy


def smooth_curve(u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample onto an even grid of u and smooth; short curves come back unchanged."""
    if u.size < SMOOTH_MIN_POINTS:
        return u, y
    # A median of 3 over the measured points first: one outlying eval cannot make a bump
    # (the grid below has ~4 points per measured point, so its own median sees only one).
    y = _running(y, 3, np.median)
    grid = np.linspace(u[0], u[-1], min(GRID_POINTS, 4 * u.size))
    yg = np.interp(grid, u, y)
    width = max(3, (grid.size // 25) | 1)  # odd, about 4% of the axis
    yg = _running(yg, 5, np.median)
    return grid, _running(yg, width, np.mean)


def best_bump(ys: np.ndarray) -> tuple[int, int, int, float]:
    """The peak j maximising min(rise, fall) with the lowest point before and after it.

    Returns:
        (i, j, k, score): first minimum, peak, second minimum indices and min(rise, fall).
    """
    n = ys.size
    pre = np.minimum.accumulate(ys)  # lowest value up to each index
    pre_idx = np.array([int(np.argmin(ys[: j + 1])) for j in range(n)])
    post_idx = np.array([j + int(np.argmin(ys[j:])) for j in range(n)])
    score = np.minimum(ys - pre, ys - ys[post_idx])
    score[pre_idx == 0] = -np.inf  # a curve that only rises first has no first descent
    j = int(np.argmax(score))
    return int(pre_idx[j]), j, int(post_idx[j]), float(score[j])


def detect_double_descent(x, y, *, min_rise: float | None = None,
                          log_x: bool = True) -> DoubleDescent | None:
    """Find a second descent in a curve of error or loss `y` over `x`.

    Args:
        x: steps (epoch-wise) or model sizes (model-wise); any order, repeats are averaged.
        y: error or loss at each x (lower is better); NaN points are dropped.
        min_rise: smallest rise and fall, in units of y, that count; None picks the largest of
            10% of the curve's range, 5% of its largest |y| and 3x its noise level.
        log_x: place x on a log(1 + x) axis (right for steps and model sizes).
    Returns:
        DoubleDescent with x positions of the first minimum, peak and second minimum and the
        rise and fall magnitudes, or None when the curve has no second descent.
    """
    xs, u, y0 = _prepare(x, y, log_x)
    if xs.size < 4:
        return None
    grid, ys = smooth_curve(u, y0)
    if min_rise is None:
        spread = float(ys.max() - ys.min())
        noise = noise_level(y0) if y0.size >= SMOOTH_MIN_POINTS else 0.0
        level = float(np.abs(ys).max())
        min_rise = max(REL_MIN_RISE * spread, REL_LEVEL * level, NOISE_SIGMAS * noise)
    i, j, k, score = best_bump(ys)
    if not (i < j < k) or score <= 0 or score < min_rise:
        return None

    def at(idx: int) -> float:  # the input x nearest a grid position
        return float(xs[int(np.argmin(np.abs(u - grid[idx])))])

    return DoubleDescent(first_min=at(i), peak=at(j), second_min=at(k),
                         rise=float(ys[j] - ys[i]), fall=float(ys[j] - ys[k]))


def model_wise_double_descent(trials, *, size_key: str = "model.d_model",
                              acc_key: str = "final_val_acc", min_rise: float | None = None):
    """Model-wise double descent: final val error (1 - accuracy) over model size across trials.

    Trials of one size are summarised by their median error, so a sweep that also varies other
    hyperparameters compares typical, not lucky, trials of each size.

    Args:
        trials: a DataFrame with one row per trial holding `size_key` and `acc_key`.
        size_key: the model-size column (model.d_model, or a parameter count column).
        acc_key: the final accuracy column.
        min_rise: as for detect_double_descent.
    Returns:
        (points, found): points is a DataFrame (size, error, trials) sorted by size, empty
        when the columns are missing; found is a DoubleDescent or None (always None with
        fewer than four sizes).
    """
    if size_key not in trials or acc_key not in trials:
        return pd.DataFrame(columns=["size", "error", "trials"]), None
    frame = pd.DataFrame({"size": pd.to_numeric(trials[size_key], errors="coerce"),
                          "error": 1.0 - pd.to_numeric(trials[acc_key], errors="coerce")}).dropna()
    points = (frame.groupby("size")["error"].agg(["median", "size"])
              .rename(columns={"median": "error", "size": "trials"}).reset_index())
    if len(points) < 4:
        return points, None
    return points, detect_double_descent(points["size"], points["error"], min_rise=min_rise)
