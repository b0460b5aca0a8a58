"""Shared helpers for the integration tests: scenarios, real Helm, kubectl."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".cluster" / "bin"
CHART = str(ROOT / "tests" / "charts" / "app")
KUBECONFIG = os.environ.get("HELMOPS_TEST_KUBECONFIG", str(ROOT / ".cluster" / "kubeconfig"))
# The Ansible (ansible-core and its Python) the tests drive: the test venv's, or one end of the support matrix
# (hack/integration runs the production-chart tests on the newest, .venv-newest).
ANSIBLE = Path(os.environ.get("HELMOPS_TEST_ANSIBLE_VENV", str(ROOT / ".venv"))) / "bin"
# The identity this worker's requests carry: the cluster's admin, or a worker's own (hack/integration).
WORKER_PREFIX = "system:serviceaccount:kube-system:helmops-worker-"
# The start of the name of every ServiceAccount a worker's tests create (as the roles we ship): the main run's
# audit-log witnesses leave their requests out, as they leave out the worker's own.
WORKER_ACCOUNT = "helmops-worker-"
TEST_USER = os.environ.get("HELMOPS_TEST_USER", "admin")

STATES = (
    "deployed",
    "failed-install",
    "failed-upgrade",
    "pending-install",
    "pending-upgrade",
    "pending-upgrade-active",
    "pending-rollback",
    "uninstalling",
    "failed-hook",
    "atomic-rolled-back",
    "missing-crd",
    "keep-policy",
    "bloated",
)
EXPECTED_STATUS = {
    "deployed": "deployed",
    "failed-install": "failed",
    "failed-upgrade": "failed",
    "pending-install": "pending-install",
    "pending-upgrade": "pending-upgrade",
    "pending-upgrade-active": "pending-upgrade",
    "pending-rollback": "pending-rollback",
    "uninstalling": "uninstalling",
    "failed-hook": "failed",
    "atomic-rolled-back": "deployed",
    "missing-crd": "deployed",
    "keep-policy": "deployed",
    "bloated": "deployed",
}
HELMS = ("3", "4")
DRIVERS = ("secret", "configmap")
SCENARIO_WORKERS = int(os.environ.get("HELMOPS_SCENARIO_WORKERS", "8"))


@dataclass(frozen=True)
class Scenario:
    state: str
    helm: str
    driver: str
    prefix: str = "s"

    @property
    def namespace(self) -> str:
        short = {"secret": "sec", "configmap": "cm"}[self.driver]
        return f"{self.prefix}-{self.state}-h{self.helm}-{short}"

    @property
    def release(self) -> str:
        return f"r-{self.state}"

    @property
    def id(self) -> str:
        return f"{self.state}-helm{self.helm}-{self.driver}"


@dataclass
class Outcome:
    scenario: Scenario
    returncode: int
    stderr: str
    result: dict[str, t.Any]
    finished_at: float = 0.0  # when the scenario's last Helm call returned (time.time())


def helm_env(driver: str) -> dict[str, str]:
    home = ROOT / ".cluster" / "helm-home"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # Helm's kube client caches discovery under $HOME/.kube
        "KUBECONFIG": KUBECONFIG,
        "HELM_DRIVER": driver,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def helm(major: str, driver: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run real Helm; fail the test with Helm's own message when `check`."""
    done = subprocess.run(
        [str(BIN / f"helm{major}"), *args],
        env=helm_env(driver),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(f"helm{major} {' '.join(args)} failed: {done.stderr}")
    return done


def helm_json(major: str, driver: str, *args: str) -> t.Any:
    return json.loads(helm(major, driver, *args, "-o", "json").stdout)


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", KUBECONFIG, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed: {done.stderr}")
    return done


