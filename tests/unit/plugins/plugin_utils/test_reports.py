"""Triage reports rendered in one pass, from facts gathered on records recorded from real Helm 3 and Helm 4
(every state the recorder made, Secret and ConfigMap drivers): what each file says, that a second run changes
nothing, that check mode writes nothing, and that the fleet's JSON, metrics and HTML read back with a real
JSON-schema validator, Prometheus' own parser and an HTML parser."""

from __future__ import annotations

import datetime
import json
import typing as t
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from ansible_collections.helmops.recovery.plugins.filter.recovery import triage_row
from ansible_collections.helmops.recovery.plugins.module_utils._facts import GatherOptions, gather
from ansible_collections.helmops.recovery.plugins.plugin_utils import _reports as reports
from fake_api import FIXTURES, NOW, FakeApi, recorded
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[4]
TEMPLATES = reports.Templates([str(ROOT / "roles" / "triage" / "templates")])
SCHEMA = json.loads((ROOT / "docs" / "fleet-summary.schema.json").read_text())
STEMS = sorted(p.stem for p in FIXTURES.glob("*.json"))
MOMENT = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.timezone.utc)


def facts_of(stem: str) -> dict[str, t.Any]:
    driver, objects = recorded(stem)
    for obj in objects:  # one namespace per recording, so every release has a report of its own
        obj["metadata"]["namespace"] = stem
    facts, errors = gather(t.cast(t.Any, FakeApi(objects)), driver, GatherOptions(inspect_live=False, now=NOW))
    assert len(facts) == 1, errors
    return facts[0]


@pytest.fixture(scope="module")
def cluster() -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    releases = [facts_of(stem) for stem in STEMS]
    return [triage_row(f) for f in releases], releases


def written(tmp_path: Path, rows: t.Sequence[t.Any], releases: t.Sequence[t.Any]) -> reports.ReportWriter:
    writer = reports.ReportWriter(str(tmp_path))
    reports.write_cluster_reports(writer, TEMPLATES, "cluster-a", rows, releases)
    return writer


def test_every_release_gets_its_json_and_markdown(tmp_path: Path, cluster: t.Any) -> None:
    rows, releases = cluster
    writer = written(tmp_path, rows, releases)
    assert len(writer.changed) == 2 * len(STEMS) and writer.unchanged == 0
    for row, facts in zip(rows, releases, strict=True):
        stem = tmp_path / "cluster-a" / f"{row['namespace']}__{row['release']}"
        report = json.loads(stem.with_suffix(".json").read_text())
        assert report == json.loads(json.dumps({"cluster": "cluster-a", "triage": row, "facts": facts}))
        markdown = stem.with_suffix(".md").read_text()
        assert markdown.startswith(f"# {row['namespace']}/{row['release']} on cluster-a\n")
        assert f"| State | **{row['state']}** |" in markdown
        assert all(f"**{a['name']}**" in markdown for a in facts["diagnosis"]["actions"])
        assert stem.with_suffix(".md").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cluster-a").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("stem", [s for s in STEMS if s.endswith("-deployed")])
def test_a_brief_entry_renders_without_the_sections_it_leaves_out(tmp_path: Path, stem: str) -> None:
    driver, objects = recorded(stem)
    options = GatherOptions(inspect_live=False, detail="brief", history="labels", now=NOW)
    facts, _errors = gather(t.cast(t.Any, FakeApi(objects)), driver, options)
    assert "lock" not in facts[0] and "live" not in facts[0], "brief leaves them out"
    written(tmp_path, [triage_row(facts[0])], facts)
    markdown = next(tmp_path.rglob("*.md")).read_text()
    assert "## Lock evidence\n\n- none\n" in markdown
    assert "Not inspected: a brief look reports a healthy deployed release from its records alone" in markdown


def test_a_second_run_with_the_same_facts_changes_nothing(tmp_path: Path, cluster: t.Any) -> None:
    written(tmp_path, *cluster)
    again = written(tmp_path, *cluster)
    assert again.changed == [] and again.unchanged == 2 * len(STEMS)


