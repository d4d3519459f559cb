"""A resumed sweep whose saved state refers to a checkpoint Tune already deleted
(orchestrator.sweep.folder.restore_missing_checkpoints).

Tune deletes a trial's older checkpoints as soon as it books newer ones but saves its state only
every few seconds; a driver killed in between left a state pointing at a deleted checkpoint, and the
trial failed every retry on --resume ("Could not recover from checkpoint as it does not exist on
storage anymore"). The crash campaign (tests/orchestrator/test_sweep_crash.py) meets it for real;
here the state is written with Tune's own classes, as Tune writes it, and no Ray is started.
"""

import json

from ray.train import Checkpoint, CheckpointConfig
from ray.train._internal.checkpoint_manager import _CheckpointManager
from ray.train._internal.session import _TrainingResult
from ray.tune.trainable.metadata import _TrainingRunMetadata

from orchestrator.sweep.folder import restore_missing_checkpoints

SESSION = "2026-01-01_00-00-00"


def sweep_with_checkpoints(tmp_path, booked: dict[str, list[int]], on_disk: dict[str, list[int]]):
    """A sweep folder whose saved state booked checkpoints `booked` per trial (the last one is the
    latest), with checkpoint folders `on_disk` per trial (each holding its own index)."""
    exp = tmp_path / "exp"
    rows = []
    for tid, indices in booked.items():
        manager = _CheckpointManager(CheckpointConfig(num_to_keep=None))
        for i in indices:
            manager.register_checkpoint(_TrainingResult(Checkpoint(str(exp / f"trial_{tid}" / f"checkpoint_{i:06d}")), {"step": i}))
        metadata = _TrainingRunMetadata()
        metadata.checkpoint_manager = manager
        rows.append([json.dumps({"trial_id": tid, "status": "PENDING"}), metadata.get_json_state()])
    for tid, indices in on_disk.items():
        for i in indices:
            folder = exp / f"trial_{tid}" / f"checkpoint_{i:06d}"
            folder.mkdir(parents=True)
            (folder / "model.pt").write_text(f"weights at {i}")
    exp.mkdir(exist_ok=True)
    (exp / f"experiment_state-{SESSION}.json").write_text(json.dumps({"trial_data": rows}))
    return exp


def files_of(folder):
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_a_deleted_latest_checkpoint_is_put_back_from_the_oldest_newer_one(tmp_path):
    # a: booked 3, 4, 5; Tune then booked 6, 7, 8 and deleted 3, 4, 5; the state was not saved again.
    # b: nothing missing. c: latest missing and nothing newer (it then trains from its start).
    exp = sweep_with_checkpoints(tmp_path, {"a": [3, 4, 5], "b": [1, 2], "c": [2]},
                                 {"a": [6, 7, 8], "b": [1, 2], "c": []})
    (exp / "trial_c").mkdir()
    assert restore_missing_checkpoints(exp) == ["a"]
    a = exp / "trial_a"
    assert files_of(a / "checkpoint_000005") == {"model.pt": "weights at 6"}  # a step it really reached
    assert all(files_of(a / f"checkpoint_{i:06d}") == {} for i in (3, 4))  # only ever deleted by Tune
    assert [files_of(a / f"checkpoint_{i:06d}") for i in (6, 7, 8)] == [{"model.pt": f"weights at {i}"} for i in (6, 7, 8)]
    assert files_of(exp / "trial_b" / "checkpoint_000002") == {"model.pt": "weights at 2"}
    assert files_of(exp / "trial_c" / "checkpoint_000002") == {}
    assert restore_missing_checkpoints(exp) == []  # nothing missing any more


def test_a_trial_folder_that_is_gone_is_left_alone(tmp_path):
    exp = sweep_with_checkpoints(tmp_path, {"a": [1]}, {})
    assert restore_missing_checkpoints(exp) == []
    assert not (exp / "trial_a").exists()
