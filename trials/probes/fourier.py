"""Fourier progress measures of modular-addition models, after Nanda et al. 2023, "Progress
measures for grokking via mechanistic interpretability" (arXiv:2301.05217; their code:
neelnanda-io/Grokking). Imports only torch; everything runs on float64 CPU tensors.

Frequencies are k = 0 .. p//2 with w_k = 2*pi*k/p. What is projected, exactly:

- **Embedding spectrum** (`embedding_power`): E (p, d) is the token-embedding rows of the
  residues 0..p-1. F (p, p) is the orthonormal real Fourier basis over the residues a (rows: the
  constant, then cos(w_k a) and sin(w_k a) for k = 1..p//2, each normalised; no sin row at the
  Nyquist k = p/2 of an even p). power[k] = sum over the rows r of frequency k of ||(F E)_r||^2;
  the powers sum to ||E||_F^2. **Key frequencies** are read off this spectrum
  (`choose_key_freqs`: the n strongest non-constant k, default the paper's 5; or the fewest
  holding `frac` of the non-constant power; or a fixed list), as the paper read its five off the
  final model's embedding.
- **Logits** L[a, b, c]: the model's output at the last position for the input "a op b =", for
  every pair (a, b) of the p x p grid, restricted to the p answer tokens (the classes are the p
  residues c; the op and "=" tokens are dropped, as the paper's model has p outputs).
- **Sum directions**: for x+y the generalising circuit writes
  L(a, b, c) ~ sum_k alpha_k cos(w_k (a + b - c)), which for each answer c lies in the span of
  u_k(a, b) = cos(w_k (a + b)) and v_k(a, b) = sin(w_k (a + b)) over the grid (a - b for x-y).
  Each logit column L[., ., c] is projected onto the normalised u_k, v_k (coefficients
  coef[k-1, 0|1, c]) and onto the constant (its (a, b)-mean, mean[c]). The paper's code
  (`get_restricted_loss`) projects the MLP neuron activations onto the same cos/sin(w_k(a+b))
  plus the mean and maps them through W_out W_U; projecting the logits themselves is the same
  for the neuron path and also covers the direct paths, and works for any model here.
  (The four 2-D DFT products cos/sin(w_k a) * cos/sin(w_k b) also hold the a - b directions,
  which are not kept.) logit_power[k] = sum_c A^2 + B^2; logit_power[0] = p*p * sum_c mean_c^2.
- **Restricted loss** (key frequencies K): cross-entropy, over the *test* pairs, of the logits
  rebuilt from their (a, b)-mean plus the u_k, v_k components for k in K only (the paper
  evaluates it on the test data: it falls as the circuit forms, before test accuracy moves).
- **Excluded loss** (the same K): cross-entropy, over the *training* pairs, of the logits with
  the u_k, v_k components for k in K removed (the mean kept). A memorising solution is spread
  over all frequencies and survives; the generalising circuit does not.
- **Hindsight pass** (`ProbeCollector.close`): the paper fixes K from the *final* model's
  embedding spectrum and evaluates both losses at every checkpoint with that K. The collector
  does the same after the last probe from per-step side files (training-pair logits plus
  mean/coef) and stores the result, K included, in fourier.npz.
- Per probe ("live"), the losses use K = the current logits' strongest frequencies along the sum
  directions (or `probes.key_freqs` when set); this needs no hindsight but K moves while the
  model learns. The count must stay small: projecting the logits on *all* sum directions
  averages them along the anti-diagonals a + b = s, which turns even a memorised lookup table
  into a generalising one.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

SUM_SIGNS = {"x+y": 1, "x-y": -1}
"""Operations whose answer is a linear function a + sign*b of the operands (mod p)."""


def n_freqs(p: int) -> int:
    """Number of non-constant frequencies, p // 2."""
    return p // 2


