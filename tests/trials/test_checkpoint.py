import pytest
import torch

from groktune.errors import CheckpointError
from trials.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint

STATE = {"config": {"model": {"d_model": 8}, "task": {"p": 7}}, "w": torch.arange(3.0), "step": 4}


def test_round_trip_and_no_temp_files_left(tmp_path):
    save_checkpoint(STATE, tmp_path)
    state = load_checkpoint(tmp_path, {"model": {"d_model": 8}})
    assert state["step"] == 4 and torch.equal(state["w"], torch.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_checkpoint_is_one_clear_line(tmp_path, content):
    path = save_checkpoint(STATE, tmp_path)
    if content is None:  # truncated mid-file, as a kill during a non-atomic write would leave it
        data = path.read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "checkpoint" in msg


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    torch.save({"format_version": 1, "obj": object()}, path)  # needs unpickling arbitrary classes
    with pytest.raises(CheckpointError, match="not a readable groktune checkpoint"):
        load_checkpoint(path)


def test_mismatched_config_names_the_key(tmp_path):
    save_checkpoint(STATE, tmp_path)
    with pytest.raises(CheckpointError, match=r"model\.d_model: checkpoint 8, config 16"):
        load_checkpoint(tmp_path, {"model": {"d_model": 16}})


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path)
