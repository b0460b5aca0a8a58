"""Regenerate the hostile record corpus from a release record written by real Helm.

    .venv/bin/python tests/hostile/generate.py

Every record case starts from the recorded Helm 3 records in
tests/unit/fixtures/records/helm3-secret-deployed.json and breaks them in one
way. The output is deterministic (fixed seed, gzip without timestamps), so a
re-run changes nothing unless this script or the source record changed.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import random
import sys
import typing as t
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOURCE = ROOT / "tests" / "unit" / "fixtures" / "records" / "helm3-secret-deployed.json"
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec  # noqa: E402

PREFIX = "sh.helm.release.v1"
HUGE_TARGET = 1_000_000  # bytes of the stored payload; the API server refuses Secrets over 1 MiB


def source_releases() -> list[dict[str, t.Any]]:
    recorded = json.loads(SOURCE.read_text())
    return [codec.decode_record(obj, "secret").release for obj in recorded["objects"]]


def record(
    base: dict[str, t.Any],
    release: str,
    revision: int,
    status: str,
    *,
    label_status: str | None = None,
    label_name: str | None = None,
    payload: str | None = None,
    payload_release: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """A Secret as Helm writes it, for `release` revision `revision`, optionally broken."""
    body = copy.deepcopy(base)
    body["name"] = release
    body["version"] = revision
    body["info"]["status"] = status
    text = payload if payload is not None else codec.encode_payload(payload_release or body)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"{PREFIX}.{release}.v{revision}",
            "labels": {
                "owner": "helm",
                "name": label_name or release,
                "status": label_status or status,
                "version": str(revision),
                "modifiedAt": "1795508667",
            },
        },
        "data": {"release": base64.b64encode(text.encode("ascii")).decode("ascii")},
    }


def gzip_b64(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def huge_release(base: dict[str, t.Any], release: str) -> dict[str, t.Any]:
    """A valid record just under the API server's limit: incompressible values."""
    body = copy.deepcopy(base)
    body["name"], body["version"] = release, 1
    body["info"]["status"] = "deployed"
    rng = random.Random(8)
    low, high = 100_000, 2_000_000
    while low < high:  # the largest padding whose stored record stays under the target
        middle = (low + high + 1) // 2
        body["config"] = {"blob": base64.b64encode(rng.randbytes(middle)).decode("ascii")}
        rng.seed(8)
        stored = len(codec.encode_payload(body))  # the Secret holds Helm's payload text as its bytes
        low, high = (middle, high) if stored <= HUGE_TARGET else (low, middle - 1)
    body["config"] = {"blob": base64.b64encode(rng.randbytes(low)).decode("ascii")}
    return body


