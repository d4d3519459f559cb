"""`groktune slurm submit CONFIG ...` and `groktune slurm status [JOBID]`.

    groktune slurm submit configs/demo_sweep.yaml --nodes 2 --cpus-per-node 16 --time 08:00:00
    groktune slurm submit configs/demo_sweep.yaml --dry-run          # print the script only
    groktune slurm status 1234

submit writes STORAGE/NAME/slurm/job.sbatch (the exact script that runs) and slurm/config.yaml
(the resolved experiment config), then sbatch's the script and prints the job id. The job
starts a Ray cluster across its nodes and runs `groktune sweep --address` against it; see
cluster/slurm/template.sbatch.tmpl for what happens on the pre-limit signal.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from cluster.slurm.render import SlurmConfig, render_script
from cluster.slurm.submit import (
    check_fresh, experiment_dir_of, find_sbatch, job_info, list_jobs, plan_job, sbatch, write_job,
)
from groktune.layout import TRIALS
from orchestrator.config.experiment import dump_config, load_config
from orchestrator.config.tree import ConfigError, apply_overrides, from_dict, validate_tree
from orchestrator.errors import UserError
from orchestrator.cli.paths import check_name_flag, check_parent_folder


def register(sub) -> None:
    p = sub.add_parser("slurm", help="run sweeps on a Ray cluster inside a Slurm job")
    cmds = p.add_subparsers(dest="slurm_command", required=True, metavar="SUBCOMMAND")

    s = cmds.add_parser("submit", help="write the sbatch script into the experiment dir and submit it")
    s.add_argument("config", help="experiment YAML with a `search:` section")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a config value, e.g. --set search.num_samples=64 (repeatable)")
    s.add_argument("--name", help="experiment folder name (default: the config's name)")
    s.add_argument("--storage", type=Path, default=Path("results"),
                   help="parent folder of experiments, on storage every node sees (default ./results)")
    s.add_argument("--nodes", type=int, help="nodes in the allocation; Ray head on the first (default 1)")
    s.add_argument("--cpus-per-node", type=int, help="CPUs per node given to Ray (default 4)")
    s.add_argument("--gpus-per-node", type=int, help="GPUs per node given to Ray (default 0)")
    s.add_argument("--time", help="time limit [D-]HH:MM:SS (default 01:00:00)")
    s.add_argument("--partition", help="Slurm partition (default: the site's)")
    s.add_argument("--account", help="Slurm account (default: yours)")
    s.add_argument("--opt", dest="options", action="append", default=[], metavar="K=V",
                   help="set any SlurmConfig field (cluster/slurm/render.py), e.g. --opt ports.gcs=6380, "
                        "--opt signal_lead_s=300, --opt 'setup=[\"module load cuda\"]' (repeatable)")
    s.add_argument("--dry-run", action="store_true", help="print the script; write and submit nothing")
    s.set_defaults(func=run_submit)

    st = cmds.add_parser("status", help="state of a groktune Slurm job and where its results are")
    st.add_argument("job_id", nargs="?", help="a job id (default: list your queued and running groktune jobs)")
    st.set_defaults(func=run_status)


def slurm_config(args):
    """SlurmConfig from defaults < --opt K=V < the named flags; ConfigError on bad values."""
    data = apply_overrides({}, args.options)
    flags = {"nodes": args.nodes, "cpus_per_node": args.cpus_per_node, "gpus_per_node": args.gpus_per_node,
             "time": args.time, "partition": args.partition, "account": args.account}
    data.update({k: v for k, v in flags.items() if v is not None})
    cfg = from_dict(SlurmConfig, data)
    validate_tree(cfg)
    return cfg


def check_fits(exp, slurm) -> None:
    """A trial must fit on one node, or the sweep would wait forever."""
    s = exp.search
    if s is None:
        raise ConfigError("search: missing; `groktune slurm submit` runs a sweep, which needs a `search:` section")
    if s.cpus_per_trial > slurm.cpus_per_node:
        raise ConfigError(f"search.cpus_per_trial: got {s.cpus_per_trial:g}, more than --cpus-per-node {slurm.cpus_per_node}")
    if s.gpus_per_trial > slurm.gpus_per_node:
        raise ConfigError(f"search.gpus_per_trial: got {s.gpus_per_trial:g}, more than --gpus-per-node {slurm.gpus_per_node}")


def run_submit(args) -> int:
    check_name_flag(args.name)  # it names a folder and the job (a newline would break #SBATCH)
    check_parent_folder(args.storage, "--storage")
    exp = load_config(args.config, args.overrides)
    slurm = slurm_config(args)
    check_fits(exp, slurm)
    name = args.name or exp.name  # the config's name is checked by its validation
    job = plan_job(name, args.storage)
    script = render_script(slurm, job, created=time.strftime("%Y-%m-%d %H:%M:%S"))
    if args.dry_run:
        print(script, end="")
        print(f"groktune: dry run: nothing written or submitted (would write {job.slurm_dir}/)", file=sys.stderr)
        return 0
    exe = find_sbatch()  # before writing anything
    check_fresh(job)
    files = write_job(job, script, dump_config(exp))
    try:
        job_id = sbatch(files.script, exe)
    except UserError:
        if files.created_experiment_dir:
            shutil.rmtree(job.experiment_dir, ignore_errors=True)
        raise
    print(f"submitted Slurm job {job_id}: sweep {name!r} on {slurm.nodes} node(s) x {slurm.cpus_per_node} CPUs"
          f"{f' x {slurm.gpus_per_node} GPUs' if slurm.gpus_per_node else ''}, time limit {slurm.time}")
    print(f"  script   {files.script}")
    print(f"  log      {job.slurm_dir}/{job_id}.out")
    print(f"  results  {job.experiment_dir}  (groktune slurm status {job_id})")
    return 0


def run_status(args) -> int:
    if not args.job_id:
        jobs = list_jobs()
        if not jobs:
            print("no queued or running groktune jobs")
        for row in jobs:
            print(f"{row['JobId']:>8}  {row['JobState']:<10} {row['RunTime']:>10} / {row['TimeLimit']:<10} "
                  f"{row['NumNodes']} node(s)  {row['JobName']}  ({row['Reason']})")
        return 0
    info = job_info(args.job_id)
    if info is None:
        raise UserError(f"job {args.job_id}: unknown to Slurm (finished jobs are forgotten after MinJobAge); "
                        "its results stay in STORAGE/NAME/")
    print(f"job {args.job_id}  {info.get('JobName', '?')}")
    print(f"  state     {info.get('JobState', '?')} (reason {info.get('Reason', '?')}), "
          f"restarts {info.get('Restarts', '0')}")
    print(f"  time      {info.get('RunTime', '?')} of {info.get('TimeLimit', '?')}, nodes {info.get('NodeList', '?')}")
    print(f"  log       {info.get('StdOut', '?')}")
    exp_dir = experiment_dir_of(info)
    if exp_dir is not None:
        done = (exp_dir / TRIALS).exists()
        print(f"  results   {exp_dir}  ({f'{TRIALS} written' if done else f'no {TRIALS} yet'}; "
              f"groktune status {exp_dir})")
    return 0
