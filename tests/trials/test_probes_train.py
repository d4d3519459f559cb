"""Probes inside train(): off means nothing runs; on means scalars in records, NPZ files, resume."""

import shutil

import numpy as np
import pytest
import torch

from groktune.errors import ConfigError, SetupError
from trials.probes import ProbeStore, probe_steps
from trials.train import train

ALL = ["weights", "activations", "attention", "fourier", "per_class"]


def collect(cfg, **kw):
    records, saves = [], []
    result = train(cfg, lambda r, save=None: (records.append(r), saves.append(save)), **kw)
    return result, records, saves


@pytest.fixture
def hook_log(monkeypatch):
    """Every forward hook registered on any module while the test runs (instrumentation only)."""
    log = []
    for name in ("register_forward_hook", "register_forward_pre_hook"):
        original = getattr(torch.nn.Module, name)

        def wrapped(self, *args, _original=original, **kwargs):
            log.append(self)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.nn.Module, name, wrapped)
    return log


def test_probes_off_registers_no_hooks_and_adds_nothing(tiny_cfg, hook_log, tmp_path, monkeypatch):
    import trials.probes.collector as collector

    monkeypatch.setattr(collector.ProbeCollector, "__init__", lambda *a, **k: pytest.fail("built a collector"))
    _, records, _ = collect(tiny_cfg(), artifacts_dir=tmp_path)
    assert hook_log == []
    assert not any(k.split("/")[0] in ("weight", "act", "attn", "fourier", "class") for r in records for k in r)
    assert not (tmp_path / "probes").exists()


def test_probes_on_write_scalars_and_files_and_leave_no_hooks(tiny_cfg, hook_log, tmp_path):
    cfg = tiny_cfg(probes={"kinds": ALL, "every": 2, "attn_examples": 3})
    _, records, _ = collect(cfg, artifacts_dir=tmp_path)
    assert hook_log and all(not m._forward_hooks and not m._forward_pre_hooks for m in hook_log)
    probed = [r["step"] for r in records if "fourier/restricted_loss" in r]
    assert probed == sorted(probe_steps([r["step"] for r in records], 2, 1.0) | {60})
    last = records[-1]
    for key in ("act/dead_frac/blocks.0.ff", "attn/entropy/blocks.0.attn", "fourier/key_freqs",
                "fourier/excluded_loss", "weight/near_zero/embed.weight", "class/min_acc"):
        assert np.isfinite(last[key]), key
    assert len(last["class/hardest"]) == 5
    files = {p.name for p in (tmp_path / "probes").iterdir()}
    assert files == {f"{k}.npz" for k in ALL} | {"fourier_steps"}  # + the hindsight pass's side files
    with np.load(tmp_path / "probes" / "fourier.npz") as z:
        assert z["step"].tolist() == probed
        assert z["embed_power"].shape == (len(probed), 4)  # p = 7: frequencies 0..3
        assert z["restricted_loss"].tolist() == pytest.approx([r["fourier/restricted_loss"] for r in records
                                                                 if r["step"] in probed])
        assert z["logit_coef"].shape == (len(probed), 3, 2, 7)  # classes: the 7 residues, not op/= tokens
        # the hindsight pass: keys of the final embedding spectrum (the paper's 5, capped at p//2 = 3)
        keys = np.flatnonzero(z["embed_key_mask"][-1]).tolist()
        assert z["static/hindsight_keys"].tolist() == keys == [1, 2, 3]
        assert z["static/hindsight_steps"].tolist() == probed
        final = {k: r[f"fourier/{k}"] for r in records if r["step"] == probed[-1]
                 for k in ("restricted_loss", "excluded_loss")}
        # same keys at the last step (this seeded run has them): the hindsight pass gives the same numbers
        assert np.flatnonzero(z["key_mask"][-1]).tolist() == keys
        assert z["static/hindsight_restricted_loss"][-1] == pytest.approx(final["restricted_loss"], rel=1e-9)
        assert z["static/hindsight_excluded_loss"][-1] == pytest.approx(final["excluded_loss"], rel=1e-9)
    with np.load(tmp_path / "probes" / "attention.npz") as z:
        assert z["weights"].shape == (len(probed), 1, 3, 2, 4, 4)  # (S, layers, examples, heads, T, T)
        np.testing.assert_allclose(z["weights"].sum(-1), 1.0, rtol=1e-5)
    with np.load(tmp_path / "probes" / "per_class.npz") as z:
        np.testing.assert_allclose(z["acc"][-1], last["val_acc_per_class"])
    assert any((tmp_path / "tensorboard").iterdir())


