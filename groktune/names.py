"""Names that become folder names, job names or file names: one rule, checked everywhere.

A config's `name:`, `sweep --name`, `slurm submit --name` and `k8s render --name` all name a
folder under some storage root (and a Slurm job, a Kubernetes object). So a name is one path
component of safe characters: `../../x`, `a/b`, a trailing newline (which would break an
`#SBATCH` header) or a control character can never reach the file system or a script.
"""

from __future__ import annotations

import re

MAX_NAME = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
RULE = f"1-{MAX_NAME} letters, digits and _.- starting with a letter or digit (it names a folder)"


def check_name(name: object) -> str:
    """Return `name` if it is a safe single path component, else raise ValueError.

    Args:
        name: the candidate (from a config or a flag).
    Returns:
        The name unchanged.
    Raises:
        ValueError: "got '...', expected ..." (one line; the caller prefixes the key or flag).
    """
    # fullmatch, not match with `$`: `$` also matches before a trailing newline.
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise ValueError(f"got {shown}, expected {RULE}")
    return name


__all__ = ["MAX_NAME", "RULE", "check_name"]
