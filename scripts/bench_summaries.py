"""Copy the summaries of GrokBench runs (what the table is computed from) into a committed folder.

    python scripts/bench_summaries.py BENCH_DIR [BENCH_DIR ...] --into benchmarks/grokbench
    groktune bench --seeds 3 --out benchmarks/grokbench --table-only    # the table, from them

A run's summary is the three small files `groktune bench --table-only` reads back: config.yaml,
metrics.jsonl and result.json (an interrupted run has no result.json and counts as stopped at its
last eval). Checkpoints, TensorBoard events and probes stay behind. A file already in the target
with other contents is refused (one line, exit 2) before anything is copied; so are a run folder
without metrics.jsonl and a source that is not a bench folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from groktune.layout import BENCH_RUNS, CONFIG, METRICS, RESULT  # noqa: E402  (after the path is set)

SUMMARY = (CONFIG, METRICS, RESULT)


def plan_copies(sources: list[Path], into: Path) -> list[tuple[Path, Path]]:
    """(source file, target file) of every run summary under each SOURCE/runs; ValueError on a clash."""
    copies = []
    for source in sources:
        runs = source / BENCH_RUNS
        if not runs.is_dir():
            raise ValueError(f"{source}: not a bench folder (no {BENCH_RUNS}/)")
        for metrics in sorted(runs.rglob(METRICS)):
            run = metrics.parent
            for name in SUMMARY:
                src = run / name
                if not src.is_file():
                    continue
                dst = into / BENCH_RUNS / run.relative_to(runs) / name
                if dst.is_file() and dst.read_bytes() != src.read_bytes():
                    raise ValueError(f"{dst}: exists with other contents; remove it to replace it")
                copies.append((src, dst))
    if not copies:
        raise ValueError(f"no run with {METRICS} under {', '.join(map(str, sources))}")
    return copies


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="bench folders (groktune bench --out)")
    parser.add_argument("--into", type=Path, required=True, help="the committed folder (benchmarks/grokbench)")
    args = parser.parse_args(argv)
    try:
        copies = plan_copies(args.sources, args.into)
    except ValueError as err:
        print(f"bench_summaries: {err}", file=sys.stderr)
        return 2
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    print(f"{len(copies)} files -> {args.into / BENCH_RUNS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