def cases() -> dict[str, dict[str, t.Any]]:
    first, _second, deployed = source_releases()
    good = json.dumps(deployed).encode()
    out: dict[str, dict[str, t.Any]] = {}

    def case(
        name: str,
        unlock: str | None,
        prune: str | None,
        description: str,
        objects: list[dict[str, t.Any]],
        *,
        single: str | None = "reported",
        **expect: t.Any,
    ) -> None:
        """`unlock` / `prune`: what their message or errors say (prune None: nothing to report);
        `single`: how a facts run for this release alone ends (reported, not-found, invalid)."""
        out[name] = {
            "kind": "records",
            "description": description,
            "release": f"h-{name}",
            "objects": objects,
            "unlock": unlock,
            "prune": prune,
            "single": single,
            **expect,
        }

    case(
        "corrupt-base64",
        "1 corrupt record(s)",
        "release data is not valid base64",
        "data.release is not base64",
        [record(deployed, "h-corrupt-base64", 1, "deployed", payload="%%% not base64 %%%")],
        reason="bad-base64",
    )
    case(
        "corrupt-gzip",
        "1 corrupt record(s)",
        "release data is not valid gzip",
        "gzip magic followed by garbage",
        [
            record(
                deployed,
                "h-corrupt-gzip",
                1,
                "deployed",
                payload=base64.b64encode(b"\x1f\x8b\x08\x00garbage that is no deflate stream").decode(),
            )
        ],
        reason="bad-gzip",
    )
    case(
        "truncated-json",
        "1 corrupt record(s)",
        "release data is not valid JSON",
        "the release JSON cut in half",
        [record(deployed, "h-truncated-json", 1, "deployed", payload=gzip_b64(good[: len(good) // 2]))],
        reason="bad-json",
    )
    case(
        "json-not-an-object",
        "1 corrupt record(s)",
        "release data is JSON but not an object",
        "valid JSON of the wrong shape (a list)",
        [record(deployed, "h-json-not-an-object", 1, "deployed", payload=gzip_b64(b"[1, 2, 3]"))],
        reason="bad-shape",
    )
    case(
        "json-without-info",
        "1 corrupt record(s)",
        "release JSON has no valid 'info' field",
        "a JSON object without the info block",
        [
            record(
                deployed,
                "h-json-without-info",
                1,
                "deployed",
                payload=gzip_b64(json.dumps({"name": "h-json-without-info", "version": 1}).encode()),
            )
        ],
        reason="bad-shape",
    )
    bomb = b'{"name":"h-gzip-bomb","info":{"status":"deployed","description":"Install complete"},'
    bomb += b'"chart":{"metadata":{"name":"app","version":"0.1.0"}},"config":{"x":"' + b"A" * (160 * 1024 * 1024)
    bomb += b'"},"version":1}'
    case(
        "gzip-bomb",
        "1 corrupt record(s)",
        "inflates to more than 64 MiB",
        "160 MiB of JSON gzipped into a 160 KB record",
        [record(deployed, "h-gzip-bomb", 1, "deployed", payload=gzip_b64(bomb))],
        reason="too-large",
    )
    deep = copy.deepcopy(deployed)
    deep["name"], deep["version"] = "h-deep-json", 1
    deep["config"] = "DEEP"
    deep_text = json.dumps(deep).replace('"DEEP"', '{"a":' * 5000 + "1" + "}" * 5000).encode()
    case(
        "deep-json",
        "1 corrupt record(s)",
        "nests JSON more than 100 levels deep",
        "values nested 5,000 levels deep",
        [record(deployed, "h-deep-json", 1, "deployed", payload=gzip_b64(deep_text))],
        reason="too-deep",
    )
    laughs = "".join(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    alias_bomb = "---\n# Source: app/templates/bomb.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\n"
    alias_bomb += 'data:\n  l0: &l0 "lol"\n' + laughs
    case(
        "manifest-alias-bomb",
        "could not check for a running operation: revision 2's manifest",
        None,
        "a pending revision whose manifest's YAML aliases expand to 9^9 nodes",
        [
            record(first, "h-manifest-alias-bomb", 1, "deployed"),
            record(
                deployed,
                "h-manifest-alias-bomb",
                2,
                "pending-upgrade",
                payload_release={
                    **deployed,
                    "name": "h-manifest-alias-bomb",
                    "version": 2,
                    "info": {**deployed["info"], "status": "pending-upgrade"},
                    "manifest": alias_bomb,
                },
            ),
        ],
        reason=None,
        unreadable_manifest="its aliases expand to more than 1000000 nodes",
    )
    case(
        "manifest-deep-yaml",
        "could not check for a running operation: revision 2's manifest",
        None,
        "a pending revision whose manifest nests 100,000 levels deep",
        [
            record(first, "h-manifest-deep-yaml", 1, "deployed"),
            record(
                deployed,
                "h-manifest-deep-yaml",
                2,
                "pending-upgrade",
                payload_release={
                    **deployed,
                    "name": "h-manifest-deep-yaml",
                    "version": 2,
                    "info": {**deployed["info"], "status": "pending-upgrade"},
                    "manifest": "apiVersion: v1\nkind: ConfigMap\ndata: " + "[" * 100000 + "]" * 100000,
                },
            ),
        ],
        reason=None,
        unreadable_manifest="nested more deeply than 200 levels",
    )
    case(
        "huge-payload",
        "is not locked: its newest revision 1 is deployed",
        None,
        "a valid record just under the 1 MiB object limit",
        [record(deployed, "h-huge-payload", 1, "deployed", payload_release=huge_release(deployed, "h-huge-payload"))],
        reason=None,
        large=True,
    )
    case(
        "status-label-disagrees",
        "its status label says 'deployed' but its payload says 'pending-upgrade'",
        None,
        "the status label says deployed, the payload says pending-upgrade",
        [
            record(first, "h-status-label-disagrees", 1, "superseded"),
            record(deployed, "h-status-label-disagrees", 2, "pending-upgrade", label_status="deployed"),
        ],
        reason=None,
        label_mismatch=2,
    )
    case(
        "name-label-disagrees",
        "not found in namespace",
        "not found in namespace",
        "the name label names another release than the object name",
        [record(deployed, "h-name-label-disagrees", 1, "deployed", label_name="someone-else")],
        reason="label-mismatch",
        single="not-found",
    )
    case(
        "payload-names-another-release",
        "1 corrupt record(s)",
        "payload names release 'someone-else'",
        "the payload's release name disagrees with the object name",
        [
            record(
                deployed,
                "h-payload-names-another-release",
                1,
                "deployed",
                payload_release={**copy.deepcopy(deployed), "name": "someone-else", "version": 1},
            )
        ],
        reason="label-mismatch",
    )
    case(
        "duplicate-revision",
        "a newer record of 'h-duplicate-revision' is corrupt",
        "payload is revision 2, the object name says 3",
        "revision 3 is a copy of revision 2 (its payload says 2)",
        [
            record(first, "h-duplicate-revision", 1, "superseded"),
            record(deployed, "h-duplicate-revision", 2, "deployed"),
            record(
                deployed,
                "h-duplicate-revision",
                3,
                "deployed",
                payload_release={**copy.deepcopy(deployed), "name": "h-duplicate-revision", "version": 2},
            ),
        ],
        reason="label-mismatch",
    )
    case(
        "revision-gap",
        "is not locked: its newest revision 3 is failed",
        None,
        "revisions 1 and 3, revision 2 missing",
        [record(first, "h-revision-gap", 1, "deployed"), record(deployed, "h-revision-gap", 3, "failed")],
        reason=None,
        revisions=[1, 3],
    )
    case(
        "unknown-status",
        "is not locked: its newest revision 1 is exploded",
        None,
        "a status Helm does not define, in payload and label",
        [record(deployed, "h-unknown-status", 1, "exploded")],
        reason="unknown-status",
    )
    long_name = "h-" + "x" * 60
    case(
        "release-name-too-long",
        "longer than 53 characters",
        "longer than 53 characters",
        "a stored release name longer than Helm's 53 characters",
        [record(deployed, long_name, 1, "deployed")],
        reason=None,
        release=long_name,
        single="invalid",
    )
    not_a_release = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "registry-credentials", "labels": {"owner": "helm"}},
        "data": {"token": base64.b64encode(b"not a release").decode()},
    }
    case(
        "owner-helm-not-a-release",
        None,
        None,
        "an owner=helm Secret that is not a release record",
        [not_a_release],
        reason="not-a-release",
        release=None,
        object="registry-credentials",
        single=None,
    )
    named_like_one = copy.deepcopy(not_a_release)
    named_like_one["metadata"] = {
        "name": f"{PREFIX}.h-no-release-key.v1",
        "labels": {"owner": "helm", "name": "h-no-release-key", "version": "1", "status": "deployed"},
    }
    named_like_one["type"] = "helm.sh/release.v1"
    case(
        "no-release-key",
        "1 corrupt record(s)",
        "has no data.release key",
        "named and labelled like a record, but no data.release",
        [named_like_one],
        reason="not-a-release",
    )

    names = {
        "release-path-like": ("a path-like release name", {"release": "../../etc/passwd"}, "invalid release name"),
        "release-uppercase": ("a release name with capitals", {"release": "Web_App"}, "invalid release name 'Web_App'"),
        "release-very-long": ("a 300-character release name", {"release": "r" * 300}, "longer than 53 characters"),
        "namespace-path-like": (
            "a path-like namespace",
            {"namespace": "kube-system/../default"},
            "invalid namespace name",
        ),
        "namespace-very-long": ("a 64-character namespace", {"namespace": "n" * 64}, "invalid namespace name"),
    }
    for name, (description, args, message) in names.items():
        out[name] = {"kind": "names", "description": description, "args": args, "message": message}

    connections = {
        "dead-port": (
            "the server is a port nothing listens on",
            {"server": "https://127.0.0.1:9"},
            "cannot reach the Kubernetes API server https://127.0.0.1:9",
        ),
        "bad-token": (
            "a token the API server does not know",
            {"token": "not-a-valid-token"},
            "rejected the credentials (401 Unauthorized)",
        ),
        "wrong-ca": (
            "a CA bundle that did not sign the API server's certificate",
            {"ca": "/etc/ssl/certs/ca-certificates.crt"},
            "cannot verify the TLS certificate",
        ),
    }
    for name, (description, change, message) in connections.items():
        out[name] = {"kind": "connections", "description": description, "kubeconfig": change, "message": message}
    out.update(backup_cases())
    return out


def backup_cases() -> dict[str, dict[str, t.Any]]:
    """Files given to helm_release_restore as backups: broken, foreign or edited by hand. Each starts from the
    recorded records as a backup holds them (a v1 List with the collection's header: cluster, time, history)."""
    recorded = json.loads(SOURCE.read_text())["objects"]
    namespace = recorded[0]["metadata"]["namespace"]
    header = {
        "cluster": "https://127.0.0.1:36443",
        "takenAt": "2026-11-24T08:30:00.000000Z",
        "export": False,
        "history": [{"name": o["metadata"]["name"], "uid": o["metadata"]["uid"]} for o in recorded],
    }

    def listing(items: list[dict[str, t.Any]], head: t.Any = "ours") -> str:
        document = {"apiVersion": "v1", "kind": "List", "items": items}
        if head is not None:
            document["helmopsRecovery"] = header if head == "ours" else head
        return json.dumps(document, indent=1)

    def edited(index: int, change: t.Callable[[dict[str, t.Any]], None]) -> str:
        items = copy.deepcopy(recorded)
        change(items[index])
        return listing(items)

    def rename(obj: dict[str, t.Any]) -> None:
        obj["metadata"]["name"] = obj["metadata"]["name"][:-1] + "9"
        obj["metadata"]["labels"]["version"] = "9"

    def move(obj: dict[str, t.Any]) -> None:
        obj["metadata"]["namespace"] = "another-namespace"

    def corrupt(obj: dict[str, t.Any]) -> None:
        obj["data"]["release"] = base64.b64encode(b"H4sI" + b"\x00" * 64).decode("ascii")

    def labels_as_list(obj: dict[str, t.Any]) -> None:
        obj["metadata"]["labels"] = [["owner", "helm"]]

    def path_like_namespace(obj: dict[str, t.Any]) -> None:
        obj["metadata"]["namespace"] = "x$(id)"

    other = json.loads((SOURCE.parent / "helm3-secret-pending-upgrade.json").read_text())["objects"][0]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace}}
    good = listing(recorded)
    deep = '{"a":' * 5000 + "{}" + "}" * 5000
    cases = {
        "truncated": ("a backup cut off half way", good[: len(good) // 2], "not readable as JSON"),
        "not-json": ("a values file given as a backup", "replicaCount: 2\nimage: web\n", "not readable as JSON"),
        "not-a-list": (
            "one Secret, not the List a backup is",
            json.dumps(recorded[0]),
            "not a backup written by helmops.recovery",
        ),
        "kubectl-list": (
            "records listed by kubectl: no header, so no history or cluster",
            listing(recorded, head=None),
            "has no helmopsRecovery header",
        ),
        "header-edited": (
            "a header whose history is not a list",
            listing(recorded, head={**header, "history": "all of them"}),
            "header is not one helmops.recovery writes",
        ),
        "deep-json": ("JSON nested 5,000 levels deep", deep, "nested too deeply"),
        "empty-list": ("a List with no items", listing([]), "holds no release records"),
        "foreign-objects": ("a List of a Deployment", listing([deployment]), "not a Secret or ConfigMap"),
        "corrupt-payload": ("a record whose payload is not gzip'd JSON", edited(1, corrupt), "item 1"),
        "labels-not-a-map": ("labels given as a list", edited(0, labels_as_list), "metadata.labels is not a map"),
        "namespace-not-a-name": (
            "a namespace that is not a Kubernetes name (a shell command)",
            edited(0, path_like_namespace),
            "invalid namespace name",
        ),
        "revision-edited": (
            "an object name and version label changed by hand",
            edited(2, rename),
            "payload is revision 3, the object name says 9",
        ),
        "namespace-edited": (
            "a record moved to another namespace by hand",
            edited(1, move),
            "describes a release in",
        ),
        "two-releases": (
            "records of two releases in one file",
            listing([*copy.deepcopy(recorded), other]),
            "a restore takes one release's backups",
        ),
        "duplicate-revision": (
            "the same revision twice",
            listing([recorded[0], recorded[0]]),
            "revision 1 appears twice",
        ),
    }
    return {
        f"backup-{name}": {"kind": "backups", "description": description, "text": text, "message": message}
        for name, (description, text, message) in cases.items()
    }


SECTIONS = {
    "records": (
        "Secrets loaded into one namespace next to releases installed by real Helm. Each is derived from a\n"
        "record written by real Helm 3 (tests/unit/fixtures/records/helm3-secret-deployed.json). Each file\n"
        "says what facts (bulk and single), unlock and prune report for it."
    ),
    "names": "Module arguments naming an invalid release or namespace: every module refuses them.",
    "connections": "Kubeconfigs that cannot work: every module fails with a message naming the cause.",
    "backups": (
        "Files given to helm_release_restore as backups: broken, foreign or edited by hand. Each fails naming the\n"
        "file and the problem, and nothing is written."
    ),
}


def readme(generated: dict[str, dict[str, t.Any]]) -> str:
    lines = [
        "# Hostile and broken input",
        "",
        "One file per case, written by `generate.py` (`.venv/bin/python tests/hostile/generate.py`;",
        "the output is deterministic). tests/integration/test_hostile_input.py loads every entry, runs",
        "the modules against it and fails if fewer than the number below are exercised.",
        "",
        f"The corpus has {len(generated)} entries.",
        "",
        "Every case gives a clear error on that release (or, for the valid but unusual records, reports",
        "them as they are), never a traceback and never a write (the API server's audit log is checked);",
        "in bulk mode the good releases next to them are still returned.",
    ]
    for kind, intro in SECTIONS.items():
        entries = sorted((name, e) for name, e in generated.items() if e["kind"] == kind)
        lines += ["", f"## {kind}/ ({len(entries)})", "", intro, "", "| case | what is wrong |", "|---|---|"]
        lines += [f"| {name} | {entry['description']} |" for name, entry in entries]
    return "\n".join(lines) + "\n"


def main() -> int:
    generated = cases()
    for old in HERE.glob("*/*.json"):
        old.unlink()
    for name, entry in sorted(generated.items()):
        directory = HERE / entry["kind"]
        directory.mkdir(exist_ok=True)
        (directory / f"{name}.json").write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    (HERE / "README.md").write_text(readme(generated))
    print(f"{len(generated)} corpus entries written under {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
