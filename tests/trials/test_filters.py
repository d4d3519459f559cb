"""Grokfast filters against their formulas; gradient noise variance checked statistically."""

import math

import pytest
import torch

from trials.config import GrokfastConfig, NoiseConfig
from trials.filters import GradientNoise, Grokfast


def _params(grads_seq_len, shape=(3, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.zeros(shape, dtype=torch.float64))
    grads = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(grads_seq_len)]
    return p, grads


def test_ema_filter_matches_formula():
    alpha, lamb = 0.9, 2.0
    p, grads = _params(6)
    f = Grokfast([p], GrokfastConfig(kind="ema", alpha=alpha, lamb=lamb))
    mu = None
    for g in grads:
        p.grad = g.clone()
        f.apply()
        mu = g.clone() if mu is None else alpha * mu + (1 - alpha) * g  # mu_0 = g_0 (Lee et al.)
        torch.testing.assert_close(p.grad, g + lamb * mu, rtol=0, atol=1e-12)


def test_ma_filter_matches_formula_after_the_window_fills():
    w, lamb = 3, 1.5
    p, grads = _params(8)
    f = Grokfast([p], GrokfastConfig(kind="ma", window=w, lamb=lamb))
    for t, g in enumerate(grads):
        p.grad = g.clone()
        f.apply()
        if t + 1 < w:
            torch.testing.assert_close(p.grad, g)  # not yet full: unchanged
        else:
            mean = torch.stack(grads[t - w + 1 : t + 1]).mean(0)
            torch.testing.assert_close(p.grad, g + lamb * mean, rtol=0, atol=1e-12)


def test_filters_state_round_trip():
    p, grads = _params(5)
    a = Grokfast([p], GrokfastConfig(kind="ema"))
    for g in grads[:3]:
        p.grad = g.clone()
        a.apply()
    b = Grokfast([p], GrokfastConfig(kind="ema"))
    b.load_state_dict({k: (None if v is None else [t.clone() for t in v] if isinstance(v, list) else v)
                       for k, v in a.state_dict().items()})
    p.grad = grads[3].clone()
    a.apply()
    out_a = p.grad.clone()
    p.grad = grads[3].clone()
    b.apply()
    torch.testing.assert_close(p.grad, out_a)


@pytest.mark.parametrize("step", [0, 10, 1000])
def test_noise_variance_is_eta_over_one_plus_t_to_the_gamma(step):
    eta, gamma = 0.3, 0.55
    p = torch.nn.Parameter(torch.zeros(200_000, dtype=torch.float64))
    p.grad = torch.zeros_like(p)
    noise = GradientNoise([p], NoiseConfig(eta=eta, gamma=gamma), seed=0, device="cpu")
    noise.apply(step)
    want = eta / (1 + step) ** gamma
    n = p.grad.numel()
    # Sample variance of n normals has sd want*sqrt(2/n); allow 5 sd.
    assert abs(p.grad.var().item() - want) < 5 * want * math.sqrt(2 / n)
    assert abs(p.grad.mean().item()) < 5 * math.sqrt(want / n)


def test_noise_is_reproducible_and_off_when_eta_is_zero():
    p = torch.nn.Parameter(torch.zeros(10))
    outs = []
    for _ in range(2):
        p.grad = torch.zeros(10)
        GradientNoise([p], NoiseConfig(eta=1.0), seed=7, device="cpu").apply(3)
        outs.append(p.grad.clone())
    torch.testing.assert_close(outs[0], outs[1])
    p.grad = torch.zeros(10)
    GradientNoise([p], NoiseConfig(eta=0.0), seed=7, device="cpu").apply(3)
    assert torch.count_nonzero(p.grad) == 0


