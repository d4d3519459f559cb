"""The bad-input table: every case is exit 2, one line naming the key or path,
no traceback, nothing created and nothing changed.

Each case runs the CLI in-process (`orchestrator.cli.main`) with its cwd in a fresh copy of the
world of tests/orchestrator/bad_input_world.py, so default outputs (runs/, results/,
NAME.rayjob.yaml) would show up in the snapshot too. No case trains: validation and the
environment checks fail first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from orchestrator.cli.main import main
from tests.orchestrator.bad_input_damage import RUN_DAMAGES, SWEEP_DAMAGES
from tests.orchestrator.bad_input_world import build_world, make_run, partial_checkpoints, vocab_checkpoint

NO_CUDA = not torch.cuda.is_available()

T = ["train", "plain.yaml", "--out", "out"]  # a train command that would create ./out
S = ["k8s", "render", "cfg.yaml", "--out", "job.yaml"]  # validates `search:` and writes one file
D = ["slurm", "submit", "cfg.yaml", "--dry-run"]  # validates; prints (exit 0) if nothing is wrong


def tset(*overrides: str) -> list[str]:
    return T + [a for o in overrides for a in ("--set", o)]


def sset(*overrides: str) -> list[str]:
    return S + [a for o in overrides for a in ("--set", o)]


CONFIG_FILE_CASES = [
    ("dup_top.yaml", "duplicate key 'name' at line 2"),
    ("dup_nested.yaml", "duplicate key 'lr' at line 3"),
    ("dup_search.yaml", "duplicate key 'search'"),
    ("laughs.yaml", "nodes once aliases are expanded"),
    ("recursive.yaml", "refers to itself"),
    ("binary.yaml", "binary file"),
    ("latin1.yaml", "not UTF-8"),
    ("utf16.yaml", "binary file"),
    ("unclosed.yaml", "not valid YAML at line"),
    ("list.yaml", "expected a mapping of config sections"),
    ("scalar.yaml", "expected a mapping of config sections"),
    ("deep.yaml", "nested too deeply"),
    ("pytag.yaml", "not valid YAML"),
    ("tabs.yaml", "not valid YAML at line 2"),
    ("complex_key.yaml", "a mapping key must be a scalar"),
    ("int_key.yaml", "1: unknown key"),
    ("unknown.yaml", "nme: unknown key"),
    ("task_scalar.yaml", "task: got 3, expected"),
    ("model_null.yaml", "model: got None"),
    ("name_dotdot.yaml", "name: got '../../x'"),
    ("name_slash.yaml", "name: got 'a/b'"),
    ("name_newline.yaml", "name: got 'x\\n'"),
    ("name_empty.yaml", "name: got ''"),
    ("name_int.yaml", "name: got 123"),
    ("name_dots.yaml", "name: got '..'"),
    ("seed_huge.yaml", "seed: got 1e+30"),
    ("seed_neg.yaml", "seed: got -1"),
    ("seed_nan.yaml", "seed: got nan"),
    ("lr_nested.yaml", "optim.lr: got {'a': 1}"),
    ("p_list.yaml", "task.p: got [1, 2]"),
    ("lr_inf.yaml", "optim.lr: got inf, expected a finite number"),
    ("steps_huge.yaml", "train.steps: got 1000000000000"),
    ("anchor_junk.yaml", "x: unknown key"),
    ("missing.yaml", "missing.yaml: config file not found"),
    ("empty", "empty: a folder, expected a config file"),
]

CASES = [(f"file:{name}", ["train", name, "--out", "out"], needle) for name, needle in CONFIG_FILE_CASES]

CASES += [(f"set:{' '.join(o)}", tset(*o), needle) for o, needle in [
    (["optim.lr=nan"], "optim.lr: got 'nan', expected float"),
    (["optim.lr=.nan"], "optim.lr: got nan, expected a finite number"),
    (["optim.lr=.inf"], "optim.lr: got inf, expected a finite number"),
    (["optim.lr=-.inf"], "optim.lr: got -inf"),
    (["optim.weight_decay=1e400"], "optim.weight_decay: got inf"),
    (["optim.beta1=.nan"], "optim.beta1: got nan"),
    (["task.train_fraction=.nan"], "task.train_fraction: got nan"),
    (["train.target_val_acc=.nan"], "train.target_val_acc: got nan"),
    (["optim.grokfast.alpha=.inf"], "optim.grokfast.alpha: got inf"),
    (["optim.noise.eta=.nan"], "optim.noise.eta: got nan"),
    (["model.init_scale=.nan"], "model.init_scale: got nan"),
    (["model.dropout_ff=.nan"], "model.dropout_ff: got nan"),
    (["train.steps=1e12"], "train.steps: got 1000000000000, must be <= 1_000_000_000"),
    (["train.steps=-5"], "train.steps: got -5"),
    (["train.steps=0"], "train.steps: got 0"),
    (["train.steps=1.5"], "train.steps: got 1.5, expected int"),
    (["train.steps=true"], "train.steps: got True, expected int"),
    (["train.steps=[1]"], "train.steps: got [1], expected int"),
    (["train.steps=" + "9" * 40], "train.steps: got 1e+40, far too large"),
    (["model.d_model=1e9"], "model.d_model: got 1000000000, must be <= 1_048_576"),
    (["model.n_layers=100000"], "model.n_layers: got 100000, must be <= 1_024"),
    (["model.d_ff=1e9"], "model.d_ff: got 1000000000"),
    (["model.n_heads=0"], "model.n_heads: got 0"),
    (["model.d_model=4096", "model.n_layers=1024"], "parameters, more than"),
    (["train.batch_size=1e9"], "train.batch_size: got 1000000000"),
    (["train.grad_accum=1e9"], "train.grad_accum: got 1000000000"),
    (["train.eval_every=0"], "train.eval_every: got 0"),
    (["train.eval_log_ratio=1.0"], "train.eval_log_ratio: got 1.0, must be > 1"),
    (["train.eval_log_ratio=1.0000001", "train.steps=1e8"], "evals over 100000000 steps"),
    (["train.eval_every=1", "train.steps=1e8"], "evals over 100000000 steps"),
    (["train.checkpoint_every=1e12"], "train.checkpoint_every: got 1000000000000"),
    (["train.num_threads=1e6"], "train.num_threads: got 1000000"),
    (["train.target_patience=1e9"], "train.target_patience: got 1000000000"),
    (["train.device=tpu"], "train.device: got 'tpu'"),
    (["train.device=cuda:abc"], "train.device: got 'cuda:abc'"),
    (["train.device=cuda:-1"], "train.device: got 'cuda:-1'"),
    (["train.precision=fp8"], "train.precision: got 'fp8'"),
    (["task.p=1e9"], "task.p: got 1000000000"),
    (["task.p=1"], "task.p: got 1"),
    (["task.name=sparse_parity", "task.n_bits=1e6"], "task.n_bits: got 1000000"),
    (["task.name=sparse_parity", "task.n_samples=1e12"], "task.n_samples: got 1000000000000"),
    (["task.name=sparse_parity", "task.k_bits=50"], "task.k_bits: got 50, must be <= n_bits"),
    (["task.name=lm", "task.path="], "task.path: got ''"),
    (["task.name=lm", "task.path=missing.bin"], "missing.bin: token file not found"),
    (["task.name=lm", "task.path=short.bin", "task.context_length=8"], "too short for context_length 8"),
    (["task.name=lm", "task.path=short.bin", "task.context_length=1e9"], "task.context_length: got 1000000000"),
    (["task.name=nope"], "task.name: got 'nope'"),
    (["task.op=x^y"], "task.op: got 'x^y'"),
    (["task.name=mixture", "task.ops=[]"], "task.ops: got []"),
    (["probes.kinds=[bogus]"], "probes.kinds: got 'bogus'"),
    (["probes.every=1e9"], "probes.every: got 1000000000"),
    (["probes.hist_bins=1e9"], "probes.hist_bins: got 1000000000"),
    (["optim.grokfast.window=1e9"], "optim.grokfast.window: got 1000000000"),
    (["optim.name=lamb"], "optim.name: got 'lamb'"),
    (["name=../../x"], "name: got '../../x'"),
    (["name=a/b"], "name: got 'a/b'"),
    (["seed=1e30"], "seed: got 1e+30"),
    (["seed=-3"], "seed: got -3"),
    (["=3"], "expected KEY=VALUE with a dotted key"),
    (["optim..lr=3"], "expected KEY=VALUE with a dotted key"),
    (["noequals"], "--set 'noequals': expected KEY=VALUE"),
    (["optim.lr.x=1"], "optim.lr.x: lr is not a section"),
    (["optim={a: 1, a: 2}"], "--set optim: duplicate key 'a'"),
    (["optim.lr=&a [*a]"], "--set optim.lr: not usable YAML: refers to itself"),
    (["optim.lrr=1"], "optim.lrr: unknown key"),
]]

CASES += [(f"search:{' '.join(o)}", sset(*o), needle) for o, needle in [
    (["search.space={optim.lr: {loguniform: [1, x]}}"], "search.space.optim.lr.loguniform: needs [low, high] as numbers"),
    (["search.space={optim.lr: {loguniform: [.nan, 1]}}"], "search.space.optim.lr.loguniform: bounds must be finite"),
    (["search.space={optim.lr: {loguniform: [1.0e-2, 1.0e-3]}}"], "search.space.optim.lr.loguniform: low 0.01 >= high 0.001"),
    (["search.space={optim.weight_decay: {uniform: [0, 1e400]}}"], "search.space.optim.weight_decay.uniform: bounds must be finite"),
    (["search.space={train.batch_size: {choice: []}}"], "search.space.train.batch_size.choice: needs a non-empty list"),
    (["search.space={optim.lr: {choice: [.nan]}}"], "search.space.optim.lr.choice: value nan gives an invalid config"),
    (["search.space={model.d_model: {quniform: [16, 64, 0]}}"], "search.space.model.d_model.quniform: q must be > 0"),
    (["search.space={optim.weight_decay: {quniform: [0, 1.0e+299, 1.0e-299]}}"],
     "search.space.optim.weight_decay.quniform: q 1e-299 is too small"),
    (["search.space={optim.warmup_steps: {randint: [0, 1.0e+30]}}"],
     "search.space.optim.warmup_steps.randint: value 1000000000000000019884624838655 gives an invalid config"),
    (["search.space={optim.lr: {normal: [0, 1]}}"], "search.space.optim.lr: unknown distribution 'normal'"),
    (["search.space={optim.lr: 3}"], "search.space.optim.lr: got 3, expected one mapping"),
    (["search.space={optim.lrr: {uniform: [0.1, 0.2]}}"], "search.space.optim.lrr: unknown key"),
    (["search.space={model.d_model: {choice: [1e9]}}"], "search.space.model.d_model.choice: value 1000000000.0 gives"),
    (["search.space=x"], "search.space: got 'x', expected a mapping"),
    (["search.num_samples=1e12"], "search.num_samples: got 1e+12, must be in [1, 1e+06]"),
    (["search.num_samples=0"], "search.num_samples: got 0"),
    (["search.cpus_per_trial=1e6"], "search.cpus_per_trial: got 1e+06"),
    (["search.cpus_per_trial=.nan"], "search.cpus_per_trial: got nan"),
    (["search.gpus_per_trial=-1"], "search.gpus_per_trial: got -1"),
    (["search.seeds=[1e30]"], "search.seeds[0]: got 1e+30"),
    (["search.seeds=[-1]"], "search.seeds: got -1"),
    (["search.seeds=[]"], "search.seeds: empty list"),
    (["search.algorithm=bayes"], "search.algorithm: got 'bayes'"),
    (["search.reduction_factor=1"], "search.reduction_factor: got 1"),
    (["search.seeds_per_trial=1e9"], "search.seeds_per_trial: got 1e+09"),
    (["search.tracking=[foo]"], "search.tracking: got 'foo'"),
    (["search.foo=1"], "search.foo: unknown key"),
    (["search.optuna_storage=a\tb"], "search.optuna_storage: got a URL with control characters"),
]]

CASES += [
    ("sweep:name-dotdot", ["sweep", "cfg.yaml", "--name", "../../x"], "--name: got '../../x'"),
    ("sweep:name-slash", ["sweep", "cfg.yaml", "--name", "a/b"], "--name: got 'a/b'"),
    ("sweep:name-newline", ["sweep", "cfg.yaml", "--name", "x\n"], "--name: got 'x\\n'"),
    ("sweep:name-ctrl", ["sweep", "cfg.yaml", "--name", "x\x1b[2J"], "--name: got 'x\\x1b[2J'"),
    ("sweep:storage-file", ["sweep", "cfg.yaml", "--storage", "afile"], "--storage afile: is a file"),
    ("sweep:storage-under-file", ["sweep", "cfg.yaml", "--storage", "afile/x"], "--storage afile/x: is under afile"),
    ("sweep:no-search", ["sweep", "plain.yaml"], "no `search:` section"),
    ("sweep:bad-config", ["sweep", "laughs.yaml"], "nodes once aliases are expanded"),
    ("train:out-file", ["train", "plain.yaml", "--out", "afile"], "--out afile: is a file"),
    ("train:out-under-file", ["train", "plain.yaml", "--out", "afile/sub"], "afile is a file"),
    ("train:out-foreign", ["train", "plain.yaml", "--out", "foreign"], "not empty and not a groktune run folder"),
    ("train:force-own-config", ["train", "plain.yaml", "--out", "foreign_cfg", "--force"],
     "already holds its own config.yaml"),
    ("train:force-own-result", ["train", "plain.yaml", "--out", "foreign_res", "--force"],
     "already holds its own result.json"),
    ("train:resume-no-out", ["train", "plain.yaml", "--resume"], "--resume needs --out"),
    ("train:resume-missing", ["train", "plain.yaml", "--resume", "--out", "nothere"], "no such run folder"),
    ("train:resume-foreign", ["train", "plain.yaml", "--resume", "--out", "foreign"], "holds no groktune run"),
    ("train:resume-file", ["train", "plain.yaml", "--resume", "--out", "afile"], "is a file"),
    ("train:out-finished", ["train", "plain.yaml", "--out", "run"], "already holds a run, finished"),
    ("train:out-resumable", ["train", "plain.yaml", "--out", "ckpt"], "already holds a run; pass --resume"),
    ("train:resume-seed", ["train", "plain.yaml", "--resume", "--out", "ckpt", "--set", "seed=5",
                           "--set", "train.steps=10"], "seed: 0 -> 5"),
    ("train:resume-split", ["train", "plain.yaml", "--resume", "--out", "ckpt", "--set", "task.train_fraction=0.6",
                            "--set", "train.steps=10"], "task.train_fraction: 0.5 -> 0.6"),
    ("train:resume-two-keys", ["train", "plain.yaml", "--resume", "--out", "ckpt", "--set", "task.p=11",
                               "--set", "model.d_model=32"], "model.d_model: 16 -> 32; task.p: 7 -> 11"),
    ("train:resume-no-config", ["train", "plain.yaml", "--resume", "--out", "noconfig"], "config.yaml: config file not found"),
    ("train:resume-corrupt-ckpt", ["train", "plain.yaml", "--resume", "--out", "badckpt", "--set", "train.steps=10"],
     "not a readable groktune checkpoint"),
    ("train:resume-vocab-ckpt", ["train", "plain.yaml", "--resume", "--out", "vocabckpt", "--set", "train.steps=10"],
     "in the checkpoint"),
    ("train:resume-ckpt-no-optimizer", ["train", "plain.yaml", "--resume", "--out", "part_noopt", "--set",
                                        "train.steps=10"], "not a run checkpoint (no optimizer)"),
    ("train:resume-ckpt-config-list", ["train", "plain.yaml", "--resume", "--out", "part_listconfig", "--set",
                                       "train.steps=10"], "written for a different task config"),
    ("train:resume-ckpt-not-dict", ["train", "plain.yaml", "--resume", "--out", "part_notdict", "--set",
                                    "train.steps=10"], "not a groktune checkpoint"),
    ("train:bad-flag", ["train", "plain.yaml", "--outt", "x"], "unrecognized arguments: --outt x"),
    ("train:no-config-arg", ["train"], "the following arguments are required: config"),
    ("report:missing", ["report", "nothere"], "nothere: no such results folder"),
    ("report:missing-newline", ["report", "no\nthere"], "no\\nthere: no such results folder"),
    ("train:config-newline", ["train", "a\nb.yaml"], "a\\nb.yaml: config file not found"),
    ("report:file", ["report", "afile"], "afile: not a folder"),
    ("report:empty", ["report", "empty"], "empty: no results found"),
    ("report:foreign", ["report", "foreign"], "foreign: no results found"),
    ("report:corrupt-parquet", ["report", "badpq", "--out", "rep"], "not a readable Parquet file"),
    ("report:empty-parquet", ["report", "emptypq", "--out", "rep"], "missing column"),
    ("report:sweep-without-parquet", ["report", "sweep", "--out", "rep"], "groktune collect"),
    ("report:bad-metrics", ["report", "run_badmetrics", "--out", "rep"], "run_badmetrics/metrics.jsonl"),
    ("report:binary-config", ["report", "run_binconfig", "--out", "rep"], "config.yaml: a binary file"),
    ("report:dup-config", ["report", "run_dupconfig", "--out", "rep"], "config.yaml: duplicate key 'seed'"),
    ("report:metrics-columns", ["report", "run_nometrics_cols", "--out", "rep"], "run_nometrics_cols"),
    ("report:out-file", ["report", "run", "--out", "afile"], "--out afile: is a file"),
    ("report:out-foreign", ["report", "run", "--out", "foreign"], "not empty and not a groktune report folder"),
    ("report:out-foreign-force", ["report", "run", "--out", "foreign_csv", "--force"],
     "already holds its own summary.csv"),
    ("report:out-foreign-figures", ["report", "run", "--out", "rep_foreign"], "figures/mine.txt was not written"),
    ("report:threshold", ["report", "run", "--threshold", "2"], "--threshold: got 2.0"),
    ("report:threshold-nan", ["report", "run", "--threshold", "nan"], "--threshold: got nan"),
    ("report:patience", ["report", "run", "--patience", "0"], "--patience: got 0"),
    ("report:delay-nan", ["report", "run", "--delay-boundary", "nan"], "--delay-boundary: got nan"),
    ("report:delay-inf", ["report", "run", "--delay-boundary", "inf"], "--delay-boundary: got inf"),
    ("collect:missing", ["collect", "nothere"], "nothere"),
    ("collect:file", ["collect", "afile"], "afile"),
    ("collect:empty", ["collect", "empty"], "not a groktune sweep folder"),
    ("collect:binary-experiment", ["collect", "sweepbin"], "experiment.yaml: a binary file"),
    ("collect:dup-experiment", ["collect", "sweepdup"], "experiment.yaml: duplicate key 'name'"),
    ("collect:bad-experiment", ["collect", "sweepbad"], "experiment.yaml: not valid YAML"),
    ("collect:run-folder", ["collect", "run"], "not a groktune sweep folder"),
    ("status:missing", ["status", "nothere"], "nothere"),
    ("status:file", ["status", "afile"], "afile"),
    ("status:foreign", ["status", "foreign"], "not a groktune sweep folder"),
    ("status:dup-experiment", ["status", "sweepdup"], "duplicate key 'name'"),
    ("status:binary-experiment", ["status", "sweepbin"], "a binary file"),
    ("k8s:missing", ["k8s", "render", "nothere.yaml"], "nothere.yaml: config file not found"),
    ("k8s:no-search", ["k8s", "render", "plain.yaml", "--out", "job.yaml"], "search: missing"),
    ("k8s:out-folder", ["k8s", "render", "cfg.yaml", "--out", "empty"], "--out empty: is a folder"),
    ("k8s:out-no-parent", ["k8s", "render", "cfg.yaml", "--out", "nodir/x.yaml"], "folder nodir does not exist"),
    ("k8s:out-under-file", ["k8s", "render", "cfg.yaml", "--out", "afile/x.yaml"], "afile is a file"),
    ("k8s:name-dotdot", S + ["--name", "../x"], "--name: got '../x'"),
    ("k8s:name-newline", S + ["--name", "x\n"], "--name: got 'x\\n'"),
    ("k8s:workers-0", S + ["--workers", "0"], "workers: got 0"),
    ("k8s:workers-huge", S + ["--workers", "1000000"], "workers: got 1000000"),
    ("k8s:workers-text", S + ["--workers", "two"], "argument --workers: invalid int value"),
    ("k8s:memory-newline", S + ["--memory-per-worker", "8Gi\n"], "memory_per_worker: got '8Gi\\n'"),
    ("k8s:image-space", S + ["--image", "a b"], "image: got 'a b'"),
    ("k8s:claim", S + ["--claim", "Bad_Name"], "claim: got 'Bad_Name'"),
    ("k8s:trial-too-big", sset("search.cpus_per_trial=8") + ["--cpus-per-worker", "4"],
     "search.cpus_per_trial: got 8, more than --cpus-per-worker 4"),
    ("k8s:bad-config", ["k8s", "render", "recursive.yaml"], "refers to itself"),
    ("slurm:name-dotdot", D + ["--name", "../x"], "--name: got '../x'"),
    ("slurm:name-newline", D + ["--name", "x\n"], "--name: got 'x\\n'"),
    ("slurm:storage-file", D + ["--storage", "afile"], "--storage afile: is a file"),
    ("slurm:nodes-0", D + ["--nodes", "0"], "nodes: got 0"),
    ("slurm:nodes-huge", D + ["--nodes", "10000000"], "nodes: got 10000000"),
    ("slurm:time", D + ["--time", "99"], "time"),
    ("slurm:time-newline", D + ["--time", "01:00:00\n"], "time"),
    ("slurm:partition", D + ["--partition", "a b"], "partition: got 'a b'"),
    ("slurm:partition-newline", D + ["--partition", "gpu\n"], "partition: got 'gpu\\n'"),
    ("slurm:account", D + ["--account", "x;rm"], "account: got 'x;rm'"),
    ("slurm:opt-unknown", D + ["--opt", "nonsense=1"], "nonsense: unknown key"),
    ("slurm:opt-setup-newline", D + ["--opt", 'setup=["a\\nb"]'], "setup: one shell command per list item"),
    ("slurm:opt-port", D + ["--opt", "ports.gcs=70000"], "gcs: got 70000"),
    ("slurm:opt-sbatch-cr", D + ["--opt", 'extra_sbatch=["--x\\r"]'], "extra_sbatch: got"),
    ("slurm:opt-temp-dir", D + ["--opt", "temp_dir=relative"], "temp_dir: got 'relative'"),
    ("slurm:gpus-huge", D + ["--gpus-per-node", "1000"], "gpus_per_node: got 1000"),
    ("slurm:trial-too-big", D + ["--cpus-per-node", "1", "--set", "search.cpus_per_trial=2"],
     "search.cpus_per_trial: got 2, more than --cpus-per-node 1"),
    ("slurm:bad-config", ["slurm", "submit", "binary.yaml", "--dry-run"], "a binary file"),
    ("slurm:no-search", ["slurm", "submit", "plain.yaml", "--dry-run"], "search: missing"),
]

# Files groktune reads back, damaged: type-corrupted values (strings for numbers, lists for
# objects), missing keys, truncation, text that is not JSON (tests/orchestrator/bad_input_damage.py).
COMMANDS = {"S": lambda d: ["status", d], "C": lambda d: ["collect", d], "R": lambda d: ["report", d, "--out", "rep"]}
CASES += [(f"damaged-sweep:{name}:{COMMANDS[c]('x')[0]}", COMMANDS[c](f"dmg-{name}"), needle)
          for name, (_, commands, needle) in SWEEP_DAMAGES.items() for c in commands]
CASES += [(f"damaged-run:{name}", ["report", f"rdmg-{name}", "--out", "rep"], needle)
          for name, (_, needle) in RUN_DAMAGES.items()]
CASES += [
    ("damaged-run:probe-strings", ["report", "rdmg-probe-strings", "--out", "rep"], "weights.npz: step: got an array of <U1"),
    ("damaged-run:probe-truncated", ["report", "rdmg-probe-truncated", "--out", "rep"],
     "weights.npz: not a readable probe file"),
    ("damaged-run:resume-ckpt-is-folder", ["train", "plain.yaml", "--resume", "--out", "ckpt-dir"],
     "checkpoints/checkpoint.pt is not a regular file"),
    ("damaged-run:ckpt-is-folder-no-resume", ["train", "plain.yaml", "--out", "ckpt-dir"],
     "checkpoints/checkpoint.pt is not a regular file"),
    ("damaged-run:resume-checkpoints-is-file", ["train", "plain.yaml", "--resume", "--out", "ckpt-dirs"],
     "ckpt-dirs/checkpoints is not a folder"),
    ("damaged-run:resume-metrics-step", ["train", "plain.yaml", "--resume", "--out", "ckpt-metrics"],
     "metrics.jsonl: line 1: step: got \"abc\""),
    ("damaged-run:resume-metrics-list", ["train", "plain.yaml", "--resume", "--out", "ckpt-metrics-list"],
     "metrics.jsonl: line 2 is not a JSON object"),
    ("damaged-sweep:resume-ledger", ["sweep", "cfg.yaml", "--resume", "--storage", ".", "--name", "dmg-ledger-all-list"],
     "ledger/a1b2c_00000.json: expected a JSON object"),
]

ENV_CASES = [  # environment checks: only meaningful where the device is absent
    ("env:cuda-index", tset("train.device=cuda:7"), "train.device: got 'cuda:7', but no CUDA device"),
    ("env:cuda", tset("train.device=cuda"), "train.device: got 'cuda', but no CUDA device is available"),
    ("env:fp16-cpu", tset("train.precision=fp16", "train.device=cpu"), "train.precision: fp16 needs a CUDA device"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One world for the module (built once: fast); a case that changes it gets it rebuilt."""
    seed = tmp_path_factory.mktemp("seedrun")
    run = make_run(seed, main)
    vocab = seed / "vocab.pt"
    vocab_checkpoint(run / "checkpoints" / "checkpoint.pt", vocab)
    partial_checkpoints(run / "checkpoints" / "checkpoint.pt", seed)  # found beside vocab.pt
    root = tmp_path_factory.mktemp("world")
    build_world(root, run, vocab)
    return {"root": root, "run": run, "vocab": vocab, "snapshot": snapshot(root)}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root: its contents (files) and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def check_case(monkeypatch, capsys, world, argv, needle):
    root, before = world["root"], world["snapshot"]
    monkeypatch.chdir(root)
    capsys.readouterr()
    try:
        rc = main(list(argv))
        out, err = capsys.readouterr()
        assert rc == 2, (rc, out[-500:], err)
        assert "Traceback" not in err and "Traceback" not in out
        assert err.count("\n") == 1 and err.endswith("\n"), err
        assert err.startswith("groktune"), err
        assert needle in err, err
    finally:
        after = snapshot(root)
        if after != before:  # leave a clean world for the next case, then fail this one
            shutil.rmtree(root)
            root.mkdir()
            build_world(root, world["run"], world["vocab"])
            world["snapshot"] = snapshot(root)  # the rebuilt world's times, for the next case
    assert sorted(set(after) - set(before)) == [], "created"
    assert sorted(set(before) - set(after)) == [], "removed"
    assert [k for k in before if before[k] != after[k]] == [], "changed"


