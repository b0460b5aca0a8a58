"""Fleet-scale benchmark: helm_release_facts and helm_history_prune against Helm itself.

    hack/bench [--releases R] [--revisions H] [--quick] [--repetitions N]

1. Builds a fleet on the local control plane: R releases spread over several
   namespaces, H revisions each. A few source releases of tests/charts/app are
   installed by real Helm 3 and Helm 4 (padding makes their records tens of KB,
   one near the 1 MiB limit); the fleet's records are clones of those records,
   re-encoded with the collection's codec so that the name, namespace, version
   and status inside each payload match the clone. Real ``helm list -A``
   (Helm 3 and Helm 4) must list every release before anything is timed.
2. Times, alternating the order in every repetition:
     facts        helm_release_facts for every release, through ansible-playbook
     facts-labels the same with history: labels (history from object metadata,
                  payloads only for records not labelled superseded)
     facts-brief  the same with detail: brief (healthy deployed releases from their
                  records alone, the deep look only for the others)
     helm3-list   helm3 list -A --all --max 0 -o json
     helm4-list   helm4 list -A --all --max 0 -o json
     status-quo   helm3 list -A plus helm3 history and helm3 status per release
                  (timed on a sample of releases and extrapolated when R is large;
                  the output says so)
     facts-hostile  facts with one record of each kind in tests/hostile/records loaded
                  into namespace bench-hostile (a gzip bomb, JSON nested 5,000 deep,
                  YAML alias and nesting bombs, ...): within 2x of facts, under 300 MiB
     prune        helm_history_prune keep=3 for every release, through ansible-playbook
     prune-hostile  prune with the hostile records loaded (they are left alone, reported)
     kubectl-delete  kubectl delete secret, one record per call, for the same surplus
                  (timed on a sample of the surplus; compared as records per second)
   The surplus is rebuilt between repetitions.
3. Prints one table, then the ratios (ours / theirs), and writes both as JSON
   under .bench/.

Wall time is the elapsed time of the whole command (process start-up included).
Peak memory is the maximum resident set size from wait4(2): for Helm and kubectl
that of the process; for the modules that of the Python process that runs the
module (ansible-playbook runs it through an interpreter wrapper that reports the
module's own peak RSS), and, separately, the peak of the whole ansible-playbook
process tree (controller included).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_DIR = Path(os.environ.get("CLUSTER_DIR", str(ROOT / ".cluster")))
BIN = ROOT / ".cluster" / "bin"
CHART = ROOT / "tests" / "charts" / "app"
PYTHON = ROOT / ".venv" / "bin" / "python"
OUT = ROOT / ".bench"
FLEET_LABEL = "helmops.bench/fleet"
SOURCE_NAMESPACE = "bench-src"
HOSTILE_NAMESPACE = "bench-hostile"
HOSTILE_RECORDS = ROOT / "tests" / "hostile" / "records"
KEEP = 3

sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.helmops.recovery.plugins.module_utils._k8s import (  # noqa: E402
    ConnectionOptions,
    KubeClient,
    build_api_client,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import (  # noqa: E402
    InvalidNameError,
    decode_payload,
    encode_payload,
    payload_text_from_object,
    payload_value_for_object,
    validate_release_name,
)


def _valid_release(name: str) -> bool:
    try:
        validate_release_name(name)
    except InvalidNameError:
        return False
    return True


# name -> (helm major, paddingKiB): the releases whose real records are cloned.
SOURCES = {
    "small3": ("3", 24),
    "small4": ("4", 24),
    "medium3": ("3", 96),
    "large4": ("4", 900),
}


# --- the fleet -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseSpec:
    namespace: str
    name: str
    source: str
    statuses: tuple[str, ...]  # status of revision 1..H


@dataclass(frozen=True)
class Fleet:
    releases: int
    revisions: int
    namespaces: int
    large: int

    @property
    def stamp(self) -> str:
        return f"R={self.releases},H={self.revisions},N={self.namespaces},L={self.large},v2"

    def namespace_names(self) -> list[str]:
        return [f"bench-{index:02d}" for index in range(self.namespaces)]

    def specs(self) -> list[ReleaseSpec]:
        names = self.namespace_names()
        return [self._spec(index, names[index % len(names)]) for index in range(self.releases)]

    def _spec(self, index: int, namespace: str) -> ReleaseSpec:
        if index < self.large:
            source = "large4"
        elif index % 10 == 5:
            source = "medium3"
        else:
            source = "small3" if index % 2 else "small4"
        return ReleaseSpec(namespace, f"app-{index:05d}", source, history_statuses(index, self.revisions))


def record_name(spec: ReleaseSpec, revision: int) -> str:
    return f"sh.helm.release.v1.{spec.name}.v{revision}"


def history_statuses(index: int, revisions: int) -> tuple[str, ...]:
    """A plausible history: mostly deployed, some failed, some stuck in pending-upgrade."""
    statuses = ["superseded"] * revisions
    kind = index % 20
    if kind == 1 and revisions > 1:
        statuses[-2:] = ["deployed", "failed"]
    elif kind == 2 and revisions > 1:
        statuses[-2:] = ["deployed", "pending-upgrade"]
    else:
        statuses[-1] = "deployed"
    if index % 7 == 3 and revisions >= 4:
        statuses[-4] = "failed"  # a failed upgrade earlier in the history
    return tuple(statuses)


# --- processes -------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str


def measured(command: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> Run:
    """Run a command; its wall time and peak RSS (wait4) with its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            env=env,
        )
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin.encode())
            process.stdin.close()
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_maxrss, process.returncode, out.read().decode(), err.read().decode())


