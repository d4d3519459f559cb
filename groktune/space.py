"""Search spaces: the `search.space` mapping parsed into typed distributions, checked, sampled.

    space:
      optim.lr: {loguniform: [1.0e-4, 1.0e-2]}     # log-uniform on [low, high]
      optim.weight_decay: {uniform: [0.0, 2.0]}    # uniform on [low, high]
      model.d_model: {quniform: [32, 128, 32]}     # uniform, snapped to multiples of q
      optim.eps: {qloguniform: [1.0e-9, 1.0e-6, 1.0e-9]}
      train.warmup_steps: {randint: [0, 100]}      # integers in [low, high)
      train.batch_size: {choice: [64, 128]}        # one of the values (TPE models it)
      task.op: {grid: ["x+y", "x*y"]}              # every value (random/grid/pbt algorithms)
      optim.lr:                                     # a range per value of another searched key
        loguniform_per: {optim.name: {adamw: [1.0e-3, 1.0e-1], lion: [1.0e-5, 1.0e-3]}}

A `loguniform_per` / `uniform_per` key is sampled as its position u in [0, 1] (what the searcher
and Ray see, and what PBT perturbs) and resolved to the range of the trial's value of the other
key by `snap_values` (log: low * (high / low) ** u), so every searcher can use it and TPE learns
the position jointly with the choice. The other key must be a choice or grid in the same space,
with a range for each of its values. The config, trials.parquet and the report hold the resolved
value; the Optuna study holds u.

The space is parsed once: `parse_space` turns the mapping into typed distributions (`Dist`, one
per key, in YAML order) and checks them; SearchConfig.validate calls it and keeps the result
(`SearchConfig.params`), which every consumer reads (Ray's domains in
orchestrator.search.ray_space, the grid, the trial configs, the tables, the status display), and
the report parses what a finished sweep recorded (its experiment.yaml) with the same function.

Pure functions, no Ray, no torch, none of our other packages (analysis reads it too);
orchestrator.search.space checks a parsed space against the experiment config.
Errors are ValueError("space.KEY: ...") one-liners; SearchConfig.validate's caller prefixes
"search.".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


CONTINUOUS = ("loguniform", "uniform", "quniform", "qloguniform", "randint")
DISCRETE = ("choice", "grid")
PER_VALUE = ("loguniform_per", "uniform_per")
DISTRIBUTIONS = CONTINUOUS + DISCRETE + PER_VALUE
LOG = ("loguniform", "qloguniform", "loguniform_per")
# Keys whose every value must be > 0, whatever the distribution (a clearer message than the
# generic config check gives).
POSITIVE_KEYS = ("optim.lr",)
MAX_STEPS_OF_Q = 1e12
"""Largest |bound| / q of a quantised distribution."""
MAX_VALUES = 10_000
"""Values one choice/grid may list (a grid's size multiplies the trials)."""


@dataclass(frozen=True)
class Dist:
    """One parsed distribution: kind in DISTRIBUTIONS; low/high/q for ranges, values for lists;
    for PER_VALUE kinds, `given` (the other key) and `ranges` ((value, low, high) per value)."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    q: float = 0.0
    values: tuple = ()
    given: str = ""
    ranges: tuple = ()

    @property
    def log(self) -> bool:
        """Sampled on a log scale (loguniform, qloguniform, loguniform_per)."""
        return self.kind in LOG

    @property
    def discrete(self) -> bool:
        """A list of values (choice, grid) rather than a range."""
        return self.kind in DISCRETE

    def range_for(self, value: Any) -> tuple[float, float]:
        """(low, high) of a PER_VALUE distribution when the other key is `value`."""
        for v, low, high in self.ranges:
            if v == value:
                return low, high
        raise KeyError(value)


def parse_dist(key: str, spec: Any) -> Dist:
    """`{loguniform: [1e-4, 1e-2]}` -> Dist; ValueError('space.KEY: ...') on anything else."""
    where = f"space.{key_text(key)}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(
            f"{where}: got {short(spec)}, expected one mapping such as {{loguniform: [1.0e-4, 1.0e-2]}}; "
            f"distributions: {', '.join(DISTRIBUTIONS)}"
        )
    (kind, args), = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"{where}: unknown distribution {short(kind)}; allowed: {', '.join(DISTRIBUTIONS)}")
    where = f"{where}.{kind}"  # errors in the arguments name the distribution too
    if kind in PER_VALUE:
        return _parse_per_value(key, kind, args)
    if kind in DISCRETE:
        if not isinstance(args, (list, tuple)) or not args:
            raise ValueError(f"{where}: needs a non-empty list of values, got {short(args)}")
        if len(args) > MAX_VALUES:
            raise ValueError(f"{where}: {len(args)} values, at most {MAX_VALUES} allowed")
        return Dist(kind, values=tuple(args))
    want = 3 if kind.startswith("q") else 2
    names = "[low, high, q]" if want == 3 else "[low, high]"
    if (
        not isinstance(args, (list, tuple))
        or len(args) != want
        or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    ):
        raise ValueError(f"{where}: needs {names} as numbers, got {short(args)}")
    if not all(math.isfinite(a) and abs(a) < 1e300 for a in args):
        raise ValueError(f"{where}: bounds must be finite, got {short(list(args))}")
    low, high = float(args[0]), float(args[1])
    q = float(args[2]) if want == 3 else 0.0
    if low >= high:
        raise ValueError(f"{where}: low {args[0]:g} >= high {args[1]:g}")
    if kind in LOG and low <= 0:
        raise ValueError(f"{where}: needs low > 0, got {args[0]:g}")
    if want == 3 and q <= 0:
        raise ValueError(f"{where}: q must be > 0, got {args[2]:g}")
    if want == 3 and max(abs(low), abs(high)) / q > MAX_STEPS_OF_Q:
        # snap() divides by q: a tiny q would overflow (and no search needs 1e12 levels).
        raise ValueError(f"{where}: q {args[2]:g} is too small for bounds up to {max(abs(low), abs(high)):g} "
                         f"(at most {MAX_STEPS_OF_Q:.0e} multiples of q)")
    if kind == "randint" and not all(float(a).is_integer() for a in args):
        raise ValueError(f"{where}: needs integer bounds, got {list(args)}")
    return Dist(kind, low=low, high=high, q=q)


def _parse_per_value(key: str, kind: str, args: Any) -> Dist:
    """`{optim.name: {adamw: [1e-3, 1e-1], lion: [1e-5, 1e-3]}}` -> Dist(kind, given=..., ranges=...)."""
    where = f"space.{key_text(key)}.{kind}"
    if not isinstance(args, dict) or len(args) != 1 or not isinstance(next(iter(args)), str):
        raise ValueError(f"{where}: needs {{OTHER_KEY: {{VALUE: [low, high], ...}}}}, got {short(args)}")
    (given, table), = args.items()
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{where}.{key_text(given)}: needs a range [low, high] per value, got {short(table)}")
    ranges = []
    for value, bounds in table.items():
        # the same checks as a plain range; errors name space.KEY.KIND.OTHER_KEY.VALUE.RANGE_KIND
        r = parse_dist(f"{key}.{kind}.{given}.{value}", {kind.removesuffix("_per"): bounds})
        ranges.append((value, r.low, r.high))
    return Dist(kind, given=given, ranges=tuple(ranges))


def parse_space(space: dict) -> dict[str, Dist]:
    """The `search.space` mapping as typed distributions, checked (no config needed): the keys keep
    their YAML order. Raises the first one-line ValueError("space.KEY: ...")."""
    dists = {key: parse_dist(key, spec) for key, spec in space.items()}
    for key, dist in dists.items():
        if key in POSITIVE_KEYS and candidates(dist) and min(_numeric(candidates(dist))) <= 0:
            raise ValueError(f"space.{key}.{dist.kind}: every value must be > 0, got a bound or value {min(_numeric(candidates(dist))):g}")
        if dist.kind in PER_VALUE:
            _check_given(key, dist, dists)
    return dists


def _check_given(key: str, dist: Dist, dists: dict[str, Dist]) -> None:
    """A PER_VALUE key's other key is a choice or grid of the same space with a range for each value."""
    where = f"space.{key_text(key)}.{dist.kind}.{key_text(dist.given)}"
    other = dists.get(dist.given)
    if other is None or other.kind not in DISCRETE:
        got = "not in the space" if other is None else f"a {other.kind}"
        raise ValueError(f"{where}: must be a choice or grid key of the same search.space, but it is {got}")
    have = [v for v, _, _ in dist.ranges]
    missing = [v for v in other.values if v not in have]
    extra = [v for v in have if v not in other.values]
    if missing:
        raise ValueError(f"{where}: no range for {short(missing[0])}; give one for each value of {dist.given}: "
                         f"{', '.join(map(str, other.values))}")
    if extra:
        raise ValueError(f"{where}: {short(extra[0])} is not a value of {dist.given} "
                         f"({', '.join(map(str, other.values))})")


def key_text(key: Any) -> str:
    """A space key as it can appear in a one-line message (orchestrator.search.space too)."""
    text = str(key)
    return text if text.isprintable() and len(text) <= 80 else short(text)


def short(value: Any) -> str:
    """repr(value) on one line of at most 80 characters, for a one-line message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def candidates(dist: Dist) -> list:
    """The values worth checking against the config: the bounds, or every listed value."""
    if dist.kind in DISCRETE:
        return list(dist.values)
    if dist.kind == "randint":
        return [int(dist.low), int(dist.high) - 1]
    if dist.kind in PER_VALUE:
        return [bound for _, low, high in dist.ranges for bound in (low, high)]
    return [snap(dist, dist.low), snap(dist, dist.high)]


def _numeric(values: list) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)] or [1.0]


def snap(dist: Dist, value: Any) -> Any:
    """Quantise a sampled value as its distribution says (Optuna drops q on log scales)."""
    if dist.kind not in ("quniform", "qloguniform") or not isinstance(value, (int, float)):
        return value
    snapped = round(round(value / dist.q) * dist.q, 12)
    snapped = min(max(snapped, dist.low), dist.high)
    return int(snapped) if float(dist.q).is_integer() and float(dist.low).is_integer() else snapped


def snap_values(dists: dict[str, Dist], values: dict) -> dict:
    """The config values of a sampled point: `snap` applied where the space quantises, and each
    PER_VALUE position u resolved to the range its other key's value selects.

    Args:
        dists: the parsed space (parse_space; SearchConfig.params).
        values: the point's values by key (others pass through).
    """
    out = {k: snap(dists[k], v) if k in dists else v for k, v in values.items()}
    for key, dist in dists.items():
        if dist.kind in PER_VALUE and key in out:
            if dist.given not in out:
                raise ValueError(f"space.{key}: the point has no value of {dist.given}, which selects its range")
            out[key] = resolve(dist, out[key], out[dist.given])
    return out


def resolve(dist: Dist, u: float, given_value: Any) -> float:
    """A PER_VALUE position u in [0, 1] as a value of the range for `given_value`
    (log: low * (high / low) ** u; linear: low + (high - low) * u)."""
    low, high = dist.range_for(given_value)
    u = min(max(float(u), 0.0), 1.0)
    if dist.kind in LOG:
        return low * (high / low) ** u
    return low + (high - low) * u


def grid_size(dists: dict[str, Dist]) -> int:
    """How many grid points the `grid` dimensions of a parsed space span (1 when there are none)."""
    return math.prod(len(d.values) for d in dists.values() if d.kind == "grid")


__all__ = [
    "CONTINUOUS",
    "DISCRETE",
    "DISTRIBUTIONS",
    "LOG",
    "PER_VALUE",
    "Dist",
    "candidates",
    "grid_size",
    "key_text",
    "parse_dist",
    "parse_space",
    "resolve",
    "snap",
    "short",
    "snap_values",
]