def test_the_table_is_big_enough():
    assert len(CASES) + len(ENV_CASES) > 100
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("argv,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(monkeypatch, capsys, world, argv, needle):
    check_case(monkeypatch, capsys, world, argv, needle)


@pytest.mark.skipif(not NO_CUDA, reason="a CUDA device is present: these configs are valid here")
@pytest.mark.parametrize("argv,needle", [c[1:] for c in ENV_CASES], ids=[c[0] for c in ENV_CASES])
def test_missing_device_is_found_before_the_run_folder(monkeypatch, capsys, world, argv, needle):
    check_case(monkeypatch, capsys, world, argv, needle)


def test_report_out_force_and_rerun_keep_files_the_report_did_not_write(tmp_path, capsys, world):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep\n")
    run = str(world["root"] / "run")
    assert main(["report", run, "--out", str(out)]) == 2
    assert main(["report", run, "--out", str(out), "--force"]) == 0
    assert (out / "notes.txt").read_text() == "keep\n" and (out / "report.html").is_file()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert main(["report", run, "--out", str(out)]) == 0  # an earlier report is ours to replace
    assert sorted(p.name for p in (out / "figures").iterdir()) == figures
    (out / "figures" / "my_plot.png").write_bytes(b"mine")
    capsys.readouterr()
    assert main(["report", run, "--out", str(out)]) == 2
    assert "my_plot.png was not written by a groktune report" in capsys.readouterr().err
    assert (out / "figures" / "my_plot.png").read_bytes() == b"mine"
