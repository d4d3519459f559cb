"""groktune's shared base: what every package needs and nobody else owns.

Imports nothing of the other groktune packages, nor torch or Ray, so `tasks`, `trials`,
`orchestrator`, `analysis` and `cluster` can all import it (arrows point here, never back).

- `groktune.errors`: UserError, the one-line bad-input error every command prints with exit 2.
- `groktune.layout`: the on-disk run format: file names, record keys, statuses, atomic writes.
- `groktune.events`: the one event rule (reached a threshold and held it for `patience` evals)
  used by the trainer's stop rule, the sweep score and the analysis; post-event collapses.
- `groktune.yamlio`: the one YAML loader (duplicate keys, alias and size limits, YAML 1.2 numbers)
  used by every config and results reader.
- `groktune.names`: the one rule for names that become folders and job names.
"""
