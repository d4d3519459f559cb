"""`groktune k8s render`: the manifest against KubeRay's published RayJob schema, and its content.

The RayJob is validated against the `ray.io/v1` openAPIV3Schema of KubeRay's RayJob CRD at
KUBERAY_VERSION (cluster/k8s/rayjob.py), vendored verbatim in tests/cluster/schemas/ (no PyPI
package ships it). Like `kubectl apply` (server-side field validation "Strict", the default),
an unknown field is an error: every object of the schema with declared properties gets
`additionalProperties: false` unless it is marked x-kubernetes-preserve-unknown-fields (where
the API server keeps unknown fields); maps keep their own additionalProperties. Not checked:
the CRD's CEL rules (x-kubernetes-validations) and `metadata`, which the API server validates
as ObjectMeta (the name is checked here as a DNS label).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from functools import cache
from importlib.metadata import version
from pathlib import Path

import jsonschema
import pytest
import yaml

from cluster.k8s.rayjob import KUBERAY_VERSION
from orchestrator.cli.main import main
from orchestrator.config.experiment import config_from_dict, load_config

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "tiny_sweep.yaml")
SCHEMA = Path(__file__).with_name("schemas") / "rayjob-v1.schema.json"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def strict(schema):
    """A copy of an OpenAPI (structural) schema in which unknown object fields are errors."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"):
            out[key] = strict(value)
        else:
            out[key] = value  # other keywords and data (enum, default) as published
    if "properties" in schema and "additionalProperties" not in schema \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@cache
def validator() -> jsonschema.Draft4Validator:
    """OpenAPI 3.0 schemas are JSON Schema draft 4 with extensions (x-kubernetes-*) it ignores."""
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft4Validator(strict(schema))


def schema_errors(doc: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator().iter_errors(doc)]


def render(tmp_path, *extra) -> list[dict]:
    out = tmp_path / "job.yaml"
    assert main(["k8s", "render", CONFIG, "--out", str(out), *extra]) == 0
    return list(yaml.safe_load_all(out.read_text()))


@pytest.fixture
def docs(tmp_path):
    return render(tmp_path, "--workers", "3", "--gpus-per-worker", "1", "--image", "me/groktune:0.1",
                  "--cpus-per-worker", "8")


def test_two_documents_configmap_then_rayjob(docs):
    config_map, rayjob = docs
    assert config_map["apiVersion"] == "v1" and config_map["kind"] == "ConfigMap"
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    for doc in docs:
        assert DNS_LABEL.match(doc["metadata"]["name"]) and len(doc["metadata"]["name"]) <= 63


def test_configmap_holds_the_resolved_config(docs):
    saved = yaml.safe_load(docs[0]["data"]["experiment.yaml"])
    assert config_from_dict(saved) == load_config(CONFIG)


def test_vendored_schema_is_the_pinned_kuberay_release():
    comment = json.loads(SCHEMA.read_text())["$comment"]
    assert f"KubeRay v{KUBERAY_VERSION} RayJob" in comment and f"/blob/v{KUBERAY_VERSION}/" in comment


@pytest.mark.parametrize("extra", [
    [],
    ["--workers", "3", "--gpus-per-worker", "1", "--image", "me/groktune:0.1", "--cpus-per-worker", "8"],
    ["--name", "My_Sweep.v2", "--memory-per-worker", "500Mi", "--claim", "shared-results"],
])
def test_rayjob_validates_against_kuberay_schema(tmp_path, extra):
    rayjob = render(tmp_path, *extra)[1]
    assert schema_errors(rayjob) == []
    # rayStartParams is map[string]string in the CRD: the schema says so too.
    cluster = rayjob["spec"]["rayClusterSpec"]
    for params in [cluster["headGroupSpec"]["rayStartParams"]] + [g["rayStartParams"] for g in cluster["workerGroupSpecs"]]:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())


def _misspell_replicas(job):
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replica"] = 3


def _misspell_shutdown(job):
    job["spec"]["shutdownAfterJobFinish"] = True


def _misspell_container_resources(job):  # deep in the core PodSpec the CRD embeds
    container = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["resource"] = container.pop("resources")


def _number_as_start_param(job):
    job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0


def _string_backoff(job):
    job["spec"]["backoffLimit"] = "2"


def _no_group_name(job):
    del job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]


