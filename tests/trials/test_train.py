"""train(config, report) on tiny real runs: the record contract, resume, stop rules, variants."""

import math

import pytest
import torch

from groktune.events import EVENT_STEP
from trials.train import train

CONTRACT = {"step", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "grad_norm",
            "param_norm", "wall_time"}


def collect(cfg, **kw):
    records, saves = [], []

    def report(record, save=None):
        records.append(record)
        saves.append(save)

    result = train(cfg, report, **kw)
    return result, records, saves


def test_records_carry_the_contract_and_follow_the_eval_plan(tiny_cfg):
    result, records, saves = collect(tiny_cfg())
    assert [r["step"] for r in records] == [1, 5, 10, 15, 20, 22, 25, 27, 30, 33, 36, 39, 40, 43, 48, 52, 58, 60]
    for r in records:
        assert CONTRACT <= set(r)
        assert all(math.isfinite(r[k]) for k in CONTRACT)
        assert len(r["val_acc_per_class"]) == 7
        assert any(k.startswith("param_norm/blocks.0") for k in r)
        assert any(k.startswith("grad_norm/blocks.0") for k in r)
    assert records[-1]["train_acc"] > records[0]["train_acc"]  # it learns
    assert result.status == "budget" and result.final_step == 60 and result.final == records[-1]
    # checkpoints offered at the first eval at/after every 30 steps and at the end
    assert [r["step"] for r, s in zip(records, saves) if s is not None] == [30, 60]


def test_resume_from_checkpoint_gives_the_same_curve(tiny_cfg, tmp_path):
    cfg = tiny_cfg(optim={"grokfast": {"kind": "ema"}, "noise": {"eta": 0.01}, "grad_clip": 1.0},
                   model={"dropout_resid": 0.1})
    assert_resume_at_30_matches(cfg, tmp_path)


def assert_resume_at_30_matches(cfg, tmp_path) -> list[dict]:
    """Train to the end; resume from the step-30 checkpoint; the records after it must be equal
    (wall time aside). Returns the uninterrupted run's records."""
    _, full, saves = collect(cfg)
    mid = next(i for i, r in enumerate(full) if r["step"] == 30)
    saves[mid](tmp_path)
    result, resumed, _ = collect(cfg, resume_from=tmp_path)
    assert [r["step"] for r in resumed] == [r["step"] for r in full[mid + 1:]]
    for a, b in zip(full[mid + 1:], resumed):
        a, b = dict(a), dict(b)
        a.pop("wall_time"), b.pop("wall_time")
        assert a == b
    assert result.final_step == 60
    return full


def test_stops_when_grokked_and_reports_the_streak_start(tiny_cfg):
    result, records, _ = collect(tiny_cfg(train={"target_val_acc": 0.01, "target_patience": 2}))
    assert result.status == "grokked" and result.steps_to_target == 1
    assert [r["step"] for r in records] == [1, 5]
    assert [r[EVENT_STEP] for r in records] == [None, 1]  # the event, reported with the eval that found it


def test_target_patience_zero_trains_on_and_still_reports_the_event(tiny_cfg):
    """0 = do not stop at the target; the event is still found with the default patience (3)."""
    result, records, _ = collect(tiny_cfg(train={"target_val_acc": 0.01, "target_patience": 0}))
    assert result.status == "grokked" and result.steps_to_target == 1
    assert result.final_step == records[-1]["step"] == 60  # ran to the budget
    assert records[-1][EVENT_STEP] == 1


def test_huge_lr_diverges(tiny_cfg):
    result, records, _ = collect(tiny_cfg(optim={"lr": 1e12, "weight_decay": 0.0, "name": "sgd"}))
    assert result.status == "diverged"
    assert result.final_step < 60


def test_grad_accumulation_matches_one_big_batch(tiny_cfg):
    a = collect(tiny_cfg(train={"batch_size": 24, "steps": 10}))[1]
    b = collect(tiny_cfg(train={"batch_size": 24, "steps": 10, "grad_accum": 2}))[1]
    assert a[-1]["train_loss"] == pytest.approx(b[-1]["train_loss"], rel=1e-5)


def test_activation_checkpointing_does_not_change_the_curve(tiny_cfg):
    a = collect(tiny_cfg(train={"steps": 10}))[1]
    b = collect(tiny_cfg(train={"steps": 10, "activation_checkpointing": True}))[1]
    assert a[-1]["val_loss"] == pytest.approx(b[-1]["val_loss"], rel=1e-5)


