"""The README and the documentation site (docs/, mkdocs.yml): short front door, links that resolve,
every page in the nav, a config reference that lists every config field, and a strict build.

The strict build (slow tier) is `mkdocs build --strict`, which fails on a link to a missing page
or anchor, a page left out of the nav and a missing image; the fast tests check what it does not
see: the README's own links (the README is not part of the site) and the config reference.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def local_links(path: Path) -> list[str]:
    """Relative link targets of a markdown file (no URLs, no in-page anchors), code blocks skipped."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+://|#|mailto:", t)]


def nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        out += nav_pages(value) if isinstance(value, list) else [value]
    return out


def test_readme_is_a_short_front_door_whose_links_resolve():
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 300
    links = local_links(readme)
    assert sum(t.startswith("docs/") for t in links) >= 10, links  # it points into the site
    missing = [t for t in links if not (ROOT / t.split("#", 1)[0]).exists()]
    assert missing == [], missing


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs" and config["strict"] is True and config["theme"]["name"] == "material"
    nav = nav_pages(config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    for page in pages:  # the site's own links, also checked by the strict build
        for target in local_links(DOCS / page):
            assert (DOCS / page).parent.joinpath(target.split("#", 1)[0]).resolve().exists(), (page, target)


def test_the_config_reference_lists_every_config_field_and_is_current():
    ran = subprocess.run([sys.executable, "scripts/docs_config.py", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr + ran.stdout
    text = (DOCS / "config.md").read_text()
    for key in ("`optim.lr`", "`optim.grokfast.alpha`", "`train.target_patience`", "`search.tracking`",
                "`search.seeds_per_trial`", "`probes.kinds`", "`task.train_fraction`", "`model.d_model`"):
        assert key in text, key


def test_no_issue_numbers_in_the_readme_or_the_docs():
    for path in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        hits = re.findall(r"\bissues? #?\d+", path.read_text(), flags=re.I)
        assert hits == [], (path, hits)


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("the docs extra is not installed (bash scripts/docs.sh installs it and builds)")
    ran = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists() and (tmp_path / "site" / "config" / "index.html").exists()
    assert (tmp_path / "site" / "img").is_dir()
