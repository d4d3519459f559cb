"""groktune.yamlio: the one YAML loader (duplicate keys, alias limits, binary input, 1e-3)."""

import pytest

from groktune.errors import UserError
from groktune.yamlio import MAX_NODES, fix_yaml_floats, load_yaml_file, load_yaml_text


def laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_safe_load_semantics_and_yaml_12_floats():
    data = load_yaml_text("a: 1e-3\nb: 1.0e-3\nc: -2E+2\nd: nan\ne: .nan\nf: '1e-3'\ng: 1_000\nh: 12\n", "x")
    assert data["a"] == data["b"] == 0.001 and data["c"] == -200.0
    assert data["d"] == "nan" and data["e"] != data["e"]  # only .nan is a float (then refused as non-finite)
    assert data["f"] == "1e-3" and data["g"] == 1000 and data["h"] == 12
    # YAML 1.1 base 60 (01:00:00 == 3600) is gone: a Slurm time limit stays a string.
    assert load_yaml_text("t: 01:00:00\nu: 1:30\n", "x") == {"t": "01:00:00", "u": "1:30"}


@pytest.mark.parametrize("text,needle", [
    ("a: 1\na: 2\n", "duplicate key 'a' at line 2 (first given at line 1)"),
    ("x:\n  y: 1\n  z: 2\n  y: 3\n", "duplicate key 'y' at line 4"),
    ("- {k: 1, k: 2}\n", "duplicate key 'k'"),
    ("a: &a [*a]\n", "refers to itself"),
    ("a: &a {b: *a}\n", "refers to itself"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ("a: " + "[" * 150 + "]" * 150, "nested deeper than"),
    ("a: [1, 2\n", "not valid YAML at line 2"),
    ("a: !!python/object/apply:os.system [ls]\n", "not valid YAML"),
    ("a: \x1b\n", "not valid YAML"),
    ("? [1]\n: 2\n", "a mapping key must be a scalar"),
    ("a\x00b", "binary file"),
])
def test_bad_yaml_is_one_line(text, needle):
    with pytest.raises(UserError) as err:
        load_yaml_text(text, "f.yaml")
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("f.yaml: ")


def test_billion_laughs_fails_fast_and_small_aliases_still_work():
    # Refused from the node graph before anything is expanded (10**9 strings otherwise).
    with pytest.raises(UserError, match=f"more than {MAX_NODES} nodes once aliases"):
        load_yaml_text(laughs(9), "bomb.yaml")
    data = load_yaml_text(laughs(3), "ok.yaml")  # 1,000 strings: fine
    assert len(data["a2"]) == 10 and data["a2"][0][0][0] == "lol"


def test_files_binary_non_utf8_missing_and_folders(tmp_path):
    cases = {"bin.yaml": b"\x00\x01", "latin.yaml": b"a: caf\xe9\n", "utf16.yaml": "a: 1\n".encode("utf-16")}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
    for name, needle in (("bin.yaml", "binary file"), ("latin.yaml", "not UTF-8"), ("utf16.yaml", "binary file"),
                         ("missing.yaml", "config file not found")):
        with pytest.raises(UserError, match=needle):
            load_yaml_file(tmp_path / name, what="config file")
    with pytest.raises(UserError, match="a folder, expected a YAML file"):
        load_yaml_file(tmp_path)
    (tmp_path / "bom.yaml").write_bytes("\ufeffa: 1e-3\n".encode())
    assert load_yaml_file(tmp_path / "bom.yaml") == {"a": 0.001}


def test_error_class_is_the_callers():
    class Mine(Exception):
        pass

    with pytest.raises(Mine):
        load_yaml_text("a: 1\na: 1\n", "x", Mine)


def test_fix_yaml_floats_for_values_from_other_readers():
    assert fix_yaml_floats({"a": ["1e-3", "x", "1e5x"], "b": "2E3"}) == {"a": [0.001, "x", "1e5x"], "b": 2000.0}
