"""Decoder-only transformer and MLP for algorithmic tasks. Imports only torch (and trials' configs).

Activations, norms and architectures are built from name-keyed tables (ACTIVATION_MODULES,
NORM_MODULES, ARCH_MODULES) whose keys are exactly trials.choices' names, which trials/config.py
validates against: an unknown name is refused at validation, never built as something else.

`forward(x, last_only=True)` returns logits for the last position only (B, V): on the
algorithmic tasks the answer is predicted there, so the final norm and unembedding run on one
position instead of T (exact, and cheaper). Language modelling uses `last_only=False` (B, T, V).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from trials.choices import ACTIVATIONS, ARCHS, NORMS
from trials.config import ModelConfig
from trials.rotary import apply_rotary, rotary_tables
from trials.shared_prefix import PrefixPlan, block_on_rows, plan_prefixes, take

MAX_SHARED_LEN = 16
"""Prefix sharing only for inputs this short: each row gathers the keys of all T positions, so
its attention costs grow with T. Measured per train step on the 2-core CPU (d=128, batch 512,
sparse parity): T=9 11 vs 22 ms plain, T=13 50 vs 113, T=17 135 vs 137, T=25 261 vs 190."""
MAX_SHARED_ROWS = 0.8
"""... and only when the distinct prefixes are at most this share of the batch's B*T positions
(x*y mod 97: 0.59)."""


class RMSNorm(nn.Module):
    """RMSNorm computed in float32 (stable under bf16/fp16 autocast), cast back to the input dtype."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the autocast dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


class SwiGLU(nn.Module):
    """silu(a) * b over the two halves (a, b) of its input (Shazeer 2020): the layer before it
    projects to `widen` times the hidden width."""

    widen = 2

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, b = h.chunk(2, dim=-1)  # (..., 2 * d_ff) -> two (..., d_ff)
        return F.silu(a) * b


ACTIVATION_MODULES: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "swiglu": SwiGLU}
"""trials.choices.ACTIVATIONS -> module class (a class attribute `widen` > 1 asks the layer before
it for that many times the hidden width)."""

NORM_MODULES: dict[str, Callable[[int], nn.Module]] = {
    "layernorm": FP32LayerNorm,
    "rmsnorm": RMSNorm,
    "none": lambda dim: nn.Identity(),
}
"""trials.choices.NORMS -> builder taking the normalised width."""


def _same_names(table: dict, names: tuple[str, ...], what: str) -> None:
    # A builder without its name (or a name without a builder) would be refused or unbuildable.
    if tuple(table) != names:
        raise RuntimeError(f"trials.model: {what} builders {tuple(table)} differ from trials.choices {names}")


_same_names(ACTIVATION_MODULES, ACTIVATIONS, "activation")
_same_names(NORM_MODULES, NORMS, "norm")


def _lookup(table: dict, kind: str, what: str):
    if kind not in table:
        raise ValueError(f"model.{what}: got {kind!r}, allowed: {', '.join(table)}")
    return table[kind]


def make_norm(kind: str, dim: int) -> nn.Module:
    """The norm named `kind` (trials.choices.NORMS) over `dim` features; ValueError if unknown."""
    return _lookup(NORM_MODULES, kind, "norm")(dim)


def make_activation(kind: str) -> nn.Module:
    """The activation named `kind` (trials.choices.ACTIVATIONS); ValueError if unknown."""
    return _lookup(ACTIVATION_MODULES, kind, "activation")()


