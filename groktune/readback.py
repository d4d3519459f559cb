"""Every file groktune reads back, checked where it is read: one typed reader per format.

A file that groktune (or Ray Tune, for a sweep's trial folders) wrote and later reads again can
be damaged: truncated by a full disk, edited by hand, replaced by another tool's file. Each
reader here parses the file and checks its schema (the types of the keys groktune uses), and
any damage is a `DamagedFile` (a UserError): one line naming the file, the key and what is
wrong, so `status`, `collect` and `report` exit 2 with it instead of a traceback, and never
build a table from what they could not read.

    record = read_json_object(path, LEDGER_RECORD)        # a dict, its keys checked
    rows = read_json_lines(path, EVAL_RECORD, torn_tail=True)

A schema is {key: kind}. Kinds: "int" (an integral number: 3 or 3.0, never True), "number"
(int or float, NaN allowed, never a bool or a string), "str", "bool", "dict", "list",
"numbers" (a list of numbers). A trailing "?" allows null; a leading "!" makes the key required
(others may be missing). Keys a schema does not name may hold anything (Ray's bookkeeping,
a trainer's optional extras).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from groktune.errors import DamagedFile
from groktune.events import EVENT_STEP
from groktune.layout import ABANDONED, FINAL_STATUSES, LEDGER


# One eval record: metrics.jsonl lines, each line of a sweep trial's result.json, the ledger's
# copies of them (groktune.layout's record contract plus the sweep's own per-report keys).
EVAL_RECORD = {
    "step": "int", "epoch": "number", "lr": "number", "train_loss": "number?", "train_acc": "number?",
    "val_loss": "number?", "val_acc": "number?", "grad_norm": "number?", "param_norm": "number?",
    "wall_time": "number?", "grok_score": "number?", "cpu_time_s": "number?", "peak_memory_mb": "number?",
    "resumed_from_step": "int?", "training_iteration": "int?", "iterations_since_restore": "int?",
    "steps_to_target": "number?", EVENT_STEP: "number?", "status": "str", "trial_id": "str", "config": "dict", "node_id": "str?",
    "device": "str?", "members_live": "int?", "grokked_fraction": "number?", "failure_rate": "number?",
    "member_seeds": "str", "member_steps_to_target": "str", "member_val_acc": "numbers",
    "member_train_acc": "numbers", "val_acc_per_class": "numbers?", "done": "bool?",
}
# ledger/<trial_id>.json (orchestrator.sweep.ledger).
LEDGER_RECORD = {"!trial_id": "str", "!status": "str", "!config": "dict", "!result": "dict",
                 "replay_of": "str?", "written": "number?", "curve": "list",
                 "steps_to_target": "number?",  # a population's median over members: may be a half step
                 "pack": "str?", "member": "int?",  # a point of a packed trial: its pack's trial id, its index
                 "points": "list"}  # a pack trial's own record: its points' trial ids
# A `groktune train` run's result.json (trials.loop.TrainResult).
RUN_RESULT = {"status": "str", "steps_to_target": "int?", "final_step": "int", "wall_time": "number?",
              "final": "dict", "device": "str?"}
# driver.heartbeat (orchestrator.sweep.callbacks.Heartbeat).
HEARTBEAT_DATA = {"pid": "int", "host": "str", "updated": "number", "finished": "bool", "trials": "dict",
                  "resources": "dict"}
# tune_state.json inside a sweep trial's Tune checkpoint (orchestrator.sweep.adapter).
TUNE_STATE_DATA = {"score": "dict", "cpu_time_s": "number", "resumed_from_step": "int", "last_metrics": "dict",
              "finished": "dict?", "curve": "list"}
# scheduler.state (orchestrator.search.durable_asha).
SCHEDULER_STATE_DATA = {"!rungs": "list", "stopped": "list"}

_NAMES = {"int": "an integer", "number": "a number", "str": "a string", "bool": "true or false",
          "dict": "a JSON object", "list": "a list", "numbers": "a list of numbers"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits(value: Any, kind: str) -> bool:
    if kind == "int":
        return _is_number(value) and math.isfinite(value) and float(value).is_integer()
    if kind == "number":
        return _is_number(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "numbers":
        return isinstance(value, list) and all(_is_number(v) or v is None for v in value)
    raise ValueError(f"unknown kind {kind!r}")


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str)) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def check_schema(path: str | Path, data: Any, schema: dict[str, str], where: str = "") -> dict:
    """`data` if it is a JSON object whose keys fit `schema`, else DamagedFile.

    Args:
        path: the file, named in the message.
        data: the parsed value.
        schema: {key: kind} (see the module doc).
        where: prefix of key names in the message, e.g. "line 3: " or "result.".
    Returns:
        data.
    """
    if not isinstance(data, dict):
        raise DamagedFile(f"{path}: {where or ''}expected a JSON object, got {_kind_of(data)}")
    for spec_key, spec in schema.items():
        required, key = spec_key.startswith("!"), spec_key.lstrip("!")
        if key not in data:
            if required:
                raise DamagedFile(f"{path}: {where}{key}: missing")
            continue
        value, kind = data[key], spec.rstrip("?")
        if value is None and spec.endswith("?"):
            continue
        if not _fits(value, kind):
            raise DamagedFile(f"{path}: {where}{key}: got {_show(value)}, expected {_NAMES[kind]}")
    return data


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return type(value).__name__


def read_text(path: str | Path) -> str:
    """A file's UTF-8 text; DamagedFile when it cannot be read or is not text."""
    path = Path(path)
    if path.is_dir():
        raise DamagedFile(f"{path}: is a folder, expected a file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DamagedFile(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    if b"\x00" in data:
        raise DamagedFile(f"{path}: a binary file, expected JSON text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedFile(f"{path}: not UTF-8 text") from None


def parse_json(path: str | Path, text: str, where: str = "") -> Any:
    """json.loads with a one-line DamagedFile (truncated, not JSON) naming the file."""
    try:
        return json.loads(text)
    except ValueError as err:
        reason = "not valid JSON, truncated" if _truncated(text) else "not valid JSON"
        detail = " ".join(str(err).split())[:60]
        raise DamagedFile(f"{path}: {where}{reason} ({detail})") from None


def _truncated(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and stripped[0] in "[{" and stripped[-1] not in "]}"


def read_json_object(path: str | Path, schema: dict[str, str] | None = None) -> dict:
    """A JSON object from `path`, its keys checked against `schema`; DamagedFile otherwise."""
    data = parse_json(path, read_text(path))
    return check_schema(path, data, schema or {})


def read_json_lines(path: str | Path, schema: dict[str, str] | None = None, torn_tail: bool = True) -> list[dict]:
    """The JSON objects of a JSON-lines file (metrics.jsonl, a trial's result.json).

    Args:
        path: the file.
        schema: checked on every record.
        torn_tail: a last line that does not parse is a record being written (a live or killed
            writer) and is skipped; any earlier damage is DamagedFile.
    Returns:
        The records, in file order (blank lines skipped).
    """
    lines = [(n, line) for n, line in enumerate(read_text(path).splitlines(), 1) if line.strip()]
    records = []
    for pos, (number, line) in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError:
            if torn_tail and pos == len(lines) - 1:
                break
            raise DamagedFile(f"{path}: line {number} is not a JSON object (not valid JSON)") from None
        if not isinstance(record, dict):
            raise DamagedFile(f"{path}: line {number} is not a JSON object (got {_kind_of(record)})")
        records.append(check_schema(path, record, schema or {}, where=f"line {number}: "))
    return records


def check_records(path: str | Path, records: Any, schema: dict[str, str], where: str) -> list[dict]:
    """A list of records inside a file (the ledger's copy of a curve), each checked."""
    if not isinstance(records, list):
        raise DamagedFile(f"{path}: {where}: expected a list, got {_kind_of(records)}")
    return [check_schema(path, r, schema, where=f"{where}[{i}].") for i, r in enumerate(records)]


def check_point(path: str | Path, point: Any) -> dict:
    """A sampled point (a trial's params.json, a ledger record's config): a flat JSON object
    of scalars (or lists of them) whose "seed" and "__trial_index__" are integers."""
    check_schema(path, point, {"seed": "int", "__trial_index__": "int"})
    for key, value in point.items():
        if isinstance(value, dict):
            raise DamagedFile(f"{path}: {key}: got {_show(value)}, expected a sampled value")
    return point


def read_ledger_record(path: str | Path) -> dict:
    """ledger/<trial_id>.json (orchestrator.sweep.ledger), every key checked; DamagedFile otherwise."""
    path = Path(path)
    record = read_json_object(path, LEDGER_RECORD)
    if record["status"] not in (*FINAL_STATUSES, ABANDONED):
        raise DamagedFile(f"{path}: status: got {_show(record['status'])}, expected one of "
                          f"{', '.join((*FINAL_STATUSES, ABANDONED))}")
    if record["trial_id"] != path.stem:
        raise DamagedFile(f"{path}: trial_id: got {_show(record['trial_id'])}, expected {path.stem!r} (the file's name)")
    check_point(path, record["config"])
    check_schema(path, record["result"], EVAL_RECORD, where="result.")
    if "curve" in record:
        check_records(path, record["curve"], EVAL_RECORD, where="curve")
    return record


def read_ledger_folder(sweep: str | Path) -> dict[str, dict]:
    """{trial_id: record} of every record in SWEEP/ledger/ ({} without one); DamagedFile on the
    first damaged record (write_atomic never tears one, so damage came from outside)."""
    out = {}
    for f in sorted((Path(sweep) / LEDGER).glob("*.json")):
        if not f.name.startswith("."):  # write_atomic's temp file of a record being written
            record = read_ledger_record(f)
            out[record["trial_id"]] = record
    return out


def read_scheduler_state(path: str | Path) -> dict:
    """scheduler.state, its types checked: {"rungs": [[[milestone, {trial_id: value}], ...] per
    bracket], "stopped": [trial_id, ...], "num_stopped": int}; DamagedFile otherwise."""
    saved = read_json_object(path, {**SCHEDULER_STATE_DATA, "num_stopped": "int"})
    for b, rungs in enumerate(saved["rungs"]):
        if not isinstance(rungs, list):
            raise DamagedFile(f"{path}: rungs[{b}]: expected a list of [milestone, records]")
        for r, rung in enumerate(rungs):
            if not (isinstance(rung, list) and len(rung) == 2 and isinstance(rung[0], (int, float))
                    and not isinstance(rung[0], bool) and isinstance(rung[1], dict)):
                raise DamagedFile(f"{path}: rungs[{b}][{r}]: expected [milestone, {{trial_id: value}}]")
            for tid, value in rung[1].items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise DamagedFile(f"{path}: rungs[{b}][{r}].{tid}: got {value!r:.40}, expected a number")
    if not all(isinstance(t, str) for t in saved.get("stopped", [])):
        raise DamagedFile(f"{path}: stopped: expected a list of trial ids")
    return saved


__all__ = [
    "EVAL_RECORD", "HEARTBEAT_DATA", "LEDGER_RECORD", "RUN_RESULT", "SCHEDULER_STATE_DATA", "TUNE_STATE_DATA",
    "check_point", "check_records", "check_schema", "parse_json", "read_json_lines",
    "read_json_object", "read_ledger_folder", "read_ledger_record", "read_scheduler_state", "read_text",
]
