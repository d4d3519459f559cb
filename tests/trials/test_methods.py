"""The grokking methods beyond Adam and SGD against their formulas, each reference written here independently
(numpy float64 or plain torch ops): StableMax, ⊥Grad, weight-norm clipping, Lion, Muon."""

import numpy as np
import pytest
import torch

from trials.config import OptimConfig
from trials.losses import stablemax_cross_entropy, stablemax_s, training_loss
from trials.optim import build_optimizer, hidden_matrices
from trials.optim_extra import clip_weight_norms_, newton_schulz5, orthogonal_grads


def _ref_stablemax_loss(x: np.ndarray, y: np.ndarray) -> float:
    s = np.where(x >= 0, x + 1.0, 1.0 / (1.0 - np.minimum(x, 0.0)))
    p = s / s.sum(axis=1, keepdims=True)
    return float(-np.log(p[np.arange(len(y)), y]).mean())


def test_stablemax_s_is_the_published_piecewise_function():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0])
    expected = [1 / 4, 1 / 2, 1 / 1.5, 1.0, 1.5, 3.0]  # 1/(1-x) below 0, x+1 from 0
    assert torch.allclose(stablemax_s(x), torch.tensor(expected))


def test_stablemax_loss_matches_a_float64_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(scale=5.0, size=(64, 11))
    y = rng.integers(0, 11, size=64)
    ours = stablemax_cross_entropy(torch.tensor(x, dtype=torch.float32), torch.tensor(y)).item()
    assert ours == pytest.approx(_ref_stablemax_loss(x.astype(np.float32).astype(np.float64), y), rel=1e-6)


def test_stablemax_gradient_matches_finite_differences_of_the_reference():
    rng = np.random.default_rng(1)
    x = rng.normal(scale=3.0, size=(5, 7))
    y = rng.integers(0, 7, size=5)
    xt = torch.tensor(x, requires_grad=True)  # float64
    stablemax_cross_entropy(xt, torch.tensor(y)).backward()
    h, fd = 1e-6, np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        fd[idx] = (_ref_stablemax_loss(up, y) - _ref_stablemax_loss(down, y)) / (2 * h)
    assert np.abs(xt.grad.numpy() - fd).max() < 1e-5
    assert np.abs(fd).max() > 1e-3


def test_stablemax_keeps_a_gradient_where_softmax_collapses():
    # Softmax Collapse (Prieto et al. 2025): in float32 softmax CE of a confident row is exactly 0
    x = torch.tensor([[120.0, 0.0, -5.0]], requires_grad=True)
    y = torch.tensor([0])
    ce = torch.nn.functional.cross_entropy(x, y)
    assert ce.item() == 0.0
    loss = stablemax_cross_entropy(x, y)
    assert loss.item() == pytest.approx(-np.log(121 / (121 + 1 + 1 / 6)), rel=1e-6)
    loss.backward()
    assert x.grad.abs().max() > 0


def test_training_loss_dispatches_on_optim_loss():
    x, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    ce = training_loss(x, y, OptimConfig(loss="cross_entropy"))
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(x, y).item())
    sm = training_loss(x, y, OptimConfig(loss="stablemax"))
    assert sm.item() == pytest.approx(_ref_stablemax_loss(x.double().numpy(), y.numpy()), rel=1e-6)
    with pytest.raises(ValueError, match="optim.loss: got 'focal'"):
        training_loss(x, y, OptimConfig(loss="focal"))


def _ref_orthogonal(w: np.ndarray, g: np.ndarray) -> np.ndarray:
    wf, gf = w.ravel(), g.ravel()
    perp = gf - (wf @ gf) / (wf @ wf + 1e-30) * wf
    return (perp * np.linalg.norm(gf) / (np.linalg.norm(perp) + 1e-30)).reshape(g.shape)


