"""analysis/safe_text.py: hostile names render as literal text in report.md and never run as
formulas from summary.csv."""

import csv
import io

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.document import Document, Figure, Section, Table, Text, to_markdown
from analysis.safe_text import CSV_TRIGGERS, csv_safe, csv_safe_frame, md_code, md_escape, md_paragraph

HOSTILE = [
    "a|b|c",
    "`rm -rf /`",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "![x](http://evil/track.png)",
    "line1\nline2\r\nline3\u2028line4",
    "**bold** _it_ ~~gone~~",
    "&lt;b&gt;",
    "\\|escaped already",
]


def unescape(md: str) -> str:
    """The literal text CommonMark shows for a string of backslash escapes (independent decoder)."""
    out, i = [], 0
    while i < len(md):
        if md[i] == "\\" and i + 1 < len(md) and not md[i + 1].isalnum() and md[i + 1].isascii():
            out.append(md[i + 1])
            i += 2
        else:
            out.append(md[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("name", HOSTILE)
def test_md_escape_leaves_no_live_syntax_and_keeps_the_text(name):
    out = md_escape(name)
    assert "\n" not in out and "\r" not in out and "\u2028" not in out
    for ch in "|`<>[]!*_~&":  # every such character is escaped (preceded by an odd run of \)
        for i, c in enumerate(out):
            if c == ch and not (c == "_" and out[i - 1].isalnum() and out[i + 1:i + 2].isalnum()):
                run = len(out[:i]) - len(out[:i].rstrip("\\"))
                assert run % 2 == 1, (ch, out)
    flat = name.replace("\r\n", " ").replace("\n", " ").replace("\u2028", " ")
    assert unescape(out) == flat


def test_md_escape_keeps_intraword_underscores_which_cannot_make_emphasis():
    assert md_escape("optim.weight_decay × x_1") == "optim.weight_decay × x_1"
    assert md_escape("_a_ b_ _c") == "\\_a\\_ b\\_ \\_c"


@given(st.text())
def test_md_escape_round_trips_any_single_line_text(text):
    single = "".join(c for c in text if c not in "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
    assert unescape(md_escape(single)) == single


@pytest.mark.parametrize("text, expected", [
    ("# not a heading", "\\# not a heading"),
    ("> not a quote", "\\> not a quote"),
    ("- not a list", "\\- not a list"),
    ("12. not a list", "12\\. not a list"),
    ("    not code", "not code"),
    ("plain 1.5e-3 -0.5", "plain 1.5e-3 -0.5"),
])
def test_md_paragraph_escapes_block_markers_only_at_the_start(text, expected):
    assert md_paragraph(text) == expected


def test_md_code_fence_outlasts_backticks_inside():
    block = md_code("a\n````\n# b")
    fence = block.splitlines()[0]
    assert fence == "`````" and block.endswith("\n`````")
    assert md_code("plain").startswith("```\n")


def test_a_report_with_hostile_names_keeps_its_table_shape():
    hostile = "x|y<script>alert(1)</script>\n# h"
    frame = pd.DataFrame({"trial": [hostile, "ok"], "lr": [1e-3, -0.5]})
    doc = Document(title=f"report: {hostile}", subtitle=hostile,
                   sections=[Section(hostile, [Text(hostile), Table(frame, hostile),
                                               Figure("a b(1).png", b"", hostile)])])
    md = to_markdown(doc)
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # header + 2 rows: the name broke no line
    for row in rows:  # unescaped pipes = column breaks: 2 columns -> 3 of them
        cuts = [i for i, c in enumerate(row) if c == "|" and (i == 0 or row[i - 1] != "\\")]
        assert len(cuts) == 3, row
    assert "<script>" not in md and "\n# h" not in md
    assert "](figures/a%20b%281%29.png)" in md


@pytest.mark.parametrize("cell", ["=1+2", "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                  '=HYPERLINK("http://evil","x")', "-cmd|' /C calc'!A0"])
def test_csv_safe_guards_formula_starts(cell):
    assert csv_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", [1, -1, 0.5, -0.25, float("nan"), "-0.5", "+3", "name", "", None, "a=b"])
def test_csv_safe_leaves_numbers_and_plain_text(cell):
    out = csv_safe(cell)
    assert out is cell or out == cell


def test_csv_safe_frame_written_and_read_back_starts_no_cell_with_a_trigger():
    frame = pd.DataFrame({"trial": ["=cmd()", "ok", "@x"], "score": [-1.5, 2.0, -3.0],
                          "=col": ["+1+1", "-a", "b"]})
    text = csv_safe_frame(frame).to_csv(index=False)
    rows = list(csv.reader(io.StringIO(text)))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c.startswith(CSV_TRIGGERS) and not _number(c)], cells
    assert rows[1][1] == "-1.5" and rows[0][2] == "'=col"
    assert frame["trial"][0] == "=cmd()"  # the caller's frame is not changed


def _number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False