def run_scenario(scenario: Scenario, tmp: Path) -> Outcome:
    kubectl("delete", "namespace", scenario.namespace, "--ignore-not-found", "--wait=true", check=False)
    output = tmp / f"{scenario.namespace}.json"
    done = subprocess.run(
        [
            str(ROOT / "hack" / "scenario"),
            scenario.state,
            "--release",
            scenario.release,
            "--namespace",
            scenario.namespace,
            "--helm",
            scenario.helm,
            "--driver",
            scenario.driver,
            "--kubeconfig",
            KUBECONFIG,
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    result = json.loads(output.read_text()) if done.returncode == 0 else {}
    return Outcome(scenario, done.returncode, done.stderr, result, time.time())


def run_scenarios(scenarios: t.Iterable[Scenario], tmp: Path) -> dict[Scenario, Outcome]:
    scenarios = list(scenarios)
    with ThreadPoolExecutor(max_workers=SCENARIO_WORKERS) as pool:
        outcomes = list(pool.map(lambda s: run_scenario(s, tmp), scenarios))
    return {outcome.scenario: outcome for outcome in outcomes}


ALL_SCENARIOS = [Scenario(state, major, driver) for state in STATES for major in HELMS for driver in DRIVERS]
# Copies that tests change (the ones above stay as produced), one set per test file.
WRITABLE_SCENARIOS = [
    Scenario(state, major, driver, prefix="w")
    for state in ("pending-install", "pending-upgrade", "pending-rollback")
    for major in HELMS
    for driver in DRIVERS
]
UNLOCK_SCENARIOS = [
    Scenario(state, major, driver, prefix="u")
    for state in ("pending-install", "pending-upgrade", "pending-rollback")
    for major in HELMS
    for driver in DRIVERS
]
MARK_DEPLOYED_SCENARIOS = [
    Scenario("pending-upgrade", major, driver, prefix="m") for major in HELMS for driver in DRIVERS
]
DELETE_SCENARIOS = [Scenario("pending-install", major, driver, prefix="d") for major in HELMS for driver in DRIVERS]
FORCE_SCENARIOS = [
    Scenario(state, major, driver, prefix="f")
    for state in ("pending-upgrade-active", "pending-upgrade-hook")
    for major in HELMS
    for driver in DRIVERS
]
RACE_SCENARIOS = [Scenario("pending-upgrade", major, "secret", prefix="x") for major in HELMS]
PRUNE_SCENARIOS = [Scenario("bloated", major, driver, prefix="p") for major in HELMS for driver in DRIVERS]
# The data-loss guard (test_guards.py): a release per state, module and playbook each get their own.
GUARD_STATES = ("failed-upgrade-adds-pvc", "pending-upgrade-adds-pvc", "failed-upgrade-statefulset", "unquoted-config")
GUARD_SCENARIOS = [
    Scenario(state, major, driver, prefix=prefix)
    for state in GUARD_STATES
    for major in HELMS
    for driver in (DRIVERS if state == "failed-upgrade-adds-pvc" else ("secret",))
    for prefix in ("g", "gp")
]
EXTRA_SCENARIOS = (
    WRITABLE_SCENARIOS
    + UNLOCK_SCENARIOS
    + MARK_DEPLOYED_SCENARIOS
    + DELETE_SCENARIOS
    + FORCE_SCENARIOS
    + RACE_SCENARIOS
    + PRUNE_SCENARIOS
    + GUARD_SCENARIOS
)

# The audit log of the control plane under test (hack/cluster keeps it in its CLUSTER_DIR).
AUDIT_LOG = Path(os.environ.get("CLUSTER_DIR") or ROOT / ".cluster") / "audit.log"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def another_workers(event: dict[str, t.Any]) -> bool:
    """Whether a test run beside this one sent the request (hack/integration): what it reads and writes is
    its own, never a witness of this run's tests. A worker sees only its own identity's requests; the main
    run sees every identity but the workers' (its tests also act as the identities the roles ship)."""
    user = str((event.get("user") or {}).get("username") or "")
    if TEST_USER.startswith(WORKER_PREFIX):
        return user != TEST_USER
    # A worker's own identity, or one a worker's test made to act as a shipped role (WORKER_ACCOUNT names it).
    account = user.rsplit(":", 1)[-1] if user.startswith("system:serviceaccount:") else ""
    return user.startswith(WORKER_PREFIX) or account.startswith(WORKER_ACCOUNT)


def audit_events_since(started: float, user_agent_prefix: str = "helmops.recovery") -> list[dict[str, t.Any]]:
    """Audit events (final stage) since `started` whose client identifies as us."""
    events = []
    for line in AUDIT_LOG.read_text().splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or another_workers(event):
            continue
        stamp = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if stamp >= started and str(event.get("userAgent", "")).startswith(user_agent_prefix):
            events.append(event)
    return events


def writes_in_namespace(namespace: str, started: float) -> list[str]:
    """The collection's writes (verb and URI) in one namespace since `started`, from the audit log."""
    time.sleep(1)  # the audit log is written asynchronously
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in audit_events_since(started)
        if e.get("verb") in WRITE_VERBS and f"/namespaces/{namespace}/" in e.get("requestURI", "")
    ]


def writes_by_user_since(started: float, username: str = TEST_USER) -> list[str]:
    """Every write request by that identity since `started`: our modules and Helm alike."""
    found = []
    for line in AUDIT_LOG.read_text().splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITE_VERBS:
            continue
        if (event.get("user") or {}).get("username") != username:
            continue
        stamp = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if stamp >= started:
            found.append(f"{event['verb']} {event['requestURI']} ({event.get('userAgent')})")
    return found


def ready(outcome: Outcome) -> Outcome:
    if outcome.returncode != 0:
        pytest.fail(f"scenario {outcome.scenario.id} failed: {outcome.stderr}")
    return outcome


def run_collection_module(
    name: str,
    args: dict[str, t.Any],
    *,
    check_mode: bool = False,
    diff: bool = False,
    kubeconfig: str | dict[str, t.Any] = KUBECONFIG,
) -> dict[str, t.Any]:
    """Run one of the collection's modules as Ansible does (arguments file, JSON on stdout)."""
    payload = {
        "ANSIBLE_MODULE_ARGS": {
            "kubeconfig": kubeconfig,
            **args,
            "_ansible_check_mode": check_mode,
            "_ansible_diff": diff,
        }
    }
    path = Path(f"/tmp/helmops-module-{uuid.uuid4().hex}.json")
    path.write_text(json.dumps(payload))
    try:
        done = subprocess.run(
            [str(ANSIBLE / "python"), str(ROOT / "plugins" / "modules" / f"{name}.py"), str(path)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={"PYTHONPATH": str(ROOT / ".collections"), "PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"]},
        )
    finally:
        path.unlink()
    assert "Traceback" not in done.stderr, done.stderr
    return t.cast(dict[str, t.Any], json.loads(done.stdout))


def warnings_of(result: dict[str, t.Any]) -> list[str]:
    """Module warnings as text (ansible-core 2.19 returns them as structured summaries)."""
    texts = []
    for warning in result.get("warnings") or []:
        texts.append(warning["event"]["msg"] if isinstance(warning, dict) else str(warning))
    return texts


def write_kubeconfig(tmp_path: Path, server: str, token: str, ca: str | None) -> str:
    """A kubeconfig file for one server and bearer token (tests of other identities)."""
    path = tmp_path / f"kubeconfig-{uuid.uuid4().hex[:6]}"
    cluster = {"server": server, **({"certificate-authority": ca} if ca else {})}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return str(path)


def run_playbook(
    name: str, *args: str, kubeconfig: str = KUBECONFIG, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook on one of the collection's playbooks, as a user runs it from a checkout."""
    env = {
        **os.environ,
        **(env or {}),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "KUBECONFIG": kubeconfig,
    }
    return subprocess.run(
        [str(ANSIBLE / "ansible-playbook"), str(ROOT / "playbooks" / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def extra_vars(**values: t.Any) -> list[str]:
    """The playbooks' extra variables; `namespace` is the playbooks' `release_namespace` (the deprecated
    -e namespace has a test of its own: test_playbooks.py)."""
    if "namespace" in values:
        values["release_namespace"] = values.pop("namespace")
    return ["-e", json.dumps(values)]


def scenario(state: str, release: str, namespace: str, major: str = "3", *values: str) -> None:
    """hack/scenario: real Helm drives a release into `state` (values: KEY=VALUE for every install and upgrade)."""
    subprocess.run(
        [
            str(ROOT / "hack" / "scenario"),
            state,
            "--release",
            release,
            "--namespace",
            namespace,
            "--helm",
            major,
            *(f"--value={value}" for value in values),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "KUBECONFIG": KUBECONFIG},
    )


class ApiServer:
    """Stops and starts the real kube-apiserver of the test cluster."""

    def __init__(self) -> None:
        server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
        self.env = {**os.environ, "CLUSTER_PORT_BASE": str(int(server.rsplit(":", 1)[1]) - 43)}
        self.stops = 0

    def _run(self, *args: str) -> None:
        subprocess.run([str(ROOT / "hack" / "cluster"), *args], env=self.env, check=True, capture_output=True)

    def stop(self, *_request: object) -> None:
        self.stops += 1
        self._run("stop-apiserver")

    def start(self) -> None:
        self._run("start-apiserver")
        subprocess.run([str(ROOT / "hack" / "cluster"), "status"], env=self.env, check=True)

    def restart(self, runtime_config: str = "") -> None:
        """Again, with --runtime-config set (a group/version turned off); without it, as the default cluster."""
        self._run("restart-apiserver", runtime_config)