@lru_cache(maxsize=8)
def fourier_basis(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal real Fourier basis over Z_p (cached: do not modify the result).

    Returns:
        (basis (p, p) float64 with one basis vector per row, freq (p,) long: each row's k).
    """
    a = torch.arange(p, dtype=torch.float64)
    rows, freq = [torch.ones(p, dtype=torch.float64)], [0]
    for k in range(1, n_freqs(p) + 1):
        angle = 2 * math.pi * k * a / p
        rows.append(torch.cos(angle))
        freq.append(k)
        if 2 * k != p:  # sin(pi * a) = 0 at the Nyquist frequency of an even p
            rows.append(torch.sin(angle))
            freq.append(k)
    basis = torch.stack(rows)  # (p, p)
    basis = basis / basis.norm(dim=1, keepdim=True)
    return basis, torch.tensor(freq)


def embedding_power(embed: torch.Tensor) -> torch.Tensor:
    """Power of the residue embeddings per frequency.

    Args:
        embed: (p, d) embedding rows of the residues 0..p-1.
    Returns:
        (p//2 + 1,) float64: power[k], k = 0 (constant) .. p//2; sums to ||embed||^2.
    """
    p = embed.shape[0]
    basis, freq = fourier_basis(p)
    coef = basis @ embed.detach().to("cpu", torch.float64)  # (p, d)
    return torch.zeros(n_freqs(p) + 1, dtype=torch.float64).index_add_(0, freq, coef.pow(2).sum(1))


def key_count(power: torch.Tensor, frac: float) -> int:
    """The fewest frequencies (constant excluded) whose power reaches `frac` of the total."""
    share = power[1:] / power[1:].sum().clamp_min(1e-300)
    cum = share.sort(descending=True).values.cumsum(0)
    return int((cum < frac - 1e-12).sum()) + 1


def effective_freqs(power: torch.Tensor) -> float:
    """exp(entropy) of the non-constant power shares: 1 for one frequency, p//2 for a flat one."""
    share = power[1:] / power[1:].sum().clamp_min(1e-300)
    share = share[share > 0]
    return float(torch.exp(-(share * share.log()).sum()))


def choose_key_freqs(power: torch.Tensor, frac: float, n: int = 0, fixed: list[int] | None = None) -> list[int]:
    """Key frequencies: `fixed` if given, else the n strongest, else the fewest holding `frac`.

    Args:
        power: (p//2 + 1,) power per frequency (index 0, the constant, is never a key).
    Returns:
        Sorted frequencies in 1..p//2.
    """
    top = n_freqs_of(power)
    if fixed:
        return sorted({k for k in fixed if 1 <= k <= top})
    count = min(n, top) if n else key_count(power, frac)
    order = torch.argsort(power[1:], descending=True, stable=True) + 1
    return sorted(order[:count].tolist())


def n_freqs_of(power: torch.Tensor) -> int:
    return power.shape[0] - 1


@lru_cache(maxsize=8)
def sum_directions(p: int, sign: int) -> torch.Tensor:
    """Normalised cos/sin(w_k (a + sign*b)) over the grid, k = 1..p//2 (cached: read only).

    Returns:
        (p//2, 2, p, p) float64; the sin direction of an even p's Nyquist frequency is zero.
    """
    a = torch.arange(p, dtype=torch.float64)
    s = a[:, None] + sign * a[None, :]  # (p, p)
    k = torch.arange(1, n_freqs(p) + 1, dtype=torch.float64)[:, None, None]
    angle = 2 * math.pi * k * s / p  # (K, p, p)
    dirs = torch.stack((torch.cos(angle), torch.sin(angle)), dim=1)  # (K, 2, p, p)
    norm = dirs.flatten(2).norm(dim=2)[..., None, None]
    return torch.where(norm > 1e-9, dirs / norm.clamp_min(1e-300), torch.zeros_like(dirs))


def logit_coefficients(logits: torch.Tensor, sign: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and sum-direction coefficients of every logit column over the (a, b) grid.

    Args:
        logits: (p, p, V) logits L[a, b, c] for every pair.
        sign: +1 for a + b, -1 for a - b.
    Returns:
        (mean (V,), coef (p//2, 2, V)): coef[k-1, 0, c] = <L[:, :, c], u_k>, [.., 1, ..] for v_k.
    """
    p = logits.shape[0]
    dirs = sum_directions(p, sign).flatten(2)  # (K, 2, p*p)
    flat = logits.to(torch.float64).reshape(p * p, -1)  # (p*p, V)
    return flat.mean(0), dirs @ flat


def logit_power(mean: torch.Tensor, coef: torch.Tensor, p: int) -> torch.Tensor:
    """(p//2 + 1,) power of the logits per frequency along the sum directions; [0] = the mean's."""
    head = (p * p * mean.pow(2).sum())[None]
    return torch.cat((head, coef.pow(2).sum((1, 2))))


def key_components(coef: torch.Tensor, keys: list[int], p: int, sign: int) -> torch.Tensor:
    """(p, p, C) the logits' components along u_k, v_k for the key frequencies (no mean).

    Args:
        coef: (p//2, 2, C) from logit_coefficients.
        keys: key frequencies in 1..p//2.
    """
    dirs = sum_directions(p, sign)  # (K, 2, p, p)
    out = torch.zeros(p, p, coef.shape[-1], dtype=torch.float64)
    for k in keys:
        out += torch.einsum("jab,jc->abc", dirs[k - 1], coef[k - 1].to(torch.float64))
    return out


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of (N, C) logits against (N,) labels (NaN when N = 0)."""
    if labels.numel() == 0:
        return math.nan, math.nan
    return float(F.cross_entropy(logits, labels)), float((logits.argmax(-1) == labels).double().mean())


def split_losses(mean: torch.Tensor, coef: torch.Tensor, train_logits: torch.Tensor, labels: torch.Tensor,
                 train_mask: torch.Tensor, sign: int, keys: list[int]) -> dict[str, float]:
    """Restricted loss on the test pairs and excluded loss on the training pairs for keys K.

    Needs only the mean and coefficients of the full-grid logits and the logits of the training
    pairs, which is what the hindsight pass keeps per probe step.

    Args:
        mean, coef: (C,), (p//2, 2, C) from logit_coefficients of the full (p, p, C) grid.
        train_logits: (n_train, C) the logits of the training pairs, in train_mask's row-major order.
        labels: (p, p) answer classes (residues).
        train_mask: (p, p) bool, the training pairs; the rest are the test pairs.
        sign: +1 for x+y, -1 for x-y.
        keys: key frequencies in 1..p//2.
    Returns:
        restricted_loss/acc (test pairs) and excluded_loss/acc (training pairs).
    """
    p = labels.shape[0]
    comp = key_components(coef, keys, p, sign)  # (p, p, C)
    restricted = mean.to(torch.float64) + comp[~train_mask]  # (n_test, C)
    excluded = train_logits.to(torch.float64) - comp[train_mask]  # (n_train, C)
    r_loss, r_acc = _ce(restricted, labels[~train_mask])
    e_loss, e_acc = _ce(excluded, labels[train_mask])
    return {"restricted_loss": r_loss, "restricted_acc": r_acc, "excluded_loss": e_loss, "excluded_acc": e_acc}


def fourier_losses(logits: torch.Tensor, labels: torch.Tensor, train_mask: torch.Tensor, sign: int,
                   keys: list[int]) -> dict[str, float]:
    """Restricted and excluded losses (and accuracies) of full-grid logits for key frequencies K.

    Args:
        logits: (p, p, C) logits over the C = p answer classes for every pair (a, b).
        labels: (p, p) answer classes.
        train_mask: (p, p) bool, the training pairs.
        sign: +1 for x+y, -1 for x-y.
        keys: key frequencies in 1..p//2.
    Returns:
        restricted_loss/acc over the test pairs, excluded_loss/acc over the training pairs
        (module docstring), and full_loss over all pairs for reference.
    """
    p = logits.shape[0]
    logits = logits.to(torch.float64)
    mean, coef = logit_coefficients(logits, sign)
    out = split_losses(mean, coef, logits[train_mask], labels, train_mask, sign, keys)
    out["full_loss"] = _ce(logits.reshape(p * p, -1), labels.reshape(-1))[0]
    return out
