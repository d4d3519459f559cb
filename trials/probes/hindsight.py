"""The Fourier hindsight pass of Nanda et al. 2023: key frequencies fixed from the FINAL model's
embedding spectrum, then the restricted loss (test pairs) and the excluded loss (training pairs)
at every probe step with those same frequencies. See trials.probes.fourier for what is projected.

Per probe step the collector writes a side file fourier_steps/<step>.npz (trials.probes.store)
with what the pass needs and nothing more: the (a, b)-mean and sum-direction coefficients of
the full-grid logits (float64) and the logits of the training pairs (float32, as the model
produced them), n_train * p * 4 bytes per probe step. The pass runs when the collector closes
and adds to fourier.npz (run constants, under static/):
    hindsight_keys          (K,)   the key frequencies, from the last probe's embed_power
    hindsight_steps         (S',)  the probe steps that had a side file
    hindsight_restricted_loss / _acc, hindsight_excluded_loss / _acc   (S',)
"""

from __future__ import annotations

import numpy as np
import torch

from trials.probes import fourier as fr

SIDE_KIND = "fourier"


def side_arrays(mean: torch.Tensor, coef: torch.Tensor, train_logits: torch.Tensor) -> dict[str, np.ndarray]:
    """What one probe step keeps for the hindsight pass (see the module docstring)."""
    return {"mean": mean.to(torch.float64).numpy(), "coef": coef.to(torch.float64).numpy(),
            "train_logits": train_logits.to(torch.float32).numpy()}


def hindsight_keys(embed_power: np.ndarray, pc) -> list[int]:
    """The key frequencies of the final embedding spectrum, by the probes config's rule:
    `key_freqs` if set, else the `n_key_freqs` strongest, else the fewest holding `key_power_frac`."""
    return fr.choose_key_freqs(torch.as_tensor(embed_power, dtype=torch.float64), pc.key_power_frac,
                               pc.n_key_freqs, pc.key_freqs)


def hindsight_pass(store, labels: torch.Tensor, train_mask: torch.Tensor, sign: int, pc) -> dict | None:
    """Both losses at every stored probe step with the final embedding's key frequencies.

    Args:
        store: the run's trials.probes.store.ProbeStore (holds fourier.npz's series and side files).
        labels, train_mask: (p, p) answer classes and training pairs (trials.probes.FourierGrid).
        sign: +1 for x+y, -1 for x-y.
        pc: the probes config (key-frequency rule).
    Returns:
        The static arrays written (module docstring), or None when there was nothing to do.
    """
    series = store.series.get(SIDE_KIND, {})
    if not series.get("embed_power"):
        return None
    keys = hindsight_keys(series["embed_power"][-1], pc)
    names = [f"hindsight_{k}_{m}" for k in ("restricted", "excluded") for m in ("loss", "acc")]
    rows: dict[str, list[float]] = {name: [] for name in names}
    steps = []
    for step in series["step"]:
        side = store.load_side(SIDE_KIND, int(step))
        if side is None:
            continue
        losses = fr.split_losses(torch.from_numpy(side["mean"]), torch.from_numpy(side["coef"]),
                                 torch.from_numpy(side["train_logits"]), labels, train_mask, sign, keys)
        steps.append(int(step))
        for key, value in losses.items():
            rows[f"hindsight_{key}"].append(value)
    static = {"hindsight_keys": np.array(keys, dtype=np.int64), "hindsight_steps": np.array(steps, dtype=np.int64),
              **{k: np.array(v, dtype=np.float64) for k, v in rows.items()}}
    store.set_static(SIDE_KIND, static)
    return static
