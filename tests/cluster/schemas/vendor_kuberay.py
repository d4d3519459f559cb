"""Vendor KubeRay's published RayJob schema for tests/cluster/test_k8s.py (data, not code).

    # ray.io_rayjobs.yaml of the KubeRay release in KUBERAY_VERSION (cluster/k8s/rayjob.py), from
    # https://github.com/ray-project/kuberay/blob/vX.Y.Z/ray-operator/config/crd/bases/ray.io_rayjobs.yaml
    python tests/cluster/schemas/vendor_kuberay.py ray.io_rayjobs.yaml X.Y.Z

Writes rayjob-v1.schema.json beside this file: the CRD's `ray.io/v1` openAPIV3Schema exactly as
published, with a "$comment" naming its source, version and licence put first. No PyPI package
ships this schema (the Go module of ray-operator does, but is not a Python dependency).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).with_name("rayjob-v1.schema.json")
URL = "https://github.com/ray-project/kuberay/blob/v{v}/ray-operator/config/crd/bases/ray.io_rayjobs.yaml"


def main(crd_path: str, version: str) -> int:
    crd = yaml.safe_load(Path(crd_path).read_text())
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == "RayJob", crd_path
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    comment = (f"KubeRay v{version} RayJob (ray.io/v1) openAPIV3Schema, verbatim from {URL.format(v=version)} "
               "(spec.versions[name=v1].schema.openAPIV3Schema); KubeRay is Apache-2.0 licensed. "
               "Regenerate with tests/cluster/schemas/vendor_kuberay.py.")
    OUT.write_text(json.dumps({"$comment": comment, **schema}, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
