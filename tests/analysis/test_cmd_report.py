"""`groktune report` (orchestrator/cli/report.py): outputs, and one line + exit 2 on bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.cli.main import main
from tests.analysis.synth import write_run


def groktune(*args):
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_report_on_a_run_dir_writes_the_four_outputs(tmp_path):
    run = write_run(tmp_path / "run", "grokking")
    proc = groktune("report", run, "--out", tmp_path / "out", "--threshold", "0.95")
    assert proc.returncode == 0, proc.stderr
    assert "report written to" in proc.stdout
    for name in ("report.html", "report.md", "summary.csv"):
        assert (tmp_path / "out" / name).is_file()
    assert list((tmp_path / "out" / "figures").glob("*.png"))
    assert "reached 0.95 and held it" in (tmp_path / "out" / "report.md").read_text()


def test_malformed_folder_is_one_line_and_exit_2(tmp_path):
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "metrics.jsonl").write_text("this is not json\n{}\n")
    proc = groktune("report", folder, "--out", tmp_path / "out")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groktune: error: ")
    assert f"{folder}/metrics.jsonl: line 1 is not a JSON object" in lines[0]
    assert not (tmp_path / "out").exists()


def test_empty_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "res").mkdir()
    assert main(["report", str(tmp_path / "res"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("groktune: error: ")
    assert "no results found" in err
    assert not (tmp_path / "out").exists()


def test_default_out_is_inside_the_results(tmp_path, capsys):
    run = write_run(tmp_path / "run", "comprehension")
    assert main(["report", str(run)]) == 0
    assert (run / "report" / "report.html").is_file()


@pytest.mark.parametrize("args,msg", [
    (["--threshold", "1.5"], "--threshold: got 1.5, must be in (0, 1]"),
    (["--patience", "0"], "--patience: got 0, must be >= 1"),
    (["--delay-boundary", "-1"], "--delay-boundary: got -1.0, must be >= 0"),
    (["--phase-x", "optim.nope"], "optim.nope: not a column of these results"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, capsys, args, msg):
    run = write_run(tmp_path / "run", "grokking")
    assert main(["report", str(run), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err
    assert not (tmp_path / "out").exists()
