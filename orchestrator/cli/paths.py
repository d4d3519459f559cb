"""Checks of the CLI's path and name arguments: one line and exit 2 before anything is written.

Every command that takes a folder, an output file or a name calls these first, so a missing
folder, a file where a folder is needed (or the reverse), or a name that would leave its storage
folder is refused the same way everywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from groktune.layout import REPORT_FIGURES, REPORT_FILES, REPORT_HTML, REPORT_MD
from groktune.names import check_name
from orchestrator.errors import UserError

REPORT_OUTPUTS = REPORT_FILES
# A previous report links each figure it wrote as figures/NAME in report.md.
_FIGURE_LINK = re.compile(rf"\]\({re.escape(REPORT_FIGURES)}/([^)\s/]+)\)")


def check_name_flag(value: str | None, flag: str = "--name") -> str | None:
    """`value` if it is None or a safe single path component (groktune.names), else UserError."""
    if value is None:
        return None
    try:
        return check_name(value)
    except ValueError as err:
        raise UserError(f"{flag}: {err}") from None


def check_output_file(path: Path, flag: str = "--out") -> None:
    """An output file: not a folder, and its parent is an existing folder (UserError otherwise)."""
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder, expected a file name")
    parent = path.parent
    if not parent.exists():
        raise UserError(f"{flag} {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a folder")


def check_parent_folder(path: Path, flag: str) -> None:
    """A folder that may be created: it is not a file, and nothing above it is a file."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == path else f"is under {p}, which is a file"
                raise UserError(f"{flag} {path}: {what}, expected a folder")
            return


def check_report_out(out: Path, force: bool = False) -> None:
    """`report --out DIR`: never replace or delete files the report did not write.

    DIR may be absent, empty, or an earlier report (it holds report.html); any other non-empty
    folder needs --force, and even then an existing summary.csv/report.md of the user's, or a
    file in DIR/figures/ that the earlier report did not link, is refused: write_report replaces
    the whole figures/ folder.

    Raises:
        UserError: one line naming the folder or the first file at risk.
    """
    check_parent_folder(out, "--out")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    ours = (out / REPORT_HTML).is_file()
    if entries and not ours:
        if not force:
            raise UserError(f"--out {out}: not empty and not a groktune report folder ({len(entries)} entries); "
                            f"pass --force to write into it")
        for name in REPORT_OUTPUTS:
            if name in entries:
                raise UserError(f"--out {out}: already holds its own {name}; groktune will not overwrite it")
    figures = out / REPORT_FIGURES
    if not figures.exists():
        return
    if not figures.is_dir():
        raise UserError(f"--out {out}: {figures} is a file; the report writes a figures/ folder there")
    linked = set()
    if ours and (out / REPORT_MD).is_file():
        linked = set(_FIGURE_LINK.findall((out / REPORT_MD).read_text(encoding="utf-8", errors="replace")))
    foreign = sorted(p.name for p in figures.iterdir() if p.name not in linked or not p.is_file())
    if foreign:
        raise UserError(f"--out {out}: {figures / foreign[0]} was not written by a groktune report "
                        f"(figures/ is replaced as a whole); move it away or choose another --out")


def read_json_mapping(path: Path) -> dict:
    """A JSON object from a file groktune wrote (heartbeat, result); UserError if it is not one.

    Args:
        path: the file.
    Returns:
        The parsed dict.
    Raises:
        UserError: one line naming the file (unreadable, not UTF-8, not JSON, not an object).
    """
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path}: not valid JSON ({' '.join(str(err).split())[:80]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


__all__ = ["check_name_flag", "check_output_file", "check_parent_folder", "check_report_out", "read_json_mapping"]
