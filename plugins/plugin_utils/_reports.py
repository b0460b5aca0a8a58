# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Triage reports, rendered and written in one pass on the controller.

A looped ``copy``/``template`` task costs a forked worker per file (about 0.35 s
each, measured: 398 s of a 413 s triage of 69 releases); rendering the same
Jinja templates here costs about a millisecond per release. The templates stay
in the triage role. They are rendered with Jinja2 itself rather than Ansible's
templar because the templar's API differs across the supported ansible-core
releases (2.19 added data tagging) and because no template here needs
variables or lookups from the inventory.

Files are written atomically and only when their content differs, so
``changed`` says which reports are new or different. Per-release reports are
``<dir>/<cluster>/<namespace>__<release>.{json,md}``; the fleet's are
``<dir>/fleet-summary.{md,html,json}`` and ``<dir>/helm-releases.prom``.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import typing as t
from collections import Counter
from pathlib import Path

import jinja2
from ansible.plugins.action import ActionBase
from ansible_collections.helmops.recovery.plugins.filter.recovery import object_line

try:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    HAS_PROMETHEUS = True
except ImportError:  # the metrics file is then skipped with a warning; every other report is written
    HAS_PROMETHEUS = False

Row = t.Mapping[str, t.Any]

# The order a person should look at releases in: a held lock first (it blocks every deploy), then failures, then
# releases that rest but carry a finding, then the healthy ones.
URGENCY = {
    "pending-upgrade": 0,
    "pending-rollback": 0,
    "pending-install": 0,
    "uninstalling": 0,
    "failed": 1,
    "superseded": 2,
    "unknown": 2,
    "deployed": 3,
    "uninstalled": 4,
}
METRICS_FILE = "helm-releases.prom"
FLEET_FILES = ("fleet-summary.md", "fleet-summary.html")
FLEET_JSON = "fleet-summary.json"


class ReportError(Exception):
    """A report could not be rendered or written (the message names the file)."""


def release_stem(namespace: str, release: str) -> str:
    """The one name of a release's report files (namespaces and release names are DNS labels: no slashes)."""
    return f"{namespace}__{release}"


def urgency(row: Row) -> tuple[int, int, str, str]:
    rank = URGENCY.get(str(row.get("state")), 2)
    return (0 if row.get("needs_attention") else 1, rank, str(row.get("namespace")), str(row.get("release")))


def utc_timestamp(now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


class _Undefined(jinja2.ChainableUndefined, jinja2.StrictUndefined):
    """As Ansible's templating: ``a.b.c | default(x)`` reads through a missing ``a``, rendering one fails."""


class Templates:
    """The role's report templates, compiled once per task."""

    def __init__(self, directories: t.Sequence[str]) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(list(directories)),
            trim_blocks=True,  # as ansible.builtin.template renders them
            keep_trailing_newline=True,
            undefined=_Undefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        )
        self._env.filters["helmops.recovery.object_line"] = object_line

    def render(self, name: str, **context: t.Any) -> str:
        try:
            return self._env.get_template(name).render(**context)
        except jinja2.TemplateError as error:
            raise ReportError(f"template {name}: {error}") from error


class ReportWriter:
    """Writes files under one root, atomically, private to the user, and only when their content differs."""

    def __init__(self, root: str, write: bool = True) -> None:
        self.root = Path(root).resolve()
        self.write = write
        self.changed: list[str] = []
        self.unchanged = 0

    def put(self, relative: str, content: str) -> None:
        path = (self.root / relative).resolve()
        if self.root not in path.parents:
            raise ReportError(f"report {relative!r} would be written outside {self.root}")
        data = content.encode("utf-8")
        try:
            if path.is_file() and path.read_bytes() == data:
                self.unchanged += 1
                return
            self.changed.append(str(path))
            if self.write:
                self._replace(path, data)
        except OSError as error:
            raise ReportError(f"cannot write report {path}: {error.strerror or error}") from error

    @staticmethod
    def _replace(path: Path, data: bytes) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def cluster_summary(
    cluster: str, rows: t.Sequence[Row], scope_errors: t.Sequence[str] = (), error: str = ""
) -> dict[str, t.Any]:
    """One cluster's counts, and its releases split into those that need a person (most urgent first) and the rest."""
    ordered = sorted(rows, key=urgency)
    return {
        "cluster": cluster,
        "error": error or None,
        "scope_errors": list(scope_errors),
        "releases": len(rows),
        "by_state": dict(sorted(Counter(str(r.get("state")) for r in rows).items())),
        "by_lock": dict(sorted(Counter(str(r.get("lock")) for r in rows).items())),
        "needing_attention": [dict(r) for r in ordered if r.get("needs_attention")],
        "healthy": [dict(r) for r in ordered if not r.get("needs_attention")],
    }


