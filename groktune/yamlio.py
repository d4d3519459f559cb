"""The one YAML loader of groktune: safe_load semantics plus limits, and one-line errors.

    data = load_yaml_file(Path("exp.yaml"), error=ConfigError)   # any YAML value
    value = load_yaml_text("3e-4", "--set optim.lr")               # 0.0003

Every config and results reader uses it, so every file gets the same rules:

- safe_load semantics (no Python objects are ever built);
- a key given twice in one mapping is refused, naming the key and its line (PyYAML would
  silently keep the last one);
- aliases are limited: a document whose aliases would expand to more than MAX_NODES nodes (a
  "billion laughs") or that refers to itself (`&a [*a]`) is refused before anything walks it;
- binary, non-UTF-8, over-deep or oversized input is a one-line error, never a traceback;
- YAML 1.1's number quirks are fixed here, once: a bare `1e-3` (no dot) is a float, as in YAML
  1.2 and as users type it, and `01:00:00` stays a string (YAML 1.1 reads it as 3600);
  `nan`/`inf` stay strings (only `.nan`/`.inf` are floats, which the config checks then refuse
  as non-finite).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from groktune.errors import UserError

MAX_BYTES = 16 * 1024 * 1024
"""Bigger YAML files are refused: configs are a few KB, Ray's result files a few MB."""
MAX_NODES = 100_000
"""Nodes a document may expand to once aliases are followed (billion laughs expands to 1e9)."""
MAX_DEPTH = 100
"""Nesting depth of collections (deeper input would hit Python's recursion limit)."""

# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: 1e-3, 5E+2, -2e3 (no dot).
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads YAML 1.2 exponent floats."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key must be a scalar", key_node.start_mark) from None
                if key in seen:
                    raise _Duplicate(key, key_node.start_mark.line + 1, seen[key])
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 also reads 1:30 as 90 (base 60): `--opt time=01:00:00` would become 3600. Numbers are
# re-registered without the base-60 forms, and with YAML 1.2's exponent floats.
_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""")
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _NUMBER_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_NUMBER_TAGS[0], _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_NUMBER_TAGS[1], _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver(_NUMBER_TAGS[1], _FLOAT_12, list("-+0123456789"))


class _Duplicate(Exception):
    def __init__(self, key, line: int, first: int):
        super().__init__(f"duplicate key {key!r} at line {line} (first given at line {first})")


def _check_graph(root: yaml.Node | None) -> None:
    """Refuse self-referring documents and ones that expand past MAX_NODES or MAX_DEPTH.

    Sizes are memoised per node, so this is linear in the document as written, however far
    its aliases would expand.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise ValueError("refers to itself through an alias (recursive YAML)")
        total = 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            on_path.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_NODES:
                    raise ValueError(f"has more than {MAX_NODES} nodes once aliases are expanded")
            on_path.discard(key)
        sizes[key] = total
        return total

    if root is not None:
        size(root, 0)


def load_yaml_text(text: str, source: str, error: type[Exception] = UserError) -> Any:
    """Parse one YAML document with groktune's rules.

    Args:
        text: the YAML text.
        source: what to name in errors (a path, or "--set key").
        error: the exception class to raise (ConfigError for configs, ResultsError for results).
    Returns:
        The Python value (None for an empty document).
    Raises:
        error: one line naming `source` and the problem (with the line when known).
    """
    if "\x00" in text:
        raise error(f"{source}: a binary file, not YAML text")
    if len(text) > MAX_BYTES:
        raise error(f"{source}: {len(text)} characters, more than {MAX_BYTES} allowed for a YAML file")
    loader = None
    try:
        loader = _Loader(text)  # the reader already refuses control characters here
        node = loader.get_single_node()
        _check_graph(node)
        return None if node is None else loader.construct_document(node)
    except _Duplicate as err:
        raise error(f"{source}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or getattr(err, "reason", None) or "malformed"
        raise error(f"{source}: not valid YAML{where} ({_one_line(problem)})") from None
    except ValueError as err:
        raise error(f"{source}: not usable YAML: {err}") from None
    except RecursionError:
        raise error(f"{source}: not usable YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_file(path: str | Path, error: type[Exception] = UserError, what: str = "YAML file") -> Any:
    """Read and parse a YAML file; missing, unreadable, binary and non-UTF-8 files are one line.

    Args:
        path: the file.
        error: the exception class to raise.
        what: how to name the file in "not found" errors (e.g. "config file").
    Returns:
        The Python value (None for an empty file).
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise error(f"{path}: a folder, expected a {what}")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as err:
        raise error(f"{path}: cannot read {what} ({err.strerror or type(err).__name__})") from None
    if len(raw) > MAX_BYTES:
        raise error(f"{path}: larger than {MAX_BYTES} bytes; not a {what}")
    if b"\x00" in raw:
        raise error(f"{path}: a binary file, not YAML text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {err.start})") from None
    return load_yaml_text(text, str(path), error)


def fix_yaml_floats(value: Any) -> Any:
    """Turn strings such as '1e-3' into floats in a nested value (data loaded by other readers).

    load_yaml_* already read bare exponent floats as floats; this is for values that came
    through another path (e.g. PyYAML elsewhere, or JSON holding such strings).
    """
    if isinstance(value, dict):
        return {k: fix_yaml_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fix_yaml_floats(v) for v in value]
    if isinstance(value, str) and _FLOAT_12.match(value):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:160]


__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "fix_yaml_floats", "load_yaml_file", "load_yaml_text"]
