"""The CUDA paths of the trainer: device placement, bf16/fp16, compile, checkpoints moving between
CUDA and the CPU, vectorised populations, host syncs. Marked `gpu` (pytest -m gpu) and skipped
where no CUDA device is present; CUDA results are compared with tolerances, never bitwise.

These need only PyTorch and the project (no Ray, no Optuna), so they run on a bare GPU machine
(benchmarks/gpu_check.sh runs them last).
"""

import math
import warnings

import pytest
import torch

from tests.conftest import TINY, deep_merge
from orchestrator.config.experiment import config_from_dict
from trials.checkpoint import load_checkpoint, rng_state
from trials.train import train_population
from trials.setup import build_run
from trials.train import train

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available())")]


def cfg(**extra):
    """The suite's tiny config on CUDA, with gradient noise and Grokfast on (their state travels)."""
    base = deep_merge(TINY, {"train": {"device": "cuda"},
                             "optim": {"noise": {"eta": 0.01}, "grokfast": {"kind": "ema"}}})
    return config_from_dict(deep_merge(base, extra))


def collect(records):
    return lambda record, save=None: records.append(record)


def finite(records):
    return all(math.isfinite(r["val_loss"]) and math.isfinite(r["train_loss"]) for r in records)


def test_a_run_lives_on_the_gpu():
    run = build_run(cfg())
    assert run.device.type == "cuda"
    assert all(p.is_cuda for p in run.model.parameters())
    assert run.data.train_x.is_cuda and run.sampler.perm.is_cuda
    assert run.sampler.generator.device.type == "cuda"  # permutations drawn on the device
    records = []
    result = train(cfg(), collect(records))
    assert result.final_step == 60 and finite(records)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_trains_close_to_fp32(precision):
    ref, low = [], []
    train(cfg(optim={"noise": {"eta": 0.0}}), collect(ref))
    train(cfg(optim={"noise": {"eta": 0.0}}, train={"precision": precision}), collect(low))
    assert finite(low)
    assert abs(low[-1]["train_loss"] - ref[-1]["train_loss"]) < 0.25 * abs(ref[0]["train_loss"])


def test_fp16_with_grokfast_survives_an_overflow_step(monkeypatch):
    """One inf gradient (the scaler skips that step) must not stop every later step."""
    import trials.train as train_module

    real = train_module.build_run
    calls = {"n": 0}

    def with_one_overflow(c):
        run = real(c)
        p = next(run.model.parameters())

        def hook(grad):
            calls["n"] += 1
            return torch.full_like(grad, float("inf")) if calls["n"] == 5 else grad

        p.register_hook(hook)
        return run

    monkeypatch.setattr(train_module, "build_run", with_one_overflow)
    records = []
    train(cfg(train={"precision": "fp16"}), collect(records))
    norms = [r["param_norm"] for r in records if r["step"] > 10]
    assert len(set(norms)) > 1, "every step after the overflow was skipped"
    assert finite(records)


def test_compile_trains_like_eager():
    eager, compiled = [], []
    train(cfg(optim={"noise": {"eta": 0.0}}), collect(eager))
    train(cfg(optim={"noise": {"eta": 0.0}}, train={"compile": True}), collect(compiled))
    assert [r["step"] for r in compiled] == [r["step"] for r in eager]
    assert compiled[-1]["train_loss"] == pytest.approx(eager[-1]["train_loss"], rel=0.05, abs=0.05)


def test_rng_state_keeps_one_cuda_state():
    state = rng_state(torch.device("cuda"))
    assert isinstance(state["cuda_rng"], torch.Tensor)  # this device's, not one per visible GPU


@pytest.mark.parametrize("legs", [("cuda", "cpu", "cuda"), ("cpu", "cuda", "cpu")])
def test_checkpoints_move_between_cuda_and_cpu(tmp_path, legs):
    ckpt, resume_from = tmp_path / "ckpt", None
    records = []
    for i, device in enumerate(legs):
        c = cfg(train={"device": device, "steps": 20 * (i + 1), "checkpoint_every": 20})

        def keep(record, save=None):
            records.append(record)
            if save is not None:
                save(ckpt)

        result = train(c, keep, resume_from=resume_from)
        resume_from = ckpt
        assert result.final_step == 20 * (i + 1)
    assert finite(records)
    state = load_checkpoint(ckpt)
    assert state["noise"]["generator"]["device"] == legs[-1]


def test_peak_memory_is_reset_per_run():
    big = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    del big
    build_run(cfg())
    assert torch.cuda.max_memory_allocated() < 128 * 2**20


def test_tf32_is_set_per_run():
    build_run(cfg(train={"tf32": True}))
    on = torch.backends.cuda.matmul.fp32_precision if hasattr(torch.backends.cuda.matmul, "fp32_precision") \
        else torch.backends.cuda.matmul.allow_tf32
    build_run(cfg())
    off = torch.backends.cuda.matmul.fp32_precision if hasattr(torch.backends.cuda.matmul, "fp32_precision") \
        else torch.backends.cuda.matmul.allow_tf32
    assert on in ("tf32", True) and off in ("ieee", False)


def test_a_population_on_cuda_is_vectorised_and_close_to_the_loop():
    cfgs = [cfg(optim={"noise": {"eta": 0.0}}, seed=s) for s in range(4)]
    vmapped, looped = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_population(cfgs, lambda ev, save=None: vmapped.extend(ev.records))  # default: auto -> vmap
    assert not [w for w in caught if "batching rule" in str(w.message)], "vmap fell back to a per-member loop"
    train_population(cfgs, lambda ev, save=None: looped.extend(ev.records), vectorize="loop")
    for a, b in zip(vmapped, looped):
        assert a["member"] == b["member"] and a["step"] == b["step"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-2, abs=1e-3)


def test_a_non_eval_step_does_not_wait_for_the_host():
    """fp32 single run: the steps between evals queue work without a host sync."""

    def syncs(steps):
        c = cfg(train={"steps": steps, "eval_dense_until": 0, "eval_log_ratio": 1e6, "eval_every": steps,
                       "target_patience": 0, "checkpoint_every": 10**6})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train(c)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchronizing" in str(w.message) for w in caught)

    syncs(3)
    assert syncs(40) - syncs(20) == 0


def test_a_fractional_gpu_sweep_trains_on_the_gpu(tmp_path):
    pytest.importorskip("ray", reason="fractional-GPU sweeps need Ray")
    from orchestrator.sweep.driver import run_sweep

    sweep = config_from_dict(deep_merge(TINY, {
        "train": {"device": "auto", "steps": 20},
        "search": {"num_samples": 2, "gpus_per_trial": 0.5, "cpus_per_trial": 1,
                   "space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}}}))
    outcome = run_sweep(sweep, tmp_path, "gpu", None, False)
    assert outcome.trials["device"].str.startswith("cuda").all()
