"""Typed config trees from plain dicts: dataclasses in, one-line errors out.

Precedence is defaults < YAML < `--set a.b=value` overrides. Every error is a ConfigError whose
message names the dotted key, the value and what is allowed; the CLI prints it as one line and
exits 2 before any work starts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any

from groktune.yamlio import fix_yaml_floats, load_yaml_text

MAX_INT = 2**63 - 1
"""No config integer is larger (torch and numpy hold int64); field bounds are far tighter."""


class ConfigError(ValueError):
    """Bad user input in a config file or override; the message is one line for the user."""


def _short(value: Any) -> str:
    """repr(value) cut to one short line (a whole section in an error hides the key at fault)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_describe(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against type hint `tp` (building nested dataclasses); raise ConfigError."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        nested = None
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg, key)
            except ConfigError as err:
                # An error about a key inside the value names that key; keep it rather than
                # printing the whole section (e.g. `search.space.optim.lr.loguniform`).
                if nested is None and not str(err).startswith(f"{key}: got"):
                    nested = err
        if nested is not None:
            raise nested
        raise ConfigError(f"{key}: got {_short(value)}, expected {_describe(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: got {_short(value)}, expected null")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: got {_short(value)}, expected a mapping of {tp.__name__} fields")
        return from_dict(tp, value, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: got {_short(value)}, expected a list")
        (item,) = typing.get_args(tp) or (Any,)
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: got {_short(value)}, expected a mapping")
        _, vt = typing.get_args(tp) or (Any, Any)
        return {str(k): coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > MAX_INT:
                raise ConfigError(f"{key}: got {value:.3g}, far too large (bounds are checked per key)")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if abs(value) > 1e300 or not math.isfinite(float(value)):
                # NaN compares false with every bound, so it would pass every check below.
                raise ConfigError(f"{key}: got {_short(value)}, expected a finite number")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: got {_short(value)}, expected {_describe(tp)}")


@functools.cache
def _type_hints(cls: type) -> dict:
    """A dataclass's resolved field types. Resolving compiles each annotation string, ~70 % of
    building a config; a sweep's tables build one config per trial, so it is done once per class."""
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types."""
    hints = _type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else str(key)
            where = where if where.isprintable() and len(where) <= 80 else _short(where)
            raise ConfigError(f"{where}: unknown key; allowed: {', '.join(sorted(names))}")
    kwargs = {k: coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def validate_tree(obj: Any, prefix: str = "") -> None:
    """Call `validate()` on every dataclass in the tree, turning ValueError into ConfigError."""
    for f in dataclasses.fields(obj):
        child = getattr(obj, f.name)
        if dataclasses.is_dataclass(child):
            validate_tree(child, f"{prefix}{f.name}.")
    if hasattr(obj, "validate"):
        try:
            obj.validate()
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(f"{prefix}{err}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """'optim.lr=3e-4' -> (['optim', 'lr'], 0.0003); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {_short(text)}: expected KEY=VALUE, e.g. optim.lr=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {_short(text)}: expected KEY=VALUE with a dotted key such as optim.lr")
    # The one YAML loader (groktune.yamlio) reads 1e-3 as a float and refuses duplicate keys
    # and alias bombs; text that is not YAML at all stays a string (e.g. a path with ': ').
    try:
        value = load_yaml_text(raw, f"--set {key}", ConfigError) if raw.strip() else ""
    except ConfigError as err:
        if "not valid YAML" not in str(err):
            raise
        value = raw
    return key.split("."), value


def set_dotted(data: dict, dotted: str, value: Any) -> dict:
    """Set `a.b.c` in a nested dict in place (creating sections) and return the dict."""
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part} is not a section")
        node = child
    node[parts[-1]] = value
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `--set` overrides to a nested dict in place and return it."""
    for text in overrides:
        path, value = parse_override(text)
        set_dotted(data, ".".join(path), value)
    return data


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain dict (for YAML/JSON)."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


__all__ = [
    "ConfigError", "apply_overrides", "coerce", "fix_yaml_floats", "from_dict", "parse_override",
    "set_dotted", "to_dict", "validate_tree",
]
