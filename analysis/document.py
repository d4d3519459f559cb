"""A tiny document model (sections of text, tables, figures, code) and its two renderings:
one self-contained HTML file (figures inlined as base64 PNG, inline CSS, no script, nothing
fetched) and Markdown that links figures/NAME.png beside it."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from urllib.parse import quote

import pandas as pd

from analysis.safe_text import md_code, md_escape, md_paragraph


@dataclass
class Text:
    text: str


@dataclass
class Code:
    text: str


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Figure:
    name: str
    """File name under figures/, e.g. "curves_modular_x_y_best.png"."""
    png: bytes
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    headline: str = ""
    """One or two sentences printed first, above the contents."""

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def format_cell(value) -> str:
    """Numbers with 4 significant digits, integers whole, missing values as an en dash."""
    if value is None or (not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    try:  # numpy / pandas scalars
        return format_cell(value.item())
    except (AttributeError, ValueError):
        return str(value)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } caption { caption-side: top; text-align: left; color: #555; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85rem; } pre { background: #f7f7f7; padding: 0.75rem;
overflow-x: auto; font-size: 0.8rem; } .subtitle { color: #555; }
.scroll { overflow-x: auto; max-width: 100%; } .scroll table { white-space: nowrap; }
.headline { font-size: 1.05rem; background: #eef5ff; border-left: 4px solid #1f77b4;
            padding: 0.6rem 0.9rem; }
"""


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.frame.itertuples(index=False, name=None))
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    # Wide tables (every searched parameter) scroll sideways instead of squeezing the page.
    return (f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _html_block(block) -> str:
    if isinstance(block, Text):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text)}</pre>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        alt = html.escape(block.caption or block.name, quote=True)
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    raise TypeError(f"unknown block {type(block).__name__}")


def to_html(doc: Document) -> str:
    """The whole report as one HTML string with every figure embedded.

    Args:
        doc: the document.
    Returns:
        A complete HTML5 document.
    """
    toc = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
                  for i, s in enumerate(doc.sections))
    body = "".join(
        f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>'
        + "".join(_html_block(b) for b in s.blocks) + "</section>"
        for i, s in enumerate(doc.sections))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(doc.title)}</h1><p class=\"subtitle\">{html.escape(doc.subtitle)}</p>"
        + (f'<p class="headline" id="headline">{html.escape(doc.headline)}</p>' if doc.headline else "")
        + f"<nav><ul>{toc}</ul></nav>{body}</body></html>\n")


_md_escape = md_escape  # names come from configs and folders: analysis/safe_text.py


def _md_table(table: Table) -> str:
    cols = [_md_escape(str(c)) for c in table.frame.columns]
    lines = [f"*{_md_escape(table.caption)}*", ""] if table.caption else []
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_md_escape(format_cell(v)) for v in row) + " |")
    return "\n".join(lines)


def _md_block(block) -> str:
    if isinstance(block, Text):
        return md_paragraph(block.text)
    if isinstance(block, Code):
        return md_code(block.text)
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Figure):
        return f"![{_md_escape(block.caption or block.name)}](figures/{quote(block.name)})"
    raise TypeError(f"unknown block {type(block).__name__}")


def to_markdown(doc: Document) -> str:
    """The report as Markdown; figures are linked as figures/NAME.png.

    Args:
        doc: the document.
    Returns:
        Markdown text.
    """
    parts = [f"# {md_escape(doc.title)}", md_paragraph(doc.subtitle),
             f"**{md_escape(doc.headline)}**" if doc.headline else ""]
    for section in doc.sections:
        parts.append(f"## {md_escape(section.title)}")
        parts.extend(_md_block(b) for b in section.blocks)
    return "\n\n".join(p for p in parts if p) + "\n"
