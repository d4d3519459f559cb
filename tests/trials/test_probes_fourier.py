"""Fourier probes against independent references: known embeddings, numpy's 2-D FFT, hand-built
logit tables that are exact sums of Fourier terms (cross-entropy written out in float64 numpy),
and the hindsight pass over a ProbeStore."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trials.config import ProbeConfig
from trials.probes import ProbeStore, hindsight_keys, hindsight_pass
from trials.probes import fourier as fr


@pytest.mark.parametrize("p", [7, 8, 23])
def test_basis_is_orthonormal_with_one_row_per_residue(p):
    basis, freq = fr.fourier_basis(p)
    assert basis.shape == (p, p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    assert freq.tolist().count(0) == 1 and int(freq.max()) == p // 2


@pytest.mark.parametrize("p,k", [(23, 1), (23, 5), (23, 11), (8, 4), (8, 3), (59, 17)])
def test_power_of_a_known_embedding_sits_at_its_frequency(p, k):
    a = torch.arange(p, dtype=torch.float64)
    w = 2 * math.pi * k / p
    embed = torch.stack([torch.cos(w * a), 3 * torch.sin(w * a + 0.3), torch.zeros(p)], dim=1)  # (p, 3)
    power = fr.embedding_power(embed)
    assert power.shape == (p // 2 + 1,)
    assert float(power[k]) == pytest.approx(float(embed.pow(2).sum()), rel=1e-9)
    others = torch.cat([power[:k], power[k + 1:]])
    assert float(others.abs().max()) < 1e-9
    assert fr.key_count(power, 0.9) == 1 and fr.effective_freqs(power) == pytest.approx(1.0)


def test_power_sums_to_the_squared_norm_and_flat_spectrum_counts_all():
    embed = torch.randn(31, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    power = fr.embedding_power(embed)
    assert float(power.sum()) == pytest.approx(float(embed.pow(2).sum()), rel=1e-9)
    flat = torch.ones(16, dtype=torch.float64)
    assert fr.key_count(flat, 1.0) == 15 and fr.effective_freqs(flat) == pytest.approx(15.0)


def test_choose_key_freqs_modes():
    power = torch.tensor([9.0, 1.0, 50.0, 0.5, 40.0, 8.5], dtype=torch.float64)
    assert fr.choose_key_freqs(power, 0.9) == [2, 4]  # 90/100 of the non-constant power
    assert fr.choose_key_freqs(power, 0.95) == [2, 4, 5]
    assert fr.choose_key_freqs(power, 0.9, n=1) == [2]
    assert fr.choose_key_freqs(power, 0.9, n=3, fixed=[5, 1, 99]) == [1, 5]


def _ce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Cross-entropy written out in float64 numpy (independent of torch's)."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def _reference_losses(logits, labels, mask, sign, keys):
    """Restricted (test pairs) / excluded (train pairs) logits from numpy's full 2-D FFT over (a, b)."""
    p = logits.shape[0]
    spec = np.fft.fft2(logits, axes=(0, 1))  # (p, p, C)
    keep = np.zeros((p, p), dtype=bool)
    for k in keys:
        for s in (k, -k):
            keep[s % p, (sign * s) % p] = True
    const = np.zeros((p, p), dtype=bool)
    const[0, 0] = True
    restricted = np.fft.ifft2(spec * (keep | const)[..., None], axes=(0, 1)).real
    excluded = logits - np.fft.ifft2(spec * keep[..., None], axes=(0, 1)).real
    return _ce(restricted[~mask], labels[~mask]), _ce(excluded[mask], labels[mask])


@pytest.mark.parametrize("sign", [1, -1])
def test_restricted_and_excluded_losses_match_a_2d_fft_reference(sign):
    p = 11
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(p, p, p, dtype=torch.float64, generator=g) * 2
    a = torch.arange(p)
    labels = (a[:, None] + sign * a[None, :]) % p
    mask = torch.rand(p, p, generator=g) < 0.5
    keys = [2, 5]
    got = fr.fourier_losses(logits, labels, mask, sign, keys)
    want_r, want_e = _reference_losses(logits.numpy(), labels.numpy(), mask.numpy(), sign, keys)
    assert got["restricted_loss"] == pytest.approx(want_r, rel=1e-9)
    assert got["excluded_loss"] == pytest.approx(want_e, rel=1e-9)
    assert got["full_loss"] == pytest.approx(_ce(logits.reshape(p * p, p).numpy(), labels.reshape(-1).numpy()))


