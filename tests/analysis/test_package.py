"""analysis/__init__.py: the public API, and that analysis reads results without the trainer."""

import subprocess
import sys

import analysis


def test_public_api_is_importable():
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None
    assert {"load", "detect_grokking", "detect_double_descent"} <= set(analysis.__all__)  # errors: groktune.errors


def test_analysis_never_imports_the_trainer_torch_or_ray():
    code = ("import sys, analysis, analysis.report, analysis.sections;"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('trials', 'torch', 'ray'));"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
