"""fp16's grad scaler with Grokfast in trials.train, on the CPU: a CPU GradScaler stands in for the
CUDA one (fp16 itself needs CUDA; tests/trials/test_cuda.py runs the real thing there)."""

import math

import torch

import trials.train as train_module
from trials.train import train


def _with_scaler_and_one_overflow(monkeypatch, at_backward: int):
    """build_run as usual, plus a grad scaler and a hook making one backward's gradient inf."""
    real = train_module.build_run
    calls = {"n": 0}

    def build(cfg):
        run = real(cfg)
        run.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
        first = next(run.model.parameters())

        def hook(grad):
            calls["n"] += 1
            return torch.full_like(grad, float("inf")) if calls["n"] == at_backward else grad

        first.register_hook(hook)
        return run

    monkeypatch.setattr(train_module, "build_run", build)


def test_grokfast_keeps_training_after_an_overflow_step(monkeypatch, tiny_cfg):
    """The step that overflowed is skipped by the scaler; the later ones must not be."""
    _with_scaler_and_one_overflow(monkeypatch, at_backward=3)
    records = []
    cfg = tiny_cfg(optim={"grokfast": {"kind": "ema"}}, train={"train_metrics": "batches"})
    result = train(cfg, lambda record, save=None: records.append(record))
    later = [r["param_norm"] for r in records if r["step"] >= 10]
    assert len(set(later)) == len(later), "parameters stopped changing after the overflow step"
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in records)
    assert result.final_step == 60


def test_without_an_overflow_the_scaler_changes_nothing(monkeypatch, tiny_cfg):
    """Sanity of the stand-in: with no inf, the scaled run's curve is the plain run's (scale 2^8 is exact)."""
    cfg = tiny_cfg(optim={"grokfast": {"kind": "ema"}})
    plain = []
    train(cfg, lambda record, save=None: plain.append(record))
    _with_scaler_and_one_overflow(monkeypatch, at_backward=-1)
    scaled = []
    train(cfg, lambda record, save=None: scaled.append(record))
    assert [r["val_loss"] for r in scaled] == [r["val_loss"] for r in plain]
