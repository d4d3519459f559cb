"""Everything a training run needs, built from the config: device, data, model, optimiser, filters."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import torch
import torch.nn as nn

from groktune.errors import SetupError
from tasks.base import AlgorithmicData
from tasks.lm import TokenStream
from tasks.registry import build_task
from trials.checkpoint import generator_state, restore_generator
from trials.filters import GradientNoise, Grokfast
from trials.model import build_model
from trials.optim import Optimizer, build_optimizer


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu; otherwise the named device if it is available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SetupError(f"train.device: got {name!r}, but no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SetupError("train.device: got 'mps', but MPS is not available")
    return torch.device(name)


def autocast_factory(precision: str, device: torch.device) -> Callable[[], Any]:
    """A zero-argument context-manager factory for the forward passes."""
    if precision == "fp32":
        return contextlib.nullcontext
    if precision == "fp16" and device.type != "cuda":
        raise SetupError(f"train.precision: fp16 needs a CUDA device, got {device.type}; use bf16 or fp32")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)


def prepare_device(device: torch.device, tc: Any) -> None:
    """Per-run settings of the device, so a worker that trains one run after another carries
    nothing from the last one: the TF32 choice (train.tf32), the peak-memory counter (a trial's
    peak_memory_mb is its own), and torch.compile's caches (a new model would otherwise be
    recompiled against the old one's guards until dynamo's cache limit turns compilation off)."""
    if device.type == "cuda":
        set_tf32(tc.tf32)
        torch.cuda.reset_peak_memory_stats(device)
    if tc.compile:
        torch._dynamo.reset()


def set_tf32(on: bool) -> None:
    """TF32 for CUDA fp32 matmuls and convolutions on or off (the fp32_precision API where torch has it)."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "tf32" if on else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if on else "ieee"
    else:
        matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


class IndexSampler:
    """Batches as index draws over a dataset that lives on the device.

    Each epoch is a fresh permutation (drawn with this sampler's own generator, on the device
    for CUDA: no host-to-device copy per epoch), cut into batches; batch_size 0 or >= n means full
    batch. The state (generator, permutation, position) goes into checkpoints so a resumed run
    draws the same batches (trials.checkpoint.restore_generator: after a move between CPU and
    CUDA, a stream seeded from the saved state).
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device):
        self.n = n
        self.batch = n if batch_size <= 0 or batch_size >= n else batch_size
        self.device = device
        self.generator = torch.Generator(device=device if device.type == "cuda" else "cpu")
        self.generator.manual_seed(seed)
        self.perm = torch.arange(n, device=device)
        self.pos = n  # forces a new permutation on the first draw

    def next(self) -> torch.Tensor:
        if self.batch == self.n:
            return self.perm
        if self.pos + self.batch > self.n:
            self.perm = torch.randperm(self.n, generator=self.generator, device=self.generator.device).to(self.device)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return idx

    def state_dict(self) -> dict:
        return {"generator": generator_state(self.generator), "perm": self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        restore_generator(self.generator, state["generator"])
        self.perm = state["perm"].to(self.device)
        self.pos = int(state["pos"])


@dataclass
class Run:
    """The built pieces of one training run."""

    cfg: Any
    device: torch.device
    data: AlgorithmicData | TokenStream
    model: nn.Module
    forward: Callable
    optimizer: Optimizer
    grokfast: Grokfast
    noise: GradientNoise
    scaler: torch.amp.GradScaler | None
    autocast: Callable
    sampler: IndexSampler | None
    batch_generator: torch.Generator
    class_index: torch.Tensor | None = None
    named_params: list = field(default_factory=list)
    batch_window: dict = field(default_factory=dict)
    """train.train_metrics=batches: device sums of loss/hits/count since the last eval."""


def build_run(cfg: Any) -> Run:
    """Seed, pick the device, build data/model/optimiser/filters; nothing is trained yet."""
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = pick_device(cfg.train.device)
    prepare_device(device, cfg.train)
    autocast = autocast_factory(cfg.train.precision, device)
    data = build_task(cfg.task, seed=cfg.seed, device=device)
    lm = isinstance(data, TokenStream)
    if lm and cfg.model.arch != "transformer":
        raise SetupError("model.arch: the lm task needs arch=transformer")
    torch.manual_seed(cfg.seed)  # initialisation and dropout
    model = build_model(cfg.model, data.vocab_size, data.seq_len).to(device)
    model.activation_checkpointing = cfg.train.activation_checkpointing
    # Prefix sharing has data-dependent shapes (torch.unique): torch.compile would retrace, and on
    # an accelerator every step would wait for the host (a sync per position). CPU only.
    model.share_prefixes = cfg.train.share_prefixes and not cfg.train.compile and device.type == "cpu"
    # Evals run the plain model: their batch shapes (whole splits, chunk remainders) would each
    # recompile a compiled one, and they are a small part of the time.
    forward = torch.compile(model, mode=cfg.train.compile_mode) if cfg.train.compile else model
    optimizer = build_optimizer(model, cfg.optim)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    class_index = None
    if not lm:
        class_index = torch.full((data.vocab_size,), -1, dtype=torch.long, device=device)
        class_index[data.answer_tokens.to(device)] = torch.arange(len(data.answer_tokens), device=device)
    batch_generator = torch.Generator(device="cpu")
    batch_generator.manual_seed(cfg.seed + 1)
    return Run(
        cfg=cfg,
        device=device,
        data=data,
        model=model,
        forward=forward,
        optimizer=optimizer,
        grokfast=Grokfast(params, cfg.optim.grokfast),
        noise=GradientNoise(params, cfg.optim.noise, seed=cfg.seed + 2, device=device),
        scaler=torch.amp.GradScaler("cuda") if cfg.train.precision == "fp16" else None,
        autocast=autocast,
        sampler=None if lm else IndexSampler(len(data.train_y), cfg.train.batch_size, cfg.seed + 1, device),
        batch_generator=batch_generator,
        class_index=class_index,
        named_params=list(model.named_parameters()),
    )


def config_sections(cfg: Any) -> dict:
    """The config sections a checkpoint must match to be resumed (task and model)."""
    return {"task": dataclasses.asdict(cfg.task), "model": dataclasses.asdict(cfg.model)}
