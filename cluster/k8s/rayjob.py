"""A KubeRay RayJob (apiVersion ray.io/v1) that runs one groktune sweep on its own RayCluster.

    docs = render_rayjob(K8sConfig(workers=4, gpus_per_worker=1, image="me/groktune:0.1"),
                         name="demo_sweep", config_text=dump_config(cfg))
    Path("demo_sweep.rayjob.yaml").write_text(to_yaml(docs))     # kubectl apply -f ...

Two documents: a ConfigMap holding the resolved experiment config, and the RayJob. The head
pod runs the sweep driver (rayStartParams num-cpus "0": no trials there); each worker pod
gives Ray its CPUs and GPUs. Every pod mounts one ReadWriteMany PersistentVolumeClaim at
/mnt/groktune, because Ray Tune writes trial results and checkpoints from every node into
STORAGE/NAME and the driver restores from there. `shutdownAfterJobFinishes` deletes the cluster
when the sweep ends; `backoffLimit` retries on a new cluster, and the entrypoint then resumes
the sweep from the shared storage (`groktune sweep --resume`) instead of starting over.

Token authentication (`authOptions.mode: token`, KubeRay >= KUBERAY_VERSION with Ray >= 2.52) protects
the GCS and the dashboard. The dashboard must stay reachable inside the cluster here: the
KubeRay operator submits the job and polls its status through it (unlike the Slurm script,
which can keep it on loopback).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from importlib.metadata import version

import yaml

from groktune.layout import EXPERIMENT

KUBERAY_VERSION = "1.5.1"
"""The oldest KubeRay release this manifest is for (authOptions came in 1.5.1); the tests validate
the manifest against this release's published RayJob schema (tests/cluster/schemas/)."""
MOUNT = "/mnt/groktune"
CONFIG_DIR = "/etc/groktune"
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


@dataclass
class K8sConfig:
    workers: int = 2
    cpus_per_worker: int = 4
    gpus_per_worker: int = 0
    memory_per_worker: str = "8Gi"
    image: str = "groktune:0.1.0"
    """An image with groktune installed (e.g. built FROM rayproject/ray:<ray version>)."""
    claim: str = "groktune-results"
    """A ReadWriteMany PersistentVolumeClaim, mounted at /mnt/groktune on every pod."""
    ray_version: str = ""
    """rayClusterSpec.rayVersion; empty = the installed Ray's version."""
    backoff_limit: int = 2
    ttl_seconds_after_finished: int = 600

    def validate(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers: got {self.workers}, must be >= 1")
        if self.cpus_per_worker < 1:
            raise ValueError(f"cpus_per_worker: got {self.cpus_per_worker}, must be >= 1")
        if self.gpus_per_worker < 0:
            raise ValueError(f"gpus_per_worker: got {self.gpus_per_worker}, must be >= 0")
        for name, high in (("workers", 10_000), ("cpus_per_worker", 4096), ("gpus_per_worker", 64)):
            if getattr(self, name) > high:
                raise ValueError(f"{name}: got {getattr(self, name)}, must be <= {high}")
        if not _QUANTITY.fullmatch(self.memory_per_worker):
            raise ValueError(f"memory_per_worker: got {self.memory_per_worker!r}, expected a quantity such as 8Gi")
        if not _K8S_NAME.fullmatch(self.claim):
            raise ValueError(f"claim: got {self.claim!r}, expected a Kubernetes name (lowercase letters, digits, -)")
        if not self.image or not self.image.isprintable() or any(c.isspace() for c in self.image):
            raise ValueError(f"image: got {self.image!r}, expected an image reference such as me/groktune:0.1")
        if self.ray_version and not re.fullmatch(r"[0-9A-Za-z.+-]+", self.ray_version):
            raise ValueError(f"ray_version: got {self.ray_version!r}, expected a version such as 2.60.0")
        if not 0 <= self.backoff_limit <= 1000 or not 0 <= self.ttl_seconds_after_finished <= 10**8:
            raise ValueError("backoff_limit and ttl_seconds_after_finished must be >= 0")


def k8s_name(name: str) -> str:
    """A DNS-1123 label from an experiment name (lowercase, '-' for other characters, <= 40 chars)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40].strip("-")
    return label or "sweep"


def entrypoint(name: str) -> str:
    """The driver command: a fresh sweep, or `--resume` when the shared storage holds one."""
    exp_dir = shlex.quote(f"{MOUNT}/{name}")
    return (
        f"groktune sweep {CONFIG_DIR}/{EXPERIMENT} --name {shlex.quote(name)} --storage {MOUNT}"
        f" $(python -m cluster.runtime can-resume {exp_dir} && echo --resume)"
    )


def _container(role: str, cfg: K8sConfig, cpus: int, memory: str, gpus: int) -> dict:
    limits = {"cpu": str(cpus), "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    container = {
        "name": f"ray-{role}",
        "image": cfg.image,
        "resources": {"requests": dict(limits), "limits": limits},
        "volumeMounts": [{"name": "results", "mountPath": MOUNT}],
    }
    if role == "head":
        container["ports"] = [
            {"containerPort": 6379, "name": "gcs-server"},
            {"containerPort": 8265, "name": "dashboard"},
            {"containerPort": 10001, "name": "client"},
        ]
        container["volumeMounts"].append({"name": "experiment", "mountPath": CONFIG_DIR, "readOnly": True})
    return container


def render_rayjob(cfg: K8sConfig, name: str, config_text: str) -> list[dict]:
    """[ConfigMap, RayJob] for one sweep named `name` whose resolved config is `config_text`."""
    base = f"groktune-{k8s_name(name)}"
    labels = {"app.kubernetes.io/name": "groktune", "groktune/experiment": k8s_name(name)}
    volumes = [{"name": "results", "persistentVolumeClaim": {"claimName": cfg.claim}}]
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{base}-config", "labels": labels},
        "data": {EXPERIMENT: config_text},
    }
    head = {
        "rayStartParams": {"num-cpus": "0"},  # the driver lives here; trials go to the workers
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "containers": [_container("head", cfg, 2, "4Gi", 0)],
                "volumes": volumes + [{"name": "experiment", "configMap": {"name": f"{base}-config"}}],
            },
        },
    }
    workers = {
        "groupName": "workers",
        "replicas": cfg.workers,
        "minReplicas": cfg.workers,
        "maxReplicas": cfg.workers,
        "rayStartParams": {},  # Ray reads CPUs/GPUs from the container's resource limits
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "containers": [_container("worker", cfg, cfg.cpus_per_worker, cfg.memory_per_worker, cfg.gpus_per_worker)],
                "volumes": volumes,
            },
        },
    }
    rayjob = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": base, "labels": labels},
        "spec": {
            "entrypoint": entrypoint(name),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": cfg.ttl_seconds_after_finished,
            "backoffLimit": cfg.backoff_limit,
            "rayClusterSpec": {
                "rayVersion": cfg.ray_version or version("ray"),
                "authOptions": {"mode": "token"},
                "enableInTreeAutoscaling": False,
                "headGroupSpec": head,
                "workerGroupSpecs": [workers],
            },
        },
    }
    return [config_map, rayjob]


class _ReadableDumper(yaml.SafeDumper):
    """No &anchors/*aliases for repeated dicts; multi-line strings (the config) as `|` blocks."""

    def ignore_aliases(self, data) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ReadableDumper.add_representer(str, _str)


def to_yaml(docs: list[dict], header: str = "") -> str:
    """Multi-document YAML, keys in the order written, with an optional comment header."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + yaml.dump_all(docs, Dumper=_ReadableDumper, sort_keys=False, default_flow_style=False, width=120)
