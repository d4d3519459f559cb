"""report.html opened in a real headless Chromium: every image loads, nothing is logged as an error;
the report of a real sweep renders its headline, Kaplan-Meier curves, seed spread and collapses
(its DOM as Chromium built it, and a screenshot that is not blank).

Needs Debian's `chromium` package (CI: apt-get install -y chromium); skipped without it.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from analysis.report import make_report
from tests.analysis.cdp import find_browser, inspect_page
from tests.analysis.synth import write_run, write_sweep

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_browser() is None,
                       reason="chromium not installed (Debian: apt-get install -y chromium)"),
]


@pytest.mark.parametrize("kind", ["sweep", "run"])
def test_report_html_loads_every_image_without_errors(tmp_path, kind):
    results = (write_sweep(tmp_path / "sweep", n_trials=12) if kind == "sweep"
               else write_run(tmp_path / "run", "grokking"))
    make_report(results, tmp_path / "out")
    page = inspect_page(str(tmp_path / "out" / "report.html"), find_browser())
    figures = list((tmp_path / "out" / "figures").glob("*.png"))
    assert len(page["images"]) == len(figures) > 0
    assert all(img["src"].startswith("data:image/png;base64,") for img in page["images"])
    broken = [img for img in page["images"] if not (img["complete"] and img["width"] > 0)]
    assert broken == []
    assert page["errors"] == []


def test_the_check_sees_broken_images_and_logged_errors(tmp_path):
    """The harness is not vacuous: a broken image and a console error are reported."""
    page_file = tmp_path / "bad.html"
    page_file.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
                         '<img src="missing.png"><script>console.error("boom")</script></body></html>')
    page = inspect_page(str(page_file), find_browser())
    assert [img["width"] for img in page["images"]] == [0, 0]
    assert any("boom" in e for e in page["errors"])
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in page["errors"])


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


def test_real_sweep_report_in_chromium_dom_and_screenshot(real_sweep_report, tmp_path):
    _, out = real_sweep_report
    browser = find_browser()
    url = (out / "report.html").as_uri()
    dom = _chromium(browser, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # "Fastest:" alone, or "Fastest in the search:" after the verification stage's sentence
    assert 'id="headline"' in html and ("Fastest:" in html or "Fastest in the search:" in html)
    assert "trial(s) generalised" in html
    assert "Time to generalise (Kaplan–Meier)" in html
    assert 'alt="Share of runs generalised by step, all runs"' in html
    assert "Seeds: every config over its seeds" in html and "steps by seed" in html
    assert "Collapses after generalising" in html
    assert '<div class="scroll"><table>' in html  # wide tables scroll sideways
    shot = tmp_path / "report.png"
    proc = _chromium(browser, f"--screenshot={shot}", "--window-size=1200,2400", url)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    pixels = imread(str(shot))[..., :3]  # (H, W, 3) floats in [0, 1]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    colours = np.unique((pixels.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
    assert pixels.std() > 0.05 and len(colours) > 50  # text, tables and figures, not a blank page
    page = inspect_page(str(out / "report.html"), browser)
    assert page["errors"] == [] and all(img["complete"] and img["width"] > 0 for img in page["images"])
