"""Learning-dynamics probes in saved results: loading, progress-measure onsets, what they say
about predicting grokking early and about pruning. Pure numpy/pandas; reads only files.

    probes = load_probes("runs/modadd_probes")          # {"fourier": {...}, "weights": {...}, ...}
    onsets = progress_onsets(curve, probes.get("fourier"))
    table = prediction_table({"run": (curve, probes.get("fourier"))})
    print(pruning_summary(table)["text"])

File formats are those of trials.probes.store: <run dir>/probes/<kind>.npz with `step` (S,),
per-step arrays (S, ...) and run constants under `static/<name>`.

Onsets (each groktune.events.first_event, the one event rule: the first step of a streak of
`patience` probes at the threshold, never moved by what follows; counted only from the
memorisation step on, since memorising moves every measure too):
- restricted: restricted loss <= `restricted_ratio` x its value at memorisation;
- excluded: excluded loss - train loss >= `excluded_margin` nats (the training fit has come to
  rest on the key frequencies; subtracting the train loss discounts loss spikes);
- key_share: share of the centred logit power in the key frequencies >= `key_share`;
- sharpening: effective number of frequencies of the logits (exp of the spectral entropy)
  <= `sharpen_ratio` x its value at memorisation (the spectrum has sharpened);
- hindsight: the restricted loss (test pairs) with the key frequencies of the final model's
  embedding (Nanda et al.'s own choice, known only after the run; the trainer's hindsight pass,
  trials.probes.hindsight) <= `restricted_ratio` x its value at memorisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import figures
from analysis import probe_figures as pf
from analysis.document import Figure, Section, Table, Text
from analysis.errors import ResultsError
from analysis.grokking import detect_grokking
from groktune.events import DEFAULT_PATIENCE, first_event
from groktune.layout import PROBE_DIR

MEASURES = ("restricted", "excluded", "key_share", "sharpening", "hindsight")


def load_probes(run_dir: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Every <run_dir>/probes/<kind>.npz as {kind: {key: array}} ({} when there are none).

    Raises:
        ResultsError: a probe file exists but cannot be read.
    """
    folder = Path(run_dir) / PROBE_DIR
    out: dict[str, dict[str, np.ndarray]] = {}
    for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        try:
            with np.load(path, allow_pickle=False) as z:
                out[path.stem] = {k: z[k] for k in z.files}
        except (OSError, ValueError) as err:
            raise ResultsError(f"{path}: not a readable probe file ({type(err).__name__})") from None
    return out


def find_probe_dirs(root: str | Path, trial_ids=None) -> dict[str, Path]:
    """Folders under `root` (itself included) that hold probes/, keyed by trial id.

    A folder's id is its path relative to root ("." -> its name), as analysis.load names runs;
    with `trial_ids`, a folder whose name contains a trial id (Ray's trial dirs) takes that id.
    """
    root = Path(root)
    found = {}
    for probe in sorted(root.rglob(f"{PROBE_DIR}/*.npz")):
        run = probe.parent.parent
        rel = run.relative_to(root).as_posix()
        key = run.name if rel == "." else rel
        for tid in trial_ids or []:
            if str(tid) in run.name:
                key = str(tid)
                break
        found.setdefault(key, run)
    return found


@dataclass(frozen=True)
class ProgressOnsets:
    """Steps at which each measure moved (None: it did not), beside the accuracy events."""

    memorized_step: int | None
    generalized_step: int | None
    val_rise_step: int | None
    """First step val accuracy reached `val_rise` and held it for `patience` evals (the visible
    start of the rise)."""
    restricted_step: int | None
    excluded_step: int | None
    key_share_step: int | None
    sharpening_step: int | None
    hindsight_step: int | None
    hindsight_keys: tuple[int, ...] = ()


