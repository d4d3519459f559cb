"""Text that is safe to render: Markdown escaping and a CSV guard against formula injection.

Names in a report (experiment, task, trial and parameter names, file paths) come from configs and
result folders that may have been written by someone else. In report.md they must render as the
literal text, never as a table column break, code span, HTML tag, link or image; in summary.csv a
cell must never be taken for a spreadsheet formula (OWASP "CSV injection").

    md_escape("a|b <img src=x>")     -> 'a\\|b \\<img src=x\\>'
    csv_safe("=HYPERLINK(\\"x\\")")   -> "'=HYPERLINK(\\"x\\")"
"""

from __future__ import annotations

import math
import re

import pandas as pd

# Inline Markdown syntax (CommonMark + GFM): escaped with a backslash, which CommonMark allows
# before any ASCII punctuation. An underscore between two letters or digits (weight_decay) can
# neither open nor close emphasis, so it stays as it is and names stay readable.
_INLINE = "\\`*[]<>|!~&"
_INLINE_RE = re.compile("[" + re.escape(_INLINE) + "_]")
# Line breaks of every kind (a cell or a paragraph must stay on its line).
_BREAKS_RE = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
# What makes a line a heading, quote, list item, thematic break or setext underline.
_BLOCK_START_RE = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")
# A spreadsheet reads a cell starting with these as a formula (or a DDE payload).
CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def md_escape(text) -> str:
    """Escape `text` for inline Markdown: a table cell, a caption, image alt text, a heading.

    Args:
        text: any value; str() of it is escaped.

    Returns:
        One line of Markdown that renders as the literal text.
    """
    flat = _BREAKS_RE.sub(" ", str(text))
    return _INLINE_RE.sub(_escape_inline, flat)


def _escape_inline(match: re.Match) -> str:
    text, i = match.string, match.start()
    if match.group(0) == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
        return "_"  # intraword: inert
    return "\\" + match.group(0)


def md_paragraph(text) -> str:
    """md_escape, and a leading block marker (#, >, -, +, =, "1.") is escaped too.

    Args:
        text: a paragraph's text.

    Returns:
        One line of Markdown that renders as one literal paragraph.
    """
    escaped = md_escape(text).lstrip()  # four leading spaces would make a code block
    return _BLOCK_START_RE.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), escaped, count=1)


def _escape_marker(marker: str) -> str:
    if marker[0].isdigit():  # "12." -> "12\."
        return marker[:-1] + "\\" + marker[-1]
    return "\\" + marker


def md_code(text: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside `text`.

    Args:
        text: the literal block content.

    Returns:
        Markdown for the block (the content cannot close the fence early).
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.rstrip(chr(10))}\n{fence}"


def csv_safe(value):
    """Guard one CSV cell: a string starting with = + - @ tab or CR gets a leading apostrophe.

    Numbers (and strings that are plain finite numbers, such as "-0.5") are left untouched.

    Args:
        value: the cell.

    Returns:
        The cell, guarded if it is text a spreadsheet could run.
    """
    if not isinstance(value, str) or not value.startswith(CSV_TRIGGERS):
        return value
    try:
        if math.isfinite(float(value)) and value.strip() == value:
            return value
    except ValueError:
        pass
    return "'" + value


def csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with csv_safe applied to every text cell and every column name.

    Args:
        frame: the table to be written with DataFrame.to_csv.

    Returns:
        The guarded copy (numeric columns are the same objects' values, unchanged).
    """
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(csv_safe)
    out.columns = [csv_safe(c) for c in out.columns]
    return out


__all__ = ["CSV_TRIGGERS", "csv_safe", "csv_safe_frame", "md_code", "md_escape", "md_paragraph"]
