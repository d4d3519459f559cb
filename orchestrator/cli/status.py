"""`groktune status DIR [--json] [--limit N]`: a running or finished sweep at a glance."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("status", help="show a sweep's trials, best so far and resources in use")
    p.add_argument("dir", type=Path, help="the sweep folder, STORAGE/NAME")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: sweep status, counts, best and every trial")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="rows of the per-trial table (default 40, live trials first then the best; 0: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    # deferred: pandas and the config tree load only when this command runs (cli imports every command)
    from orchestrator.errors import UserError
    from orchestrator.sweep.status import TABLE_LIMIT, describe, status_data  # deferred: as above

    if args.limit is not None and args.limit < 0:
        raise UserError(f"--limit: got {args.limit}, must be >= 0 (0 shows every trial)")
    if args.json:
        print(json.dumps(status_data(args.dir), indent=1, allow_nan=False, default=str))
    else:
        print(describe(args.dir, TABLE_LIMIT if args.limit is None else args.limit))
    return 0
