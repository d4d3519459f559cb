"""Prefix sharing (trials/shared_prefix.py): the plan is right, and it changes nothing but speed."""

from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.trials.test_train import collect
from trials.config import ModelConfig
from trials.model import MAX_SHARED_LEN, build_model
from trials.setup import build_run
from trials.shared_prefix import plan_prefixes

VARIANTS = [
    {"n_layers": 1},
    {"n_layers": 2},
    {"n_layers": 3, "positional": "rotary", "norm": "rmsnorm", "activation": "swiglu"},
    {"n_layers": 2, "norm": "none", "activation": "relu", "tie_embeddings": True},
]


def algorithmic_batch(B: int, T: int, vocab: int, seed: int = 0) -> torch.Tensor:
    """Like [a, op, b, =]: few distinct first tokens, a constant token, then free tokens."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (B, T), generator=g)
    x[:, 0] %= 5
    x[:, 1] = 3
    x[:, -1] = vocab - 1
    return x


def test_plan_of_a_small_batch():
    x = torch.tensor([[1, 5, 2, 9], [1, 5, 3, 9], [2, 5, 2, 9], [1, 5, 2, 9]])
    plan = plan_prefixes(x)
    # distinct prefixes: [1],[2] | [1,5],[2,5] | [1,5,2],[1,5,3],[2,5,2] | the same three + 9
    assert plan.row_pos.tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 3, 3]
    assert plan.last_start == 7
    rows = plan.example_row.tolist()
    assert rows[0] == rows[3] and len(set(rows)) == 3  # examples 0 and 3 are one sequence
    assert plan.visible.sum(1).tolist() == [1, 1, 2, 2, 3, 3, 3, 4, 4, 4]
    # first-block inputs: (0,1),(0,2),(1,5),(2,2),(2,3),(3,9) -> 6 distinct (position, token) pairs
    assert len(plan.input_tok) == 6


@settings(max_examples=50, deadline=None)
@given(B=st.integers(1, 40), T=st.integers(1, 6), vocab=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_every_row_context_spells_the_prefix_of_its_examples(B, T, vocab, seed):
    x = torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))
    plan = plan_prefixes(x)
    row_tok = plan.input_tok[plan.input_row]  # (R,) the token each row ends with
    assert torch.equal(plan.input_pos[plan.input_row], plan.row_pos)
    # rows are distinct prefixes: no two rows spell the same tokens
    spelled = [tuple(row_tok[plan.context[r, : int(plan.row_pos[r]) + 1]].tolist()) for r in range(len(row_tok))]
    assert len(set(spelled)) == len(spelled)
    # each example's full row spells the example
    for b in range(B):
        r = plan.last_start + int(plan.example_row[b])
        assert spelled[r] == tuple(x[b].tolist())
        # and the context of its full row is the chain of its own prefixes
        for s in range(T):
            assert spelled[int(plan.context[r, s])] == tuple(x[b, : s + 1].tolist())


def _logits_and_grads(model, x, share: bool):
    model.share_prefixes = share
    model.zero_grad()
    out = model(x)
    (out.float().sin().sum()).backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("kw", VARIANTS)
def test_shared_forward_and_gradients_equal_the_plain_ones(kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_heads=4, d_ff=64, **kw), vocab_size=12, seq_len=4)
    x = algorithmic_batch(64, 4, 12)
    plain, plain_grads = _logits_and_grads(model, x, share=False)
    shared, shared_grads = _logits_and_grads(model, x, share=True)
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-6)
    for name, g in plain_grads.items():  # float32 rounding, relative to the gradient's scale
        err = (shared_grads[name] - g).abs().max() / g.abs().max().clamp_min(1e-12)
        assert err < 1e-5, (name, err.item())


def test_under_bf16_autocast_sharing_is_as_accurate_as_the_plain_forward():
    """Rows shared by many examples sum their gradients in float32, as the plain matmuls do."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_heads=4, d_ff=64, n_layers=2), vocab_size=12, seq_len=4)
    x = algorithmic_batch(256, 4, 12)  # the last token is the same in all 256 examples

    def grads(share: bool, bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out, g = _logits_and_grads(model, x, share)
        return out.float(), torch.cat([t.flatten() for t in g.values()])

    ref_out, ref = grads(share=False, bf16=False)
    plain_out, plain = grads(share=False, bf16=True)
    shared_out, shared = grads(share=True, bf16=True)
    torch.testing.assert_close(shared_out, plain_out, rtol=0.05, atol=0.02)
    plain_err = ((plain - ref).norm() / ref.norm()).item()
    shared_err = ((shared - ref).norm() / ref.norm()).item()
    assert shared_err < 1.5 * plain_err + 1e-3, (shared_err, plain_err)


def test_active_dropout_falls_back_to_the_plain_forward():
    model = build_model(ModelConfig(d_model=16, n_heads=2, d_ff=32, dropout_ff=0.5), vocab_size=12, seq_len=4)
    assert not model.train().can_share_prefixes()  # one mask per row would not be per example
    assert model.eval().can_share_prefixes()  # eval draws no masks
    model.share_prefixes = False
    assert not model.can_share_prefixes()


def test_training_with_and_without_sharing_gives_the_same_curve(tiny_cfg):
    run = build_run(tiny_cfg())
    assert _uses_sharing(run.model, run.data.train_x[:16])  # on by default, and used at this batch size
    assert not build_run(tiny_cfg(train={"compile": True})).model.can_share_prefixes()
    on = collect(tiny_cfg(train={"steps": 40}))[1]
    off = collect(tiny_cfg(train={"steps": 40, "share_prefixes": False}))[1]
    assert [r["step"] for r in on] == [r["step"] for r in off]
    for a, b in zip(on, off):
        for key in ("train_loss", "val_loss", "val_acc", "param_norm", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["step"], key)


def _uses_sharing(model, x) -> bool:
    with mock.patch.object(model, "_forward_shared", wraps=model._forward_shared) as shared:
        model(x)
    return shared.called


def test_sharing_is_used_only_where_it_pays():
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=16, n_heads=2, d_ff=32), vocab_size=12, seq_len=20)
    assert _uses_sharing(model, algorithmic_batch(64, 4, 12))  # few distinct [a], [a, op]
    # all prefixes distinct from the first token on: nothing to share
    distinct = torch.stack([torch.arange(8), torch.arange(8).flip(0), torch.arange(8) % 3, torch.arange(8) % 5], 1)
    assert not _uses_sharing(model, distinct)
    # long inputs: gathering T keys per row would cost more than it saves (MAX_SHARED_LEN)
    assert not _uses_sharing(model, algorithmic_batch(64, MAX_SHARED_LEN + 1, 12))
