"""Drive real Helm into a release state on the local control plane.

    hack/scenario STATE --release R --namespace N [--helm 3|4] [--driver secret|configmap]
                        [--kubeconfig FILE] [--output FILE.json] [--value KEY=VALUE ...]

Exits 0 only when `helm status` shows the state the scenario promises. Every
state is reached by running real Helm (and killing it with SIGKILL where a
client died mid-operation), never by writing records by hand. docs/scenarios.md
says which real-world incident each state reproduces.

--output writes what the tests need to know: the final status, the revision
history and the error text Helm printed along the way.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charts import chart_path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "tests" / "charts" / "app"
SHORT_TIMEOUT = "8s"  # for operations that must fail on a timeout
LONG_TIMEOUT = "5m"  # for operations that are killed long before


class ScenarioError(Exception):
    pass


class RaceLost(ScenarioError):
    """Helm finished before it could be killed: on a loaded machine the pods it waited on (ready after
    about 6 seconds) got ready before the kill. The scenario is then run again from the start."""


ATTEMPTS = 3


class Helm:
    """Real Helm (3 or 4) against the local control plane, one release."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.major = args.helm
        self.binary = str(ROOT / ".cluster" / "bin" / f"helm{args.helm}")
        self.kubectl_binary = str(ROOT / ".cluster" / "bin" / "kubectl")
        self.release = args.release
        self.namespace = args.namespace
        self.driver = args.driver
        self.kubeconfig = args.kubeconfig
        self.workdir = Path(tempfile.mkdtemp(prefix="scenario-"))
        home = ROOT / ".cluster" / "helm-home"
        self.env = dict(os.environ)
        self.env.update(
            KUBECONFIG=self.kubeconfig,
            HELM_DRIVER=self.driver,
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_DATA_HOME=str(home / "data"),
        )
        self.errors: list[str] = []
        self._values_count = 0
        self.extra_values = dict(value.split("=", 1) for value in args.value)

    def values_file(self, values: dict[str, Any]) -> str:
        self._values_count += 1
        path = self.workdir / f"values-{self._values_count}.json"
        path.write_text(json.dumps({**values, **self.extra_values}))
        return str(path)

    def command(self, verb: str, *args: str) -> list[str]:
        return [self.binary, verb, *args, "--namespace", self.namespace]

    def run(self, verb: str, *args: str, expect_failure: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = self.command(verb, *args)
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            self.errors.append(done.stderr.strip())
            if not expect_failure:
                raise ScenarioError(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()}")
        elif expect_failure:
            raise ScenarioError(f"{' '.join(cmd[:3])} was expected to fail but succeeded")
        return done

    def start_install(self, values: dict[str, Any], chart: Path = CHART) -> subprocess.Popen[str]:
        """`helm install --wait` in the background (the client the scenario then kills)."""
        values_file = self.values_file(values)
        return self.start(
            "install",
            self.release,
            str(chart),
            "--create-namespace",
            "-f",
            values_file,
            "--wait",
            "--timeout",
            LONG_TIMEOUT,
        )

    def start(self, verb: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(verb, *args),
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def kubectl(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [self.kubectl_binary, "--kubeconfig", self.kubeconfig, "--namespace", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and done.returncode != 0:
            raise ScenarioError(f"kubectl {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done.stdout

    # --- helpers around operations --------------------------------------------

    def install(self, values: dict[str, Any], *extra: str, expect_failure: bool = False, chart: Path = CHART) -> None:
        self.run(
            "install",
            self.release,
            str(chart),
            "--create-namespace",
            "-f",
            self.values_file(values),
            *extra,
            expect_failure=expect_failure,
        )

    def upgrade(self, values: dict[str, Any], *extra: str, expect_failure: bool = False, chart: Path = CHART) -> None:
        self.run(
            "upgrade", self.release, str(chart), "-f", self.values_file(values), *extra, expect_failure=expect_failure
        )

    def atomic_flag(self) -> str:
        return "--atomic" if self.major == "3" else "--rollback-on-failure"

    def record_statuses(self) -> dict[int, str]:
        """Revision -> status label, read straight from the storage objects."""
        kind = "secrets" if self.driver == "secret" else "configmaps"
        out = self.kubectl("get", kind, "-l", f"owner=helm,name={self.release}", "-o", "json")
        statuses = {}
        for item in json.loads(out)["items"]:
            labels = item["metadata"]["labels"]
            statuses[int(labels["version"])] = labels["status"]
        return statuses

    def wait_for_record(self, status: str, timeout: float = 120.0, process: subprocess.Popen[str] | None = None) -> int:
        """Wait until the newest record carries `status`; return its revision. With `process`, a Helm
        that has already finished without leaving it there lost the race (RaceLost)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finished = process is not None and process.poll() is not None
            statuses = self.record_statuses()
            if statuses:
                newest = max(statuses)
                if statuses[newest] == status:
                    return newest
            if finished:
                raise RaceLost(f"Helm finished before its record said {status}")
            time.sleep(0.05)
        raise ScenarioError(f"no {status} record appeared within {timeout:.0f}s")

    def pods_exist(self, behaviour: str) -> bool:
        out = self.kubectl("get", "pods", "-l", f"helmops.test/behaviour={behaviour}", "-o", "name")
        return bool(out.strip())

    def kill_when(self, process: subprocess.Popen[str], status: str, pods: str | None = None) -> None:
        """SIGKILL Helm (the client 'died') once the newest record says `status`
        and, with `pods`, once the operation's new pods (that behaviour) exist,
        i.e. while Helm waits on them rather than before it applied anything."""
        try:
            self.wait_for_record(status, process=process)
            deadline = time.monotonic() + 60
            while pods and not self.pods_exist(pods):
                if time.monotonic() > deadline:
                    raise ScenarioError(f"no {pods} pods appeared within 60s")
                time.sleep(0.05)
        finally:
            finished = process.poll() is not None
            if not finished:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if finished:
            raise RaceLost(f"Helm finished (exit {process.returncode}) before it was killed in {status}")

    def start_over(self) -> None:
        """Remove what a lost race left, so the state can be driven into again from the start."""
        cmd = self.command("uninstall", self.release, "--wait", "--timeout", "120s")
        subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=300, check=False)
        self.errors.clear()

    def wait_rollout(self) -> None:
        self.kubectl("rollout", "status", f"deployment/{self.release}-web", "--timeout=120s")

    def history(self) -> list[dict[str, Any]]:
        done = self.run("history", self.release, "-o", "json", "--max", "1000")
        return json.loads(done.stdout)


# --- the states ---------------------------------------------------------------
# Each returns the status `helm status` must then show.


def deployed(helm: Helm) -> str:
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    for note in ("r2", "r3"):
        helm.upgrade({"revisionNote": note}, "--wait", "--timeout", LONG_TIMEOUT)
    return "deployed"


def failed_install(helm: Helm) -> str:
    helm.install({"behaviour": "never-ready"}, "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True)
    return "failed"


def failed_upgrade(helm: Helm) -> str:
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade(
        {"revisionNote": "r2", "behaviour": "never-ready"}, "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True
    )
    return "failed"


def pending_install(helm: Helm) -> str:
    process = helm.start_install({"behaviour": "slow"})
    helm.kill_when(process, "pending-install", pods="slow")
    helm.wait_rollout()
    return "pending-install"


def pending_upgrade(helm: Helm, quiesce: bool = True) -> str:
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    behaviour = "slow" if quiesce else "never-ready"
    process = helm.start(
        "upgrade",
        helm.release,
        str(CHART),
        "-f",
        helm.values_file({"revisionNote": "r2", "behaviour": behaviour}),
        "--wait",
        "--timeout",
        LONG_TIMEOUT,
    )
    helm.kill_when(process, "pending-upgrade", pods=behaviour)
    if quiesce:
        helm.wait_rollout()
    return "pending-upgrade"


def pending_upgrade_active(helm: Helm) -> str:
    return pending_upgrade(helm, quiesce=False)


def pending_upgrade_hook(helm: Helm) -> str:
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    values = {"revisionNote": "r2", "hooks": [{"event": "pre-upgrade", "behaviour": "never-ready"}]}
    process = helm.start("upgrade", helm.release, str(CHART), "-f", helm.values_file(values), "--timeout", LONG_TIMEOUT)
    helm.kill_when(process, "pending-upgrade", pods="never-ready")
    return "pending-upgrade"


def pending_rollback(helm: Helm) -> str:
    helm.install({"revisionNote": "r1", "behaviour": "slow"})
    helm.wait_rollout()
    helm.upgrade({"revisionNote": "r2"}, "--wait", "--timeout", LONG_TIMEOUT)
    process = helm.start("rollback", helm.release, "1", "--wait", "--timeout", LONG_TIMEOUT)
    helm.kill_when(process, "pending-rollback", pods="slow")
    helm.wait_rollout()
    return "pending-rollback"


def uninstalling(helm: Helm) -> str:
    helm.install({"hooks": [{"event": "pre-delete", "behaviour": "never-ready"}]}, "--wait", "--timeout", LONG_TIMEOUT)
    process = helm.start("uninstall", helm.release, "--timeout", LONG_TIMEOUT)
    helm.kill_when(process, "uninstalling", pods="never-ready")  # the pre-delete hook's pod
    return "uninstalling"


def failed_hook(helm: Helm) -> str:
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade(
        {"revisionNote": "r2", "hooks": [{"event": "pre-upgrade", "behaviour": "fail"}]},
        "--timeout",
        "60s",
        expect_failure=True,
    )
    return "failed"


def atomic_rolled_back(helm: Helm) -> str:
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade(
        {"revisionNote": "r2", "behaviour": "never-ready"},
        helm.atomic_flag(),
        "--timeout",
        SHORT_TIMEOUT,
        expect_failure=True,
    )
    if "rolled back" not in helm.errors[-1]:
        raise ScenarioError(f"expected an automatic rollback, Helm said: {helm.errors[-1]}")
    return "deployed"


def atomic_rollback_failed(helm: Helm) -> str:
    """`helm upgrade --atomic` (Helm 4: --rollback-on-failure) times out, and its automatic rollback fails
    too: the revision it rolls back to has a pre-rollback hook that fails. The rollback's revision stays
    pending-rollback, a lock no client holds."""
    hooks = [{"event": "pre-rollback", "behaviour": "fail"}]
    helm.install({"revisionNote": "r1", "hooks": hooks}, "--wait", "--timeout", LONG_TIMEOUT)
    values = {"revisionNote": "r2", "behaviour": "never-ready", "hooks": hooks}
    helm.upgrade(values, helm.atomic_flag(), "--timeout", SHORT_TIMEOUT, expect_failure=True)
    if "an error occurred while rolling back the release" not in helm.errors[-1]:
        raise ScenarioError(f"expected a failed automatic rollback, Helm said: {helm.errors[-1]}")
    # The failed pre-rollback hook ends the rollback before Helm records its outcome (pkg/action/rollback.go).
    return "pending-rollback"


def missing_crd(helm: Helm) -> str:
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade({"revisionNote": "r2", "widget": True}, "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True)
    if "no matches for kind" not in helm.errors[-1]:
        raise ScenarioError(f"expected a missing-CRD error, Helm said: {helm.errors[-1]}")
    return "deployed"


def keep_policy(helm: Helm) -> str:
    helm.install({"volumes": [{"name": "data", "keep": False}, {"name": "archive", "keep": True}], "keptConfig": True})
    helm.wait_rollout()
    return "deployed"


def claim_exists(helm: Helm, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not helm.kubectl("get", "pvc", name, "--ignore-not-found", "-o", "name").strip():
        if time.monotonic() > deadline:
            raise ScenarioError(f"PersistentVolumeClaim {name} did not appear within {timeout:.0f}s")
        time.sleep(0.2)


def failed_upgrade_adds_pvc(helm: Helm) -> str:
    """Revision 2 adds a claim without resource-policy keep and a pod that never gets ready, and fails."""
    # A progress deadline the tests never reach, in both revisions: Helm 4's bare --wait (its status watcher)
    # fails a rollback of a Deployment that still reports ProgressDeadlineExceeded, which a plain `helm4 rollback
    # --wait` in a test would meet (helm_release_recover asks Helm 4 for --wait=legacy: _helm_cli.HelmFlags).
    helm.install({"revisionNote": "r1", "progressDeadlineSeconds": 7200}, "--wait", "--timeout", LONG_TIMEOUT)
    values = {
        "revisionNote": "r2",
        "behaviour": "never-ready",
        "progressDeadlineSeconds": 7200,
        "volumes": [{"name": "cache", "keep": False}],
    }
    helm.upgrade(values, "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True)
    claim_exists(helm, f"{helm.release}-cache")
    return "failed"


def pending_upgrade_adds_pvc(helm: Helm) -> str:
    """Revision 2 adds a claim and a pod that never gets ready (its rollout passes a 15 s progress
    deadline); Helm is killed while it waits, leaving the lock. Revision 1 has a deadline the tests never reach,
    for the rollback to it (see failed_upgrade_adds_pvc)."""
    helm.install({"revisionNote": "r1", "progressDeadlineSeconds": 7200}, "--wait", "--timeout", LONG_TIMEOUT)
    values = {
        "revisionNote": "r2",
        "behaviour": "never-ready",
        "progressDeadlineSeconds": 15,
        "volumes": [{"name": "cache", "keep": False}],
    }
    process = helm.start(
        "upgrade", helm.release, str(CHART), "-f", helm.values_file(values), "--wait", "--timeout", LONG_TIMEOUT
    )
    try:
        helm.wait_for_record("pending-upgrade")
        claim_exists(helm, f"{helm.release}-cache")
    finally:
        helm.kill_when(process, "pending-upgrade", pods="never-ready")
    return "pending-upgrade"


def failed_upgrade_statefulset(helm: Helm) -> str:
    """Revision 2 adds a StatefulSet whose claims are deleted with it (whenDeleted: Delete) and whose pod
    never gets ready (its claim binds), and fails."""
    helm.install({"revisionNote": "r1"}, "--wait", "--timeout", LONG_TIMEOUT)
    statefulset = {"enabled": True, "whenDeleted": "Delete", "claims": ["data"], "behaviour": "never-ready"}
    values = {"revisionNote": "r2", "statefulSet": statefulset}
    helm.upgrade(values, "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True)
    claim_exists(helm, f"data-{helm.release}-db-0")
    return "failed"


def unquoted_config(helm: Helm) -> str:
    """A chart that renders `SEP: =` and `BUILD_DATE: 0000-00-00` unquoted (valid for Helm), and a claim."""
    values = {"rawConfig": {"SEP": "=", "BUILD_DATE": "0000-00-00"}, "volumes": [{"name": "data", "keep": False}]}
    helm.install(values)
    helm.wait_rollout()
    claim_exists(helm, f"{helm.release}-data")
    return "deployed"


# --- the database chart (tests/charts/database): claims that bind, a migration hook with its own RBAC,
# values of every type, and a 2.0.0 that moved storage.* to persistence.*.
DATABASE = chart_path("database")
DATABASE_2 = chart_path("database-2")
DATABASE_CHANGE = {"config": {"maxConnections": 250, "fsync": False, "checkpointRatio": 0.7}}


def database_claims_bound(helm: Helm, timeout: float = 60.0) -> None:
    """Every claim of the database is Bound. Helm's --wait covers the chart's own claims, not the ones the
    StatefulSet controller creates from its templates (Helm 4's watcher may return before those bind)."""
    deadline = time.monotonic() + timeout
    for claim in (f"data-{helm.release}-0", f"{helm.release}-backup", f"{helm.release}-archive"):
        while (phase := claim_phase(helm, claim)) != "Bound":
            if time.monotonic() > deadline:
                raise ScenarioError(f"PersistentVolumeClaim {claim} is {phase or 'absent'}, not Bound")
            time.sleep(0.2)


def claim_phase(helm: Helm, claim: str) -> str:
    return helm.kubectl("get", "pvc", claim, "--ignore-not-found", "-o", "jsonpath={.status.phase}")


def database_failed_upgrade(helm: Helm) -> str:
    """1.0.0 deployed with bound claims; an upgrade that changes the configuration and whose pods never get
    ready fails (after its pre-upgrade migration hook succeeded)."""
    helm.install({}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    database_claims_bound(helm)
    values = {**DATABASE_CHANGE, "behaviour": "never-ready"}
    helm.upgrade(values, "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True, chart=DATABASE)
    return "failed"


def database_pending_major_upgrade(helm: Helm) -> str:
    """1.0.0 deployed; the upgrade to 2.0.0 (persistence.* instead of storage.*) with a configuration change
    is killed while Helm waits for the new pod (slow to get ready), leaving the lock; the pod then gets ready,
    so the cluster runs 2.0.0 and nothing works on the release any more."""
    helm.install({}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    database_claims_bound(helm)
    values = {**DATABASE_CHANGE, "behaviour": "slow"}
    process = helm.start(
        "upgrade", helm.release, str(DATABASE_2), "-f", helm.values_file(values), "--wait", "--timeout", LONG_TIMEOUT
    )
    helm.kill_when(process, "pending-upgrade", pods="slow")
    helm.kubectl("rollout", "status", f"statefulset/{helm.release}", "--timeout=120s")
    return "pending-upgrade"


def database_pending_install(helm: Helm) -> str:
    """The database's first install (slow pods) is killed while Helm waits; the pod then gets ready."""
    process = helm.start_install({**DATABASE_CHANGE, "behaviour": "slow"}, chart=DATABASE)
    helm.kill_when(process, "pending-install", pods="slow")
    helm.kubectl("rollout", "status", f"statefulset/{helm.release}", "--timeout=120s")
    database_claims_bound(helm)
    return "pending-install"


def database_pending_rollback(helm: Helm) -> str:
    """1.0.0 deployed, then upgraded with a configuration change; `helm rollback 1 --wait` is killed while it
    waits for the rolled-back pod (slow to get ready), which then gets ready."""
    helm.install({"behaviour": "slow"}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    helm.upgrade({**DATABASE_CHANGE, "behaviour": ""}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    process = helm.start("rollback", helm.release, "1", "--wait", "--timeout", LONG_TIMEOUT)
    helm.kill_when(process, "pending-rollback", pods="slow")
    helm.kubectl("rollout", "status", f"statefulset/{helm.release}", "--timeout=120s")
    return "pending-rollback"


def database_pending_upgrade_active(helm: Helm) -> str:
    """1.0.0 deployed; an upgrade whose pod never gets ready is killed while Helm waits: the StatefulSet
    still rolls out, so a client with a long --timeout could still be waiting on it."""
    helm.install({}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    values = helm.values_file({**DATABASE_CHANGE, "behaviour": "never-ready"})
    process = helm.start("upgrade", helm.release, str(DATABASE), "-f", values, "--wait", "--timeout", LONG_TIMEOUT)
    helm.kill_when(process, "pending-upgrade", pods="never-ready")
    return "pending-upgrade"


def database_uninstalled(helm: Helm) -> str:
    """1.0.0 deployed, then `helm uninstall --keep-history`: the records stay, the kept archive claim too."""
    helm.install({}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    helm.run("uninstall", helm.release, "--keep-history", "--wait", "--timeout", LONG_TIMEOUT)
    return "uninstalled"


DATABASE_REVISIONS = 24  # over the default history_threshold (20), as a release upgraded without --history-max


def database_bloated(helm: Helm) -> str:
    """1.0.0 upgraded 23 times without --history-max, each upgrade changing the configuration and running the
    pre-upgrade migration hook: a long history, the newest revision deployed, claims bound."""
    helm.install({}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    for revision in range(2, DATABASE_REVISIONS + 1):
        helm.upgrade({"config": {"maxConnections": 100 + revision}}, "--history-max", "0", chart=DATABASE)
    database_claims_bound(helm)
    return "deployed"


def database_kept_claim(helm: Helm) -> str:
    """1.0.0 with its backup claim kept by policy, then an upgrade that turns the backup off: Helm skips deleting
    the kept claim (pkg/kube/client.go), which stays bound with the release's ownership, in no manifest."""
    helm.install({"backup": {"keep": True}}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    database_claims_bound(helm)
    helm.upgrade({"backup": {"enabled": False}}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    if claim_phase(helm, f"{helm.release}-backup") != "Bound":
        raise ScenarioError(f"the kept claim {helm.release}-backup is not Bound after the upgrade")
    return "deployed"


# The labels Flux's helm-controller puts on every object of a HelmRelease it manages.
FLUX_LABELS = {"helm.toolkit.fluxcd.io/name": "database", "helm.toolkit.fluxcd.io/namespace": "flux-system"}


def database_flux_failed(helm: Helm) -> str:
    """A database Flux manages (its labels on every object), whose upgrade failed on a pod that never gets
    ready: the controller owns the retry, so a manual recovery would fight it."""
    managed = {"commonLabels": FLUX_LABELS}
    helm.install(managed, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    database_claims_bound(helm)
    values = {**managed, **DATABASE_CHANGE, "behaviour": "never-ready"}
    helm.upgrade(values, "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True, chart=DATABASE)
    return "failed"


def database_owned_elsewhere(helm: Helm) -> str:
    """1.0.0 deployed, its upgrade failed (its pre-upgrade migration Job failed); then a second release of the
    chart (<release>-replica) is installed with the same configMapName and --take-ownership, which adopts the
    first one's ConfigMap. A rollback of the first release would write the replica's ConfigMap (and take it
    back), an uninstall would delete it."""
    helm.install({}, "--wait", "--timeout", LONG_TIMEOUT, chart=DATABASE)
    database_claims_bound(helm)
    values = {**DATABASE_CHANGE, "migrations": {"behaviour": "fail"}}
    helm.upgrade(values, "--wait", "--timeout", LONG_TIMEOUT, expect_failure=True, chart=DATABASE)
    shared = {"configMapName": f"{helm.release}-config", "backup": {"enabled": False}, "archive": {"enabled": False}}
    replica = f"{helm.release}-replica"
    helm.run("install", replica, str(DATABASE), "-f", helm.values_file(shared), "--take-ownership")
    return "failed"


# --- API versions the cluster stops serving (see docs/scenarios.md) -----------------------------------------------


def widget_crd(helm: Helm, old_served: bool) -> None:
    """The Widget CRD of the release's namespace (a group of its own, so parallel workers never share one), applied
    out of band as cert-manager's CRDs are: v1 stored, v1alpha1 served until a newer CRD stops serving it."""
    group = f"{helm.namespace}.widgets.helmops.test"
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1alpha1", "served": old_served, "storage": False, "schema": schema},
                {"name": "v1", "served": True, "storage": True, "schema": schema},
            ],
        },
    }
    path = helm.workdir / "widget-crd.json"
    path.write_text(json.dumps(crd))
    helm.kubectl("apply", "-f", str(path))
    helm.kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s")
    deadline = time.monotonic() + 60  # discovery catches up with the served versions a moment later
    while time.monotonic() < deadline:
        served = helm.kubectl("get", "--raw", f"/apis/{group}", check=False)
        if ('"v1alpha1"' in served) == old_served and '"v1"' in served:
            return
        time.sleep(0.2)
    raise ScenarioError(f"discovery of {group} never showed v1alpha1 served={old_served}")


def old_widget(helm: Helm, note: str, **values: Any) -> dict[str, Any]:
    return {
        "revisionNote": note,
        "widget": True,
        "widgetApiVersion": f"{helm.namespace}.widgets.helmops.test/v1alpha1",
        **values,
    }


def upgrade_blocked(helm: Helm, values: dict[str, Any]) -> None:
    """The next upgrade fails before Helm stores anything: its current manifest names an API no longer served."""
    helm.upgrade(values, "--wait", "--timeout", LONG_TIMEOUT, expect_failure=True)
    if "no matches for kind" not in helm.errors[-1]:
        raise ScenarioError(f"expected an unserved API version, Helm said: {helm.errors[-1]}")


def removed_api_crd(helm: Helm) -> str:
    """A custom resource on v1alpha1; the CRD then stops serving v1alpha1 (cert-manager's v1alpha2 removal)."""
    widget_crd(helm, old_served=True)
    helm.install(old_widget(helm, "r1"), "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade(old_widget(helm, "r2"), "--wait", "--timeout", LONG_TIMEOUT)
    widget_crd(helm, old_served=False)
    upgrade_blocked(helm, old_widget(helm, "r3"))
    return "deployed"


def removed_api_failed(helm: Helm) -> str:
    """As removed-api-crd, with a newest revision that failed (pods never ready) before the CRD changed: an
    upgrade reads the last deployed revision, a rollback the failed one and its target."""
    widget_crd(helm, old_served=True)
    helm.install(old_widget(helm, "r1"), "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade(old_widget(helm, "r2"), "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade(
        old_widget(helm, "r3", behaviour="never-ready"), "--wait", "--timeout", SHORT_TIMEOUT, expect_failure=True
    )
    widget_crd(helm, old_served=False)
    upgrade_blocked(helm, old_widget(helm, "r4"))
    return "failed"


def removed_api_pending(helm: Helm) -> str:
    """As removed-api-crd, with an upgrade killed while it waited (pending-upgrade) before the CRD changed."""
    widget_crd(helm, old_served=True)
    helm.install(old_widget(helm, "r1"), "--wait", "--timeout", LONG_TIMEOUT)
    values = old_widget(helm, "r2", behaviour="slow")
    process = helm.start(
        "upgrade", helm.release, str(CHART), "-f", helm.values_file(values), "--wait", "--timeout", LONG_TIMEOUT
    )
    helm.kill_when(process, "pending-upgrade", pods="slow")
    helm.wait_rollout()
    widget_crd(helm, old_served=False)
    return "pending-upgrade"


def hpa_v1(note: str) -> dict[str, Any]:
    return {"revisionNote": note, "autoscaler": {"enabled": True, "apiVersion": "autoscaling/v1"}}


TURNED_OFF = "autoscaling/v1=false"


def autoscaler_v1(helm: Helm) -> str:
    """A HorizontalPodAutoscaler stored at autoscaling/v1, a version the next cluster upgrade may remove (the first
    half of removed-api-builtin, for a release that a later removed-api-builtin run strands with it)."""
    if "autoscaling/v1" not in helm.kubectl("api-versions"):
        restart_apiserver(helm, "")  # an earlier run turned it off: serve it again for the install
    helm.install(hpa_v1("r1"), "--wait", "--timeout", LONG_TIMEOUT)
    helm.upgrade(hpa_v1("r2"), "--wait", "--timeout", LONG_TIMEOUT)
    return "deployed"


def removed_api_builtin(helm: Helm) -> str:
    """A HorizontalPodAutoscaler on autoscaling/v1; the API server then restarts with that version turned off
    (--runtime-config), as a cluster upgrade removes a version. It stays off until `hack/cluster
    restart-apiserver` restores the default: the whole cluster serves HPAs at autoscaling/v2 only. (A second
    release of this state turns it on again for its install first.)"""
    autoscaler_v1(helm)
    restart_apiserver(helm, TURNED_OFF)
    upgrade_blocked(helm, hpa_v1("r3"))
    return "deployed"


def restart_apiserver(helm: Helm, runtime_config: str) -> None:
    """The control plane that serves the kubeconfig's API (hack/cluster: BASE+43)."""
    server = helm.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
    env = {**os.environ, "CLUSTER_PORT_BASE": str(int(server.rsplit(":", 1)[1]) - 43)}
    subprocess.run(
        [str(ROOT / "hack" / "cluster"), "restart-apiserver", runtime_config],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


OPERATOR = chart_path("operator")


def operator_uninstalling(helm: Helm) -> str:
    """The operator chart (a CRD kept by policy, cluster-scoped RBAC, a subchart) with a pre-delete cleanup
    hook that never finishes: `helm uninstall` is killed while it waits on the hook."""
    helm.install({"cleanup": {"behaviour": "never-ready"}}, "--wait", "--timeout", LONG_TIMEOUT, chart=OPERATOR)
    process = helm.start("uninstall", helm.release, "--timeout", LONG_TIMEOUT)
    helm.kill_when(process, "uninstalling", pods="never-ready")
    return "uninstalling"


BLOATED_REVISIONS = 30
BLOATED_LARGE = {5: 300, 12: 300, 20: 900, 27: 300}  # revision -> padding KiB (900: near the 1 MiB limit)


def bloated(helm: Helm) -> str:
    helm.install({"revisionNote": "r1"})
    for revision in range(2, BLOATED_REVISIONS + 1):
        values = {"revisionNote": f"r{revision}", "paddingKiB": BLOATED_LARGE.get(revision, 0)}
        helm.upgrade(values, "--history-max", "0")
    return "deployed"


STATES: dict[str, Callable[[Helm], str]] = {
    "deployed": deployed,
    "failed-install": failed_install,
    "failed-upgrade": failed_upgrade,
    "pending-install": pending_install,
    "pending-upgrade": pending_upgrade,
    "pending-upgrade-active": pending_upgrade_active,
    "pending-upgrade-hook": pending_upgrade_hook,
    "pending-rollback": pending_rollback,
    "uninstalling": uninstalling,
    "failed-hook": failed_hook,
    "atomic-rolled-back": atomic_rolled_back,
    "atomic-rollback-failed": atomic_rollback_failed,
    "missing-crd": missing_crd,
    "keep-policy": keep_policy,
    "bloated": bloated,
    "failed-upgrade-adds-pvc": failed_upgrade_adds_pvc,
    "pending-upgrade-adds-pvc": pending_upgrade_adds_pvc,
    "failed-upgrade-statefulset": failed_upgrade_statefulset,
    "unquoted-config": unquoted_config,
    "database-failed-upgrade": database_failed_upgrade,
    "database-pending-major-upgrade": database_pending_major_upgrade,
    "database-pending-install": database_pending_install,
    "database-pending-rollback": database_pending_rollback,
    "database-pending-upgrade-active": database_pending_upgrade_active,
    "database-uninstalled": database_uninstalled,
    "database-bloated": database_bloated,
    "database-kept-claim": database_kept_claim,
    "database-flux-failed": database_flux_failed,
    "database-owned-elsewhere": database_owned_elsewhere,
    "operator-uninstalling": operator_uninstalling,
    "removed-api-crd": removed_api_crd,
    "removed-api-failed": removed_api_failed,
    "removed-api-pending": removed_api_pending,
    "autoscaler-v1": autoscaler_v1,
    "removed-api-builtin": removed_api_builtin,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("state", choices=sorted(STATES))
    parser.add_argument("--release", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--helm", choices=("3", "4"), default="3")
    parser.add_argument("--driver", choices=("secret", "configmap"), default="secret")
    parser.add_argument("--kubeconfig", default=str(ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--output", help="write the outcome as JSON to this file")
    parser.add_argument(
        "--value",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value every install and upgrade of the scenario gets (e.g. secretToken=...)",
    )
    return parser.parse_args(argv)


def drive(state: str, helm: Helm) -> str:
    """Drive the release into `state`; a lost race (see RaceLost) starts it over, at most ATTEMPTS times."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return STATES[state](helm)
        except RaceLost as exc:
            if attempt == ATTEMPTS:
                raise
            print(f"scenario {state}: {exc}; starting over (attempt {attempt + 1} of {ATTEMPTS})", file=sys.stderr)
            helm.start_over()
    raise AssertionError("unreachable")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    helm = Helm(args)
    started = time.monotonic()
    try:
        expected = drive(args.state, helm)
        # `helm history`, not `helm status`: Helm 4's status builds the manifest's objects, so it fails on a
        # release whose manifest names an API version no longer served (the removed-api scenarios).
        history = helm.history()
        status = history[-1]["status"]
        if status != expected:
            raise ScenarioError(f"helm history shows {status!r}, the scenario promised {expected!r}")
    except (ScenarioError, subprocess.TimeoutExpired) as exc:
        print(f"scenario {args.state}: {exc}", file=sys.stderr)
        return 1
    outcome = {
        "state": args.state,
        "release": args.release,
        "namespace": args.namespace,
        "helm": args.helm,
        "driver": args.driver,
        "status": status,
        "history": [
            {"revision": h["revision"], "status": h["status"], "description": h["description"]} for h in history
        ],
        "errors": helm.errors,
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.output:
        Path(args.output).write_text(json.dumps(outcome, indent=2))
    print(
        f"scenario {args.state}: release {args.release} in {args.namespace} is {status} "
        f"(helm {args.helm}, {args.driver}, {len(history)} revisions, {outcome['seconds']}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