def test_check_mode_writes_nothing_and_says_what_it_would_write(tmp_path: Path, cluster: t.Any) -> None:
    writer = reports.ReportWriter(str(tmp_path), write=False)
    reports.write_cluster_reports(writer, TEMPLATES, "cluster-a", *cluster)
    assert len(writer.changed) == 2 * len(STEMS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("relative", ["../escaped.md", "/etc/passwd", "a/../../b.md"])
def test_a_report_never_lands_outside_its_directory(tmp_path: Path, relative: str) -> None:
    with pytest.raises(reports.ReportError, match="outside"):
        reports.ReportWriter(str(tmp_path / "root")).put(relative, "x")


def test_rows_and_releases_that_do_not_pair_up_are_refused(tmp_path: Path, cluster: t.Any) -> None:
    rows, releases = cluster
    with pytest.raises(reports.ReportError, match="rows for"):
        reports.write_cluster_reports(reports.ReportWriter(str(tmp_path)), TEMPLATES, "c", rows[:1], releases)


def row(state: str, namespace: str = "ns", release: str = "app", **extra: t.Any) -> dict[str, t.Any]:
    attention = state not in ("deployed", "uninstalled") or bool(extra.get("findings"))
    return {"namespace": namespace, "release": release, "state": state, "lock": "none", "status": state,
            "needs_attention": attention, "pending_seconds": None, "findings": [], "action": "none",
            "destructive": False, "command": "helm status app", "data_loss": False, **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "order"),
    [
        ([row("deployed", release="a"), row("failed", release="b"), row("pending-upgrade", release="c")], "cba"),
        ([row("deployed", release="a", findings=["history-too-long"]), row("deployed", release="b")], "ab"),
        ([row("uninstalled", release="a"), row("failed", release="b"), row("uninstalling", release="c")], "cba"),
        ([row("failed", "ns-b", release="a"), row("failed", "ns-a", release="b")], "ba"),
    ],
)
def test_releases_are_listed_most_urgent_first(rows: list[dict[str, t.Any]], order: str) -> None:
    summary = reports.cluster_summary("c", rows)
    listed = summary["needing_attention"] + summary["healthy"]
    assert "".join(r["release"] for r in listed) == order


def test_the_console_lists_only_what_needs_attention(cluster: t.Any) -> None:
    rows, _releases = cluster
    summary = reports.cluster_summary("cluster-a", rows, ["release 'x' not found in any namespace"])
    lines = TEMPLATES.render("console.j2", summary=summary, counts_line=reports.counts_line(summary)).splitlines()
    healthy = [r for r in rows if not r["needs_attention"]]
    stuck = [r for r in rows if r["needs_attention"]]
    assert healthy and stuck, "the recordings hold both"
    assert lines[0] == (
        f"cluster-a: {len(rows)} release(s): "
        + ", ".join(f"{n} {s}" for s, n in summary["by_state"].items())
        + f"; {len(stuck)} need attention"
    )
    assert sum(line.startswith("  Next step: ") for line in lines) == len(stuck)
    assert not any(line.startswith(f"{r['namespace']}/") for r in healthy for line in lines)
    assert lines[-1] == "cluster-a: release 'x' not found in any namespace"


def fleet(tmp_path: Path, cluster: t.Any) -> tuple[reports.ReportWriter, dict[str, t.Any]]:
    rows, releases = cluster
    written(tmp_path, rows, releases)
    clusters = [
        reports.cluster_summary("cluster-b", []),
        reports.cluster_summary("cluster-a", rows),
        reports.cluster_summary("cluster-dead", [], error="connection refused"),
    ]
    writer = reports.ReportWriter(str(tmp_path))
    return writer, reports.write_fleet_reports(writer, TEMPLATES, clusters, metrics=True, now=MOMENT)