def found_in(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    if not match:
        raise SystemExit(f"bench: {pattern!r} not found in the output:\n{text[-3000:]}")
    return match.group(1)


def checked(run: Run, what: str) -> Run:
    if run.returncode != 0:
        raise SystemExit(f"bench: {what} failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return run


class Tools:
    def __init__(self, kubeconfig: str, work: Path) -> None:
        self.kubeconfig = kubeconfig
        self.work = work
        home = work / "helm-home"
        self.helm_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "KUBECONFIG": kubeconfig,
            "HELM_DRIVER": "secret",
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def helm(self, major: str, *args: str) -> Run:
        return measured([str(BIN / f"helm{major}"), *args], env=self.helm_env)

    def kubectl(self, *args: str, stdin: str | None = None) -> Run:
        return measured([str(BIN / "kubectl"), "--kubeconfig", self.kubeconfig, *args], env=self.helm_env, stdin=stdin)


# --- building the fleet ------------------------------------------------------------


def list_args(major: str) -> list[str]:
    """helm list of every release in every namespace and every state (Helm 4 lists all states by default)."""
    return ["list", "-A", *(["--all"] if major == "3" else []), "--max", "0", "-o", "json"]


def kube_client(kubeconfig: str) -> t.Any:
    return KubeClient(build_api_client(ConnectionOptions(kubeconfig=kubeconfig)))


class Builder:
    def __init__(self, tools: Tools, fleet: Fleet) -> None:
        self.tools = tools
        self.fleet = fleet
        self.client = kube_client(tools.kubeconfig)
        self.sources: dict[str, dict[str, t.Any]] = {}

    def ensure(self) -> bool:
        """Build the fleet unless the cluster already holds exactly this one; True if built."""
        self.install_sources()
        if self.stamp() == self.fleet.stamp and self.count() == self.fleet.releases * self.fleet.revisions:
            return False
        self.clear()
        existing = set(self.fleet_namespaces_in_cluster())
        for namespace in self.fleet.namespace_names():
            if namespace not in existing:
                checked(self.tools.kubectl("create", "namespace", namespace), f"creating namespace {namespace}")
        jobs = [(spec, revision) for spec in self.fleet.specs() for revision in range(1, self.fleet.revisions + 1)]
        self.create(jobs)
        self.write_stamp()
        return True

    def install_sources(self) -> None:
        for name, (major, padding) in SOURCES.items():
            release = f"src-{name}"
            found = self.tools.helm(major, "status", release, "-n", SOURCE_NAMESPACE)
            if found.returncode != 0:
                checked(
                    self.tools.helm(
                        major,
                        "install",
                        release,
                        str(CHART),
                        "-n",
                        SOURCE_NAMESPACE,
                        "--create-namespace",
                        "--set",
                        f"paddingKiB={padding}",
                    ),
                    f"helm{major} install {release}",
                )
            obj = self.client.request(
                "GET",
                f"/api/v1/namespaces/{SOURCE_NAMESPACE}/secrets/sh.helm.release.v1.{release}.v1",
                target=f"source record of {release}",
            )
            self.sources[name] = obj

    def stamp(self) -> str:
        try:
            obj = self.client.request(
                "GET", f"/api/v1/namespaces/{SOURCE_NAMESPACE}/configmaps/bench-fleet", target="fleet stamp"
            )
        except Exception:  # absent or unreadable: rebuild
            return ""
        return str((obj.get("data") or {}).get("fleet") or "")

    def write_stamp(self) -> None:
        self.tools.kubectl("delete", "configmap", "bench-fleet", "-n", SOURCE_NAMESPACE, "--ignore-not-found")
        checked(
            self.tools.kubectl(
                "create", "configmap", "bench-fleet", "-n", SOURCE_NAMESPACE, f"--from-literal=fleet={self.fleet.stamp}"
            ),
            "writing the fleet stamp",
        )

    def count(self) -> int:
        """Fleet records in the cluster (metadata only, page by page)."""
        total, token = 0, ""
        while True:
            query = [("labelSelector", f"{FLEET_LABEL}=1"), ("limit", "5000")]
            if token:
                query.append(("continue", token))
            listing = self.client.request(
                "GET",
                "/api/v1/secrets",
                target="fleet records",
                query=query,
                headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"},
            )
            total += len(listing.get("items") or [])
            token = (listing.get("metadata") or {}).get("continue") or ""
            if not token:
                return total

    def clear(self) -> None:
        """Delete every fleet record (one collection delete per namespace; namespaces stay)."""
        for namespace in self.fleet_namespaces_in_cluster():
            print(f"bench: removing old fleet records in {namespace}", flush=True)
            self.client.request(
                "DELETE",
                f"/api/v1/namespaces/{namespace}/secrets",
                target=f"fleet records in {namespace}",
                query=[("labelSelector", f"{FLEET_LABEL}=1")],
            )

    def fleet_namespaces_in_cluster(self) -> list[str]:
        listing = self.client.request("GET", "/api/v1/namespaces", target="namespaces")
        names = [item["metadata"]["name"] for item in listing.get("items") or []]
        return [name for name in names if name.startswith("bench-") and name != SOURCE_NAMESPACE]

    def create(self, jobs: list[tuple[ReleaseSpec, int]]) -> None:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for done, _created in enumerate(pool.map(lambda job: self.create_one(*job), jobs), 1):
                if done % 2000 == 0:
                    print(f"bench: {done}/{len(jobs)} records written", flush=True)
        print(f"bench: wrote {len(jobs)} records in {time.perf_counter() - started:.1f}s", flush=True)

    def create_one(self, spec: ReleaseSpec, revision: int) -> None:
        body = self.record(spec, revision)
        self.client.request(
            "POST",
            f"/api/v1/namespaces/{spec.namespace}/secrets",
            target=f"record {spec.name}.v{revision}",
            body=body,
        )

    def record(self, spec: ReleaseSpec, revision: int) -> dict[str, t.Any]:
        """A clone of a real Helm record, as revision `revision` of `spec`."""
        source = self.sources[spec.source]
        release = decode_payload(payload_text_from_object(source, "secret"))
        status = spec.statuses[revision - 1]
        release["name"] = spec.name
        # The rendered objects get the clone's own names, as Helm would have rendered them.
        original = f"src-{spec.source}"
        release["manifest"] = str(release.get("manifest") or "").replace(original, spec.name)
        for hook in release.get("hooks") or []:
            hook["name"] = str(hook.get("name") or "").replace(original, spec.name)
            hook["manifest"] = str(hook.get("manifest") or "").replace(original, spec.name)
        release["namespace"] = spec.namespace
        release["version"] = revision
        info = release["info"]
        info["status"] = status
        info["description"] = {
            "deployed": "Upgrade complete" if revision > 1 else "Install complete",
            "superseded": "Upgrade complete" if revision > 1 else "Install complete",
            "failed": "Upgrade failed: context deadline exceeded",
            "pending-upgrade": "Preparing upgrade",
        }[status]
        written = int(time.time()) - (len(spec.statuses) - revision + 1) * 3600
        stamp = datetime.datetime.fromtimestamp(written, datetime.UTC).isoformat()
        info["last_deployed"] = stamp
        if revision == 1:
            info["first_deployed"] = stamp
        labels = dict(source["metadata"].get("labels") or {})
        labels.update(
            {"name": spec.name, "owner": "helm", "status": status, "version": str(revision), FLEET_LABEL: "1"}
        )
        labels["createdAt"] = str(written)
        labels.pop("modifiedAt", None)
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": source["type"],
            "metadata": {"name": f"sh.helm.release.v1.{spec.name}.v{revision}", "labels": labels},
            "data": {"release": payload_value_for_object(encode_payload(release), "secret")},
        }


# --- what is timed ----------------------------------------------------------------


FACTS_PLAYBOOK = """
- name: Every release of the cluster
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Gather
      helmops.recovery.helm_release_facts:
        kubeconfig: {kubeconfig}{options}
    - name: Count
      ansible.builtin.debug:
        msg: "bench-releases={{{{ ansible_facts.helm_releases | length }}}}"
"""

# The options each facts item adds to the task (besides kubeconfig).
FACTS_OPTIONS: dict[str, dict[str, str]] = {
    "facts": {},
    "facts-labels": {"history": "labels"},
    "facts-brief": {"detail": "brief"},
}

FLOOR_PLAYBOOK = """
- name: Ansible's floor, one trivial task on the same inventory
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Nothing
      ansible.builtin.debug:
        msg: floor
"""

PRUNE_PLAYBOOK = """
- name: Prune the history of every release of the cluster
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Prune
      helmops.recovery.helm_history_prune:
        kubeconfig: {kubeconfig}
        keep: {keep}
        release: "{{{{ bench_releases | default(omit) }}}}"
      register: pruned
    - name: Count
      ansible.builtin.debug:
        msg: "bench-deleted={{{{ pruned.totals.deleted }}}} bench-errors={{{{ pruned.errors | length }}}}"
"""

# The interpreter ansible-playbook runs the module with: it runs the real one and
# appends the module process's peak RSS (KiB, from wait4) to a file. It starts
# without site (-S) and imports only os and sys, so it adds about 0.02 s to a run
# (running this file instead cost 0.3 s of imports, charged to the module).
INTERPRETER = """#!/bin/sh
exec {python} -S -c '
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "a") as out:
    out.write("%d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
' {rss_file} {python} "$@"
"""


@dataclass
class Sample:
    wall: float
    rss_kib: int
    tree_rss_kib: int | None = None
    count: int | None = None
    extrapolated_from: str | None = None


@dataclass
class Item:
    name: str
    what: str
    samples: list[Sample] = field(default_factory=list)

    def median_wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    def peak_rss_mib(self) -> float:
        return max(s.rss_kib for s in self.samples) / 1024

    def as_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {
            "what": self.what,
            "median_wall_seconds": round(self.median_wall(), 3),
            "peak_rss_mib": round(self.peak_rss_mib(), 1),
            "walls": [round(s.wall, 3) for s in self.samples],
        }
        trees = [s.tree_rss_kib for s in self.samples if s.tree_rss_kib]
        if trees:
            result["process_tree_peak_rss_mib"] = round(max(trees) / 1024, 1)
        counts = [s.count for s in self.samples if s.count is not None]
        if counts:
            result["count"] = counts[-1]
        notes = [s.extrapolated_from for s in self.samples if s.extrapolated_from]
        if notes:
            result["extrapolated_from"] = notes[-1]
        return result


class Bench:
    def __init__(self, tools: Tools, fleet: Fleet, builder: Builder, args: argparse.Namespace) -> None:
        self.tools = tools
        self.fleet = fleet
        self.builder = builder
        self.args = args
        self.work = tools.work
        self.rss_file = self.work / "module-rss.txt"
        interpreter = self.work / "python-rss"
        interpreter.write_text(INTERPRETER.format(python=PYTHON, rss_file=self.rss_file))
        interpreter.chmod(0o755)
        self.interpreter = interpreter
        self.facts_playbooks: dict[str, Path] = {}
        for item, options in FACTS_OPTIONS.items():
            playbook = self.work / f"{item}.yml"
            lines = "".join(f"\n        {key}: {value}" for key, value in options.items())
            playbook.write_text(FACTS_PLAYBOOK.format(kubeconfig=tools.kubeconfig, options=lines))
            self.facts_playbooks[item] = playbook
        self.floor_playbook = self.work / "floor.yml"
        self.floor_playbook.write_text(FLOOR_PLAYBOOK)
        self.prune_playbook = self.work / "prune.yml"
        self.prune_playbook.write_text(PRUNE_PLAYBOOK.format(kubeconfig=tools.kubeconfig, keep=KEEP))
        self.releases_in_cluster: list[tuple[str, str]] = []

    # --- checks ---

    def verify_helm_lists(self) -> dict[str, int]:
        """Real helm list -A (3 and 4) must show every release of the fleet."""
        wanted = {(spec.namespace, spec.name) for spec in self.fleet.specs()}
        counts = {}
        for major in ("3", "4"):
            run = checked(self.tools.helm(major, *list_args(major)), "helm list")
            listed = {(item["namespace"], item["name"]) for item in json.loads(run.stdout or "[]")}
            missing = wanted - listed
            if missing:
                raise SystemExit(
                    f"bench: helm{major} list -A does not list {len(missing)} of the {len(wanted)} fleet releases, "
                    f"for example {sorted(missing)[:3]}"
                )
            counts[f"helm{major}"] = len(listed)
            self.releases_in_cluster = sorted(listed)
            print(f"bench: helm{major} list -A lists all {len(wanted)} fleet releases ({len(listed)} in the cluster)")
        if self.dedicated() and counts["helm3"] != counts["helm4"]:
            raise SystemExit(f"bench: Helm 3 and Helm 4 list different numbers of releases: {counts}")
        return counts

    # --- items ---

    def dedicated(self) -> bool:
        """Whether the cluster holds nothing but the fleet and its sources."""
        return all(ns.startswith("bench-") for ns, _name in self.releases_in_cluster)

    def ansible(self, playbook: Path, *extra: str) -> tuple[Run, int]:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        }
        self.rss_file.write_text("")
        run = measured(
            [
                str(ROOT / ".venv" / "bin" / "ansible-playbook"),
                str(playbook),
                "-e",
                f"ansible_python_interpreter={self.interpreter}",
                *extra,
            ],
            env=env,
        )
        checked(run, f"ansible-playbook {playbook.name}")
        module_rss = max((int(line) for line in self.rss_file.read_text().split()), default=0)
        return run, module_rss

    def facts(self, item: str = "facts") -> Sample:
        run, module_rss = self.ansible(self.facts_playbooks[item])
        count = int(found_in(run.stdout, r"bench-releases=(\d+)"))
        listed = len(self.releases_in_cluster)
        if count != listed if self.dedicated() else count < self.fleet.releases:
            raise SystemExit(f"bench: facts reported {count} releases, helm list -A {listed}")
        return Sample(run.wall, module_rss, run.max_rss_kib, count)

    def facts_hostile(self) -> Sample:
        """Cluster-wide facts with the hostile records next to the fleet: every fleet release still reported."""
        run, module_rss = self.ansible(self.facts_playbooks["facts"])
        count = int(found_in(run.stdout, r"bench-releases=(\d+)"))
        if count < (len(self.releases_in_cluster) if self.dedicated() else self.fleet.releases):
            raise SystemExit(f"bench: facts with hostile records reported {count} releases")
        return Sample(run.wall, module_rss, run.max_rss_kib, count)

    def playbook(self, name: str, *extra: str, detail: str = "full") -> Sample:
        """One of the collection's playbooks end to end, as a user runs it: reports included."""
        # stale_after=1: every pending record of the synthetic fleet is stale (no remediate run waits on one);
        # a release remediate cannot resolve (a synthetic manifest's objects do not exist) must not fail the run.
        scope: dict[str, t.Any] = {"kubeconfig": self.tools.kubeconfig, "detail": detail, "stale_after": 1}
        if name == "remediate":
            scope["remediate_fail_when_unresolved"] = False
        reports = self.work / f"reports-{name}"
        shutil.rmtree(reports, ignore_errors=True)
        scope["report_dir"] = str(reports)
        if not self.dedicated():  # the test suite's cluster: the fleet's releases only
            scope["release"] = sorted({spec.name for spec in self.fleet.specs()})
        options = ["--check"] if name == "remediate" else []
        run, module_rss = self.ansible(ROOT / "playbooks" / f"{name}.yml", *options, "-e", json.dumps(scope))
        if name == "triage":
            count = int(found_in(run.stdout, r'"localhost: (\d+) release\(s\)'))
            if count < self.fleet.releases or len(list((reports / "localhost").glob("*.md"))) != count:
                raise SystemExit(f"bench: triage reported {count} releases, wrote reports for fewer")
        return Sample(run.wall, module_rss, run.max_rss_kib, self.fleet.releases)

    def floor(self) -> Sample:
        run, _module_rss = self.ansible(self.floor_playbook)
        return Sample(run.wall, run.max_rss_kib, run.max_rss_kib)

    @staticmethod
    def hostile_releases() -> set[str]:
        """The releases the hostile records belong to, where their names are valid ones."""
        names = {json.loads(path.read_text()).get("release") for path in HOSTILE_RECORDS.glob("*.json")}
        return {name for name in names if isinstance(name, str) and _valid_release(name)}

    def hostile(self, wanted: bool) -> None:
        """Load (or remove) one record of each hostile kind in HOSTILE_NAMESPACE."""
        present = self.tools.kubectl("get", "namespace", HOSTILE_NAMESPACE).returncode == 0
        if not wanted:
            if present:
                checked(self.tools.kubectl("delete", "namespace", HOSTILE_NAMESPACE, "--wait=true"), "removing")
            return
        if present:
            return
        checked(self.tools.kubectl("create", "namespace", HOSTILE_NAMESPACE), "creating the hostile namespace")
        for path in sorted(HOSTILE_RECORDS.glob("*.json")):
            for stored in json.loads(path.read_text())["objects"]:
                obj = {**stored, "metadata": {**stored["metadata"], "namespace": HOSTILE_NAMESPACE}}
                checked(self.tools.kubectl("create", "-f", "-", stdin=json.dumps(obj)), f"loading {path.name}")

    def helm_list(self, major: str) -> Sample:
        run = checked(self.tools.helm(major, *list_args(major)), "helm list")
        count = len(json.loads(run.stdout))
        return Sample(run.wall, run.max_rss_kib, count=count)

    def status_quo(self) -> Sample:
        """helm list -A, then helm history and helm status for every release (or a sample)."""
        releases = self.releases_in_cluster
        # A shared cluster (the test suite's): other tests delete their releases at any time,
        # so only the fleet's are timed (as prune does), scaled to every release listed.
        sample = releases if self.dedicated() else sorted((spec.namespace, spec.name) for spec in self.fleet.specs())
        if self.args.status_quo_sample and len(sample) > self.args.status_quo_sample:
            sample = random.Random(7).sample(sample, self.args.status_quo_sample)
        listing = checked(self.tools.helm("3", *list_args("3")), "helm list")
        per_release = 0.0
        peak = listing.max_rss_kib
        for namespace, name in sample:
            for verb in ("history", "status"):
                run = checked(self.tools.helm("3", verb, name, "-n", namespace, "-o", "json"), f"helm {verb}")
                per_release += run.wall
                peak = max(peak, run.max_rss_kib)
        total = listing.wall + per_release * len(releases) / len(sample)
        note = None
        if len(sample) < len(releases):
            note = (
                f"history+status timed for {len(sample)} of {len(releases)} releases (a sample) "
                "and scaled to all; helm list -A timed in full"
            )
        return Sample(total, peak, count=1 + 2 * len(releases), extrapolated_from=note)

    def prune(self, hostile: bool = False) -> Sample:
        extra: list[str] = []
        if not self.dedicated():
            # A shared cluster (the test suite's): prune the fleet's releases only (and the hostile ones).
            names = sorted({spec.name for spec in self.fleet.specs()} | (self.hostile_releases() if hostile else set()))
            extra = ["-e", json.dumps({"bench_releases": names})]
        run, module_rss = self.ansible(self.prune_playbook, *extra)
        deleted = int(found_in(run.stdout, r"bench-deleted=(\d+)"))
        errors = int(found_in(run.stdout, r"bench-errors=(\d+)"))
        expected = len(self.surplus())
        if deleted != expected or bool(errors) != hostile:  # hostile records are left alone and reported
            raise SystemExit(f"bench: prune deleted {deleted} records (expected {expected}), {errors} errors")
        self.builder.create(self.surplus())
        return Sample(run.wall, module_rss, run.max_rss_kib, count=deleted)

    def kubectl_delete(self) -> Sample:
        surplus = self.surplus()
        sample = surplus
        if self.args.kubectl_sample and len(surplus) > self.args.kubectl_sample:
            sample = random.Random(11).sample(surplus, self.args.kubectl_sample)
        wall = 0.0
        peak = 0
        for spec, revision in sample:
            run = checked(
                self.tools.kubectl(
                    "delete", "secret", f"sh.helm.release.v1.{spec.name}.v{revision}", "-n", spec.namespace
                ),
                "kubectl delete",
            )
            wall += run.wall
            peak = max(peak, run.max_rss_kib)
        self.builder.create(sample)
        note = None
        if len(sample) < len(surplus):
            note = f"timed for {len(sample)} of the {len(surplus)} surplus records (random sample), scaled to all"
        return Sample(wall * len(surplus) / len(sample), peak, count=len(surplus), extrapolated_from=note)

    def surplus(self) -> list[tuple[ReleaseSpec, int]]:
        """What keep=3 prunes in the fleet: everything but the newest three and the protected."""
        jobs = []
        for spec in self.fleet.specs():
            statuses = spec.statuses
            protected = {len(statuses)}
            deployed = [n for n, s in enumerate(statuses, 1) if s == "deployed"]
            good = [n for n, s in enumerate(statuses, 1) if s in ("deployed", "superseded")]
            protected.update(deployed[-1:])
            protected.update(good[-1:])
            newest = set(range(len(statuses) - KEEP + 1, len(statuses) + 1))
            jobs += [(spec, n) for n in range(1, len(statuses) + 1) if n not in protected | newest]
        return jobs