@pytest.mark.parametrize("spoil, where", [
    (_misspell_replicas, "spec.rayClusterSpec.workerGroupSpecs.0: Additional properties are not allowed ('replica'"),
    (_misspell_shutdown, "spec: Additional properties are not allowed ('shutdownAfterJobFinish'"),
    (_misspell_container_resources, "containers.0: Additional properties are not allowed ('resource'"),
    (_number_as_start_param, "rayStartParams.num-cpus: 0 is not of type 'string'"),
    (_string_backoff, "spec.backoffLimit: '2' is not of type 'integer'"),
    (_no_group_name, "workerGroupSpecs.0: 'groupName' is a required property"),
])
def test_schema_rejects_a_wrong_field(docs, spoil, where):
    rayjob = copy.deepcopy(docs[1])
    spoil(rayjob)
    errors = schema_errors(rayjob)
    assert len(errors) == 1 and where in errors[0], errors


def test_strictness_keeps_maps_and_preserved_objects_open():
    schema = {"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "properties": {"a": {"type": "string"}}, "x-kubernetes-preserve-unknown-fields": True},
        "fixed": {"type": "object", "properties": {"a": {"type": "string"}}},
    }}
    check = jsonschema.Draft4Validator(strict(schema)).is_valid
    assert check({"labels": {"any": "x"}, "free": {"a": "x", "b": 1}, "fixed": {"a": "x"}})
    assert not check({"fixed": {"a": "x", "b": "y"}}) and not check({"other": 1}) and not check({"labels": {"k": 1}})


def test_entrypoint_runs_the_sweep_and_resumes_from_shared_storage(docs):
    entry = docs[1]["spec"]["entrypoint"]
    assert entry.startswith("groktune sweep /etc/groktune/experiment.yaml --name tiny_sweep --storage /mnt/groktune")
    assert "python -m cluster.runtime can-resume /mnt/groktune/tiny_sweep && echo --resume" in entry
    assert subprocess.run(["bash", "-n", "-c", entry]).returncode == 0


def test_cluster_lifecycle_auth_and_version(docs):
    spec = docs[1]["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["backoffLimit"] >= 1
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert cluster["rayVersion"] == version("ray")


def test_resources_and_shared_storage(docs):
    cluster = docs[1]["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # no trials on the driver's node
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 3
    (worker_container,) = workers["template"]["spec"]["containers"]
    assert worker_container["image"] == "me/groktune:0.1"
    limits = worker_container["resources"]["limits"]
    assert limits == {"cpu": "8", "memory": "8Gi", "nvidia.com/gpu": "1"}
    assert worker_container["resources"]["requests"] == limits
    for pod in (head, workers["template"]["spec"]):
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["results"]["persistentVolumeClaim"] == {"claimName": "groktune-results"}
        for container in pod["containers"]:
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts["results"] == "/mnt/groktune"
            assert set(mounts) <= set(volumes)  # every mount names a volume of its pod
    head_mounts = {m["name"]: m for m in head["containers"][0]["volumeMounts"]}
    assert head_mounts["experiment"]["mountPath"] == "/etc/groktune" and head_mounts["experiment"]["readOnly"]
    config_volume = {v["name"]: v for v in head["volumes"]}["experiment"]
    assert config_volume["configMap"]["name"] == docs[0]["metadata"]["name"]
    ports = {p["name"]: p["containerPort"] for p in head["containers"][0]["ports"]}
    assert ports == {"gcs-server": 6379, "dashboard": 8265, "client": 10001}


def test_no_gpu_limit_without_gpus(tmp_path):
    (workers,) = render(tmp_path)[1]["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert "nvidia.com/gpu" not in workers["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_stdout_and_names(tmp_path, capsys):
    assert main(["k8s", "render", CONFIG, "--out", "-", "--name", "My_Sweep.v2"]) == 0
    rayjob = list(yaml.safe_load_all(capsys.readouterr().out))[1]
    assert rayjob["metadata"]["name"] == "groktune-my-sweep-v2"
    assert "--name My_Sweep.v2" in rayjob["spec"]["entrypoint"]


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "workers: got 0"),
    (["--memory-per-worker", "lots"], "memory_per_worker: got 'lots'"),
    (["--claim", "Bad_Name"], "claim: got 'Bad_Name'"),
    (["--set", "search.gpus_per_trial=1"], "search.gpus_per_trial: got 1"),
])
def test_bad_options_are_one_line_exit_2(tmp_path, capsys, args, message):
    assert main(["k8s", "render", CONFIG, "--out", str(tmp_path / "x.yaml"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("groktune: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.yaml").exists()