def test_without_artifacts_dir_scalars_only(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, records, _ = collect(tiny_cfg(probes={"kinds": ["fourier"], "log_ratio": 2.0}))
    assert "fourier/restricted_loss" in records[-1]
    assert list(tmp_path.iterdir()) == []


def test_resume_keeps_probe_files_consistent(tiny_cfg, tmp_path):
    cfg = tiny_cfg(probes={"kinds": ["fourier", "weights"]})
    _, full, saves = collect(cfg, artifacts_dir=tmp_path / "full")
    mid = next(i for i, r in enumerate(full) if r["step"] == 30)
    saves[mid](tmp_path / "ckpt")
    # a run killed after step 30 left entries past it (here: all of the full run's); resuming drops
    # and redoes them
    shutil.copytree(tmp_path / "full" / "probes", tmp_path / "resumed" / "probes")
    collect(cfg, artifacts_dir=tmp_path / "resumed", resume_from=tmp_path / "ckpt")
    for kind in ("fourier", "weights"):
        with np.load(tmp_path / "full" / "probes" / f"{kind}.npz") as a, \
             np.load(tmp_path / "resumed" / "probes" / f"{kind}.npz") as b:
            assert a.files == b.files
            for key in a.files:
                np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=key) if a[key].dtype.kind == "f" \
                    else np.testing.assert_array_equal(a[key], b[key])


def test_store_replaces_a_repeated_step_and_truncates_on_reopen(tmp_path):
    store = ProbeStore(tmp_path)
    for step in (1, 2, 3):
        store.add("k", step, {"v": np.full(2, step)}, {"names": np.array(["a", "b"])})
    store.add("k", 2, {"v": np.full(2, 20)})
    with np.load(tmp_path / "k.npz") as z:
        assert z["step"].tolist() == [1, 2] and z["v"][:, 0].tolist() == [1, 20]
    again = ProbeStore(tmp_path, keep_until=1)
    again.add("k", 5, {"v": np.full(2, 5)})
    with np.load(tmp_path / "k.npz") as z:
        assert z["step"].tolist() == [1, 5] and z["static/names"].tolist() == ["a", "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["k.npz"]


@pytest.mark.parametrize("probes,match", [
    ({"kinds": ["fourier", "nope"]}, r"probes\.kinds: got 'nope', allowed: weights, activations"),
    ({"every": 0}, r"probes\.every: got 0, must be > 0"),
    ({"log_ratio": 0.5}, r"probes\.log_ratio: got 0.5, must be >= 1"),
    ({"key_power_frac": 0.0}, r"probes\.key_power_frac"),
])
def test_bad_probe_config_is_one_line(tiny_cfg, probes, match):
    with pytest.raises(ConfigError, match=match):
        tiny_cfg(probes=probes)


def test_probe_that_does_not_apply_is_a_setup_error(tiny_cfg):
    cfg = tiny_cfg(task={"name": "sparse_parity", "n_bits": 6, "k_bits": 2, "n_samples": 64},
                   probes={"kinds": ["fourier"]}, train={"steps": 2})
    with pytest.raises(SetupError, match="probes.kinds: fourier needs task.name=modular, got sparse_parity"):
        train(cfg)
