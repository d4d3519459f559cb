"""The typed readers of files groktune reads back (groktune.readback)."""

import math

import pytest

from groktune.errors import DamagedFile
from groktune.readback import (EVAL_RECORD, check_point, check_schema, read_json_lines, read_json_object,
                               read_scheduler_state)


@pytest.mark.parametrize("value, kind, ok", [
    (3, "int", True), (3.0, "int", True), (3.5, "int", False), (True, "int", False), ("3", "int", False),
    (math.nan, "number", True), (math.nan, "int", False), (None, "number", False), (None, "number?", True),
    ("x", "str", True), (1, "str", False), ([1, None], "numbers", True), ([1, "a"], "numbers", False),
    ({}, "dict", True), ([], "dict", False), ([], "list", True), ({}, "list", False), ("true", "bool", False),
])
def test_kinds(value, kind, ok):
    if ok:
        check_schema("f.json", {"k": value}, {"k": kind})
    else:
        with pytest.raises(DamagedFile, match="f.json: k: got"):
            check_schema("f.json", {"k": value}, {"k": kind})


def test_required_keys_and_objects():
    with pytest.raises(DamagedFile, match="f.json: k: missing"):
        check_schema("f.json", {}, {"!k": "int"})
    check_schema("f.json", {}, {"k": "int"})  # optional
    with pytest.raises(DamagedFile, match="f.json: expected a JSON object, got a list"):
        check_schema("f.json", [1], {})


def test_files(tmp_path):
    f = tmp_path / "x.json"
    f.write_text('{"a": 1')
    with pytest.raises(DamagedFile, match="x.json: not valid JSON, truncated"):
        read_json_object(f)
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(DamagedFile, match="not UTF-8"):
        read_json_object(f)
    f.unlink()
    f.mkdir()
    with pytest.raises(DamagedFile, match="is a folder"):
        read_json_object(f)


def test_json_lines_skip_only_a_torn_last_line(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "va')
    assert [r["step"] for r in read_json_lines(f, EVAL_RECORD)] == [1, 2]
    f.write_text('{"step": 1, "va\n{"step": 2}\n')
    with pytest.raises(DamagedFile, match="m.jsonl: line 1 is not a JSON object"):
        read_json_lines(f, EVAL_RECORD)
    f.write_text('{"step": "1"}\n{"step": 2}\n')
    with pytest.raises(DamagedFile, match='m.jsonl: line 1: step: got "1", expected an integer'):
        read_json_lines(f, EVAL_RECORD)


def test_points_and_scheduler_state(tmp_path):
    check_point("p.json", {"optim.lr": 0.1, "seed": 2})
    with pytest.raises(DamagedFile, match='p.json: seed: got "abc"'):
        check_point("p.json", {"seed": "abc"})
    f = tmp_path / "scheduler.state"
    f.write_text('{"rungs": [[[10, {"t1": 0.5}]]], "stopped": ["t1"], "num_stopped": 1}')
    assert read_scheduler_state(f)["stopped"] == ["t1"]
    f.write_text('{"rungs": [[[10, {"t1": "0.5"}]]], "stopped": []}')
    with pytest.raises(DamagedFile, match="rungs\\[0\\]\\[0\\].t1: got '0.5'"):
        read_scheduler_state(f)
