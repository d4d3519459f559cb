"""Write docs/config.md, the config reference, from the config dataclasses themselves.

Every field of ExperimentConfig's tree (task, model, optim with its grokfast and noise parts,
train, probes, search) becomes one row: its dotted key, type, default and the field's docstring
(the string literal under the field, as the dataclasses carry them). A field without a docstring
is an error, so the reference cannot silently fall behind the code:

    python scripts/docs_config.py           # rewrite docs/config.md
    python scripts/docs_config.py --check   # exit 1 if docs/config.md is not what it would write
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orchestrator.config.experiment import ExperimentConfig  # noqa: E402  (after the path is set)
from orchestrator.search.config import SearchConfig  # noqa: E402

OUT = ROOT / "docs" / "config.md"
SECTIONS = {
    "": "The top level",
    "task": "task: the algorithmic dataset",
    "model": "model: the network",
    "optim": "optim: optimizer, schedule, loss and grokking methods",
    "train": "train: budget, evaluation, checkpoints, device",
    "probes": "probes: learning-dynamics probes",
    "search": "search: sweeps only",
}


def field_docs(cls) -> dict[str, str]:
    """{field name: its docstring} from the class body (and its dataclass bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body
        for stmt, nxt in zip(body, body[1:] + [None]):
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                    docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def nested(tp):
    """The dataclass a field's type names (also inside `X | None`), or None."""
    for arg in (tp, *typing.get_args(tp)):
        if isinstance(arg, type) and dataclasses.is_dataclass(arg):
            return arg
    return None


def default_of(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(section)"
    return f"`{value!r}`" if value != "" else "`''`"


def type_name(tp) -> str:
    text = tp.__name__ if isinstance(tp, type) else str(tp)
    return str(text).replace("typing.", "").replace("|", "\\|")


def rows(cls, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) of every leaf field under cls; a missing docstring raises."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        sub = nested(hints[f.name])
        if sub is not None and key not in SECTIONS:  # a part inside a section (optim.grokfast): its fields
            out += rows(sub, key + ".")
            continue
        if sub is not None:
            continue  # a section: its own table
        if f.name not in docs:
            raise SystemExit(f"{cls.__module__}.{cls.__qualname__}.{f.name}: no docstring; "
                             "write one under the field (the config reference is built from them)")
        out.append((key, type_name(hints[f.name]), default_of(f), docs[f.name]))
    return out


def render() -> str:
    hints = typing.get_type_hints(ExperimentConfig)
    parts = ["# Config reference", "",
             "Every key of an experiment YAML file, generated from the config dataclasses by "
             "`python scripts/docs_config.py` (a test checks this page is current). Precedence: "
             "defaults < the YAML file < `--set key=value` on the command line. Bad values are "
             "refused before anything starts, with one line naming the key, the value and what "
             "is allowed (exit 2).", ""]
    for section, title in SECTIONS.items():
        if section:
            cls, prefix = nested(hints[section]), section + "."
        else:
            cls, prefix = ExperimentConfig, ""
        if cls is None and section == "search":
            cls = SearchConfig
        parts += [f"## {title}", "", "| key | type | default | what |", "|---|---|---|---|"]
        for key, tp, default, doc in rows(cls, prefix):
            text = " ".join(doc.split()).replace("|", "\\|")
            parts.append(f"| `{key}` | {tp} | {default} | {text} |")
        parts.append("")
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/config.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date; run python scripts/docs_config.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
