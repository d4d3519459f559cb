"""The optimisers against torch.optim itself, and the schedules at their key steps."""

import copy
import math

import pytest
import torch

from trials.config import OptimConfig
from trials.optim import build_optimizer, lr_multiplier, param_groups


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Embedding(5, 4), torch.nn.Linear(4, 6), torch.nn.LayerNorm(6), torch.nn.Linear(6, 3)
    ).double()


def _run(model, opt, steps=7, set_lr=None):
    torch.manual_seed(1)
    for t in range(steps):
        x = torch.randint(0, 5, (8,))
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        if set_lr:
            set_lr(opt, t)
        opt.step()


def _max_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    "name,ref",
    [
        ("adamw", lambda ps, c: torch.optim.AdamW(ps, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)),
        ("adam", lambda ps, c: torch.optim.Adam(ps, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)),
        ("sgd", lambda ps, c: torch.optim.SGD(ps, lr=c.lr, momentum=c.momentum)),
    ],
)
def test_steps_match_torch_optim_with_no_decay_groups(name, ref):
    cfg = OptimConfig(name=name, lr=3e-2, weight_decay=0.3, beta1=0.8, beta2=0.95, momentum=0.9,
                      no_decay=["bias", "norm", "embedding"])
    ours, theirs = _model(), _model()
    opt = build_optimizer(ours, cfg)
    groups = param_groups(theirs, cfg.no_decay)
    ref_opt = ref([{"params": g["params"], "weight_decay": cfg.weight_decay if g["decay"] else 0.0}
                   for g in groups], cfg)
    _run(ours, opt)
    _run(theirs, ref_opt)
    assert _max_diff(ours, theirs) < 1e-12
    assert _max_diff(ours, _model()) > 1e-3  # it did move


def test_lr_can_change_every_step_like_torch():
    cfg = OptimConfig(name="adamw", lr=1e-2, weight_decay=0.1, no_decay=[])
    ours, theirs = _model(), _model()
    opt = build_optimizer(ours, cfg)
    ref = torch.optim.AdamW(theirs.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-8)

    def set_lr(o, t):
        for g in o.param_groups:
            g["lr"] = 1e-2 / (t + 1)

    _run(ours, opt, set_lr=set_lr)
    _run(theirs, ref, set_lr=set_lr)
    assert _max_diff(ours, theirs) < 1e-12


def test_param_groups_put_bias_norm_embedding_where_asked():
    model = _model()
    groups = {g["decay"]: set(g["names"]) for g in param_groups(model, ["bias", "norm", "embedding"])}
    assert groups[True] == {"1.weight", "3.weight"}
    assert groups[False] == {"0.weight", "1.bias", "2.weight", "2.bias", "3.bias"}
    (only,) = param_groups(model, [])
    assert only["decay"] and len(only["names"]) == 7


def test_state_dict_round_trip_continues_identically():
    cfg = OptimConfig(name="adamw", lr=1e-2, weight_decay=0.1)
    a = _model()
    opt_a = build_optimizer(a, cfg)
    _run(a, opt_a, steps=3)
    b = copy.deepcopy(a)
    opt_b = build_optimizer(b, cfg)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    _run(a, opt_a, steps=3)
    _run(b, opt_b, steps=3)
    assert _max_diff(a, b) == 0.0


def sched(**kw):
    return OptimConfig(**{"lr": 1.0, "warmup_steps": 10, **kw})


def test_warmup_is_linear_then_constant():
    cfg = sched(schedule="constant")
    assert lr_multiplier(0, cfg, 100) == pytest.approx(0.1)
    assert lr_multiplier(4, cfg, 100) == pytest.approx(0.5)
    assert lr_multiplier(9, cfg, 100) == 1.0
    assert lr_multiplier(99, cfg, 100) == 1.0


