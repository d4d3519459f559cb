"""The sbatch script's timers (the driver's stop watchdog, the Ray stop deadline) leave nothing
behind when they are cancelled: proctrack/linuxproc does not follow orphans, so a `sleep` left by
a killed timer outlived the job on its node (found by tests/cluster/test_slurm_two_nodes.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cluster.slurm.render import SlurmConfig, SweepJob, render_script


def timer_functions(tmp_path: Path) -> str:
    """The rendered script's `nap` and `quit_timer` definitions."""
    job = SweepJob(name="demo", storage=tmp_path, config=tmp_path / "c.yaml", workdir=tmp_path, bin_dir=tmp_path)
    script = render_script(SlurmConfig(), job)
    lines = [line for line in script.splitlines() if re.match(r"(nap|quit_timer)\(\) \{", line)]
    assert len(lines) == 2, lines
    assert "( trap quit_timer TERM; nap " in script  # the Ray stop deadline uses them
    assert "trap quit_timer TERM\n" in script and "nap 5\n" in script  # so does the watchdog
    return "\n".join(lines)


def test_a_cancelled_timer_leaves_no_sleep(tmp_path):
    marker = "417.25"  # an unusual duration names this test's sleep among the machine's processes
    program = f"""{timer_functions(tmp_path)}
( trap quit_timer TERM; nap {marker}; echo fired ) >/dev/null &  # an orphan must not hold our stdout
timer=$!
sleep 0.5
pgrep -x -f "sleep {marker}" >/dev/null && echo "running"
kill "$timer"; wait "$timer"
sleep 0.3
left=$(pgrep -x -f "sleep {marker}")
[[ -n $left ]] && echo "left behind" && kill $left || echo "clean"
"""
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30).stdout.split("\n")
    assert out[:2] == ["running", "clean"], out
