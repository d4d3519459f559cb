"""Figures of the learning-dynamics probes, as matplotlib Figures on the Agg canvas (no pyplot):
render one with analysis.figures.to_png(fig).

Each takes the dict of one probe file (analysis.probes.load_probes(run_dir)[kind]); heatmaps
put probe steps on the x axis in probe order (the probes are log-spaced like the evals), with
the step written on the ticks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures import legend_outside, new_figure

BANDS = ((0.01, 0.99, 0.15), (0.05, 0.95, 0.25), (0.25, 0.75, 0.45))


def _step_ticks(ax, steps: np.ndarray, n: int = 6) -> None:
    idx = np.unique(np.linspace(0, len(steps) - 1, min(n, len(steps))).round().astype(int))
    ax.set_xticks(idx, [str(int(steps[i])) for i in idx], fontsize=7)
    ax.set_xlabel("optimizer step (probe order)")


def _pick_tensors(names: list[str], limit: int) -> list[int]:
    """Weight matrices first (names ending in 'weight', no norms), then anything else."""
    main = [i for i, n in enumerate(names) if n.endswith("weight") and "norm" not in n]
    rest = [i for i in range(len(names)) if i not in main]
    return (main + rest)[:limit]


def weight_distributions(weights: dict, max_tensors: int = 6) -> Figure:
    """Quantile bands (1-99, 5-95, 25-75 %) and the median of each weight tensor over steps."""
    names = [str(n) for n in weights["static/names"]]
    levels = [float(x) for x in weights["static/levels"]]
    steps, q = weights["step"], weights["quantiles"]  # (S,), (S, N, Q)
    picks = _pick_tensors(names, max_tensors)
    cols = min(3, len(picks))
    rows = -(-len(picks) // cols)
    fig = new_figure(3.2 * cols, 2.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    x = np.maximum(steps, 1)
    for ax, i in zip(axes, picks):
        for lo, hi, alpha in BANDS:
            if lo in levels and hi in levels:
                ax.fill_between(x, q[:, i, levels.index(lo)], q[:, i, levels.index(hi)], color="C0",
                                alpha=alpha, lw=0)
        if 0.5 in levels:
            ax.plot(x, q[:, i, levels.index(0.5)], color="C0", lw=1)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xscale("log")
        ax.set_title(names[i], fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(picks):]:
        ax.set_visible(False)
    fig.suptitle("Weight distributions over training (quantile bands)", fontsize=10)
    return fig


def activation_patterns(activations: dict, layer: str | None = None) -> Figure:
    """Dead-unit fraction and activation spread per layer over steps, beside a heatmap of how
    often each unit of one hidden layer fires (units sorted by their final firing rate)."""
    layers = [str(n) for n in activations["static/layers"]]
    kinds = [str(k) for k in activations["static/kinds"]]
    steps = activations["step"]
    hidden = [n for n, k in zip(layers, kinds) if k == "hidden"]
    layer = layer or (hidden[0] if hidden else None)
    fig = new_figure(12, 3.4)
    left, right = fig.subplots(1, 2)
    x = np.maximum(steps, 1)
    for i, (name, kind) in enumerate(zip(layers, kinds)):
        if kind == "hidden":
            left.plot(x, activations["dead_frac"][:, i], lw=1.4, color=f"C{i}", label=f"{name} dead")
        left.plot(x, activations["std"][:, i], lw=1, ls="--", color=f"C{i}", label=f"{name} std")
    left.set_xscale("log")
    left.set_xlabel("optimizer step")
    left.set_ylabel("dead fraction / std")
    legend_outside(left, ncol=1)
    key = f"unit_active/{layer}"
    if layer and key in activations:
        act = activations[key]  # (S, units)
        order = np.argsort(-act[-1], kind="stable")
        im = right.imshow(act[:, order].T, aspect="auto", origin="lower", cmap="magma", vmin=0, vmax=1,
                          interpolation="nearest")
        fig.colorbar(im, ax=right, label="share of inputs where the unit fires")
        right.set_ylabel(f"{layer} units (sorted)")
        _step_ticks(right, steps)
    fig.suptitle("Activation patterns on the fixed probe batch", fontsize=10)
    return fig


def attention_heatmaps(attention: dict, probe: int = -1, example: int = 0) -> Figure:
    """Each layer's heads (columns) on one fixed example at one probe (default: the last)."""
    w = attention["weights"][probe]  # (L, E, H, T, T)
    layers = [str(n) for n in attention["static/layers"]]
    tokens = attention["static/tokens"][example]
    vocab = attention.get("static/vocab")
    labels = [str(vocab[t]) if vocab is not None else str(t) for t in tokens]
    n_layers, _, heads = w.shape[:3]
    fig = new_figure(2.2 * heads + 1, 2.2 * n_layers + 0.6)
    axes = fig.subplots(n_layers, heads, squeeze=False)
    for li in range(n_layers):
        for h in range(heads):
            ax = axes[li][h]
            im = ax.imshow(w[li, example, h], vmin=0, vmax=1, cmap="Blues")
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.set_title(f"{layers[li]} h{h}", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight (row: query)")
    fig.suptitle(f"Attention at step {int(attention['step'][probe])}: " + " ".join(labels), fontsize=10)
    return fig


def hindsight_keys(fourier: dict) -> list[int]:
    """The key frequencies of the trainer's hindsight pass (final embedding), [] when absent."""
    keys = fourier.get("static/hindsight_keys")
    return [] if keys is None else [int(k) for k in keys]


def fourier_spectrum(fourier: dict) -> Figure:
    """Share of the power per frequency over steps: the embedding and, for x+y / x-y, the
    logits along the sum directions. Marked: each probe's key frequencies (red: the embedding's
    n strongest on the left, the live losses' keys on the right) and, as arrows on the right
    edge, the hindsight pass's keys (the final embedding's), also listed in the title."""
    steps = fourier["step"]
    panels = [("embed_power", "embedding")] + ([("logit_power", "logits (sum directions)")]
                                                if "logit_power" in fourier else [])
    fig = new_figure(5.2 * len(panels), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (key, title) in zip(axes, panels):
        power = fourier[key][:, 1:]  # (S, p//2): the constant left out
        share = power / np.maximum(power.sum(1, keepdims=True), 1e-300)
        im = ax.imshow(share.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                       extent=(-0.5, len(steps) - 0.5, 0.5, share.shape[1] + 0.5))
        fig.colorbar(im, ax=ax, label="share of power")
        mask_key = {"logit_power": "key_mask", "embed_power": "embed_key_mask"}[key]
        if mask_key in fourier:
            ks, fs = np.nonzero(fourier[mask_key][:, 1:])
            ax.scatter(ks, fs + 1, s=3, color="red", marker="s", lw=0)
        hind = hindsight_keys(fourier)
        if hind:
            ax.scatter([len(steps) - 0.5] * len(hind), hind, s=18, color="red", marker="<", clip_on=False)
        ax.set_ylabel("frequency k")
        ax.set_title(title, fontsize=9)
        _step_ticks(ax, steps)
    hind = hindsight_keys(fourier)
    tail = f"; key frequencies of the final embedding: {', '.join(map(str, hind))}" if hind else ""
    fig.suptitle(f"Fourier spectrum over training (red: key frequencies){tail}", fontsize=10)
    return fig


def progress_measures(curve: pd.DataFrame, fourier: dict | None = None, onsets=None,
                      hindsight=None) -> Figure:
    """Restricted and excluded loss beside the accuracy and loss curves, onsets marked.

    Args:
        curve: one run's records (step, train/val acc and loss, fourier/... columns).
        fourier: the run's fourier.npz dict (unused when the curve has the fourier columns).
        onsets: analysis.probes.ProgressOnsets to mark, or None.
        hindsight: (steps, losses, keys) from restricted_loss_hindsight, or None; with the
            trainer's hindsight pass in `fourier`, its excluded loss is drawn beside it.
    """
    c = curve[curve["step"] > 0].sort_values("step")
    fig = new_figure(13, 3.6)
    acc, loss = fig.subplots(1, 2)
    for split, color in (("train", "#d62728"), ("val", "#1f77b4")):
        acc.plot(c["step"], c[f"{split}_acc"], color=color, lw=1.4, label=f"{split} acc")
        if f"{split}_loss" in c:
            loss.plot(c["step"], c[f"{split}_loss"], color=color, lw=1, alpha=0.6, label=f"{split} loss")
    for key, color, label in (("fourier/restricted_loss", "#2ca02c", "restricted loss (test, live keys)"),
                              ("fourier/excluded_loss", "#9467bd", "excluded loss (train, live keys)")):
        if key in c:
            part = c[["step", key]].dropna()
            loss.plot(part["step"], part[key], color=color, lw=1.6, label=label)
        elif fourier is not None and key.split("/")[1] in fourier:
            loss.plot(np.maximum(fourier["step"], 1), fourier[key.split("/")[1]], color=color, lw=1.6, label=label)
    if hindsight is not None:
        hs, hl, keys = hindsight
        loss.plot(np.maximum(hs, 1), hl, color="#2ca02c", ls="--", lw=1.2,
                  label=f"restricted (test), final keys {','.join(map(str, keys))}")
        stored = fourier is not None and "static/hindsight_excluded_loss" in fourier
        if stored and list(keys) == hindsight_keys(fourier):  # the trainer's pass, same keys
            loss.plot(np.maximum(fourier["static/hindsight_steps"], 1), fourier["static/hindsight_excluded_loss"],
                      color="#9467bd", ls="--", lw=1.2,
                      label=f"excluded (train), final keys {','.join(map(str, keys))}")
    if "fourier/key_share" in c:
        part = c[["step", "fourier/key_share"]].dropna()
        acc.plot(part["step"], part["fourier/key_share"], color="#ff7f0e", lw=1.2, label="key share of logit power")
    if onsets is not None:
        marks = (("restricted_step", "#2ca02c"), ("excluded_step", "#9467bd"), ("key_share_step", "#ff7f0e"),
                 ("generalized_step", "black"))
        for field, color in marks:
            step = getattr(onsets, field)
            if step:
                for ax in (acc, loss):
                    ax.axvline(step, color=color, ls=":", lw=1.2)
                acc.text(step, 1.02, field.replace("_step", ""), rotation=90, fontsize=6, color=color,
                         va="bottom", ha="center")
    for ax in (acc, loss):
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step")
        legend_outside(ax)  # off the data
    loss.set_yscale("log")
    acc.set_ylim(-0.02, 1.02)
    acc.set_ylabel("accuracy / share")
    loss.set_ylabel("loss (nats)")
    fig.suptitle("Progress measures (Nanda et al. 2023) beside accuracy", fontsize=10)
    return fig


def per_class_heatmap(per_class: dict) -> Figure:
    """Validation accuracy of every answer class over steps."""
    acc, steps = per_class["acc"], per_class["step"]  # (S, C)
    classes = [str(c) for c in per_class["static/classes"]]
    fig = new_figure(8, max(3.0, 0.09 * len(classes) + 1.5))
    ax = fig.subplots()
    im = ax.imshow(acc.T, aspect="auto", origin="lower", cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
    every = max(1, len(classes) // 20)
    ax.set_yticks(range(0, len(classes), every), classes[::every], fontsize=6)
    ax.set_ylabel("answer class")
    _step_ticks(ax, steps)
    fig.colorbar(im, ax=ax, label="val accuracy")
    fig.suptitle("Per-class validation accuracy", fontsize=10)
    return fig
