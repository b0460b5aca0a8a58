"""A live Helm client is never judged stale.

`helm3 upgrade --wait --timeout 15m` (and Helm 4 with `--wait=legacy`) keeps
waiting on a Deployment whose rollout passed its progress deadline: the
Deployment controller gave up, the client did not. While the client lives, the
lock verdict says possibly-running, unlock and recover refuse, and remediate
writes nothing. Once the client is gone and a client with the longest timeout
(client_timeout) can no longer be waiting, the verdict is stale, and it says
what it checked.

Helm 4's default waiter (kstatus) stops at the progress deadline by itself and
records the upgrade failed: that client leaves no lock to judge (shown too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .support import (
    BIN,
    CHART,
    audit_events_since,
    extra_vars,
    helm,
    helm_env,
    helm_json,
    kubectl,
    run_collection_module,
    run_playbook,
)

DEADLINE = 10  # the Deployment's progressDeadlineSeconds
WRITE_VERBS = {"create", "update", "patch", "delete"}


def deadline_exceeded(namespace: str, name: str, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done = kubectl("get", "deployment", name, "-n", namespace, "-o", "json", check=False)
        if done.returncode == 0:
            conditions = json.loads(done.stdout).get("status", {}).get("conditions") or []
            if any(c.get("reason") == "ProgressDeadlineExceeded" for c in conditions):
                return
        time.sleep(1)
    pytest.fail(f"Deployment {namespace}/{name} never reported ProgressDeadlineExceeded")


def lock(namespace: str, **options: t.Any) -> dict[str, t.Any]:
    result = run_collection_module("helm_release_facts", {"namespace": namespace, "stale_after": 1, **options})
    assert not result.get("failed"), result.get("msg")
    return t.cast(dict[str, t.Any], result["ansible_facts"]["helm_releases"][0]["lock"])


def our_writes(started: float) -> list[str]:
    return [f"{e['verb']} {e['requestURI']}" for e in audit_events_since(started) if e.get("verb") in WRITE_VERBS]


def test_a_waiting_client_past_the_progress_deadline_is_never_judged_stale(cluster: str, tmp_path: Path) -> None:
    """Helm 3 (--wait) and Helm 4 (--wait=legacy) side by side: most of each case is waiting for time to pass."""
    cases = [("3", "--wait"), ("4", "--wait=legacy")]
    namespaces = [f"live-h{major}-{uuid.uuid4().hex[:6]}" for major, _flag in cases]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = [
                pool.submit(waiting_client_case, namespace, major, flag, tmp_path / major)
                for namespace, (major, flag) in zip(namespaces, cases, strict=True)
            ]
            for run in runs:
                run.result()  # re-raises the case's assertion
    finally:
        for namespace in namespaces:
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def stuck_upgrade(namespace: str, wait_flag: str) -> list[str]:
    """The arguments of an upgrade of web whose pod never gets ready (its rollout passes a
    DEADLINE-second progress deadline), waiting up to 15 minutes."""
    return [
        "upgrade",
        "web",
        CHART,
        "-n",
        namespace,
        "--set",
        "behaviour=never-ready",
        "--set",
        f"progressDeadlineSeconds={DEADLINE}",
        wait_flag,
        "--timeout",
        "15m",
    ]


def install(major: str, namespace: str) -> None:
    helm(major, "secret", "install", "web", CHART, "-n", namespace, "--create-namespace", "--wait", "--timeout", "2m")


def waiting_client_case(namespace: str, major: str, wait_flag: str, tmp_path: Path) -> None:
    install(major, namespace)
    client = subprocess.Popen(
        [str(BIN / f"helm{major}"), *stuck_upgrade(namespace, wait_flag)],
        env=helm_env("secret"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline_exceeded(namespace, "web-web")
        assert client.poll() is None, "the client must still be waiting"
        started = time.time()
        verdict = lock(namespace)  # default client_timeout: 900 s
        assert verdict["verdict"] == "possibly-running", verdict
        assert any("past its progress deadline" in line for line in verdict["evidence"]), verdict
        assert verdict["client_bound"] == 3 * 900 + 60

        backups = str(tmp_path / "backups")
        unlock = run_collection_module(
            "helm_release_unlock", {"release": "web", "namespace": namespace, "stale_after": 1, "backup_dir": backups}
        )
        assert unlock.get("failed") and "may still be running" in unlock["msg"], unlock
        rollback = run_collection_module(
            "helm_release_recover",
            {
                "release": "web",
                "namespace": namespace,
                "action": "rollback",
                "stale_after": 1,
                "helm_binary": str(BIN / f"helm{major}"),
                "backup_dir": backups,
            },
        )
        assert rollback.get("failed") and rollback.get("refused") and "may still be running" in rollback["msg"]
        playbook = run_playbook(
            "remediate.yml",
            *extra_vars(
                namespace=namespace,
                stale_after=1,
                wait_timeout=4,
                wait_poll=2,
                helm_binary=str(BIN / f"helm{major}"),
                backup_dir=backups,
                report_dir="",
            ),
        )
        assert "-> still-running" in " ".join(playbook.stdout.split()), playbook.stdout[-3000:]
        time.sleep(1)  # the audit log is written asynchronously
        assert our_writes(started) == []
        assert client.poll() is None, "nothing may have ended the client"
        assert [h["status"] for h in helm_json(major, "secret", "history", "web", "-n", namespace)] == [
            "deployed",
            "pending-upgrade",
        ]
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait()

    # The client is gone. With the default bound the lock stays possibly-running (no one can tell a dead
    # client from a waiting one); with the pipelines' real timeout (1 s here) it is stale once 63 s have passed.
    after_kill = lock(namespace)
    assert after_kill["verdict"] == "possibly-running"
    time.sleep(max(0.0, 3 * 1 + 60 + 2 - after_kill["age_seconds"]))
    stale = lock(namespace, client_timeout=1)
    assert stale["verdict"] == "stale", stale
    checked = " ".join(stale["checked"])
    assert "past its progress deadline), but the record is older than the client bound (63s)" in checked
    assert "more than stale_after 1s" in checked


@pytest.fixture
def namespace(cluster: str) -> t.Iterator[str]:
    name = f"live-{uuid.uuid4().hex[:6]}"
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_helm4_default_waiter_ends_the_client_at_the_progress_deadline(namespace: str) -> None:
    install("4", namespace)
    started = time.monotonic()
    done = helm("4", "secret", *stuck_upgrade(namespace, "--wait"), check=False)
    assert done.returncode != 0 and "Progress deadline exceeded" in done.stderr
    assert time.monotonic() - started < 300  # long before its 15m timeout
    assert lock(namespace)["verdict"] == "none"  # failed: no lock left
