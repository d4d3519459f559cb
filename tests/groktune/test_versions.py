"""groktune.versions: the versions written with results, and the report reading them back."""

from __future__ import annotations

import json
from importlib import metadata

from analysis.environment import recorded_versions
from analysis.load import load
from groktune.layout import VERSIONS
from groktune.versions import package_versions, write_versions
from tests.analysis.synth import write_run, write_sweep


def test_written_versions_are_the_installed_ones(tmp_path):
    path = write_versions(tmp_path)
    data = json.loads(path.read_text())
    assert path.name == VERSIONS and data == package_versions()
    assert data["numpy"] == metadata.version("numpy") and data["pandas"] == metadata.version("pandas")
    assert data["python"].count(".") == 2


def test_the_report_reads_versions_from_the_results(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", n_trials=2)
    (sweep / VERSIONS).write_text(json.dumps({"torch": "9.9.9", "ray": "1.0"}))
    assert recorded_versions(load(sweep))["torch"] == "9.9.9"
    runs = tmp_path / "runs"
    for name, torch in (("a", "1.1"), ("b", "2.2")):
        write_run(runs / name, "grokking", optim__lr=1e-3 if name == "a" else 3e-3)
        (runs / name / VERSIONS).write_text(json.dumps({"torch": torch}))
    assert recorded_versions(load(runs))["torch"] == "1.1, 2.2"  # runs that differ show both
