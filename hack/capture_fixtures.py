"""Record real Helm release records for the codec's unit tests.

Runs hack/scenario for a few states with Helm 3 and Helm 4 and both storage
drivers on the local control plane, then saves, per scenario, the storage
objects exactly as the API served them (managedFields dropped) together with
what real `helm history -o json` said about them: the oracle the unit tests
check the codec against.

    hack/capture-fixtures [--kubeconfig FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "unit" / "fixtures" / "records"
STATES = ("deployed", "pending-upgrade", "failed-hook", "atomic-rolled-back", "uninstalling", "pending-install")
HELMS = ("3", "4")
DRIVERS = ("secret", "configmap")


def capture(state: str, helm: str, driver: str, kubeconfig: str) -> str:
    namespace = f"fixture-h{helm}-{driver}-{state}"
    release = f"fx-{state}"
    scenario = subprocess.run(
        [
            str(ROOT / "hack" / "scenario"),
            state,
            "--release",
            release,
            "--namespace",
            namespace,
            "--helm",
            helm,
            "--driver",
            driver,
            "--kubeconfig",
            kubeconfig,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if scenario.returncode != 0:
        return f"FAILED {namespace}: {scenario.stderr.strip()}"
    kubectl = str(ROOT / ".cluster" / "bin" / "kubectl")
    kind = "secrets" if driver == "secret" else "configmaps"
    objects = json.loads(
        subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                kubeconfig,
                "-n",
                namespace,
                "get",
                kind,
                "-l",
                f"owner=helm,name={release}",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["items"]
    for obj in objects:
        obj["metadata"].pop("managedFields", None)
    env = {
        "KUBECONFIG": kubeconfig,
        "HELM_DRIVER": driver,
        "PATH": "/usr/bin:/bin",
        "HELM_CONFIG_HOME": str(ROOT / ".cluster" / "helm-home" / "config"),
        "HELM_CACHE_HOME": str(ROOT / ".cluster" / "helm-home" / "cache"),
        "HELM_DATA_HOME": str(ROOT / ".cluster" / "helm-home" / "data"),
    }
    history = json.loads(
        subprocess.run(
            [str(ROOT / ".cluster" / "bin" / f"helm{helm}"), "history", release, "-n", namespace, "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
    )
    version = subprocess.run(
        [str(ROOT / ".cluster" / "bin" / f"helm{helm}"), "version", "--short"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    fixture = {
        "helm_version": version,
        "driver": driver,
        "state": state,
        "release": release,
        "helm_history": history,
        "objects": sorted(objects, key=lambda o: int(o["metadata"]["labels"]["version"])),
    }
    path = OUT / f"helm{helm}-{driver}-{state}.json"
    path.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
    subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, "delete", "namespace", namespace, "--wait=false"],
        capture_output=True,
        check=False,
    )
    return f"captured {path.relative_to(ROOT)} ({len(objects)} records)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", default=str(ROOT / ".cluster" / "kubeconfig"))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = [(s, h, d) for s in STATES for h in HELMS for d in DRIVERS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: capture(*job, args.kubeconfig), jobs))
    print("\n".join(results))
    return 1 if any(r.startswith("FAILED") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
