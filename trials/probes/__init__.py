"""Learning-dynamics probes: weight distributions, activation statistics, attention maps,
Fourier progress measures (Nanda et al. 2023; the hindsight pass in trials.probes.hindsight)
and per-class accuracy, run at a subset of the evals.

    collector = ProbeCollector(run, plan, artifacts_dir)   # trials.train builds it when enabled
    if collector.due(step): collector.collect(step, record)

The config is trials.config.ProbeConfig (`probes:` in the experiment YAML). The probe functions
below are pure torch and usable on any model of trials.model.
"""

from trials.probes.activations import activation_layers, activation_stats, summarize
from trials.probes.attention import attention_entropy, attention_maps, attention_weights
from trials.probes.classes import class_summary
from trials.probes.collector import FourierGrid, ProbeCollector, check_probes, probe_steps
from trials.probes.fourier import (
    SUM_SIGNS,
    choose_key_freqs,
    effective_freqs,
    embedding_power,
    fourier_basis,
    fourier_losses,
    key_components,
    key_count,
    logit_coefficients,
    logit_power,
    split_losses,
)
from trials.probes.hindsight import hindsight_keys, hindsight_pass
from trials.probes.store import PROBE_DIR, ProbeStore, TensorBoardProbes
from trials.probes.weights import QUANTILE_LEVELS, weight_stats

__all__ = [
    "PROBE_DIR",
    "QUANTILE_LEVELS",
    "SUM_SIGNS",
    "FourierGrid",
    "ProbeCollector",
    "ProbeStore",
    "TensorBoardProbes",
    "activation_layers",
    "activation_stats",
    "attention_entropy",
    "attention_maps",
    "attention_weights",
    "check_probes",
    "choose_key_freqs",
    "class_summary",
    "effective_freqs",
    "embedding_power",
    "fourier_basis",
    "fourier_losses",
    "hindsight_keys",
    "hindsight_pass",
    "key_components",
    "key_count",
    "logit_coefficients",
    "logit_power",
    "probe_steps",
    "split_losses",
    "summarize",
    "weight_stats",
]
