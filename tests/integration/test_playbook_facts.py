"""helm_release_facts through a real ansible-playbook run: module_defaults via
the action group, --check proven read-only by the API server's audit log, and
values kept out of the output."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

from .support import CHART, KUBECONFIG, ROOT, WRITE_VERBS, audit_events_since, helm, kubectl

PLANTED = "planted-secret-value-7f3a9c"


def playbook(tmp_path: Path, tasks: str) -> Path:
    path = tmp_path / "play.yml"
    path.write_text(
        f"""
- name: Triage
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/helmops.recovery.helm:
      kubeconfig: {KUBECONFIG}
  tasks:
{tasks}
"""
    )
    return path


def run_playbook(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(path), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_playbook_in_check_mode_reads_and_writes_nothing(cluster: str, tmp_path: Path) -> None:
    namespace = f"play-{uuid.uuid4().hex[:6]}"
    helm("3", "secret", "install", "web", CHART, "-n", namespace, "--create-namespace", "--wait")
    tasks = f"""
    - name: Gather
      helmops.recovery.helm_release_facts:
        release: web
        namespace: {namespace}
    - name: Check what was gathered
      ansible.builtin.assert:
        that:
          - ansible_facts.helm_releases | length == 1
          - ansible_facts.helm_releases[0].status == 'deployed'
          - ansible_facts.helm_releases[0].diagnosis.actions[0].name == 'none'
"""
    started = time.time()
    done = run_playbook(playbook(tmp_path, tasks), "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok=2" in done.stdout and "changed=0" in done.stdout
    events = audit_events_since(started, "helmops.recovery")
    assert events, "the audit log must show the module's reads, or this check proves nothing"
    assert {e["verb"] for e in events} <= {"get", "list", "watch"}
    assert not [e for e in events if e["verb"] in WRITE_VERBS]
    kubectl("delete", "namespace", namespace, "--wait=false")


def test_values_never_reach_the_output(cluster: str, tmp_path: Path) -> None:
    namespace = f"secret-{uuid.uuid4().hex[:6]}"
    helm(
        "3", "secret", "install", "web", CHART, "-n", namespace, "--create-namespace", "--set", f"secretToken={PLANTED}"
    )
    tasks = f"""
    - name: Without values
      helmops.recovery.helm_release_facts:
        release: web
        namespace: {namespace}
    - name: With values, hidden from the log
      helmops.recovery.helm_release_facts:
        release: web
        namespace: {namespace}
        include_values: true
    - name: The values are there for later tasks
      ansible.builtin.assert:
        that:
          - ansible_facts.helm_releases[0]['user_values']['secretToken'] | length > 0
        quiet: true
"""
    done = run_playbook(playbook(tmp_path, tasks), "-vvv")
    assert done.returncode == 0, done.stdout + done.stderr
    assert PLANTED not in done.stdout + done.stderr
    assert "censored" in done.stdout or "no_log" in done.stdout
    kubectl("delete", "namespace", namespace, "--wait=false")
