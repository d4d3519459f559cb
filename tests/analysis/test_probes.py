"""analysis.probes and analysis.probe_figures: onsets on planted curves, the hindsight restricted
loss against the trainer's own computation, and the figures/section on a real tiny run dir."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from matplotlib.figure import Figure

from analysis import probe_figures as pf
from analysis.figures import to_png
from analysis.probes import (
    find_probe_dirs,
    load_probes,
    prediction_table,
    progress_onsets,
    pruning_summary,
    restricted_loss_hindsight,
)
from tests.conftest import TINY, deep_merge
from trials.probes import fourier as fr

ALL = ["weights", "activations", "attention", "fourier", "per_class"]


def planted_curve(gen=2000, restricted_at=1000, excluded_at=1200, share_at=1100, grok=True):
    steps = np.array([1, 50, 100, 200, 400, 600, 800, 1000, 1100, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600])
    return pd.DataFrame({
        "step": steps,
        "train_acc": np.where(steps >= 100, 1.0, 0.3),
        "val_acc": np.where((steps >= gen) & grok, 1.0, np.where(steps >= 1400, 0.6, 0.1)),
        "train_loss": np.where(steps >= 100, 0.01, 2.0),
        "fourier/restricted_loss": np.where(steps >= restricted_at, 0.4, np.where(steps >= 100, 2.0, 3.9)),
        "fourier/excluded_loss": np.where(steps >= excluded_at, 3.0, np.where(steps >= 100, 0.05, 2.0)),
        "fourier/key_share": np.where(steps >= share_at, 0.8, 0.1),
        "fourier/logit_eff_freqs": np.where(steps >= share_at + 300, 4.0, 20.0),
    })


def test_onsets_of_planted_measures():
    o = progress_onsets(planted_curve())
    assert (o.memorized_step, o.generalized_step, o.val_rise_step) == (100, 2000, 1400)
    assert (o.restricted_step, o.excluded_step, o.key_share_step, o.sharpening_step) == (1000, 1200, 1100, 1400)
    assert o.hindsight_step is None


def test_onsets_ignore_probe_gaps_and_moves_during_memorisation():
    c = planted_curve()
    c.loc[c.index % 2 == 1, ["fourier/restricted_loss", "fourier/excluded_loss", "fourier/key_share"]] = np.nan
    o = progress_onsets(c, patience=2)
    # probed at 1, 100, 400, ..., 1100, 1400, ...: a gap does not break a streak; restricted fell
    # 3.9 -> 2.0 while memorising, but it is measured from memorisation (step 100) on
    assert o.restricted_step == 1100 and o.key_share_step == 1100 and o.excluded_step == 1400


def test_prediction_table_and_pruning_summary():
    runs = {"fast": (planted_curve(), None), "never": (planted_curve(grok=False), None),
            "late_measure": (planted_curve(restricted_at=2200, excluded_at=2200, share_at=2200), None)}
    table = prediction_table(runs).set_index("run")
    assert table.loc["fast", "lead_restricted"] == 1000 and table.loc["fast", "frac_restricted"] == 0.5
    assert pd.isna(table.loc["never", "generalized_step"])
    assert table.loc["late_measure", "lead_excluded"] == -200
    s = pruning_summary(table.reset_index())
    m = s["measures"].set_index("measure")
    assert m.loc["restricted", "grokked"] == 2 and m.loc["restricted", "predicted"] == 1
    assert m.loc["restricted", "misses"] == 1 and m.loc["restricted", "false_alarms"] == 1
    assert m.loc["restricted", "median_lead"] == 1000
    assert "restricted: moved before val accuracy reached the target in 1 of 2" in s["text"]


def test_hindsight_restricted_loss_matches_the_trainer_computation():
    """Numpy rebuild from stored coefficients == trials.probes.fourier on the full logits."""
    p, V, keys = 13, 15, [2, 5]
    g = torch.Generator().manual_seed(0)
    a = torch.arange(p)
    labels = (a[:, None] + a[None, :]) % p
    mask = torch.rand(p, p, generator=g) < 0.4
    means, coefs, want = [], [], []
    for scale in (0.5, 2.0, 6.0):
        s = (a[:, None, None] + a[None, :, None] - torch.arange(V)[None, None, :]).double()
        logits = scale * torch.cos(2 * math.pi * 5 * s / p) + torch.randn(p, p, V, generator=g, dtype=torch.float64)
        mean, coef = fr.logit_coefficients(logits, 1)
        means.append(mean.numpy())
        coefs.append(coef.numpy())
        want.append(fr.fourier_losses(logits, labels, mask, 1, keys)["restricted_loss"])
    fourier = {"step": np.array([1, 10, 100]), "logit_mean": np.stack(means), "logit_coef": np.stack(coefs),
               "logit_power": np.stack([fr.logit_power(torch.tensor(m), torch.tensor(c), p).numpy()
                                        for m, c in zip(means, coefs)]),
               "static/p": np.int64(p), "static/sign": np.int64(1), "static/labels": labels.numpy(),
               "static/train_mask": mask.numpy()}
    steps, got, used = restricted_loss_hindsight(fourier, keys=keys)
    assert steps.tolist() == [1, 10, 100] and used == keys
    np.testing.assert_allclose(got, want, rtol=1e-10)
    _, _, auto = restricted_loss_hindsight(fourier, n=1)
    assert auto == [5]  # the planted frequency dominates the last probe's logits


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real `groktune train` run dir of the tiny config with every probe on."""
    from orchestrator.cli.main import main

    root = tmp_path_factory.mktemp("probes")
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(deep_merge(TINY, {"probes": {"kinds": ALL, "every": 2}})))
    assert main(["train", str(cfg), "--out", str(root / "run")]) == 0
    return root / "run"