@pytest.mark.parametrize("kind", ["ema", "ma"])
def test_an_overflow_step_leaves_grokfast_as_it_was(kind):
    """fp16: the grad scaler skips a step whose gradients overflowed; the filter must skip it too,
    or its inf stays in the buffers and every later step overflows and is skipped."""
    cfg = GrokfastConfig(kind=kind, alpha=0.9, lamb=2.0, window=2)
    p, grads = _params(6)
    with_inf, reference = Grokfast([p], cfg), Grokfast([p], cfg)
    yes, no = torch.tensor(True), torch.tensor(False)
    for t, g in enumerate(grads):
        if t == 2:  # the overflow step: inf gradients, finite=False
            p.grad = torch.full_like(g, float("inf"))
            with_inf.apply(no)
        p.grad = g.clone()
        with_inf.apply(yes)
        filtered = p.grad.clone()
        p.grad = g.clone()
        reference.apply()  # never saw the overflow
        torch.testing.assert_close(filtered, p.grad, rtol=0, atol=0)
    buffers = with_inf.ema if kind == "ema" else with_inf.total
    assert all(torch.isfinite(b).all() for b in buffers)


def test_an_overflow_on_the_first_step_starts_the_ema_at_zero():
    p, grads = _params(2)
    f = Grokfast([p], GrokfastConfig(kind="ema", alpha=0.9, lamb=2.0))
    p.grad = torch.full_like(grads[0], float("inf"))
    f.apply(torch.tensor(False))
    assert torch.equal(f.ema[0], torch.zeros_like(grads[0]))


def test_grads_finite():
    from trials.filters import grads_finite

    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    p.grad, q.grad = torch.ones(2), torch.ones(3)
    assert bool(grads_finite([p, q]))
    q.grad[1] = float("nan")
    assert not bool(grads_finite([p, q]))


def _draws(noise: GradientNoise, n: int = 4) -> torch.Tensor:
    return torch.randn(n, generator=noise.generator)


def test_no_noise_state_at_zero_noise():
    p = torch.nn.Parameter(torch.zeros(3))
    noise = GradientNoise([p], NoiseConfig(eta=0.0), seed=1, device="cpu")
    assert noise.state_dict() == {}
    # An older checkpoint's generator state, from any device, is ignored at zero noise.
    noise.load_state_dict({"generator": torch.zeros(16, dtype=torch.uint8)})


def test_noise_state_round_trips_on_the_same_device():
    p = torch.nn.Parameter(torch.zeros(3))
    a = GradientNoise([p], NoiseConfig(eta=0.1), seed=1, device="cpu")
    _draws(a)
    state = a.state_dict()
    assert state["generator"]["device"] == "cpu"
    b = GradientNoise([p], NoiseConfig(eta=0.1), seed=99, device="cpu")
    b.load_state_dict(state)
    assert torch.equal(_draws(a), _draws(b))
    legacy = GradientNoise([p], NoiseConfig(eta=0.1), seed=99, device="cpu")  # older format: a bare tensor
    legacy.load_state_dict({"generator": a.generator.get_state()})
    assert torch.equal(_draws(a), _draws(legacy))


@pytest.mark.parametrize("saved", [
    {"device": "cuda", "state": torch.arange(16, dtype=torch.uint8)},  # a CUDA Philox state (seed, offset)
    torch.arange(16, dtype=torch.uint8),  # the same in the older format, untagged
], ids=["tagged", "legacy"])
def test_noise_state_from_another_device_reseeds_the_generator(saved):
    """A checkpoint written on CUDA and resumed on the CPU: the CUDA state cannot be set on a CPU
    generator (torch raises), so the generator is seeded from it: deterministic, a fresh stream."""
    p = torch.nn.Parameter(torch.zeros(3))
    fresh = GradientNoise([p], NoiseConfig(eta=0.1), seed=1, device="cpu")
    with pytest.raises(RuntimeError):
        fresh.generator.set_state(torch.arange(16, dtype=torch.uint8))  # what the old code did
    a = GradientNoise([p], NoiseConfig(eta=0.1), seed=1, device="cpu")
    b = GradientNoise([p], NoiseConfig(eta=0.1), seed=1, device="cpu")
    a.load_state_dict({"generator": saved})
    b.load_state_dict({"generator": saved})
    x = _draws(a)
    assert torch.equal(x, _draws(b))  # the same on every resume of that checkpoint
    assert not torch.equal(x, _draws(fresh))  # not the run's original stream restarted