def counts_line(summary: t.Mapping[str, t.Any]) -> str:
    """cluster-a: 1,000 releases: 990 deployed, 7 failed, 3 pending-upgrade; 10 need attention."""
    if summary.get("error"):
        return f"{summary['cluster']}: could not be triaged: {summary['error']}"
    states = ", ".join(f"{count} {state}" for state, count in summary["by_state"].items()) or "none in scope"
    attention = len(summary["needing_attention"])
    return f"{summary['cluster']}: {summary['releases']} release(s): {states}; {attention} need attention"


def write_cluster_reports(
    writer: ReportWriter,
    templates: Templates,
    cluster: str,
    rows: t.Sequence[Row],
    releases: t.Sequence[t.Mapping[str, t.Any]],
) -> None:
    """The JSON (everything the facts hold) and the Markdown (what a person reads) of every release of one cluster."""
    if len(rows) != len(releases):
        raise ReportError(f"{cluster}: {len(rows)} triage rows for {len(releases)} releases")
    for row, facts in zip(rows, releases, strict=True):
        stem = f"{cluster}/{release_stem(str(row['namespace']), str(row['release']))}"
        report = {"cluster": cluster, "triage": row, "facts": facts}
        writer.put(f"{stem}.json", json.dumps(report, indent=4, sort_keys=True) + "\n")
        writer.put(f"{stem}.md", templates.render("release.md.j2", cluster=cluster, row=row, facts=facts))


def fleet_document(clusters: t.Sequence[t.Mapping[str, t.Any]], generated_at: str) -> dict[str, t.Any]:
    """fleet-summary.json: every cluster's counts and every release that needs a person, with its next step."""
    ordered = sorted(clusters, key=lambda c: str(c["cluster"]))
    by_state: Counter[str] = Counter()
    for cluster in ordered:
        by_state.update(cluster["by_state"])
    return {
        "generated_at": generated_at,
        "totals": {
            "clusters": len(ordered),
            "clusters_unreadable": sum(1 for c in ordered if c.get("error")),
            "releases": sum(int(c["releases"]) for c in ordered),
            "needing_attention": sum(len(c["needing_attention"]) for c in ordered),
            "by_state": dict(sorted(by_state.items())),
        },
        "clusters": [
            {
                "cluster": c["cluster"],
                "error": c.get("error"),
                "scope_errors": list(c.get("scope_errors") or []),
                "releases": c["releases"],
                "by_state": c["by_state"],
                "by_lock": c["by_lock"],
                "needing_attention": [_attention_entry(c["cluster"], r) for r in c["needing_attention"]],
            }
            for c in ordered
        ],
    }


def _attention_entry(cluster: str, row: Row) -> dict[str, t.Any]:
    stem = release_stem(str(row["namespace"]), str(row["release"]))
    return {
        "namespace": row["namespace"],
        "release": row["release"],
        "state": row["state"],
        "status": row.get("status"),
        "lock": row["lock"],
        "pending_seconds": row.get("pending_seconds"),
        "findings": list(row.get("findings") or []),
        "next_step": {
            "action": row.get("action"),
            "destructive": bool(row.get("destructive")),
            "command": row.get("command") or "",
            "refusal": row.get("refusal") or "",
            "data_loss": row.get("data_loss"),
        },
        "report": f"{cluster}/{stem}.md",
    }


