"""analysis.document: HTML with inlined figures and escaped text; Markdown with linked figures."""

import base64
import re

import numpy as np
import pandas as pd

from analysis.document import Code, Document, Figure, Section, Table, Text, format_cell, to_html, to_markdown

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def doc():
    table = Table(pd.DataFrame({"a|b": [1, 2.5], "c": ["<x>", None]}), "cap")
    return Document("T <1>", "sub", [Section("S & s", [Text("a < b"), table, Code("k: v"),
                                                       Figure("f.png", PNG, "fig")])])


def test_html_is_self_contained_and_escaped():
    html = to_html(doc())
    assert html.startswith("<!DOCTYPE html>")
    assert "T &lt;1&gt;" in html and "S &amp; s" in html and "&lt;x&gt;" in html
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert srcs == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    assert not re.search(r'(src|href)="(https?:|//|figures/)', html)
    assert "<script" not in html


def test_markdown_links_figures_and_escapes_pipes():
    md = to_markdown(doc())
    assert "![fig](figures/f.png)" in md
    assert "| a\\|b | c |" in md
    assert "| 2.5 | – |" in md
    assert "```\nk: v\n```" in md


def test_format_cell():
    assert format_cell(3.0) == "3"
    assert format_cell(np.int64(7)) == "7"
    assert format_cell(0.000123456) == "0.0001235"
    assert format_cell(pd.NA) == "–" and format_cell(np.nan) == "–" and format_cell(None) == "–"
    assert format_cell(True) == "True" and format_cell("x") == "x"
    assert format_cell(float("inf")) == "inf"


def test_headline_comes_first_and_wide_tables_scroll():
    from analysis.document import Document, Section, Table, to_html, to_markdown

    doc = Document("T", "sub", [Section("S", [Table(pd.DataFrame({"a": [1]}))])], headline="Fastest: x.")
    html_text = to_html(doc)
    assert html_text.index('id="headline"') < html_text.index("<nav>")
    assert '<div class="scroll"><table>' in html_text
    assert to_markdown(doc).splitlines()[4] == "**Fastest: x.**"