READ_ITEMS = {
    "facts": "helm_release_facts, every release, via ansible-playbook",
    "facts-labels": "helm_release_facts history=labels, every release, via ansible-playbook",
    "facts-brief": "helm_release_facts detail=brief, every release, via ansible-playbook",
    "helm3-list": "helm3 list -A --all --max 0 -o json",
    "helm4-list": "helm4 list -A --max 0 -o json (Helm 4 lists every state by default)",
    "status-quo": "helm3 list -A + helm3 history + helm3 status per release",
    "facts-hostile": "helm_release_facts, every release, one record of each hostile kind next to them",
    "triage": "playbooks/triage.yml end to end, reports included (detail full, the default)",
    "triage-brief": "playbooks/triage.yml detail=brief end to end, reports included",
    "remediate-check": "playbooks/remediate.yml --check end to end, report included",
    "ansible-floor": "ansible-playbook of one trivial task on the same inventory",
}
WRITE_ITEMS = {
    "prune": f"helm_history_prune keep={KEEP}, every release, via ansible-playbook",
    "prune-hostile": f"helm_history_prune keep={KEEP}, every release, one record of each hostile kind next to them",
    "kubectl-delete": "kubectl delete secret, one record per call, same surplus",
}


def run_items(bench: Bench, names: dict[str, str], repetitions: int) -> dict[str, Item]:
    items = {name: Item(name, what) for name, what in names.items()}
    actions: dict[str, t.Callable[[], Sample]] = {
        **{item: functools.partial(bench.facts, item) for item in FACTS_OPTIONS},
        "helm3-list": lambda: bench.helm_list("3"),
        "helm4-list": lambda: bench.helm_list("4"),
        "status-quo": bench.status_quo,
        "facts-hostile": bench.facts_hostile,
        "prune": bench.prune,
        "prune-hostile": functools.partial(bench.prune, True),
        "kubectl-delete": bench.kubectl_delete,
        "triage": functools.partial(bench.playbook, "triage"),
        "triage-brief": functools.partial(bench.playbook, "triage", detail="brief"),
        "remediate-check": functools.partial(bench.playbook, "remediate"),
        "ansible-floor": bench.floor,
    }
    order = list(names)
    for repetition in range(repetitions):
        for name in order if repetition % 2 == 0 else list(reversed(order)):
            bench.hostile(name.endswith("-hostile"))  # helm3 list -A panics on one of them
            sample = actions[name]()
            items[name].samples.append(sample)
            rss = sample.rss_kib / 1024
            print(f"bench: rep {repetition + 1}/{repetitions} {name:15} {sample.wall:8.2f}s {rss:7.1f} MiB", flush=True)
    return items