def test_orthogonal_grad_removes_the_component_along_each_tensor_and_keeps_its_norm():
    torch.manual_seed(0)
    f64 = torch.float64
    ws = [torch.randn(6, 4, dtype=f64), torch.randn(5, dtype=f64), torch.zeros(3, dtype=f64)]
    gs = [w + 0.3 * torch.randn_like(w) for w in ws[:2]] + [torch.randn(3, dtype=torch.float64)]  # aligned with w
    out = orthogonal_grads(ws, gs)
    for w, g, o in zip(ws, gs, out):
        assert abs(torch.dot(o.ravel(), w.ravel()).item()) < 1e-10 * (1 + w.norm().item() * g.norm().item())
        assert o.norm().item() == pytest.approx(g.norm().item(), rel=1e-12)
        assert np.allclose(o.numpy(), _ref_orthogonal(w.numpy(), g.numpy()), rtol=0, atol=1e-12)
    assert torch.equal(out[2], gs[2])  # a zero tensor has no direction to remove


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Embedding(5, 4), torch.nn.Linear(4, 6), torch.nn.LayerNorm(6), torch.nn.Linear(6, 3)
    ).double()


def _grads(model, t):
    torch.manual_seed(100 + t)
    x = torch.randint(0, 5, (8,))
    for p in model.parameters():
        p.grad = None
    (model(x) - 0.5).pow(2).sum().backward()


def _max_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd", "lion", "muon"])
def test_orthogonal_grad_wraps_any_optimizer(name):
    """The wrapped update equals the base optimizer's update on the reference-projected gradient."""
    kw = dict(name=name, lr=1e-2, weight_decay=0.1, momentum=0.9, muon_lr=0.05, no_decay=["bias"])
    ours, theirs = _model(), _model()
    opt = build_optimizer(ours, OptimConfig(orthogonal_grad=True, **kw))
    ref = build_optimizer(theirs, OptimConfig(orthogonal_grad=False, **kw))
    for t in range(5):
        _grads(ours, t)
        _grads(theirs, t)
        for p in theirs.parameters():
            p.grad = torch.tensor(_ref_orthogonal(p.detach().numpy(), p.grad.numpy()))
        opt.step()
        ref.step()
    assert _max_diff(ours, theirs) < 1e-12
    assert _max_diff(ours, _model()) > 1e-3


def _ref_clip(w: np.ndarray, c: float, mode: str) -> np.ndarray:
    if mode == "matrix":
        n = np.sqrt((w**2).sum())
        return w * min(1.0, c / n)
    n = np.sqrt((w**2).sum(axis=1, keepdims=True))
    return w * np.minimum(1.0, c / n)


@pytest.mark.parametrize("mode", ["row", "matrix"])
def test_weight_norm_clipping_matches_numpy(mode):
    torch.manual_seed(0)
    w = torch.randn(8, 5, dtype=torch.float64) * torch.linspace(0.1, 3, 8, dtype=torch.float64).unsqueeze(1)
    b = torch.randn(8, dtype=torch.float64) * 10
    expected, b0 = _ref_clip(w.numpy().copy(), 2.0, mode), b.clone()
    clip_weight_norms_([w, b], 2.0, mode)
    assert np.allclose(w.numpy(), expected, rtol=0, atol=1e-12)
    assert torch.equal(b, b0)  # 1-D parameters are not clipped
    if mode == "row":
        assert (w.norm(dim=1) <= 2.0 + 1e-12).all() and (w.norm(dim=1) < 1.9).any()  # small rows untouched
    before = w.clone()
    clip_weight_norms_([w], 0.0, mode)
    assert torch.equal(w, before)  # 0 turns it off


def test_optimizer_clips_every_matrix_after_the_step_embeddings_included():
    model = _model()
    opt = build_optimizer(model, OptimConfig(name="adamw", lr=0.5, weight_decay=0.0, weight_norm_clip=0.3))
    _grads(model, 0)
    opt.step()
    for name, p in model.named_parameters():
        if p.ndim == 2:
            assert (p.norm(dim=1) <= 0.3 + 1e-12).all(), name
    assert model[2].weight.abs().max() > 0.3  # the LayerNorm gain (1-D) is not clipped


def test_lion_matches_a_hand_written_reference_over_several_steps():
    cfg = OptimConfig(name="lion", lr=1e-2, weight_decay=0.5, beta1=0.9, beta2=0.99, no_decay=["bias", "norm"])
    ours, theirs = _model(), _model()
    opt = build_optimizer(ours, cfg)
    decayed = {n for n, _ in theirs.named_parameters() if n in ("0.weight", "1.weight", "3.weight")}
    state = {n: np.zeros(p.shape) for n, p in theirs.named_parameters()}
    for t in range(6):
        _grads(ours, t)
        opt.step()
        _grads(theirs, t)
        with torch.no_grad():
            for n, p in theirs.named_parameters():
                w, g, m = p.numpy(), p.grad.numpy(), state[n]
                c = 0.9 * m + 0.1 * g
                wd = 0.5 if n in decayed else 0.0
                p.copy_(torch.tensor(w - 1e-2 * (np.sign(c) + wd * w)))
                state[n] = 0.99 * m + 0.01 * g
    assert _max_diff(ours, theirs) < 1e-12
    assert _max_diff(ours, _model()) > 1e-2