def test_cosine_decays_to_the_floor():
    cfg = sched(schedule="cosine", min_lr_ratio=0.1)
    assert lr_multiplier(10, cfg, 110) == pytest.approx(1.0)
    assert lr_multiplier(60, cfg, 110) == pytest.approx(0.55)  # halfway: (1 + floor) / 2
    assert lr_multiplier(110, cfg, 110) == pytest.approx(0.1)


def test_linear_decay_and_inverse_sqrt():
    lin = sched(schedule="linear", min_lr_ratio=0.0)
    assert lr_multiplier(60, lin, 110) == pytest.approx(0.5)
    assert lr_multiplier(110, lin, 110) == pytest.approx(0.0)
    inv = sched(schedule="inverse_sqrt")
    assert lr_multiplier(9, inv, 1000) == pytest.approx(1.0)
    assert lr_multiplier(39, inv, 1000) == pytest.approx(0.5)  # sqrt(10 / 40)
    assert lr_multiplier(999, inv, 1000) == pytest.approx(math.sqrt(10 / 1000))


def test_one_cycle_matches_torch_onecyclelr():
    total = 200
    cfg = sched(schedule="one_cycle", one_cycle_pct=0.3)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=total, pct_start=0.3,
                                              cycle_momentum=False)
    for step in range(total):
        assert lr_multiplier(step, cfg, total) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        ref.step()


def test_loading_a_state_keeps_this_configs_weight_decay():
    """Resume / PBT: a perturbed weight decay acts after the restore; moments come from the state."""
    a = _model()
    opt_a = build_optimizer(a, OptimConfig(weight_decay=0.1))
    _run(a, opt_a, steps=2)
    opt_b = build_optimizer(a, OptimConfig(weight_decay=0.7, no_decay=["bias", "norm"]))
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    assert sorted(g["weight_decay"] for g in opt_b.param_groups) == [0.0, 0.7]
    assert all(g["t"] == 2 for g in opt_b.param_groups)


# --- one table of optimizers for single runs and populations -----------------------

TORCH_OPTIMIZERS = {
    "adamw": lambda groups, c: torch.optim.AdamW(groups, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps),
    "adam": lambda groups, c: torch.optim.Adam(groups, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps),
    "sgd": lambda groups, c: torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum),
}
"""The torch.optim reference of every name in trials.choices.OPTIMIZERS that populations run."""

HAND_WRITTEN = {"lion", "muon"}
"""Names torch has no optimizer for: their references are written in tests/trials/test_methods.py,
and populations refuse them (trials.population_optim.unsupported_methods)."""


def test_every_optimizer_name_has_a_reference():
    from trials.choices import OPTIMIZERS
    from trials.population_optim import POPULATION_UPDATES

    assert set(TORCH_OPTIMIZERS) | HAND_WRITTEN == set(OPTIMIZERS)  # a new name needs its reference here
    assert set(TORCH_OPTIMIZERS) == {n for n, r in OPTIMIZERS.items() if r.update in POPULATION_UPDATES}


def _float_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 6), torch.nn.LayerNorm(6),
                               torch.nn.Linear(6, 3))