def ratios(items: dict[str, Item]) -> dict[str, float]:
    result = {}
    for ours in FACTS_OPTIONS:
        if ours not in items:
            continue
        facts = items[ours].median_wall()
        for theirs in ("helm3-list", "helm4-list", "status-quo"):
            if theirs in items:
                result[f"{ours} / {theirs} (wall)"] = facts / items[theirs].median_wall()
    for ours, theirs in (("facts-hostile", "facts"), ("prune-hostile", "prune")):
        if ours in items and theirs in items:
            result[f"{ours} / {theirs} (wall; target <= 2)"] = items[ours].median_wall() / items[theirs].median_wall()
    for ours, theirs, target in (
        ("triage", "helm3-list", "target <= 0.5"),
        ("triage-brief", "helm3-list", ""),
        ("remediate-check", "triage", "target <= 3"),
        ("triage", "ansible-floor", "target <= 2 at R=50"),
    ):
        if ours in items and theirs in items:
            label = f"{ours} / {theirs} (wall{'; ' + target if target else ''})"
            result[label] = items[ours].median_wall() / items[theirs].median_wall()
    if "prune" in items and "kubectl-delete" in items:
        prune = items["prune"]
        kubectl = items["kubectl-delete"]
        prune_rate = (prune.samples[-1].count or 0) / prune.median_wall()
        kubectl_rate = (kubectl.samples[-1].count or 0) / kubectl.median_wall()
        result["prune / kubectl-delete (records per second)"] = prune_rate / kubectl_rate
    return result


