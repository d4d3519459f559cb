"""groktune tasks: algorithmic datasets as tensors, and memory-mapped token streams.

    data = build_task(TaskConfig(name="modular", op="x/y", p=97), seed=0, device="cuda")
    logits = model(data.train_x)[:, -1]          # the answer is predicted at the last position
    loss = F.cross_entropy(logits, data.train_y)

Every dataset is a pure function of (task fields, train_fraction, seed). Token layouts are in
the docstrings of tasks.modular, tasks.permutation, tasks.sparse_parity and tasks.mixture.

Import from the modules: tasks.config (TaskConfig, its checks, the task names; torch-free),
tasks.ops (operation names; torch-free), tasks.classes (n_classes, chance_level; torch-free),
tasks.registry (build_task), tasks.base (AlgorithmicData), tasks.lm (TokenStream); its errors
are groktune.errors.DataError.
The package itself imports nothing, so `import tasks.config` does not load torch.
"""
