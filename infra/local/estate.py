"""Seeds for the stand-in holding a whole estate: many projects, services and keys, some violating.

    python -m infra.local.estate --projects 500 --services 10000 --keys 5000 > estate.json

`estate(...)` returns the seed (the stand-in's seed format, with Resource Manager `projects`,
`folders` and `organizations`: every project in one of `folders` folders under organizations/1000) and the list of violations it
planted, as (rule, resource) pairs, so tests and the bench know exactly what a sweep must find.
Deterministic for a given `seed`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

ORG = "organizations/1000"
REGIONS = ("us-central1", "us-east1", "us-east4", "us-west1")
SA_DOMAIN = "iam.gserviceaccount.com"


def compliant_service(name: str, project: str, location: str) -> dict[str, Any]:
    """A Cloud Run v2 service every rule passes (HIPAA profile)."""
    sid = name.rsplit("/", 1)[1]
    return {
        "name": name,
        "labels": {"env": "prod", "team": "t" + str(len(sid) % 7)},
        "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        "invokerIamDisabled": False,
        "template": {
            "serviceAccount": f"{sid[:20]}@{project}.{SA_DOMAIN}",
            "encryptionKey": f"projects/{project}/locations/{location}/keyRings/ring/cryptoKeys/k0",
            "vpcAccess": {"connector": f"projects/{project}/locations/{location}/connectors/c", "egress": "PRIVATE_RANGES_ONLY"},
            "containers": [{"image": f"{location}-docker.pkg.dev/{project}/apps/{sid}:1",
                            "env": [{"name": "LOG_LEVEL", "value": "info"}]}],
        },
    }


def compliant_function(name: str, project: str, location: str) -> dict[str, Any]:
    """A Cloud Functions v2 function every function rule passes: the compliant service's settings."""
    svc = compliant_service(name.replace("/functions/", "/services/"), project, location)["template"]
    return {
        "name": name,
        "kmsKeyName": svc["encryptionKey"],
        "buildConfig": {"runtime": "python312", "entryPoint": "main"},
        "serviceConfig": {
            "ingressSettings": "ALLOW_INTERNAL_AND_GCLB",
            "serviceAccountEmail": svc["serviceAccount"],
            "vpcConnector": svc["vpcAccess"]["connector"],
            "vpcConnectorEgressSettings": "PRIVATE_RANGES_ONLY",
            "environmentVariables": {"LOG_LEVEL": "info"},
        },
    }

def estate(*, projects: int, services: int, keys: int, folders: int = 10, violation_rate: float = 0.02,
           seed: int = 7) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A seed of `services` Cloud Run services and `keys` KMS keys (one ring per project and region
    used, one enabled version per key) spread over `projects` projects; about `violation_rate` of
    them violate one rule each."""
    rng = random.Random(seed)
    pids = [f"proj-{i:05d}" for i in range(projects)]
    out: dict[str, Any] = {"organizations": [{"name": ORG}],
                           "folders": [{"name": f"folders/{2000 + k}", "parent": ORG} for k in range(folders)],
                           "projects": [], "services": [], "keyRings": [], "cryptoKeys": [], "cryptoKeyVersions": [],
                           "policies": {}}
    planted: list[tuple[str, str]] = []
    for i, pid in enumerate(pids):
        out["projects"].append({"name": f"projects/{pid}", "projectId": pid, "parent": f"folders/{2000 + i % folders}"})
    rings: set[str] = set()
    for i in range(keys):
        pid, loc = pids[i % projects], REGIONS[(i // projects) % len(REGIONS)]
        ring = f"projects/{pid}/locations/{loc}/keyRings/ring"
        if ring not in rings:
            rings.add(ring)
            out["keyRings"].append({"name": ring})
        key = f"{ring}/cryptoKeys/k{i // projects}"
        out["cryptoKeys"].append({"name": key, "rotationPeriod": "7776000s",
                                  "nextRotationTime": "2027-01-01T00:00:00Z"})
        version = {"name": f"{key}/cryptoKeyVersions/1"}
        if rng.random() < violation_rate:
            version["state"] = "DISABLED"
            planted.append(("kms_version_disabled", version["name"]))
        out["cryptoKeyVersions"].append(version)
    for i in range(services):
        pid, loc = pids[i % projects], REGIONS[(i // projects) % len(REGIONS)]
        name = f"projects/{pid}/locations/{loc}/services/svc-{i:06d}"
        svc = compliant_service(name, pid, loc)
        # the key the service names must exist in its region for run_cmek_missing to pass
        ring = f"projects/{pid}/locations/{loc}/keyRings/ring"
        if ring not in rings:
            rings.add(ring)
            out["keyRings"].append({"name": ring})
        if rng.random() < violation_rate:
            svc["ingress"] = "INGRESS_TRAFFIC_ALL"
            planted.append(("run_ingress_open", name))
        out["services"].append(svc)
    return out, planted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--projects", type=int, default=500)
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--keys", type=int, default=5000)
    p.add_argument("--violation-rate", type=float, default=0.02)
    args = p.parse_args(argv)
    seed, _ = estate(projects=args.projects, services=args.services, keys=args.keys, violation_rate=args.violation_rate)
    json.dump(seed, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