@pytest.mark.parametrize("name", list(TORCH_OPTIMIZERS))
def test_a_population_member_updates_as_the_single_run_and_torch_optim(name):
    """Same parameters, same gradients: member 0 of a population, trials.optim and torch.optim."""
    from trials.filters import GradientNoise
    from trials.population_model import build_layout, flatten_members, split_rows
    from trials.population_optim import PopulationOptimizer

    cfg = OptimConfig(name=name, lr=3e-2, weight_decay=0.3, beta1=0.8, beta2=0.95, momentum=0.9,
                      no_decay=["bias", "norm"])
    other = OptimConfig(name=name, lr=1e-2, weight_decay=0.0, beta1=0.9, beta2=0.99, momentum=0.5,
                        no_decay=["bias", "norm"])  # a second member with other values, to be ignored
    single, ref_model = _float_model(), _float_model()
    opt = build_optimizer(single, cfg)
    ref = TORCH_OPTIMIZERS[name]([{"params": g["params"], "weight_decay": cfg.weight_decay if g["decay"] else 0.0}
                                  for g in param_groups(ref_model, cfg.no_decay)], cfg)
    layout = build_layout(single, cfg.no_decay)
    flat = flatten_members([single, _float_model()], layout, torch.device("cpu"))
    noises = [GradientNoise(list(single.parameters()), c.noise, 0, torch.device("cpu")) for c in (cfg, other)]
    pop = PopulationOptimizer([cfg, other], noises, layout, torch.device("cpu"))
    gen = torch.Generator().manual_seed(5)
    for _ in range(6):
        grads = {n: torch.randn(p.shape, generator=gen) for n, p in single.named_parameters()}
        for model in (single, ref_model):
            for n, p in model.named_parameters():
                p.grad = grads[n].clone()
        row = torch.cat([grads[n].reshape(-1) for n in layout.names])
        opt.step()
        ref.step()
        pop.step(flat, torch.stack([row, row]), lr_factor=1.0)
    assert _max_diff(single, ref_model) < 1e-6
    assert _max_diff(single, _float_model()) > 1e-3  # it did move
    by_name = dict(single.named_parameters())
    for n, part in zip(layout.names, split_rows(flat, layout)):
        torch.testing.assert_close(part[0].view(by_name[n].shape), by_name[n].detach(), rtol=1e-6, atol=1e-7)


def test_an_unknown_optimizer_name_is_refused_in_one_line_on_both_paths():
    from trials.config import OptimConfig as Cfg
    from trials.filters import GradientNoise
    from trials.population_model import build_layout
    from trials.population_optim import PopulationOptimizer

    bad = Cfg(name="lamb")
    want = r"optim\.name: got 'lamb', allowed: adamw, adam, sgd, lion, muon$"
    with pytest.raises(ValueError, match=want):
        build_optimizer(_float_model(), bad)
    model = _float_model()
    noise = GradientNoise(list(model.parameters()), bad.noise, 0, torch.device("cpu"))
    with pytest.raises(ValueError, match=want):
        PopulationOptimizer([bad], [noise], build_layout(model, bad.no_decay), torch.device("cpu"))
    with pytest.raises(ValueError, match=r"^name: got 'lamb', allowed: adamw, adam, sgd, lion, muon$"):
        bad.validate()
    lion = Cfg(name="lion")  # a known name that populations do not implement: refused, never run as adam
    with pytest.raises(ValueError, match=r"^population: optim\.name 'lion' is not supported; use adamw, adam, sgd$"):
        PopulationOptimizer([lion], [noise], build_layout(model, lion.no_decay), torch.device("cpu"))


def _vaswani(s: int, d_model: int, warmup: int) -> float:
    """Vaswani et al. 2017, eq. 3: d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5)."""
    return d_model**-0.5 * min(s**-0.5, s * warmup**-1.5)


@pytest.mark.parametrize("warmup", [1, 10, 400])
def test_inverse_sqrt_is_vaswanis_formula_normalised_to_peak_lr(warmup):
    cfg = sched(schedule="inverse_sqrt", warmup_steps=warmup)
    for d_model in (128, 512):  # the normalisation cancels the width factor
        peak = _vaswani(warmup, d_model, warmup)
        for step in (0, warmup // 2, warmup - 1, warmup, 3 * warmup, 10_000):
            assert lr_multiplier(step, cfg, 20_000) == pytest.approx(_vaswani(step + 1, d_model, warmup) / peak,
                                                                     rel=1e-12)
    assert max(lr_multiplier(s, cfg, 20_000) for s in range(3 * warmup)) == pytest.approx(1.0)


def test_an_unknown_schedule_is_refused_not_run_as_linear():
    with pytest.raises(ValueError, match=r"optim\.schedule: got 'noam', allowed: constant, cosine"):
        lr_multiplier(50, sched(schedule="noam"), 100)
