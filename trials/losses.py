"""Training losses: softmax cross-entropy and StableMax cross-entropy (optim.loss).

StableMax (Prieto et al. 2025, "Grokking at the edge of numerical stability") replaces exp in the
softmax by s(x) = x + 1 for x >= 0 and 1 / (1 - x) for x < 0, so that the probabilities of
well-fitted examples cannot round to exactly 1 (Softmax Collapse) and the gradient does not
vanish after memorisation. As in the paper's code the loss is computed in float64: the point of
the method is to stay away from the floating-point edge.

Only the training objective changes: the eval records' train_loss/val_loss stay softmax
cross-entropy (trials.metrics), so curves of runs with either loss compare on one scale, and
accuracy is the same under both (s is increasing, so the argmax is the logits' argmax).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trials.choices import LOSSES


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """s(x) = x + 1 (x >= 0), 1 / (1 - x) (x < 0): positive, increasing, linear for large x."""
    # clamp keeps the unused branch finite (1/(1-x) has a pole at x = 1), so no NaN gradient leaks
    return torch.where(x >= 0, x + 1.0, 1.0 / (1.0 - x.clamp(max=0.0)))


def stablemax_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of -log(s(x_target) / sum_j s(x_j)) over the rows, computed in float64.

    Args:
        logits: (N, V) scores.
        target: (N,) class indices.
    Returns:
        The mean loss as a float32 scalar.
    """
    s = stablemax_s(logits.double())  # (N, V)
    log_p = torch.log(s) - torch.log(s.sum(dim=-1, keepdim=True))  # (N, V)
    return -log_p.gather(-1, target.unsqueeze(-1)).mean().float()


def training_loss(logits: torch.Tensor, target: torch.Tensor, optim_cfg) -> torch.Tensor:
    """The loss optim.loss names, mean over rows (label smoothing for cross_entropy only).

    Args:
        logits: (N, V) scores (any float dtype; computed in float32 or float64).
        target: (N,) class indices.
        optim_cfg: the OptimConfig (its loss and label_smoothing).
    Returns:
        A scalar loss.
    Raises:
        ValueError: optim_cfg.loss is not in trials.choices.LOSSES.
    """
    if optim_cfg.loss == "cross_entropy":
        return F.cross_entropy(logits.float(), target, label_smoothing=optim_cfg.label_smoothing)
    if optim_cfg.loss == "stablemax":
        return stablemax_cross_entropy(logits, target)
    raise ValueError(f"optim.loss: got {optim_cfg.loss!r}, allowed: {', '.join(LOSSES)}")


__all__ = ["stablemax_cross_entropy", "stablemax_s", "training_loss"]
