"""Model, optimisation and training-loop configs. Owned by `trials`; composed by orchestrator.config.experiment.

Each dataclass checks itself in `validate()`, raising ValueError("field: message") so the
orchestrator can prefix the section and print one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from trials.choices import ACTIVATIONS, ARCHS, INITS, LOSSES, NORMS, OPTIMIZERS, SCHEDULES, WEIGHT_NORM_CLIP_MODES
from trials.limits import (  # noqa: F401  (MAX_* re-exported for callers of the config)
    MAX_BATCH,
    MAX_COUNT,
    MAX_EVALS,
    MAX_LAYERS,
    MAX_PARAMS,
    MAX_STEPS,
    MAX_WIDTH,
    MAX_WINDOW,
    at_most as _at_most,
    estimated_evals,
)


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: got {value!r}, allowed: {', '.join(map(str, allowed))}")


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: got {value!r}, must be {bound}")


def _in_unit(name: str, value, *, closed_low: bool = True, closed_high: bool = False) -> None:
    lo_ok = value >= 0 if closed_low else value > 0
    hi_ok = value <= 1 if closed_high else value < 1
    if not (lo_ok and hi_ok):
        lo, hi = "[" if closed_low else "(", "]" if closed_high else ")"
        raise ValueError(f"{name}: got {value!r}, must be in {lo}0, 1{hi}")


@dataclass
class ModelConfig:
    """A decoder-only transformer (default) or an MLP over concatenated token embeddings."""

    arch: str = "transformer"
    """transformer | mlp"""
    n_layers: int = 2
    """Transformer blocks (hidden layers of the MLP)."""
    d_model: int = 128
    """Width of the token embeddings and the residual stream; divisible by n_heads."""
    n_heads: int = 4
    """Attention heads per block."""
    d_ff: int = 512
    """Hidden width of the feed-forward block (and of the MLP model)."""
    positional: str = "learned"
    """learned | rotary"""
    norm: str = "layernorm"
    """layernorm | rmsnorm | none (norms are computed in float32)"""
    activation: str = "gelu"
    """gelu | relu | swiglu"""
    dropout_emb: float = 0.0
    """Dropout on the token (and position) embeddings."""
    dropout_attn: float = 0.0
    """Dropout on the attention weights."""
    dropout_resid: float = 0.0
    """Dropout on each block's output before it joins the residual stream."""
    dropout_ff: float = 0.0
    """Dropout inside the feed-forward block."""
    init: str = "normal"
    """normal (std 0.02) | xavier | pytorch (each torch module's own default: embeddings N(0, 1), Linear
    weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as research code that builds plain torch
    modules gets; ironjr/grokfast's Adam baseline starts so)"""
    init_scale: float = 1.0
    """Multiplier on every initial weight matrix (Liu et al. 2022: large init slows grokking)."""
    tie_embeddings: bool = False
    """Share the input embedding matrix with the output head."""

    def validate(self) -> None:
        _choice("arch", self.arch, ARCHS)
        for name in ("n_layers", "d_model", "n_heads", "d_ff"):
            _positive(name, getattr(self, name))
        _at_most("n_layers", self.n_layers, MAX_LAYERS)
        for name in ("d_model", "n_heads", "d_ff"):
            _at_most(name, getattr(self, name), MAX_WIDTH)
        # Attention and feed-forward weights per layer; embeddings are small beside them here.
        params = self.n_layers * (4 * self.d_model**2 + 3 * self.d_model * self.d_ff)
        if params > MAX_PARAMS:
            raise ValueError(f"d_model: got {self.d_model} with n_layers={self.n_layers}, d_ff={self.d_ff}: "
                             f"~{params:.2g} parameters, more than {MAX_PARAMS:.0e}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model: got {self.d_model}, must be divisible by n_heads={self.n_heads}")
        if self.positional == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"positional: rotary needs an even head size, got d_model/n_heads={self.d_model // self.n_heads}")
        _choice("positional", self.positional, ("learned", "rotary"))
        _choice("norm", self.norm, NORMS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        for name in ("dropout_emb", "dropout_attn", "dropout_resid", "dropout_ff"):
            _in_unit(name, getattr(self, name))
        _positive("init_scale", self.init_scale)
        _at_most("init_scale", self.init_scale, 1e6)


@dataclass
class GrokfastConfig:
    """Grokfast gradient filters (Lee et al. 2024): amplify the slow component of the gradient."""

    kind: str = "none"
    """none | ema | ma"""
    alpha: float = 0.98
    """EMA momentum."""
    lamb: float = 2.0
    """Amplification of the filtered (slow) gradient."""
    window: int = 100
    """MA window size in steps (the MA filter starts once the window is full)."""

    def validate(self) -> None:
        _choice("kind", self.kind, ("none", "ema", "ma"))
        _in_unit("alpha", self.alpha)
        _positive("lamb", self.lamb, allow_zero=True)
        _positive("window", self.window)
        _at_most("window", self.window, MAX_WINDOW)


@dataclass
class NoiseConfig:
    """Annealed Gaussian gradient noise, variance eta / (1 + t)^gamma (Neelakantan et al. 2015)."""

    eta: float = 0.0
    """0 turns the noise off; the paper uses 0.01, 0.3 or 1.0."""
    gamma: float = 0.55
    """Decay exponent of the noise variance over steps."""

    def validate(self) -> None:
        _positive("eta", self.eta, allow_zero=True)
        _positive("gamma", self.gamma, allow_zero=True)


@dataclass
class OptimConfig:
    name: str = "adamw"
    """adamw (decoupled weight decay) | adam (L2 added to the gradient) | sgd"""
    lr: float = 1e-3
    """Peak learning rate (after warmup; the schedule scales it)."""
    weight_decay: float = 1.0
    """Weight decay: decoupled for adamw and lion, an L2 term in the gradient for adam and sgd."""
    beta1: float = 0.9
    """First-moment decay of Adam/AdamW (Lion: the update's interpolation factor)."""
    beta2: float = 0.98
    """Second-moment decay of Adam/AdamW (Lion: the momentum decay)."""
    eps: float = 1e-8
    """Adam/AdamW denominator epsilon."""
    momentum: float = 0.0
    """SGD momentum."""
    no_decay: list[str] = field(default_factory=lambda: ["bias", "norm"])
    """Parameter groups exempt from weight decay: any of bias, norm, embedding."""
    schedule: str = "constant"
    """constant | cosine | linear | inverse_sqrt | one_cycle (all but one_cycle after linear warmup)"""
    warmup_steps: int = 10
    """Optimizer steps of linear warmup from 0 to lr."""
    min_lr_ratio: float = 0.0
    """Floor of cosine/linear decay as a fraction of lr."""
    one_cycle_pct: float = 0.3
    """one_cycle: fraction of the steps spent rising (as torch OneCycleLR pct_start)."""
    grad_clip: float = 0.0
    """Clip the global L2 gradient norm to this value; 0 turns clipping off."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing (0 = none)."""
    loss: str = LOSSES[0]
    """cross_entropy | stablemax (StableMax cross-entropy, Prieto et al. 2025; no label smoothing)"""
    orthogonal_grad: bool = False
    """⊥Grad (Prieto et al. 2025): remove each tensor's gradient component along its weights."""
    weight_norm_clip: float = 0.0
    """After each step clip every 2-D weight (embeddings and head included) to l2 norm <= this
    (Clip-to-Grok 2026); 0 turns it off."""
    weight_norm_clip_mode: str = WEIGHT_NORM_CLIP_MODES[0]
    """row (each row of a matrix) | matrix (the whole matrix)"""
    muon_lr: float = 0.02
    """muon: learning rate of the hidden weight matrices (the schedule scales it like lr)."""
    muon_momentum: float = 0.95
    """muon: momentum of the Nesterov buffer."""
    grokfast: GrokfastConfig = field(default_factory=GrokfastConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def validate(self) -> None:
        _choice("name", self.name, tuple(OPTIMIZERS))
        _positive("lr", self.lr)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        _in_unit("beta1", self.beta1)
        _in_unit("beta2", self.beta2)
        _positive("eps", self.eps)
        _in_unit("momentum", self.momentum)
        for group in self.no_decay:
            _choice("no_decay", group, ("bias", "norm", "embedding"))
        _choice("schedule", self.schedule, SCHEDULES)
        _positive("warmup_steps", self.warmup_steps, allow_zero=True)
        _at_most("warmup_steps", self.warmup_steps, MAX_STEPS)
        _in_unit("min_lr_ratio", self.min_lr_ratio, closed_high=True)
        _in_unit("one_cycle_pct", self.one_cycle_pct, closed_low=False)
        _positive("grad_clip", self.grad_clip, allow_zero=True)
        _in_unit("label_smoothing", self.label_smoothing)
        _choice("loss", self.loss, LOSSES)
        if self.loss == "stablemax" and self.label_smoothing:
            raise ValueError(f"label_smoothing: got {self.label_smoothing}, loss stablemax takes none; set it to 0")
        _positive("weight_norm_clip", self.weight_norm_clip, allow_zero=True)
        _choice("weight_norm_clip_mode", self.weight_norm_clip_mode, WEIGHT_NORM_CLIP_MODES)
        _positive("muon_lr", self.muon_lr)
        _in_unit("muon_momentum", self.muon_momentum)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    steps: int = 10_000
    """Budget in optimizer steps."""
    batch_size: int = 512
    """Examples per optimizer step (split over grad_accum micro-batches); 0 = full batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (batch_size is split over them)."""
    precision: str = "fp32"
    """fp32 | bf16 (autocast) | fp16 (autocast + grad scaler, CUDA only)"""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass: less memory, more compute."""
    compile: bool = False
    """torch.compile the training forward pass (worth it on CUDA; slow to start on CPU); evals run
    the plain model, so their shapes never recompile it. Turns off share_prefixes."""
    compile_mode: str = "default"
    """torch.compile mode with compile on: default | reduce-overhead (CUDA graphs) | max-autotune |
    max-autotune-no-cudagraphs."""
    tf32: bool = False
    """Let fp32 matmuls on CUDA use TF32 tensor cores (faster; ~1e-3 relative rounding per product).
    Off by default, so fp32 means IEEE fp32; set per run, so a reused worker never inherits it."""
    share_prefixes: bool = True
    """Compute each distinct prefix in a batch once (trials/shared_prefix.py): exact up to float
    rounding, ~1.5x faster fp32 steps on x*y mod 97. CPU only (on CUDA/MPS it would add host
    syncs; not measured there), not with compile, skipped while dropout is active."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps"""
    num_threads: int = 0
    """torch CPU threads; 0 leaves torch's default (sweeps set it from the trial's CPUs)."""
    target_val_acc: float = 0.99
    """Val accuracy that counts as generalised ("grokked")."""
    target_patience: int = 3
    """Stop once val acc >= target for this many consecutive evals (groktune.events, the one
    event rule). 0: never stop at the target; the event (steps_to_target, status "grokked") is
    then still found with groktune.events.DEFAULT_PATIENCE (3) consecutive evals."""
    early_stop_patience: int = 0
    """Stop when val loss has not improved for this many evals; 0 = off."""
    eval_dense_until: int = 100
    """Evaluate every `eval_dense_every` steps up to this step..."""
    eval_dense_every: int = 10
    """Steps between evals up to eval_dense_until."""
    eval_log_ratio: float = 1.1
    """...then at steps growing by this ratio (log-spaced)..."""
    eval_every: int = 200
    """...and also every this many steps."""
    eval_max_examples: int = 0
    """Cap on the train-split examples scored at each eval (0 = all)."""
    train_metrics: str = "full"
    """full: train loss/acc from a pass over the train split at each eval (exact memorisation
    curve) | batches: the mean over the training batches since the last eval (free; what most
    research code logs; lags a little behind the weights)."""
    checkpoint_every: int = 500
    """Save a checkpoint at the first eval at or after every this many steps (and at the end)."""
    per_class_metrics: bool = True
    """Per-class val accuracy and per-layer norms in every record."""

    def validate(self) -> None:
        _positive("steps", self.steps)
        _at_most("steps", self.steps, MAX_STEPS)
        _positive("batch_size", self.batch_size, allow_zero=True)
        _at_most("batch_size", self.batch_size, MAX_BATCH)
        _positive("grad_accum", self.grad_accum)
        _at_most("grad_accum", self.grad_accum, MAX_BATCH)
        if self.batch_size and self.batch_size < self.grad_accum:
            raise ValueError(f"batch_size: got {self.batch_size}, must be >= grad_accum={self.grad_accum}")
        _choice("precision", self.precision, ("fp32", "bf16", "fp16"))
        _choice("train_metrics", self.train_metrics, ("full", "batches"))
        _choice("compile_mode", self.compile_mode, COMPILE_MODES)
        if self.tf32 and self.device in ("cpu", "mps"):
            raise ValueError(f"tf32: TF32 matmuls are CUDA's; got device {self.device!r} (use cuda or auto, or tf32: false)")
        if not (self.device in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:[0-9]{1,3}", self.device)):
            raise ValueError(f"device: got {self.device!r}, allowed: auto, cpu, cuda, cuda:N, mps")
        _positive("num_threads", self.num_threads, allow_zero=True)
        _in_unit("target_val_acc", self.target_val_acc, closed_low=False, closed_high=True)
        _positive("target_patience", self.target_patience, allow_zero=True)
        _positive("early_stop_patience", self.early_stop_patience, allow_zero=True)
        for name in ("eval_dense_until", "eval_max_examples"):
            _positive(name, getattr(self, name), allow_zero=True)
        for name in ("eval_dense_every", "eval_every", "checkpoint_every"):
            _positive(name, getattr(self, name))
        if self.eval_log_ratio <= 1.0:
            raise ValueError(f"eval_log_ratio: got {self.eval_log_ratio}, must be > 1")
        _at_most("num_threads", self.num_threads, 4096)
        for name in ("target_patience", "early_stop_patience"):
            _at_most(name, getattr(self, name), MAX_COUNT)
        for name in ("eval_dense_until", "eval_dense_every", "eval_every", "checkpoint_every"):
            _at_most(name, getattr(self, name), MAX_STEPS)
        _at_most("eval_max_examples", self.eval_max_examples, MAX_BATCH * 64)
        _at_most("eval_log_ratio", self.eval_log_ratio, 1e6)
        evals = estimated_evals(self)
        if evals > MAX_EVALS:
            raise ValueError(f"eval_every: the eval schedule (eval_dense_*, eval_log_ratio, eval_every) "
                             f"gives ~{evals:.2g} evals over {self.steps} steps, more than {MAX_EVALS}")



PROBE_KINDS = ("weights", "activations", "attention", "fourier", "per_class")


@dataclass
class ProbeConfig:
    """Learning-dynamics probes (trials.probes), run on a subset of the evals; off by default.

    Scalars go into the eval record; arrays go to <run dir>/probes/*.npz (and TensorBoard).
    """

    kinds: list[str] = field(default_factory=list)
    """Any of weights, activations, attention, fourier, per_class; empty turns probes off."""
    every: int = 1
    """Probe at every k-th eval (the final eval is always probed)..."""
    log_ratio: float = 1.0
    """...and only once the step is at least this times the previous probe's (1 = no thinning)."""
    batch_size: int = 512
    """Rows of the fixed probe batch (train then val rows, seeded) for activation statistics."""
    attn_examples: int = 4
    """Fixed validation examples whose attention maps are stored."""
    hist_bins: int = 64
    """Bins of each weight histogram (symmetric around 0, out to the tensor's max |w|)."""
    near_zero: float = 1e-3
    """|w| below this counts as near zero."""
    dead_threshold: float = 0.0
    """A hidden unit is dead when its activation never exceeds this on the probe batch."""
    key_power_frac: float = 0.9
    """Counting key frequencies: the fewest strongest frequencies holding this share of the power."""
    n_key_freqs: int = 5
    """Key frequencies of the restricted/excluded losses: the n strongest (the paper's five) of the
    logits at each probe (live losses) and of the final embedding (the hindsight pass, as Nanda
    et al.; trials.probes.hindsight); 0 picks them by key_power_frac instead, which early in
    training, while the spectrum is flat, keeps most frequencies and makes the restricted loss
    meaningless."""
    key_freqs: list[int] = field(default_factory=list)
    """Fixed key frequencies (e.g. a finished run's), overriding both rules above in both passes."""
    hardest_classes: int = 5
    """How many of the lowest-accuracy classes to name in each record."""
    tensorboard: bool = True
    """Also write weight histograms and attention images to <run dir>/tensorboard."""

    def validate(self) -> None:
        for kind in self.kinds:
            _choice("kinds", kind, PROBE_KINDS)
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError(f"kinds: got {self.kinds!r}, each kind at most once")
        for name in ("every", "batch_size", "attn_examples", "hardest_classes"):
            _positive(name, getattr(self, name))
        _at_most("every", self.every, MAX_COUNT)
        _at_most("batch_size", self.batch_size, MAX_BATCH)
        for name in ("attn_examples", "hardest_classes", "hist_bins", "n_key_freqs"):
            _at_most(name, getattr(self, name), 10_000)
        _at_most("log_ratio", self.log_ratio, 1e6)
        if len(self.key_freqs) > 10_000 or any(k > MAX_COUNT for k in self.key_freqs):
            raise ValueError(f"key_freqs: at most 10000 frequencies, each <= {MAX_COUNT}")
        if self.log_ratio < 1.0:
            raise ValueError(f"log_ratio: got {self.log_ratio}, must be >= 1")
        if self.hist_bins < 2:
            raise ValueError(f"hist_bins: got {self.hist_bins}, must be >= 2")
        _positive("near_zero", self.near_zero, allow_zero=True)
        _in_unit("key_power_frac", self.key_power_frac, closed_low=False, closed_high=True)
        _positive("n_key_freqs", self.n_key_freqs, allow_zero=True)
        for k in self.key_freqs:
            _positive("key_freqs", k)


STRUCTURAL = ("task", "model.arch", "model.n_layers", "model.d_model", "model.n_heads", "model.d_ff",
              "model.positional", "model.norm", "model.activation", "model.tie_embeddings", "train",
              "optim.name", "optim.loss", "optim.no_decay", "optim.orthogonal_grad", "optim.weight_norm_clip_mode",
              "optim.grokfast.kind", "optim.grokfast.window", "probes")
"""Config keys (and sections) every member of a population shares; everything else is per member."""


def is_structural(key: str) -> bool:
    """Whether a dotted config key ("model.d_model", "train.batch_size") is, or lies in, a STRUCTURAL one."""
    return any(key == s or key.startswith(s + ".") for s in STRUCTURAL)


def structural_part(point: dict) -> dict:
    """The structural entries of a dotted-key point ({"train.batch_size": 64, "optim.lr": 0.01} ->
    {"train.batch_size": 64}): two points of one base config fit one population when these are equal."""
    return {k: v for k, v in point.items() if is_structural(k)}
