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


def test_rng_state_off_cuda_keeps_no_cuda_state():
    from trials.checkpoint import rng_state

    assert rng_state(torch.device("cpu"))["cuda_rng"] == []


@pytest.mark.parametrize("cuda_rng", [[], [torch.zeros(16, dtype=torch.uint8)] * 3, torch.zeros(16, dtype=torch.uint8)])
def test_restore_rng_on_the_cpu_takes_any_cuda_state(cuda_rng):
    """One CUDA state (this format), one per GPU visible when written (the older format, which
    resumed with fewer visible GPUs failed), or none: a CPU resume restores the CPU state only."""
    from trials.checkpoint import restore_rng

    torch.manual_seed(5)
    saved = torch.get_rng_state()
    expected = torch.rand(3)
    torch.manual_seed(6)
    restore_rng({"torch_rng": saved, "cuda_rng": cuda_rng}, torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected)


def test_a_run_checkpointed_on_cuda_resumes_on_the_cpu(tmp_path, tiny_cfg):
    """As far as a CPU allows: a checkpoint whose generator states are CUDA's (16-byte Philox
    states, tagged and in the older untagged format, and one CUDA RNG state per GPU of a
    3-GPU machine) resumes on the CPU to the end of its budget."""
    from trials.checkpoint import save_checkpoint as save
    from trials.train import train

    cfg = tiny_cfg(optim={"noise": {"eta": 0.01}, "grokfast": {"kind": "ema"}})
    written = []
    train(cfg, lambda record, save=None: written.append(save(tmp_path / "a")) if save and not written else None)
    state = load_checkpoint(tmp_path / "a")
    assert state["progress"]["step"] == 30
    philox = torch.arange(16, dtype=torch.uint8)
    for tagged in (True, False):
        foreign = dict(state)
        foreign["noise"] = {"generator": {"device": "cuda", "state": philox} if tagged else philox}
        foreign["sampler"] = {**state["sampler"], "generator": {"device": "cuda", "state": philox} if tagged else philox}
        foreign["cuda_rng"] = [philox] * 3
        foreign.pop("format_version")
        save(foreign, tmp_path / f"b{tagged}")
        records = []
        result = train(cfg, lambda record, save=None: records.append(record), resume_from=tmp_path / f"b{tagged}")
        assert result.final_step == 60 and records[0]["step"] > 30
        assert all(torch.isfinite(torch.tensor(r["val_loss"])) for r in records)
