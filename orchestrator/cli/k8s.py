"""`groktune k8s render CONFIG [--workers N] [--gpus-per-worker G] [--image I] [--out FILE]`.

Writes a KubeRay RayJob (apiVersion ray.io/v1) plus a ConfigMap with the resolved experiment
config; `kubectl apply -f FILE` runs the sweep on a fresh RayCluster that is deleted when the
sweep ends. See cluster/k8s/rayjob.py for the shape and the reasons.
"""

from __future__ import annotations

from pathlib import Path

from cluster.k8s.rayjob import KUBERAY_VERSION, K8sConfig, render_rayjob, to_yaml
from orchestrator.config.experiment import dump_config, load_config
from orchestrator.config.tree import ConfigError, from_dict, validate_tree
from orchestrator.cli.paths import check_name_flag, check_output_file


def register(sub) -> None:
    p = sub.add_parser("k8s", help="Kubernetes manifests for sweeps (KubeRay RayJob)")
    cmds = p.add_subparsers(dest="k8s_command", required=True, metavar="SUBCOMMAND")
    r = cmds.add_parser("render", help="write a RayJob manifest that runs the sweep")
    r.add_argument("config", help="experiment YAML with a `search:` section")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a config value (repeatable)")
    r.add_argument("--name", help="experiment name (default: the config's name)")
    r.add_argument("--workers", type=int, help="worker pods (default 2)")
    r.add_argument("--cpus-per-worker", type=int, help="CPUs per worker pod (default 4)")
    r.add_argument("--gpus-per-worker", type=int, help="GPUs per worker pod (default 0)")
    r.add_argument("--memory-per-worker", help="memory per worker pod (default 8Gi)")
    r.add_argument("--image", help="container image with groktune installed (default groktune:0.1.0)")
    r.add_argument("--claim", help="ReadWriteMany PersistentVolumeClaim for results (default groktune-results)")
    r.add_argument("--out", type=Path, help="output file (default NAME.rayjob.yaml; '-' prints it)")
    r.set_defaults(func=run_render)


def k8s_config(args):
    flags = {"workers": args.workers, "cpus_per_worker": args.cpus_per_worker,
             "gpus_per_worker": args.gpus_per_worker, "memory_per_worker": args.memory_per_worker,
             "image": args.image, "claim": args.claim}
    cfg = from_dict(K8sConfig, {k: v for k, v in flags.items() if v is not None})
    validate_tree(cfg)
    return cfg


def run_render(args) -> int:
    check_name_flag(args.name)
    if args.out is not None and str(args.out) != "-":
        check_output_file(args.out)
    exp = load_config(args.config, args.overrides)
    k8s = k8s_config(args)
    if exp.search is None:
        raise ConfigError("search: missing; the RayJob runs a sweep, which needs a `search:` section")
    if exp.search.cpus_per_trial > k8s.cpus_per_worker:
        raise ConfigError(f"search.cpus_per_trial: got {exp.search.cpus_per_trial:g}, more than --cpus-per-worker {k8s.cpus_per_worker}")
    if exp.search.gpus_per_trial > k8s.gpus_per_worker:
        raise ConfigError(f"search.gpus_per_trial: got {exp.search.gpus_per_trial:g}, more than --gpus-per-worker {k8s.gpus_per_worker}")
    name = args.name or exp.name  # both checked: groktune.names
    header = (f"groktune sweep {name!r} as a KubeRay RayJob; written by `groktune k8s render`.\n"
              f"Needs the KubeRay operator (>= {KUBERAY_VERSION}) and the ReadWriteMany PVC {k8s.claim!r}.\n"
              f"Run: kubectl apply -f THIS_FILE; results land in {k8s.claim}:/{name}/")
    text = to_yaml(render_rayjob(k8s, name, dump_config(exp)), header)
    if args.out is not None and str(args.out) == "-":
        print(text, end="")
        return 0
    out = args.out or Path(f"{name}.rayjob.yaml")
    check_output_file(out)
    out.write_text(text)
    print(f"wrote {out}: RayJob with {k8s.workers} worker(s) x {k8s.cpus_per_worker} CPUs"
          f"{f' x {k8s.gpus_per_worker} GPUs' if k8s.gpus_per_worker else ''}; kubectl apply -f {out}")
    return 0
