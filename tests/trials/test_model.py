"""The model: shapes, causality, the exact last-position shortcut, options."""

import pytest
import torch

from trials.config import ModelConfig
from trials.model import RMSNorm, build_model

VARIANTS = [
    {},
    {"positional": "rotary", "norm": "rmsnorm", "activation": "swiglu"},
    {"norm": "none", "activation": "relu", "init": "xavier", "n_layers": 3},
]


@pytest.mark.parametrize("kw", VARIANTS)
def test_last_only_equals_the_last_row_of_the_full_forward(kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_heads=4, d_ff=64, **kw), vocab_size=11, seq_len=6).eval()
    x = torch.randint(0, 11, (5, 6))
    full = model(x, last_only=False)  # (B, T, V)
    assert full.shape == (5, 6, 11)
    torch.testing.assert_close(model(x), full[:, -1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", VARIANTS)
def test_causal(kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_heads=4, d_ff=64, **kw), vocab_size=11, seq_len=6).eval()
    x = torch.randint(0, 11, (2, 6))
    y = x.clone()
    y[:, 4:] = (y[:, 4:] + 1) % 11  # change the future
    torch.testing.assert_close(model(x, last_only=False)[:, :4], model(y, last_only=False)[:, :4])


def test_tied_embeddings_share_one_tensor_and_init_scale_scales():
    tied = build_model(ModelConfig(tie_embeddings=True), 10, 4)
    assert tied.head.weight is tied.embed.weight
    torch.manual_seed(0)
    a = build_model(ModelConfig(init_scale=1.0), 10, 4)
    torch.manual_seed(0)
    b = build_model(ModelConfig(init_scale=3.0), 10, 4)
    torch.testing.assert_close(b.blocks[0].ff.up.weight, 3 * a.blocks[0].ff.up.weight)


def test_rmsnorm_is_computed_in_float32():
    norm = RMSNorm(8)
    x = torch.randn(4, 8).to(torch.bfloat16) * 1e3
    want = (x.float() / x.float().pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()).to(torch.bfloat16)
    torch.testing.assert_close(norm(x), want)


def test_mlp_model_and_activation_checkpointing_gradients():
    mlp = build_model(ModelConfig(arch="mlp", d_model=8, d_ff=16), 10, 4)
    assert mlp(torch.randint(0, 10, (3, 4))).shape == (3, 10)
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=16, n_heads=2, d_ff=32), 10, 4)
    x = torch.randint(0, 10, (6, 4))
    grads = []
    for ckpt in (False, True):
        model.zero_grad()
        model.activation_checkpointing = ckpt
        model(x).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g0, g1)


# --- registries: every name is built as itself, unknown names are refused ----------


def _mlp_reference(model, x, activation, norm):
    """The MLP's forward written out from its parameters (no module of trials.model is called)."""
    h = model.embed.weight[x].flatten(1)  # (B, T*C)
    for lin in [m for m in model.body if isinstance(m, torch.nn.Linear)]:
        h = h @ lin.weight.T + lin.bias
        if activation == "swiglu":
            a, b = h.chunk(2, dim=-1)
            h = a * torch.sigmoid(a) * b
        elif activation == "relu":
            h = h.clamp_min(0)
        else:
            h = 0.5 * h * (1 + torch.erf(h / 2**0.5))
    if norm == "layernorm":
        mean, var = h.mean(-1, keepdim=True), h.var(-1, unbiased=False, keepdim=True)
        h = (h - mean) / torch.sqrt(var + 1e-5) * model.norm.weight + model.norm.bias
    elif norm == "rmsnorm":
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * model.norm.weight
    return h @ model.head.weight.T  # (B, V)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm", "none"])
@pytest.mark.parametrize("activation", ["gelu", "relu", "swiglu"])
def test_the_mlp_honours_its_activation_and_norm(activation, norm):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="mlp", n_layers=2, d_model=8, d_ff=12, activation=activation, norm=norm),
                        vocab_size=10, seq_len=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))  # norm weights and biases away from 1 and 0, so they count
    widen = 2 if activation == "swiglu" else 1
    assert model.body[0].weight.shape == (widen * 12, 24) and model.body[3].weight.shape == (widen * 12, 12)
    x = torch.randint(0, 10, (5, 3))
    torch.testing.assert_close(model(x), _mlp_reference(model, x, activation, norm), rtol=1e-5, atol=1e-5)


def test_the_tables_hold_exactly_the_validated_names():
    from trials.choices import ACTIVATIONS, ARCHS, NORMS
    from trials.model import ACTIVATION_MODULES, ARCH_MODULES, NORM_MODULES

    assert tuple(ACTIVATION_MODULES) == ACTIVATIONS and tuple(NORM_MODULES) == NORMS and tuple(ARCH_MODULES) == ARCHS


def test_activation_modules_are_found_by_the_probes():
    """trials.probes.activations hooks the MLP's activation modules: swiglu's too."""
    from trials.probes.activations import activation_layers

    for activation in ("gelu", "relu", "swiglu"):
        model = build_model(ModelConfig(arch="mlp", n_layers=2, d_model=8, d_ff=12, activation=activation), 10, 3)
        assert list(activation_layers(model)) == ["body.1", "body.4"], activation


@pytest.mark.parametrize("field,value,allowed", [
    ("activation", "tanh", "gelu, relu, swiglu"),
    ("norm", "batchnorm", "layernorm, rmsnorm, none"),
    ("arch", "cnn", "transformer, mlp"),
])
def test_unknown_model_names_are_refused_in_one_line(field, value, allowed):
    cfg = ModelConfig(**{field: value})
    with pytest.raises(ValueError, match=rf"^{field}: got '{value}', allowed: {allowed}$"):
        cfg.validate()
    with pytest.raises(ValueError, match=rf"^model\.{field}: got '{value}', allowed: {allowed}$"):
        build_model(cfg, 10, 3)  # unvalidated: still no fallback


def test_pytorch_init_is_each_modules_own_default_times_init_scale():
    """init: pytorch gives what plain torch modules get (ironjr/grokfast's baseline): N(0, 1)
    embeddings, Linear weights and biases within 1/sqrt(fan_in); init_scale still multiplies."""
    cfg = ModelConfig(d_model=128, n_heads=4, d_ff=512, init="pytorch")
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=99, seq_len=5)
    assert 0.9 < model.embed.weight.std().item() < 1.1  # nn.Embedding: N(0, 1)
    up = model.blocks[0].ff.up
    bound = 1 / 128 ** 0.5  # nn.Linear: kaiming_uniform(a=sqrt 5) = U(+-1/sqrt(fan_in))
    assert up.weight.abs().max().item() <= bound and up.weight.abs().max().item() > 0.9 * bound
    assert up.bias.abs().max().item() > 0.5 * bound  # biases are drawn too, not zeroed
    assert model.norm.weight.eq(1).all()
    normal = build_model(ModelConfig(d_model=128, n_heads=4, d_ff=512), vocab_size=99, seq_len=5)
    assert normal.embed.weight.std().item() < 0.03
    torch.manual_seed(0)
    scaled = build_model(ModelConfig(d_model=128, n_heads=4, d_ff=512, init="pytorch", init_scale=0.5), 99, 5)
    torch.testing.assert_close(scaled.embed.weight, 0.5 * model.embed.weight)
    torch.testing.assert_close(scaled.blocks[0].ff.up.bias, model.blocks[0].ff.up.bias)


def test_unknown_init_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="init: got 'kaiming', allowed: normal, xavier, pytorch"):
        ModelConfig(init="kaiming").validate()