def _table(p: int, sign: int, terms) -> np.ndarray:
    """(p, p, p) float64 logits L[a, b, c] = sum of f(a, b, c) over `terms`."""
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    return sum(f(a, b, c) for f in terms).astype(np.float64)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_table_that_is_a_sum_of_fourier_terms(sign):
    """Key terms along a +- b, other terms elsewhere: restricted == full on the test pairs, and
    the excluded loss is the loss of the table built without the key terms."""
    p, keys = 23, [3, 7]
    w = lambda k: 2 * np.pi * k / p  # noqa: E731
    key_terms = [lambda a, b, c: 4.0 * np.cos(w(3) * (a + sign * b - c)),
                 lambda a, b, c: 2.5 * np.cos(w(7) * (a + sign * b - c))]
    other_terms = [lambda a, b, c: 1.5 * np.cos(w(5) * (a + sign * b) + 0.1 * c),  # a non-key sum frequency
                   lambda a, b, c: 2.0 * np.cos(w(3) * (a - sign * b)) * np.sin(w(2) * c),  # the other diagonal
                   lambda a, b, c: 1.0 * np.cos(w(4) * a + c)]  # depends on a only
    bias = lambda a, b, c: 0.1 * np.cos(c) + 0.01 * c  # noqa: E731  (the (a, b)-mean, kept by both)
    rng = np.random.default_rng(0)
    labels = np.add.outer(np.arange(p), sign * np.arange(p)) % p
    mask = rng.random((p, p)) < 0.4
    circuit = _table(p, sign, key_terms + [bias])
    out = fr.fourier_losses(torch.tensor(circuit), torch.tensor(labels), torch.tensor(mask), sign, keys)
    assert out["restricted_loss"] == pytest.approx(_ce(circuit[~mask], labels[~mask]), abs=1e-10)
    assert out["restricted_acc"] == 1.0 == (circuit[~mask].argmax(-1) == labels[~mask]).mean()
    full = _table(p, sign, key_terms + other_terms + [bias])
    out = fr.fourier_losses(torch.tensor(full), torch.tensor(labels), torch.tensor(mask), sign, keys)
    without = _table(p, sign, other_terms + [bias])
    assert out["excluded_loss"] == pytest.approx(_ce(without[mask], labels[mask]), abs=1e-10)
    assert out["restricted_loss"] == pytest.approx(_ce(circuit[~mask], labels[~mask]), abs=1e-10)
    mean, coef = fr.logit_coefficients(torch.tensor(full), sign)
    assert fr.choose_key_freqs(fr.logit_power(mean, coef, p), 0.9, n=2) == keys


def test_a_memorising_table_is_hurt_by_restriction_not_by_exclusion():
    """Logits +8 at each pair's (arbitrary) label: a lookup table, spread over all frequencies."""
    p = 23
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, p, (p, p), generator=g)
    logits = 8 * F.one_hot(labels, p).double()  # (p, p, p)
    mask = torch.rand(p, p, generator=g) < 0.5
    out = fr.fourier_losses(logits, labels, mask, 1, [1, 2])
    assert out["full_loss"] < 0.01
    assert out["excluded_loss"] < 0.1 < 2.0 < out["restricted_loss"]


def _embedding(p: int, freqs: dict[int, float], d: int = 12, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """(p, d) rows of residues: cos/sin(w_k a) of the given frequencies, amplitude each, mixed into d dims."""
    rng = np.random.default_rng(seed)
    a = np.arange(p)[:, None]
    cols = [amp * f(2 * np.pi * k * a / p) for k, amp in freqs.items() for f in (np.cos, np.sin)]
    return np.hstack(cols) @ rng.normal(size=(len(cols), d)) + noise * rng.normal(size=(p, d))


def test_key_frequencies_are_recovered_from_a_synthetic_embedding():
    p = 59
    embed = _embedding(p, {4: 3.0, 17: 2.5, 23: 2.0, 29: 1.8})
    power = fr.embedding_power(torch.tensor(embed))
    assert hindsight_keys(power.numpy(), ProbeConfig(n_key_freqs=4)) == [4, 17, 23, 29]
    assert hindsight_keys(power.numpy(), ProbeConfig(n_key_freqs=2)) == [4, 17]
    assert hindsight_keys(power.numpy(), ProbeConfig(n_key_freqs=0, key_power_frac=0.95)) == [4, 17, 23, 29]
    assert hindsight_keys(power.numpy(), ProbeConfig(key_freqs=[9, 2])) == [2, 9]


def test_hindsight_pass_uses_the_final_embedding_keys_at_every_step(tmp_path):
    """Early probes' embeddings favour other frequencies; the pass must use the last one's."""
    p, sign = 23, 1
    rng = np.random.default_rng(3)
    labels = np.add.outer(np.arange(p), np.arange(p)) % p
    mask = rng.random((p, p)) < 0.5
    store = ProbeStore(tmp_path)
    embeds = [{2: 3.0, 9: 2.0}, {2: 1.0, 5: 3.0, 8: 2.5}, {5: 3.0, 8: 2.5, 2: 0.5}]
    tables = []
    for step, freqs in zip((10, 100, 1000), embeds):
        table = rng.normal(size=(p, p, p)) * 2
        tables.append(table)
        power = fr.embedding_power(torch.tensor(_embedding(p, freqs, seed=step)))
        store.add("fourier", step, {"embed_power": power.numpy()})
        mean, coef = fr.logit_coefficients(torch.tensor(table), sign)
        store.save_side("fourier", step, {"mean": mean.numpy(), "coef": coef.numpy(),
                                          "train_logits": table[mask].astype(np.float32)})
    out = hindsight_pass(store, torch.tensor(labels), torch.tensor(mask), sign, ProbeConfig(n_key_freqs=2))
    assert out["hindsight_keys"].tolist() == [5, 8] and out["hindsight_steps"].tolist() == [10, 100, 1000]
    for i, table in enumerate(tables):
        table32 = table.copy()
        table32[mask] = table[mask].astype(np.float32)  # the side file keeps the model's float32 logits
        want_r, want_e = _reference_losses(table32, labels, mask, sign, [5, 8])
        assert out["hindsight_restricted_loss"][i] == pytest.approx(want_r, rel=1e-9)
        assert out["hindsight_excluded_loss"][i] == pytest.approx(want_e, rel=1e-6)
    with np.load(tmp_path / "fourier.npz") as z:
        assert z["static/hindsight_keys"].tolist() == [5, 8]
        np.testing.assert_array_equal(z["static/hindsight_excluded_loss"], out["hindsight_excluded_loss"])
    ProbeStore(tmp_path, keep_until=100)  # a resume from step 100 drops the later side files
    assert sorted(q.name for q in (tmp_path / "fourier_steps").iterdir()) == ["0000000010.npz", "0000000100.npz"]
