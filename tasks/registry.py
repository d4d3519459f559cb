"""build_task: the dispatch from a validated TaskConfig to its dataset (torch).

The checks and the table of task names are in tasks.config (torch-free); BUILDERS has one entry
per name there (tests/tasks/test_registry.py checks both tables agree).
"""

from __future__ import annotations

from typing import Callable

import torch

from tasks.base import AlgorithmicData
from tasks.config import TaskConfig, check_task
from tasks.lm import TokenStream
from tasks.mixture import build_mixture
from tasks.modular import build_modular
from tasks.permutation import build_s5
from tasks.sparse_parity import build_sparse_parity

# Task name -> (cfg, train_fraction, seed) -> the dataset on the CPU (lm: a TokenStream).
BUILDERS: dict[str, Callable[[TaskConfig, float, int], AlgorithmicData | TokenStream]] = {
    "modular": lambda c, frac, seed: build_modular(c.op, c.p, frac, seed),
    "s5": lambda c, frac, seed: build_s5(c.op, frac, seed),
    "sparse_parity": lambda c, frac, seed: build_sparse_parity(c.n_bits, c.k_bits, c.n_samples, frac, seed),
    "lm": lambda c, frac, seed: TokenStream(c.path, c.context_length, frac, c.val_windows),
    "mixture": lambda c, frac, seed: build_mixture(list(c.ops), c.p, frac, seed),
}


def build_task(
    cfg: TaskConfig, seed: int, device: str | torch.device = "cpu"
) -> AlgorithmicData | TokenStream:
    """Validate `cfg` and build its dataset: a pure function of (cfg, seed).

    Args:
        cfg: the task section of the experiment config.
        seed: the experiment seed (splits, sparse-parity draws).
        device: where the tensors (or the LM batches) go.
    Returns:
        AlgorithmicData on `device` for modular, s5, sparse_parity and mixture; a TokenStream
        for lm.
    Raises:
        ValueError: an invalid field (one line); DataError: an unusable lm file.
    """
    check_task(cfg)
    return BUILDERS[cfg.name](cfg, float(cfg.train_fraction), seed).to(device)


__all__ = ["BUILDERS", "build_task"]