def _ref_ns5(g: np.ndarray) -> np.ndarray:
    x = g / (np.linalg.norm(g) + 1e-7)
    if g.shape[0] > g.shape[1]:
        return _ref_ns5(g.T).T
    for _ in range(5):
        a = x @ x.T
        x = 3.4445 * x + (-4.7750 * a + 2.0315 * a @ a) @ x
    return x


@pytest.mark.parametrize("shape", [(32, 16), (16, 48), (20, 20)])
def test_newton_schulz_is_close_to_the_orthogonal_polar_factor(shape):
    torch.manual_seed(0)
    g = torch.randn(*shape, dtype=torch.float64)
    out = newton_schulz5(g)
    u, _, vt = torch.linalg.svd(g, full_matrices=False)
    polar = u @ vt
    # same singular vectors as g: U^T out V is diagonal, its entries (the new singular values) near 1
    core = u.T @ out @ vt.T
    off = core - torch.diag(torch.diagonal(core))
    assert off.abs().max() < 1e-8
    sv = torch.diagonal(core)
    assert sv.min() > 0.5 and sv.max() < 1.3
    cos = (out * polar).sum() / (out.norm() * polar.norm())
    assert cos > 0.97
    assert np.allclose(out.numpy(), _ref_ns5(g.numpy()), rtol=0, atol=1e-10)


def test_muon_matches_a_reference_and_uses_adamw_for_the_rest():
    cfg = OptimConfig(name="muon", lr=1e-2, muon_lr=0.05, muon_momentum=0.9, weight_decay=0.1,
                      beta1=0.9, beta2=0.98, no_decay=["bias", "norm"])
    ours, theirs = _model(), _model()
    opt = build_optimizer(ours, cfg)
    hidden = hidden_matrices(theirs)
    assert hidden == {"1.weight", "3.weight"}  # 2-D, not the embedding (no `head` in this model)
    named = dict(theirs.named_parameters())
    rest = [p for n, p in named.items() if n not in hidden]
    adamw = torch.optim.AdamW([{"params": [p for p in rest if p.ndim == 2], "weight_decay": 0.1},
                               {"params": [p for p in rest if p.ndim < 2], "weight_decay": 0.0}],
                              lr=1e-2, betas=(0.9, 0.98), eps=1e-8)
    bufs = {n: np.zeros(named[n].shape) for n in hidden}
    for t in range(5):
        _grads(ours, t)
        opt.step()
        _grads(theirs, t)
        adamw.step()  # only the non-hidden parameters
        with torch.no_grad():
            for n in hidden:
                w, g = named[n].numpy(), named[n].grad.numpy()
                bufs[n] = 0.9 * bufs[n] + 0.1 * g
                u = _ref_ns5(0.1 * g + 0.9 * bufs[n]) * max(1.0, g.shape[0] / g.shape[1]) ** 0.5
                named[n].copy_(torch.tensor(w * (1 - 0.05 * 0.1) - 0.05 * u))
    assert _max_diff(ours, theirs) < 1e-10
    assert _max_diff(ours, _model()) > 1e-2


def test_muon_leaves_embeddings_and_head_of_the_real_models_to_adamw():
    from trials.config import ModelConfig
    from trials.model import MLP, Transformer

    t = Transformer(ModelConfig(n_layers=1, d_model=16, n_heads=2, d_ff=32), vocab_size=9, seq_len=4)
    names = hidden_matrices(t)
    assert names and all(n.startswith("blocks.") and n.endswith(".weight") for n in names)
    m = MLP(ModelConfig(arch="mlp", d_model=16, d_ff=32), vocab_size=9, seq_len=4)
    assert hidden_matrices(m) and not any(n.startswith(("embed", "head")) for n in hidden_matrices(m))
