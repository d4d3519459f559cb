"""Package versions written with the results, so a report shows what produced
them rather than what happens to be installed when it is read.

`groktune train` writes VERSIONS into the run folder and `groktune sweep` into the sweep folder;
analysis.environment reads it back. Versions come from package metadata: nothing is imported.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

from groktune.layout import write_atomic

VERSIONS = "versions.json"
PACKAGES = ("groktune", "torch", "ray", "optuna", "numpy", "pandas", "scipy", "scikit-learn")


def package_versions() -> dict[str, str]:
    """Python, the platform and PACKAGES' installed versions ("not installed" where absent).

    Returns:
        {"python": "3.11.9", "platform": "...", "torch": "2.13.0", ...}.
    """
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_versions(folder: str | Path) -> Path:
    """Write package_versions() as VERSIONS into `folder` (atomically).

    Args:
        folder: a run folder or a sweep folder (must exist).
    Returns:
        The path written.
    """
    path = Path(folder) / VERSIONS
    write_atomic(path, json.dumps(package_versions(), indent=2, sort_keys=True) + "\n")
    return path


__all__ = ["PACKAGES", "VERSIONS", "package_versions", "write_versions"]