def activation_widen(kind: str) -> int:
    """How many times the hidden width the layer before activation `kind` must output."""
    return getattr(_lookup(ACTIVATION_MODULES, kind, "activation"), "widen", 1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout_attn
        self.resid_drop = nn.Dropout(cfg.dropout_resid)
        self.rotary = cfg.positional == "rotary"

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, last_only: bool = False
    ) -> torch.Tensor:
        """Causal self-attention; with last_only, only the last position's output (B, 1, C).

        last_only is exact: the last query attends to every key, so no mask is needed, and the
        queries of the other positions (and everything after them) are never computed.
        """
        B, T, C = x.shape
        H, hd = self.n_heads, C // self.n_heads
        if last_only:
            w, b = self.qkv.weight, self.qkv.bias
            q = F.linear(x[:, -1:].contiguous(), w[:C], b[:C])  # (B, 1, C); contiguous keeps vmap fast
            k, v = F.linear(x, w[C:], b[C:]).split(C, dim=2)  # each (B, T, C)
        else:
            q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q = q.view(B, -1, H, hd).transpose(1, 2)  # (B, H, Tq, hd)
        k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (k, v))  # (B, H, T, hd)
        if rope is not None:
            cos, sin = rope
            q = apply_rotary(q, cos[-q.shape[2]:], sin[-q.shape[2]:])
            k = apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=not last_only and T > 1, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, Tq, hd)
        y = y.transpose(1, 2).reshape(B, -1, C)
        return self.resid_drop(self.proj(y))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, activation_widen(cfg.activation) * cfg.d_ff)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model)
        self.act = make_activation(cfg.activation)
        self.drop_ff = nn.Dropout(cfg.dropout_ff)
        self.drop_resid = nn.Dropout(cfg.dropout_resid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.up(x))  # (B, T, d_ff) (swiglu: from (B, T, 2*d_ff))
        return self.drop_resid(self.down(self.drop_ff(h)))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + ff(norm(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = make_norm(cfg.norm, cfg.d_model)
        self.attn = Attention(cfg)
        self.norm2 = make_norm(cfg.norm, cfg.d_model)
        self.ff = FeedForward(cfg)

    def forward(self, x: torch.Tensor, rope=None, last_only: bool = False) -> torch.Tensor:
        a = self.attn(self.norm1(x), rope, last_only)  # (B, T, C) or (B, 1, C)
        x = (x[:, -1:] if last_only else x) + a
        return x + self.ff(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, seq_len: int):
        super().__init__()
        self.cfg = cfg
        self.seq_len = seq_len
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.pos = nn.Embedding(seq_len, cfg.d_model) if cfg.positional == "learned" else None
        self.drop = nn.Dropout(cfg.dropout_emb)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = make_norm(cfg.norm, cfg.d_model)
        self.head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        if cfg.positional == "rotary":
            cos, sin = rotary_tables(seq_len, cfg.d_model // cfg.n_heads)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.activation_checkpointing = False
        self.share_prefixes = True
        """Compute each distinct prefix of a batch once (trials/shared_prefix.py) when exact."""
        init_weights(self, cfg)

    def can_share_prefixes(self) -> bool:
        """Prefix sharing is exact only when no dropout mask is drawn."""
        c = self.cfg
        dropout = self.training and max(c.dropout_emb, c.dropout_attn, c.dropout_resid, c.dropout_ff) > 0
        return self.share_prefixes and not dropout and not (self.activation_checkpointing and self.training)

    def forward(self, x: torch.Tensor, last_only: bool = True) -> torch.Tensor:
        if last_only and self.can_share_prefixes() and x.shape[1] <= MAX_SHARED_LEN:
            plan = plan_prefixes(x)
            if len(plan.row_pos) <= MAX_SHARED_ROWS * x.numel():
                return self._forward_shared(x, plan)
        B, T = x.shape
        h = self.embed(x)  # (B, T, C)
        if self.pos is not None:
            h = h + self.pos.weight[:T]
        rope = (self.rope_cos[:T], self.rope_sin[:T]) if self.pos is None else None
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            # The last block computes only the answer position when that is all that is scored.
            last = last_only and i == len(self.blocks) - 1
            if self.activation_checkpointing and self.training:
                h = checkpoint(block, h, rope, last, use_reentrant=False)
            else:
                h = block(h, rope, last)
        if last_only:
            h = h[:, -1]  # (B, C): only the answer position is scored
        return self.head(self.norm(h))  # (B, V) or (B, T, V)

    def _forward_shared(self, x: torch.Tensor, plan: PrefixPlan) -> torch.Tensor:
        """Answer logits (B, V) computing every distinct prefix of the batch (plan) once."""
        T = x.shape[1]
        h = self.embed(plan.input_tok)  # (U, C): one row per distinct (position, token)
        if self.pos is not None:
            h = h + self.pos.weight[plan.input_pos]
        rope = (self.rope_cos[:T], self.rope_sin[:T]) if self.pos is None else None
        gather = plan.input_row
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            queries = slice(plan.last_start, None) if last else slice(None)
            h = block_on_rows(block, h, plan, rope, gather, queries)
            gather = None
        logits = self.head(self.norm(h))  # (distinct sequences, V)
        return take(logits, plan.example_row)


class MLP(nn.Module):
    """Concatenated token embeddings -> hidden layers -> norm -> answer logits (last position only).

    Each hidden layer is Linear -> cfg.activation -> Dropout(dropout_ff) (`body`; swiglu doubles
    the Linear's output, as in the transformer's feed-forward). cfg.norm is applied once, to the
    last hidden layer's output before the head (`norm`, like the transformer's final norm);
    "none" leaves it out.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, seq_len: int):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        layers: list[nn.Module] = []
        width = seq_len * cfg.d_model
        for _ in range(cfg.n_layers):
            layers += [nn.Linear(width, activation_widen(cfg.activation) * cfg.d_ff), make_activation(cfg.activation)]
            layers.append(nn.Dropout(cfg.dropout_ff))
            width = cfg.d_ff
        self.body = nn.Sequential(*layers)
        self.norm = make_norm(cfg.norm, width)
        self.head = nn.Linear(width, vocab_size, bias=False)
        self.activation_checkpointing = False
        init_weights(self, cfg)

    def forward(self, x: torch.Tensor, last_only: bool = True) -> torch.Tensor:
        if not last_only:
            raise ValueError("model.arch=mlp predicts one answer per sequence; use a transformer for lm")
        h = self.embed(x).flatten(1)  # (B, T*C)
        return self.head(self.norm(self.body(h)))  # (B, V)


ARCH_MODULES: dict[str, type[nn.Module]] = {"transformer": Transformer, "mlp": MLP}
"""trials.choices.ARCHS -> model class."""
_same_names(ARCH_MODULES, ARCHS, "arch")


def init_weights(model: nn.Module, cfg: ModelConfig) -> None:
    """Initial weights by cfg.init (trials.choices.INITS), weight matrices times init_scale.

    normal: N(0, 0.02) matrices; xavier: Xavier-uniform matrices; both with zero biases and unit
    norms. pytorch: every module's own reset_parameters() (nn.Embedding N(0, 1), nn.Linear
    U(+-1/sqrt(fan_in)) weights and biases, norms ones/zeros), what plain torch research code gets;
    ironjr/grokfast's Adam baseline starts so, its embeddings ~50x larger than normal's.
    """
    if cfg.init == "pytorch":
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    for name, p in model.named_parameters():
        if p.dim() < 2:
            if name.endswith("bias") and cfg.init != "pytorch":
                nn.init.zeros_(p)
            continue
        if cfg.init == "xavier":
            nn.init.xavier_uniform_(p)
        elif cfg.init == "normal":
            nn.init.normal_(p, std=0.02)
        with torch.no_grad():
            p.mul_(cfg.init_scale)


def build_model(cfg: ModelConfig, vocab_size: int, seq_len: int) -> nn.Module:
    """The model named by cfg.arch for a vocabulary and input length."""
    return _lookup(ARCH_MODULES, cfg.arch, "arch")(cfg, vocab_size, seq_len)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