def table(items: dict[str, Item]) -> str:
    lines = [f"{'item':15} {'median s':>9} {'peak MiB':>9} {'runs':>5}  what", "-" * 100]
    for item in items.values():
        extra = f"  [{item.as_dict()['extrapolated_from']}]" if item.as_dict().get("extrapolated_from") else ""
        figures = f"{item.median_wall():9.2f} {item.peak_rss_mib():9.1f} {len(item.samples):5}"
        lines.append(f"{item.name:15} {figures}  {item.what}{extra}")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", "-R", type=int, default=1000)
    parser.add_argument("--revisions", "-H", type=int, default=10)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a tiny fleet: a smoke run, not a measurement")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--status-quo-sample", type=int, default=1500, help="at most this many releases timed for item 3 (0 = all)"
    )
    parser.add_argument("--kubectl-sample", type=int, default=200, help="records deleted by kubectl (0 = all)")
    parser.add_argument("--skip-writes", action="store_true", help="time the read items only (no prune)")
    parser.add_argument("--items", default="", help="comma-separated items to time (default all)")
    default_kubeconfig = os.environ.get("HELMOPS_TEST_KUBECONFIG", str(CLUSTER_DIR / "kubeconfig"))
    parser.add_argument("--kubeconfig", default=default_kubeconfig)
    parser.add_argument("--output", default="", help="JSON result file (default .bench/bench-R<r>-H<h>-<time>.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.releases, args.revisions, args.namespaces, args.repetitions = 12, 5, 2, 2
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    load_at_start = os.getloadavg()
    fleet = Fleet(args.releases, args.revisions, args.namespaces, large=1 if args.quick else 3)
    OUT.mkdir(exist_ok=True)
    work = OUT / "work"
    work.mkdir(exist_ok=True)
    tools = Tools(args.kubeconfig, work)
    builder = Builder(tools, fleet)
    print(f"bench: fleet of {fleet.releases} releases x {fleet.revisions} revisions in {fleet.namespaces} namespaces")
    built = builder.ensure()
    print("bench: fleet built" if built else "bench: fleet already in place")
    bench = Bench(tools, fleet, builder, args)
    bench.hostile(False)  # a run that stopped may have left them (Helm 3's list panics on one)
    counts = bench.verify_helm_lists()
    chosen = set(args.items.split(",")) if args.items else set(READ_ITEMS) | set(WRITE_ITEMS)
    if args.skip_writes:
        chosen -= set(WRITE_ITEMS)
    items = run_items(bench, {k: v for k, v in READ_ITEMS.items() if k in chosen}, args.repetitions)
    items.update(run_items(bench, {k: v for k, v in WRITE_ITEMS.items() if k in chosen}, args.repetitions))
    bench.hostile(False)
    found = ratios(items)
    print()
    print(table(items))
    print()
    print("ratios (ours / theirs; wall time, except prune: throughput)")
    for name, value in found.items():
        print(f"  {name:48} {value:8.3f}")
    result = {
        "fleet": {
            "releases": fleet.releases,
            "revisions": fleet.revisions,
            "namespaces": fleet.namespaces,
            "records": fleet.releases * fleet.revisions,
            "releases_in_cluster": len(bench.releases_in_cluster),
            "quick": args.quick,
        },
        "helm_list_check": {"passed": True, **counts},
        "repetitions": args.repetitions,
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "items": {name: item.as_dict() for name, item in items.items()},
        "ratios": {name: round(value, 4) for name, value in found.items()},
    }
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = Path(args.output) if args.output else OUT / f"bench-R{fleet.releases}-H{fleet.revisions}-{stamp}.json"
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nbench: results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