def _series(curve: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    if column not in curve:
        return np.zeros(0, np.int64), np.zeros(0)
    c = curve[["step", column]].dropna()
    return c["step"].to_numpy(np.int64), c[column].to_numpy(np.float64)


def _onset(steps, values, start: int, threshold: float, mode: str, patience: int) -> int | None:
    keep = np.isfinite(values) & (steps >= start)
    if not keep.any():
        return None
    return first_event(steps[keep], values[keep], threshold=threshold, patience=patience, mode=mode)


def _at(steps, values, step: int) -> float:
    """The value at the first step >= `step` (NaN if none)."""
    idx = np.flatnonzero(steps >= step)
    return float(values[idx[0]]) if idx.size else float("nan")


def progress_onsets(curve: pd.DataFrame, fourier: dict | None = None, *, threshold: float = 0.99,
                    patience: int = DEFAULT_PATIENCE, restricted_ratio: float = 0.5,
                    excluded_margin: float = 1.0, key_share: float = 0.5, sharpen_ratio: float = 0.5,
                    val_rise: float = 0.5, n_keys: int = 5) -> ProgressOnsets:
    """When each progress measure moved in one run (see the module docstring for the rules).

    Args:
        curve: one run's records (step, train_acc, val_acc, train_loss, fourier/... columns).
        fourier: the run's fourier.npz (for the hindsight measure), or None.
        threshold, patience: the accuracy events, as analysis.grokking.detect_grokking.
        restricted_ratio, excluded_margin, key_share, sharpen_ratio, val_rise: the onset thresholds.
        n_keys: for files without the trainer's hindsight pass, how many of the final
            embedding's strongest frequencies the hindsight measure keeps.
    Returns:
        ProgressOnsets.
    """
    curve = curve.sort_values("step")
    ev = detect_grokking(curve["step"], curve["train_acc"], curve["val_acc"], threshold=threshold,
                         patience=patience)
    start = ev.memorized_step or int(curve["step"].min())
    s, v = _series(curve, "val_acc")
    val_rise_step = _onset(s, v, int(curve["step"].min()), val_rise, "max", patience)
    s, r = _series(curve, "fourier/restricted_loss")
    restricted = _onset(s, r / _at(s, r, start), start, restricted_ratio, "min", patience) if s.size else None
    s, e = _series(curve, "fourier/logit_eff_freqs")
    sharp = _onset(s, e / _at(s, e, start), start, sharpen_ratio, "min", patience) if s.size else None
    excluded = None
    if "fourier/excluded_loss" in curve and "train_loss" in curve:
        c = curve[["step", "fourier/excluded_loss", "train_loss"]].dropna()
        margin = (c["fourier/excluded_loss"] - c["train_loss"]).to_numpy(np.float64)
        excluded = _onset(c["step"].to_numpy(np.int64), margin, start, excluded_margin, "max", patience)
    s, k = _series(curve, "fourier/key_share")
    share = _onset(s, k, start, key_share, "max", patience) if s.size else None
    hind, keys = None, ()
    if fourier is not None and "logit_coef" in fourier:
        hs, hl, keys = restricted_loss_hindsight(fourier, n=n_keys)
        hind = _onset(hs, hl / _at(hs, hl, start), start, restricted_ratio, "min", patience)
    return ProgressOnsets(ev.memorized_step, ev.generalized_step, val_rise_step, restricted, excluded,
                          share, sharp, hind, tuple(keys))


def _sum_directions(p: int, sign: int) -> np.ndarray:
    """Normalised cos/sin(w_k (a + sign*b)), k = 1..p//2: (p//2, 2, p, p) (as trials.probes)."""
    a = np.arange(p, dtype=np.float64)
    s = a[:, None] + sign * a[None, :]
    k = np.arange(1, p // 2 + 1, dtype=np.float64)[:, None, None]
    dirs = np.stack((np.cos(2 * np.pi * k * s / p), np.sin(2 * np.pi * k * s / p)), axis=1)
    norm = np.sqrt((dirs**2).sum(axis=(2, 3), keepdims=True))
    return np.divide(dirs, norm, out=np.zeros_like(dirs), where=norm > 1e-9)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of (N, V) logits against (N,) labels, in float64."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def restricted_loss_hindsight(fourier: dict, keys=None, n: int = 5) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The restricted loss on the test pairs at every probe step with one fixed set of keys.

    By default the trainer's hindsight pass (trials.probes.hindsight: keys from the final
    model's embedding spectrum, as Nanda et al. chose theirs), stored in fourier.npz. Otherwise
    (explicit `keys`, or older files) rebuilt from the stored mean and sum-direction coefficients
    of the logits (exact: the restricted logits depend on nothing else), with keys the `n`
    strongest frequencies of the last probe's embedding (or, lacking it, of its logits).

    Returns:
        (steps (S,), restricted loss (S,) over the test pairs (all pairs for files without
        static/train_mask), the keys used).
    """
    if keys is None and "static/hindsight_restricted_loss" in fourier:
        return (fourier["static/hindsight_steps"].astype(np.int64), fourier["static/hindsight_restricted_loss"],
                fourier["static/hindsight_keys"].astype(int).tolist())
    p, sign = int(fourier["static/p"]), int(fourier["static/sign"])
    if sign == 0:
        raise ResultsError("fourier probes: no restricted loss for this operation (only x+y and x-y)")
    if keys is None:
        power = fourier["embed_power" if "embed_power" in fourier else "logit_power"][-1][1:]
        keys = sorted((np.argsort(-power, kind="stable")[:n] + 1).tolist())
    dirs = _sum_directions(p, sign)[np.asarray(keys) - 1]  # (K, 2, p, p)
    test = ~fourier["static/train_mask"].reshape(-1) if "static/train_mask" in fourier else np.ones(p * p, bool)
    labels = fourier["static/labels"].reshape(-1)[test]
    losses = []
    for mean, coef in zip(fourier["logit_mean"], fourier["logit_coef"]):
        lg = mean[None, None, :] + np.einsum("kjab,kjc->abc", dirs, coef[np.asarray(keys) - 1].astype(np.float64))
        losses.append(_cross_entropy(lg.reshape(p * p, -1)[test], labels))
    return fourier["step"].astype(np.int64), np.asarray(losses), list(keys)


def prediction_table(runs: dict[str, tuple[pd.DataFrame, dict | None]], **kw) -> pd.DataFrame:
    """One row per run: the events, each measure's onset, its lead over generalisation.

    Args:
        runs: run id -> (its curve, its fourier.npz dict or None).
        **kw: thresholds for progress_onsets.
    Returns:
        Columns run, memorized_step, generalized_step, val_rise_step, <m>_step, lead_<m>
        (generalized - onset, steps) and frac_<m> (onset / generalized: the share of the time
        to generalise after which the measure had already moved) for m in MEASURES.
    """
    rows = []
    for rid, (curve, fourier) in runs.items():
        o = asdict(progress_onsets(curve, fourier, **kw))
        o["hindsight_keys"] = ",".join(map(str, o["hindsight_keys"]))
        row = {"run": rid, **o}
        gen = o["generalized_step"]
        for m in MEASURES:
            on = o[f"{m}_step"]
            row[f"lead_{m}"] = gen - on if gen is not None and on is not None else None
            row[f"frac_{m}"] = on / gen if gen and on is not None else None
        rows.append(row)
    return pd.DataFrame(rows)


def pruning_summary(table: pd.DataFrame) -> dict:
    """What the onsets say about pruning, per measure: counts, median lead and a sentence.

    Returns:
        {"measures": DataFrame (measure, grokked, predicted, median_lead, median_frac,
         false_alarms, misses), "text": str}. `predicted`: grokked runs whose measure moved at or
        before generalising; `misses`: grokked runs where it did not; `false_alarms`: runs that
        did not generalise although the measure moved.
    """
    grokked = table[table["generalized_step"].notna()] if len(table) else table
    rows, lines = [], []
    for m in MEASURES:
        col = f"{m}_step"
        if col not in table or table[col].isna().all():
            continue
        pred = grokked[grokked[f"lead_{m}"].notna() & (grokked[f"lead_{m}"] >= 0)]
        alarms = table[table["generalized_step"].isna() & table[col].notna()]
        row = {"measure": m, "grokked": len(grokked), "predicted": len(pred),
               "median_lead": float(pred[f"lead_{m}"].median()) if len(pred) else None,
               "median_frac": float(pred[f"frac_{m}"].median()) if len(pred) else None,
               "false_alarms": len(alarms), "misses": len(grokked) - len(pred)}
        rows.append(row)
        if len(pred):
            lines.append(
                f"{m}: moved before val accuracy reached the target in {len(pred)} of {len(grokked)} "
                f"grokked run(s), a median {row['median_lead']:.0f} steps ahead (at {100 * row['median_frac']:.0f}% "
                f"of the time to generalise); {len(alarms)} run(s) that did not generalise moved too.")
    text = " ".join(lines) or "No run has the progress measures (probes.kinds: fourier on x+y or x-y)."
    if rows:
        text += (" For pruning: a trial whose measure has moved is likely to generalise within about "
                 "1/median_frac times its onset step, so a rung should not cut it; the reference-free "
                 "fourier/key_share is usable as a rung score directly (higher is better).")
    return {"measures": pd.DataFrame(rows), "text": text}


def probes_section(ctx, max_runs: int = 2):
    """The report section on the probes (an analysis.sections builder: Context -> Section, or None
    when no trial recorded probes).

    The onset table covers every trial whose curves carry the fourier columns; figures are
    drawn for the first `max_runs` trials (best first) with probe files on disk.
    """
    ids = [str(t) for t in ctx.summary["trial_id"]]
    dirs = find_probe_dirs(ctx.results.path, ids)
    probes = {tid: load_probes(dirs[tid]) for tid in ids if tid in dirs}
    runs = {tid: (ctx.curve(tid), probes.get(tid, {}).get("fourier")) for tid in ids
            if "fourier/restricted_loss" in ctx.curve(tid).dropna(axis=1, how="all") or "fourier" in probes.get(tid, {})}
    if not runs and not probes:  # no probes recorded (probes.kinds unset): the section does not apply
        return None
    blocks = []
    if runs:
        table = prediction_table(runs, threshold=ctx.threshold, patience=ctx.patience)
        summary = pruning_summary(table)
        blocks += [Text(summary["text"]), Table(summary["measures"], "Progress measures as early predictors"),
                   Table(table.drop(columns=[c for c in table if c.startswith("frac_")]).head(50),
                         "Onset of each measure and its lead over generalisation (steps)")]
    for i, (tid, pr) in enumerate(list(probes.items())[:max_runs]):
        curve, fourier = ctx.curve(tid), pr.get("fourier")
        figs = []
        if tid in runs:
            hind = restricted_loss_hindsight(fourier) if fourier is not None and "logit_coef" in fourier else None
            onsets = progress_onsets(curve, fourier, threshold=ctx.threshold, patience=ctx.patience)
            figs.append(("progress", pf.progress_measures(curve, fourier, onsets, hind), "progress measures"))
        drawers = (("fourier", pf.fourier_spectrum, "Fourier spectrum"), ("weights", pf.weight_distributions,
                   "weight distributions"), ("activations", pf.activation_patterns, "activation patterns"),
                   ("attention", pf.attention_heatmaps, "attention maps"), ("per_class", pf.per_class_heatmap,
                   "per-class accuracy"))
        figs += [(kind, draw(pr[kind]), caption) for kind, draw, caption in drawers if kind in pr]
        blocks += [Figure(f"probes_{i}_{name}.png", figures.to_png(fig), f"Trial {tid}: {caption}")
                   for name, fig, caption in figs]
    return Section("Learning-dynamics probes", blocks)
