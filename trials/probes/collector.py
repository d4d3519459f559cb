"""ProbeCollector: runs the enabled probes at probe steps, adds their scalars to the eval record
and hands their arrays to the ProbeStore (and TensorBoard).

Built once per run by trials.train only when `probes.kinds` is non-empty; with probes off no
collector exists, so no hook is registered and nothing extra runs or syncs. Probes run after
an eval, in eval mode, on the uncompiled model, in float32, under no_grad; every hook they
register is removed before they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from groktune.errors import SetupError
from tasks.lm import TokenStream
from trials.metrics import score_split
from trials.probes import fourier as fr
from trials.probes.activations import activation_stats
from trials.probes.attention import attention_entropy, attention_maps
from trials.probes.classes import class_summary
from trials.probes.hindsight import SIDE_KIND, hindsight_keys, hindsight_pass, side_arrays
from trials.probes.store import PROBE_DIR, ProbeStore, TensorBoardProbes
from trials.probes.weights import QUANTILE_LEVELS, weight_stats


def probe_steps(plan: list[int], every: int, ratio: float) -> set[int]:
    """The eval steps to probe: every `every`-th eval, thinned so each step is at least `ratio`
    times the previous probe step (a log-spaced subset when ratio > 1)."""
    chosen, last = set(), None
    for i, step in enumerate(sorted(plan)):
        if i % every or (last is not None and step < last * ratio):
            continue
        chosen.add(step)
        last = step
    return chosen


def check_probes(kinds: list[str], cfg, data) -> None:
    """Raise SetupError (one line) when a probe cannot run on this task/model."""
    lm = isinstance(data, TokenStream)
    if "per_class" in kinds and lm:
        raise SetupError("probes.kinds: per_class needs an algorithmic task (answer classes), got task.name=lm")
    if "fourier" in kinds and cfg.task.name != "modular":
        raise SetupError(f"probes.kinds: fourier needs task.name=modular, got {cfg.task.name}")
    if "attention" in kinds and cfg.model.arch != "transformer":
        raise SetupError(f"probes.kinds: attention needs model.arch=transformer, got {cfg.model.arch}")


@dataclass
class FourierGrid:
    """Every (a, b) pair of a modular task laid out on a p x p grid."""

    p: int
    x: torch.Tensor  # (p*p, T) inputs [a, op, b, =], a-major, on the device
    labels: torch.Tensor  # (p, p) answer classes = residues = token ids (CPU; tasks.modular layout)
    train_mask: torch.Tensor  # (p, p) bool (CPU)
    complete: bool  # every pair is in the data (False for x/y, which leaves out b = 0)
    sign: int | None  # +1 for x+y, -1 for x-y, None when the losses do not apply
    classes: torch.Tensor  # (p,) the answer token ids: logits are restricted to these columns

    @classmethod
    def from_data(cls, data, p: int, op: str) -> "FourierGrid":
        labels = torch.full((p, p), -1, dtype=torch.long)
        train_mask = torch.zeros(p, p, dtype=torch.bool)
        for xs, ys, is_train in ((data.val_x, data.val_y, False), (data.train_x, data.train_y, True)):
            a, b = xs[:, 0].cpu(), xs[:, 2].cpu()  # residue r has token id r (tasks.modular)
            labels[a, b] = ys.cpu()
            train_mask[a, b] = is_train
        a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
        template = data.train_x[0].cpu()  # (T,): [a, op, b, =]
        x = template.repeat(p * p, 1)
        x[:, 0], x[:, 2] = a.reshape(-1), b.reshape(-1)
        complete = bool((labels >= 0).all())
        return cls(p, x.to(data.train_x.device), labels, train_mask, complete,
                   fr.SUM_SIGNS.get(op) if complete else None, data.answer_tokens.cpu())


class ProbeCollector:
    """The probes of one run; see the module docstring."""

    def __init__(self, run, plan: list[int], artifacts_dir: str | Path | None, start_step: int = 0):
        pc, data = run.cfg.probes, run.data
        check_probes(pc.kinds, run.cfg, data)
        self.run, self.pc, self.kinds = run, pc, list(pc.kinds)
        self.steps = probe_steps(plan, pc.every, pc.log_ratio)
        gen = torch.Generator().manual_seed(run.cfg.seed + 4)  # the same probe batch every time
        if isinstance(data, TokenStream):
            self.probe_x, _ = data.get_batch("val", pc.batch_size, gen, run.device)
            self.attn_x = self.probe_x[: pc.attn_examples]
        else:
            rows = torch.cat([data.train_x, data.val_x])
            self.probe_x = rows[torch.randperm(len(rows), generator=gen)[: pc.batch_size].to(rows.device)]
            self.attn_x = data.val_x[: pc.attn_examples]
        self.grid = FourierGrid.from_data(data, run.cfg.task.p, run.cfg.task.op) if "fourier" in self.kinds else None
        self.store = self.tb = None
        if artifacts_dir is not None:
            self.store = ProbeStore(Path(artifacts_dir) / PROBE_DIR, keep_until=start_step)
            if pc.tensorboard and {"weights", "attention"} & set(self.kinds):
                try:
                    self.tb = TensorBoardProbes(Path(artifacts_dir) / "tensorboard")
                except ImportError:
                    self.tb = None

    def due(self, step: int, final: bool = False) -> bool:
        return final or step in self.steps

    @torch.no_grad()
    def collect(self, step: int, record: dict) -> None:
        """Run every enabled probe; add scalars to `record` in place; store the arrays."""
        for kind in self.kinds:
            scalars, arrays, static = getattr(self, f"_{kind}")(step, record)
            record.update(scalars)
            if self.store is not None:
                self.store.add(kind, step, arrays, static)
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        """End of the run: the Fourier hindsight pass (trials.probes.hindsight), then TensorBoard."""
        g = self.grid
        if g is not None and g.sign is not None and self.store is not None:
            hindsight_pass(self.store, g.labels, g.train_mask, g.sign, self.pc)
        if self.tb is not None:
            self.tb.close()

    def _weights(self, step: int, record: dict):
        named = self.run.named_params
        stats = {k: v.cpu().numpy() for k, v in weight_stats(named, self.pc.hist_bins, self.pc.near_zero).items()}
        names = [n for n, _ in named]
        scalars = {f"weight/near_zero/{n}": float(stats["near_zero"][i])
                   for i, (n, p) in enumerate(named) if p.dim() >= 2}
        if self.tb is not None:
            self.tb.histograms(step, named)
        return scalars, stats, {"names": np.array(names), "levels": np.array(QUANTILE_LEVELS)}

    def _activations(self, step: int, record: dict):
        stats = activation_stats(self.run.model, self.probe_x, self.pc.dead_threshold)
        layers = list(stats)
        scalars, arrays = {}, {}
        for key in ("mean", "std", "dead_frac"):
            arrays[key] = np.array([float(stats[n][key]) for n in layers])
        for i, n in enumerate(layers):
            scalars[f"act/mean/{n}"], scalars[f"act/std/{n}"] = float(arrays["mean"][i]), float(arrays["std"][i])
            if stats[n]["kind"] == "hidden":
                scalars[f"act/dead_frac/{n}"] = float(arrays["dead_frac"][i])
                arrays[f"unit_active/{n}"] = stats[n]["unit_active"].cpu().numpy()
                arrays[f"unit_mean/{n}"] = stats[n]["unit_mean"].cpu().numpy()
        static = {"layers": np.array(layers), "kinds": np.array([stats[n]["kind"] for n in layers])}
        return scalars, arrays, static

    def _attention(self, step: int, record: dict):
        maps = attention_maps(self.run.model, self.attn_x)
        layers = list(maps)
        scalars = {f"attn/entropy/{n}": float(attention_entropy(maps[n])) for n in layers}
        if self.tb is not None:
            self.tb.attention(step, maps)
        weights = torch.stack([maps[n] for n in layers]).cpu().numpy()  # (L, E, H, T, T)
        vocab = getattr(self.run.data, "vocab", None)
        static = {"layers": np.array(layers), "tokens": self.attn_x.cpu().numpy()}
        if vocab:
            static["vocab"] = np.array(vocab)
        return scalars, {"weights": weights.astype(np.float32)}, static

    def _fourier(self, step: int, record: dict):
        g, pc = self.grid, self.pc
        embed = self.run.model.embed.weight  # (V, d): the residues' rows are the answer tokens'
        e_power = fr.embedding_power(embed[g.classes.to(embed.device)])
        e_keys = hindsight_keys(e_power.numpy(), pc)  # the hindsight pass's keys, were this the end
        scalars = {"fourier/key_freqs": float(fr.key_count(e_power, pc.key_power_frac)),
                   "fourier/embed_eff_freqs": fr.effective_freqs(e_power)}
        arrays = {"embed_power": e_power.numpy(), "embed_key_mask": _mask(e_keys, len(e_power))}
        static = {"p": np.int64(g.p), "labels": g.labels.numpy(), "train_mask": g.train_mask.numpy(),
                  "sign": np.int64(g.sign or 0)}
        if g.sign is not None:
            logits = self._grid_logits()[..., g.classes]  # (p, p, p): the p residue classes only
            mean, coef = fr.logit_coefficients(logits, g.sign)
            l_power = fr.logit_power(mean, coef, g.p)
            keys = fr.choose_key_freqs(l_power, pc.key_power_frac, pc.n_key_freqs, pc.key_freqs)
            losses = fr.fourier_losses(logits, g.labels, g.train_mask, g.sign, keys)
            centred = (logits - mean).pow(2).sum()
            scalars.update({f"fourier/{k}": v for k, v in losses.items()})
            scalars["fourier/logit_key_freqs"] = float(fr.key_count(l_power, pc.key_power_frac))
            scalars["fourier/logit_eff_freqs"] = fr.effective_freqs(l_power)
            scalars["fourier/key_share"] = float(l_power[keys].sum() / centred.clamp_min(1e-300))
            arrays.update({"logit_power": l_power.numpy(), "key_mask": _mask(keys, len(l_power)),
                           "logit_mean": mean.float().numpy(), "logit_coef": coef.float().numpy(),
                           **{k: np.float64(v) for k, v in losses.items()}})
            if self.store is not None:
                self.store.save_side(SIDE_KIND, step, side_arrays(mean, coef, logits[g.train_mask]))
        return scalars, arrays, static

    @torch.no_grad()
    def _grid_logits(self, chunk: int = 8192) -> torch.Tensor:
        model, g = self.run.model, self.grid
        was_training = model.training
        model.eval()
        try:
            out = torch.cat([model(g.x[i : i + chunk]).float() for i in range(0, g.x.shape[0], chunk)])
        finally:
            model.train(was_training)
        return out.cpu().to(torch.float64).reshape(g.p, g.p, -1)  # (p, p, V)

    def _per_class(self, step: int, record: dict):
        acc = record.get("val_acc_per_class")
        data = self.run.data
        if acc is None:
            acc = score_split(self.run.model, data.val_x, data.val_y, self.run.class_index)["per_class"].cpu().tolist()
        scalars = class_summary(acc, self.pc.hardest_classes, self.run.cfg.train.target_val_acc)
        names = [data.vocab[int(t)] for t in data.answer_tokens]
        return scalars, {"acc": np.array(acc, dtype=np.float64)}, {"classes": np.array(names)}


def _mask(keys: list[int], n: int) -> np.ndarray:
    """(n,) bool, True at the key frequencies: the list of keys in a fixed-shape array."""
    mask = np.zeros(n, dtype=bool)
    mask[keys] = True
    return mask
