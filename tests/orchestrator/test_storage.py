"""--storage as a folder, file:// URI or bucket URI (orchestrator.storage.location): the fast checks.

The sweeps themselves (file:// end to end, an S3 bucket served by moto) are in
tests/orchestrator/test_storage_sweep.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.errors import UserError
from orchestrator.storage.location import (
    STAGING_ENV,
    check_bucket,
    is_checkpoint,
    local_sweep_folder,
    parse_storage,
    staging_root,
    tune_storage_path,
)

ROOT = Path(__file__).resolve().parents[2]


def test_a_folder_and_its_file_uri_are_the_same_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plain = parse_storage("res")
    assert plain.uri is None and plain.local.resolve() == tmp_path / "res"
    for uri in (f"file://{tmp_path}/res", f"file://localhost{tmp_path}/res", f"file://{tmp_path}/r%65s/"):
        storage = parse_storage(uri)
        assert storage.uri is None and storage.local == tmp_path / "res", uri
        assert tune_storage_path(storage) == str(tmp_path / "res")  # Ray Tune gets the folder, not the URI
    assert local_sweep_folder(f"file://{tmp_path}/res/sw") == tmp_path / "res" / "sw"


@pytest.mark.parametrize("uri, why", [
    ("file://otherhost/tmp/x", "write file:///ABSOLUTE/PATH"),
    ("file:///tmp/x?mode=ro", "takes no ?query"),
    ("file:relative", None),  # no "://": a path with a colon, as the shell gave it
    ("nosuch://bucket/x", "unknown scheme nosuch://"),
    ("memory://x", "unknown scheme memory://"),  # fsspec has it, pyarrow (Ray Tune's storage) has not
    ("s3://", "expected SCHEME://BUCKET/PATH"),
])
def test_file_uris_and_unknown_schemes(uri, why, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if why is None:
        assert parse_storage(uri).local.resolve() == tmp_path / "file:relative"
        return
    with pytest.raises(UserError) as err:
        storage = parse_storage(uri)
        check_bucket(storage.uri)  # schemes are known when opened, as Ray Tune opens them
    assert why in str(err.value) and "\n" not in str(err.value)


def test_a_bucket_whose_library_is_missing_is_refused_in_one_line():
    # pyarrow's HDFS needs a JVM (libjvm) and libhdfs; none is installed here.
    with pytest.raises(UserError) as err:
        check_bucket(parse_storage("hdfs://namenode:8020/sweeps").uri)
    text = str(err.value)
    assert text.startswith("--storage hdfs://namenode:8020/sweeps: cannot open it (") and "\n" not in text


def test_a_store_that_never_answers_is_given_up_on_in_time():
    # Offline, pyarrow's GCS client retries for minutes (so would Ray Tune); online, a bucket
    # this unlikely is missing or forbidden. Either way: one line, within the timeout.
    t0 = time.monotonic()
    with pytest.raises(UserError) as err:
        check_bucket("gs://groktune-no-such-bucket-3f9c1/x", timeout=2)
    assert time.monotonic() - t0 < 5 and "\n" not in str(err.value)


def test_the_local_working_folder_of_a_bucket_never_holds_keys(tmp_path, monkeypatch):
    monkeypatch.setenv(STAGING_ENV, str(tmp_path / "staging"))
    root = staging_root("s3://KEY:SECRET@bucket/team/sweeps?endpoint_override=127.0.0.1:9000&scheme=http")
    assert root == tmp_path / "staging" / "s3" / "bucket" / "team" / "sweeps"
    assert local_sweep_folder("s3://bucket/team/sweeps/run1") == root / "run1"
    with pytest.raises(UserError, match="--storage s3://bucket/a/../b"):
        staging_root("s3://KEY:SECRET@bucket/a/../b?secret_key=SECRET")  # the message drops the keys
    try:
        staging_root("s3://KEY:SECRET@bucket/a/../b?secret_key=SECRET")
    except UserError as err:
        assert "SECRET" not in str(err)


def test_checkpoint_folders_are_recognised():
    assert is_checkpoint("trial_ab/checkpoint_000003/tune_state.json")
    assert not is_checkpoint("trial_ab/result.json") and not is_checkpoint("ledger/checkpoint_x.json")


def test_the_cli_refuses_a_bad_uri_before_ray_starts(capsys):
    rc = main(["sweep", str(ROOT / "configs" / "tiny_sweep.yaml"), "--storage", "nosuch://bucket/x"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "unknown scheme nosuch://" in err
    import ray

    assert not ray.is_initialized()


@pytest.mark.parametrize("where", ["/proc/groktune-nope", "/dev/null/sub"])
def test_a_storage_folder_that_cannot_be_created_is_refused_before_ray_starts(where, capsys):
    """/proc refuses new folders even to root; /dev/null is a file. Either is one line naming
    --storage, exit 2, before Ray starts (not an error from inside Tune after its start)."""
    rc = main(["sweep", str(ROOT / "configs" / "tiny_sweep.yaml"), "--storage", where])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "--storage" in err and where in err, err
    import ray

    assert not ray.is_initialized() and not Path(where).exists()


def test_the_creatability_probe_leaves_nothing_behind(tmp_path):
    from orchestrator.sweep.driver import check_creatable

    target = tmp_path / "new" / "deeper" / "sweep"
    check_creatable(target)
    assert list(tmp_path.iterdir()) == []  # made, then removed: Tune creates it for real later
    (tmp_path / "kept").mkdir()
    check_creatable(tmp_path / "kept" / "sweep")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and not list((tmp_path / "kept").iterdir())