def test_the_fleet_json_follows_its_schema_and_counts_every_cluster(tmp_path: Path, cluster: t.Any) -> None:
    _writer, document = fleet(tmp_path, cluster)
    on_disk = json.loads((tmp_path / "fleet-summary.json").read_text())
    jsonschema.validate(on_disk, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert on_disk == document and on_disk["generated_at"] == "2026-12-02T10:00:00Z"
    rows = cluster[0]
    stuck = [r for r in rows if r["needs_attention"]]
    assert on_disk["totals"] == {
        "clusters": 3,
        "clusters_unreadable": 1,
        "releases": len(rows),
        "needing_attention": len(stuck),
        "by_state": reports.cluster_summary("a", rows)["by_state"],
    }
    a = next(c for c in on_disk["clusters"] if c["cluster"] == "cluster-a")
    assert [e["release"] for e in a["needing_attention"]] == [r["release"] for r in sorted(stuck, key=reports.urgency)]
    assert all((tmp_path / e["report"]).is_file() for e in a["needing_attention"])
    assert [c["cluster"] for c in on_disk["clusters"]] == ["cluster-a", "cluster-b", "cluster-dead"]
    stats = reports.stats(document)
    assert stats["totals"] == on_disk["totals"] and set(stats["clusters"]) == {"cluster-a", "cluster-b", "cluster-dead"}


def test_the_metrics_read_back_with_prometheus_own_parser(tmp_path: Path, cluster: t.Any) -> None:
    fleet(tmp_path, cluster)
    families = {
        f.name: f.samples for f in text_string_to_metric_families((tmp_path / reports.METRICS_FILE).read_text())
    }
    rows = cluster[0]
    up = {s.labels["cluster"]: s.value for s in families["helmops_cluster_up"]}
    assert up == {"cluster-a": 1.0, "cluster-b": 1.0, "cluster-dead": 0.0}
    status = {(s.labels["namespace"], s.labels["status"]): s.value for s in families["helmops_release_status"]}
    assert status == {(r["namespace"], r["status"]): 1.0 for r in rows}
    pending = {s.labels["namespace"]: s.value for s in families["helmops_release_pending_seconds"]}
    assert pending == {r["namespace"]: float(r["pending_seconds"]) for r in rows if r["pending_seconds"] is not None}
    assert pending, "the recordings hold pending releases"
    counts = {
        s.labels["state"]: s.value for s in families["helmops_cluster_releases"] if s.labels["cluster"] == "cluster-a"
    }
    assert counts == {state: float(n) for state, n in reports.cluster_summary("a", rows)["by_state"].items()}
    assert [s.value for s in families["helmops_triage_timestamp_seconds"]] == [MOMENT.timestamp()]


class Outline(HTMLParser):
    """The HTML's structure, in document order: tables, <details>, headings, <time>, the text of every cell; links."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag in ("table", "details", "h2", "time"):
            self.events.append((tag, str(named.get("id") or named.get("class") or named.get("datetime") or "")))
        if tag == "a" and named.get("href") and not str(named["href"]).startswith("#"):
            self.links.append(str(named["href"]))
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.events.append(("cell", "".join(self._cell)))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_html_shows_counts_first_stuck_releases_then_the_healthy_ones_collapsed(
    tmp_path: Path, cluster: t.Any
) -> None:
    fleet(tmp_path, cluster)
    html = (tmp_path / "fleet-summary.html").read_text()
    outline = Outline()
    outline.feed(html)
    events = outline.events
    assert events[0] == ("time", "2026-12-02T10:00:00Z")
    assert events[1] == ("table", "counts")
    rows = cluster[0]
    cells = [value for kind, value in events if kind == "cell"]
    stuck = sorted((r for r in rows if r["needs_attention"]), key=reports.urgency)
    healthy = [r for r in rows if not r["needs_attention"]]
    names = [f"{r['namespace']}/{r['release']}" for r in stuck]
    position = [cells.index(f"{name} (json)") for name in names]
    assert position == sorted(position), "most urgent first"
    details = events.index(("details", "healthy"))
    assert all(events.index(("cell", f"{r['namespace']}/{r['release']}")) > details for r in healthy)
    assert all((tmp_path / link).is_file() for link in outline.links)
    assert len(outline.links) == 2 * len(stuck) + len(healthy)
    assert "<h2>cluster-dead</h2>" in html and "Could not be triaged: connection refused" in html


def test_names_in_the_html_are_escaped(tmp_path: Path) -> None:
    hostile = row("failed", namespace="ns", release="<script>alert(1)</script>", helm_thinks="x", cluster_shows="y")
    writer = reports.ReportWriter(str(tmp_path))
    reports.write_fleet_reports(writer, TEMPLATES, [reports.cluster_summary("c&d", [hostile])], metrics=False)
    html = (tmp_path / "fleet-summary.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "c&amp;d" in html
    assert not (tmp_path / reports.METRICS_FILE).exists()