@pytest.mark.parametrize("extra", [
    {"model": {"arch": "mlp"}},
    {"model": {"positional": "rotary", "norm": "rmsnorm", "activation": "swiglu", "tie_embeddings": True}},
    {"model": {"norm": "none", "activation": "relu", "init": "xavier", "init_scale": 2.0}},
    {"task": {"name": "s5", "op": "xy", "train_fraction": 0.2}, "train": {"batch_size": 64}},
    {"task": {"name": "sparse_parity", "n_bits": 8, "k_bits": 2, "n_samples": 200}},
    {"task": {"name": "mixture", "ops": ["x+y", "x-y"]}},
    {"optim": {"name": "sgd", "momentum": 0.9, "schedule": "cosine", "label_smoothing": 0.1}},
    {"optim": {"schedule": "one_cycle", "grokfast": {"kind": "ma", "window": 5}}},
    {"train": {"precision": "bf16", "batch_size": 0}},
])
def test_variants_train(tiny_cfg, extra):
    extra = {**extra, "train": {"steps": 12, **extra.get("train", {})}}
    result, records, _ = collect(tiny_cfg(**extra))
    assert result.final_step == 12
    assert all(math.isfinite(r["val_loss"]) for r in records)


def test_language_model_task(tiny_cfg, tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_bytes(b"the quick brown fox jumps over the lazy dog. " * 200)
    cfg = tiny_cfg(task={"name": "lm", "path": str(text), "context_length": 16, "train_fraction": 0.9,
                         "val_windows": 8},
                   train={"steps": 30, "batch_size": 8})
    result, records, _ = collect(cfg)
    assert records[-1]["val_ppl"] < records[0]["val_ppl"]
    assert records[-1]["val_ppl"] == pytest.approx(math.exp(records[-1]["val_loss"]))
    assert 0 <= records[-1]["val_acc"] <= 1


def test_same_seed_same_curve_other_seed_other_curve(tiny_cfg):
    a = collect(tiny_cfg(train={"steps": 10}))[1][-1]
    b = collect(tiny_cfg(train={"steps": 10}))[1][-1]
    c = collect(tiny_cfg(seed=1, train={"steps": 10}))[1][-1]
    assert a["val_loss"] == b["val_loss"] != c["val_loss"]


def test_fp16_without_cuda_is_a_clear_error(tiny_cfg):
    from groktune.errors import SetupError

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(SetupError, match="fp16 needs a CUDA device"):
        train(tiny_cfg(train={"precision": "fp16", "device": "cpu"}))


@pytest.mark.slow
def test_torch_compile_gives_the_same_curve(tiny_cfg):
    a = collect(tiny_cfg(train={"steps": 10}))[1][-1]
    b = collect(tiny_cfg(train={"steps": 10, "compile": True}))[1][-1]
    assert a["step"] == b["step"] == 10
    assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


def test_batch_train_metrics_are_the_mean_over_the_window(tiny_cfg):
    full = collect(tiny_cfg(train={"steps": 20, "batch_size": 0}))[1]
    window = collect(tiny_cfg(train={"steps": 20, "batch_size": 0, "train_metrics": "batches"}))[1]
    # Full batch, one step per window at steps 1: the batch metric is the pre-update full pass.
    assert window[0]["step"] == 1 and window[0]["train_acc"] <= 1
    assert [r["val_loss"] for r in full] == [r["val_loss"] for r in window]  # training unchanged
    # The window averages losses of earlier (worse) weights, so it lies above the end-of-window pass.
    assert window[-1]["train_loss"] > full[-1]["train_loss"]


def test_mixture_records_val_accuracy_per_operation(tiny_cfg):
    """Each op of a mixture gets val_acc/<op>; their row-weighted mean is the overall val_acc."""
    from tasks.registry import build_task  # the same data the trainer builds

    cfg = tiny_cfg(task={"name": "mixture", "ops": ["x+y", "x-y"]}, train={"steps": 12})
    _, records, _ = collect(cfg)
    last = records[-1]
    assert {"val_acc/x+y", "val_acc/x-y"} <= set(last)
    data = build_task(cfg.task, seed=cfg.seed, device="cpu")
    counts = torch.bincount(data.val_group, minlength=2).double()
    per_op = torch.tensor([last["val_acc/x+y"], last["val_acc/x-y"]], dtype=torch.float64)
    assert float((per_op * counts).sum() / counts.sum()) == pytest.approx(last["val_acc"], abs=1e-6)
    single = collect(tiny_cfg(train={"steps": 12}))[1][-1]
    assert not any(k.startswith("val_acc/") for k in single)  # only mixtures
