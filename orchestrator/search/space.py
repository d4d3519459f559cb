"""A parsed search space (groktune.space) checked against the experiment config: every key names
a config leaf, and its bounds and values give a valid config.

The parsing itself lives in groktune.space (pure, shared with the report); this module needs the
config tree, so it stays with the orchestrator.
"""

from __future__ import annotations

from typing import Any

from groktune.errors import ConfigError
from groktune.space import PER_VALUE, Dist, candidates, key_text, short, snap
from orchestrator.config.tree import from_dict, set_dotted, to_dict, validate_tree


def check_keys_exist(dists: dict[str, Dist], cfg: Any) -> None:
    """Every key must name a leaf of the config tree, and its bounds/values must give a valid config.

    Args:
        dists: the parsed space (SearchConfig.params); cfg: the experiment config.
    Raises:
        ValueError("search.space.KEY: ...") (raised from ExperimentConfig.validate, which has no
        prefix of its own).
    """
    # The config's own class and tree helpers, not orchestrator.config.experiment: that module imports this
    # one (through search_config), and importing it back would close a circle.
    base = to_dict(cfg)
    base.pop("search", None)  # checking a copy without `search` cannot recurse into this check
    for key, dist in dists.items():
        if not _is_leaf(base, key):
            raise ValueError(f"search.space.{key_text(key)}: unknown key; not in the experiment config")
        for assignment in _assignments(key, dist):
            data = to_dict(cfg)
            data.pop("search", None)
            for dotted, value in assignment.items():
                set_dotted(data, dotted, value)
            try:
                validate_tree(from_dict(type(cfg), data))
            except ConfigError as err:
                shown = ", ".join(f"{k}={short(v)}" for k, v in assignment.items()) if len(assignment) > 1 \
                    else short(assignment[key])
                raise ValueError(f"search.space.{key}.{dist.kind}: value {shown} gives an invalid config "
                                 f"({err})") from None


def _assignments(key: str, dist: Dist) -> list[dict]:
    """The config values worth checking for one key: its candidates (with, for a PER_VALUE key,
    the other key's value that selects each range)."""
    if dist.kind in PER_VALUE:
        return [{dist.given: value, key: bound} for value, low, high in dist.ranges for bound in (low, high)]
    return [{key: snap(dist, value)} for value in candidates(dist)]


def _is_leaf(data: dict, dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return not isinstance(node, dict)


__all__ = ["check_keys_exist"]
