"""Record real Helm release records for the codec's unit tests.

Runs hack/scenario for a few states with Helm 3 and Helm 4 and both storage
drivers on the local control plane, then saves, per scenario, the storage
objects exactly as the API served them (managedFields dropped) together with
what real `helm history -o json` said about them: the oracle the unit tests
check the codec against.

    hack/capture-fixtures [--kubeconfig FILE]
    hack/capture-fixtures --protobuf [--kubeconfig FILE]

``--protobuf`` records instead how the API server answers a listing of
Secrets (real Helm 3 and Helm 4 records, and Secrets that only carry
owner=helm) in protobuf and in JSON, a page with a continue token, and an
error (a Status), for the unit tests of the protobuf reader.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "unit" / "fixtures" / "records"
PROTOBUF_OUT = ROOT / "tests" / "unit" / "fixtures" / "protobuf" / "secret-lists.json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
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


def api_get(kubeconfig: str, path: str, accept: str) -> tuple[int, str, bytes]:
    """GET with the kubeconfig's bearer token (the local control plane's kubeconfig)."""
    text = Path(kubeconfig).read_text()
    server = re.search(r"server:\s*(\S+)", text)
    token = re.search(r"token:\s*(\S+)", text)
    authority = re.search(r"certificate-authority:\s*(\S+)", text)
    if not (server and token and authority):
        raise SystemExit(f"capture-fixtures: {kubeconfig} has no server, token and certificate-authority")
    request = urllib.request.Request(
        server.group(1) + path, headers={"Authorization": f"Bearer {token.group(1)}", "Accept": accept}
    )
    context = ssl.create_default_context(cafile=authority.group(1))
    try:
        with urllib.request.urlopen(request, context=context) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def capture_protobuf(kubeconfig: str) -> str:
    namespace = "fixture-protobuf"
    kubectl = [str(ROOT / ".cluster" / "bin" / "kubectl"), "--kubeconfig", kubeconfig]
    subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=true"], capture_output=True, check=False)
    for helm, state in (("3", "deployed"), ("4", "pending-upgrade")):
        subprocess.run(
            [
                str(ROOT / "hack" / "scenario"),
                state,
                "--release",
                f"fx-h{helm}",
                "--namespace",
                namespace,
                "--helm",
                helm,
                "--kubeconfig",
                kubeconfig,
            ],
            capture_output=True,
            check=True,
        )
    # Secrets that carry owner=helm but are no release records: another type with
    # annotations and immutable set, and one without data.
    lookalikes = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/basic-auth",
            "immutable": True,
            "metadata": {
                "name": "sh.helm.release.v1.lookalike.v1",
                "namespace": namespace,
                "labels": {"owner": "helm", "name": "lookalike", "version": "1", "status": "deployed"},
                "annotations": {"note": "not a release record", "unicode": "caf\u00e9"},
            },
            "stringData": {"username": "u", "password": "p"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "empty", "namespace": namespace, "labels": {"owner": "helm"}},
        },
    ]
    subprocess.run(
        [*kubectl, "apply", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": lookalikes}).encode(),
        capture_output=True,
        check=True,
    )
    base = f"/api/v1/namespaces/{namespace}/secrets"
    _status, _type, body = api_get(kubeconfig, f"{base}?labelSelector=owner%3Dhelm", "application/json")
    version = json.loads(body)["metadata"]["resourceVersion"]
    exact = f"resourceVersion={version}&resourceVersionMatch=Exact"
    paths = [
        f"{base}?labelSelector=owner%3Dhelm&{exact}",
        f"{base}?labelSelector=owner%3Dhelm&limit=2&{exact}",
        f"{base}/no-such-secret",
    ]
    answers = []
    for path in paths:
        answer: dict[str, object] = {"path": path}
        for accept, key in (("application/json", "json"), (PROTOBUF, "protobuf")):
            status, content_type, body = api_get(kubeconfig, path, accept)
            if not content_type.startswith(accept):
                raise SystemExit(f"capture-fixtures: {path} answered {content_type!r} to Accept: {accept}")
            answer["status"] = status
            answer[key] = json.loads(body) if key == "json" else base64.b64encode(body).decode("ascii")
        answers.append(answer)
    server_version = json.loads(api_get(kubeconfig, "/version", "application/json")[2])["gitVersion"]
    PROTOBUF_OUT.parent.mkdir(parents=True, exist_ok=True)
    PROTOBUF_OUT.write_text(
        json.dumps({"kubernetes_version": server_version, "answers": answers}, indent=1, sort_keys=True) + "\n"
    )
    subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=false"], capture_output=True, check=False)
    return f"captured {PROTOBUF_OUT.relative_to(ROOT)} ({len(answers)} answers)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", default=str(ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--protobuf", action="store_true", help="record Secret listings in protobuf and JSON")
    args = parser.parse_args()
    if args.protobuf:
        print(capture_protobuf(args.kubeconfig))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = [(s, h, d) for s in STATES for h in HELMS for d in DRIVERS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: capture(*job, args.kubeconfig), jobs))
    print("\n".join(results))
    return 1 if any(r.startswith("FAILED") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