def test_load_and_find_probe_files(run_dir):
    probes = load_probes(run_dir)
    assert set(probes) == set(ALL)
    assert probes["fourier"]["static/p"] == 7
    assert find_probe_dirs(run_dir.parent) == {"run": run_dir}
    assert find_probe_dirs(run_dir.parent, ["xx", "ru"]) == {"ru": run_dir}
    assert load_probes(run_dir.parent) == {}


def test_figures_draw_from_real_probe_files(run_dir):
    from analysis.load import load

    probes = load_probes(run_dir)
    curve = load(run_dir).curves
    onsets = progress_onsets(curve, probes["fourier"])
    figs = [pf.weight_distributions(probes["weights"]), pf.activation_patterns(probes["activations"]),
            pf.attention_heatmaps(probes["attention"]), pf.fourier_spectrum(probes["fourier"]),
            pf.progress_measures(curve, probes["fourier"], onsets, restricted_loss_hindsight(probes["fourier"])),
            pf.per_class_heatmap(probes["per_class"])]
    for fig in figs:
        assert isinstance(fig, Figure) and fig.axes
    assert to_png(figs[3])[:8] == b"\x89PNG\r\n\x1a\n"  # rendering is slow; the section test renders all


def test_figures_show_the_hindsight_key_frequencies(run_dir):
    """The final embedding's key frequencies are named, and drawn, in the figures."""
    from analysis.load import load

    fourier = load_probes(run_dir)["fourier"]
    keys = fourier["static/hindsight_keys"].tolist()
    assert keys and restricted_loss_hindsight(fourier)[2] == keys
    fig = pf.fourier_spectrum(fourier)
    assert fig._suptitle.get_text().endswith("key frequencies of the final embedding: " + ", ".join(map(str, keys)))
    fig = pf.progress_measures(load(run_dir).curves, fourier, None, restricted_loss_hindsight(fourier))
    labels = fig.axes[1].get_legend_handles_labels()[1]
    tag = ",".join(map(str, keys))
    assert f"restricted (test), final keys {tag}" in labels and f"excluded (train), final keys {tag}" in labels


def test_report_section(run_dir):
    from analysis import sections
    from analysis.document import Figure as DocFigure, Table
    from analysis.importance import param_importances
    from analysis.load import load
    from analysis.probes import probes_section
    from analysis.summary import rank_trials, trial_summary

    res = load(run_dir)
    summary = rank_trials(trial_summary(res, threshold=0.99, patience=3, delay_boundary=1000))
    ctx = sections.Context(res, summary, 0.99, 3, 1000, None, param_importances(summary, [], {}))
    section = probes_section(ctx)
    names = [b.name for b in section.blocks if isinstance(b, DocFigure)]
    assert names == [f"probes_0_{k}.png" for k in ("progress", "fourier", "weights", "activations",
                                                   "attention", "per_class")]
    assert any(isinstance(b, Table) for b in section.blocks)