def stats(document: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What set_stats hands to the next node of an AWX workflow: the totals and, per cluster, what needs a person."""
    return {
        "totals": document["totals"],
        "clusters": {
            c["cluster"]: {
                "error": c["error"],
                "by_state": c["by_state"],
                "needing_attention": [
                    {k: e[k] for k in ("namespace", "release", "state", "lock")} | {"action": e["next_step"]["action"]}
                    for e in c["needing_attention"]
                ],
            }
            for c in document["clusters"]
        },
    }


def metrics_text(clusters: t.Sequence[t.Mapping[str, t.Any]], generated: float) -> str:
    """Prometheus text format (node_exporter's textfile collector and the Pushgateway read it)."""
    registry = CollectorRegistry()
    release_labels = ("cluster", "namespace", "release")
    up = Gauge("helmops_cluster_up", "1 when triage could read the cluster's releases", ["cluster"], registry=registry)
    counts = Gauge("helmops_cluster_releases", "Releases by state", ["cluster", "state"], registry=registry)
    attention = Gauge(
        "helmops_cluster_releases_needing_attention", "Releases that need a person", ["cluster"], registry=registry
    )
    status = Gauge(
        "helmops_release_status", "1 for the Helm status of the newest revision", [*release_labels, "status"],
        registry=registry,
    )  # fmt: skip
    lock = Gauge("helmops_release_lock", "1 for the lock verdict", [*release_labels, "verdict"], registry=registry)
    needs = Gauge("helmops_release_needs_attention", "1 when a person is needed", release_labels, registry=registry)
    pending = Gauge(
        "helmops_release_pending_seconds", "Age of the pending record of a locked release", release_labels,
        registry=registry,
    )  # fmt: skip
    last_run = Gauge("helmops_triage_timestamp_seconds", "When triage read the fleet", registry=registry)
    last_run.set(generated)
    for cluster in clusters:
        name = str(cluster["cluster"])
        up.labels(name).set(0 if cluster.get("error") else 1)
        attention.labels(name).set(len(cluster["needing_attention"]))
        for state, count in cluster["by_state"].items():
            counts.labels(name, state).set(count)
        for row in [*cluster["needing_attention"], *cluster["healthy"]]:
            labels = (name, str(row["namespace"]), str(row["release"]))
            status.labels(*labels, str(row.get("status") or row.get("state"))).set(1)
            lock.labels(*labels, str(row.get("lock"))).set(1)
            needs.labels(*labels).set(1 if row.get("needs_attention") else 0)
            if row.get("pending_seconds") is not None:
                pending.labels(*labels).set(float(row["pending_seconds"]))
    return generate_latest(registry).decode("utf-8")


def write_fleet_reports(
    writer: ReportWriter,
    templates: Templates,
    clusters: t.Sequence[t.Mapping[str, t.Any]],
    metrics: bool,
    now: datetime.datetime | None = None,
) -> dict[str, t.Any]:
    """fleet-summary.{md,html,json} and, when asked and prometheus_client is there, the metrics file."""
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    generated_at = utc_timestamp(moment)
    ordered = sorted(clusters, key=lambda c: str(c["cluster"]))
    document = fleet_document(ordered, generated_at)
    context = {"clusters": ordered, "fleet": document, "generated_at": generated_at, "release_stem": release_stem}
    for name in FLEET_FILES:
        writer.put(name, templates.render(f"{name}.j2", **context))
    writer.put(FLEET_JSON, json.dumps(document, indent=2, sort_keys=True) + "\n")
    if metrics and HAS_PROMETHEUS:
        writer.put(METRICS_FILE, metrics_text(ordered, moment.timestamp()))
    return document


class ReportAction(ActionBase):
    """The report writers' common part: on the controller only, arguments checked, the role's templates found."""

    TRANSFERS_FILES = False
    _requires_connection = False
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {}
    TEMPLATE = "release.md.j2"  # any template of the role running the task; its directory holds the others

    def _arguments_and_templates(self) -> tuple[dict[str, t.Any], Templates]:
        args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)[1]
        return args, Templates([os.path.dirname(self._find_needle("templates", self.TEMPLATE))])
