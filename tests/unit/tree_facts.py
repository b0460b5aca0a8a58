"""One release's facts as helm_release_facts returns them (without the diagnosis), for the tree's and the plan's
table-driven tests."""

from __future__ import annotations

import typing as t

Rev = tuple[int, str, str]  # revision, status, description


def facts(
    revisions: list[Rev],
    *,
    lock: str | None = None,
    closer: str = "same",
    ready: bool = True,
    risks: dict[str, t.Any] | None = None,
    live: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    ordered = [
        {"revision": n, "status": s, "description": d, "chart": "app", "chart_version": "0.1.0"}
        for n, s, d in revisions
    ]
    latest = ordered[-1]
    good = [r["revision"] for r in ordered if r["status"] in ("deployed", "superseded")]
    deployed = [r["revision"] for r in ordered if r["status"] == "deployed"]
    pending = str(latest["status"]).startswith("pending-")
    target = good[-1] if good and good[-1] != latest["revision"] else None
    aimed = str(latest["description"]).removeprefix("Rollback to ")
    if latest["status"] == "pending-rollback" and aimed.isdigit() and int(aimed) in good:
        target = int(aimed)  # helm_release_facts' rollback_target (tested in test_facts_model.py)
    return {
        "name": "web",
        "namespace": "team-a",
        "driver": "secret",
        "status": latest["status"],
        "latest_revision": latest["revision"],
        "last_deployed_revision": deployed[-1] if deployed else None,
        "last_known_good_revision": good[-1] if good else None,
        "rollback_target_revision": target,
        "pending": pending,
        "upgrade_blocked": pending,
        "revisions": ordered,
        "lock": {
            "verdict": lock or "none",
            "evidence": ["hook Job web-pre-upgrade is still running"] if lock == "possibly-running" else [],
            "stale_after": 600,
            "age_seconds": 900,
        },
        "live": {
            "checked": True,
            "closer_to": closer,
            "workloads_ready": ready,
            "orphans": [],
            "owned_by_other_release": [],
            "deployed_missing": [],
            "deployed_total": 3,
            **(live or {}),
        },
        "risks": {"history": {"count": len(ordered), "threshold": 20, "total_bytes": 1000}, **(risks or {})},
        "record_errors": [],
    }


DEPLOYED = [(1, "superseded", "Install complete"), (2, "deployed", "Upgrade complete")]
FAILED_UPGRADE = [(1, "deployed", "Install complete"), (2, "failed", 'Upgrade "web" failed: context deadline exceeded')]
PENDING_UPGRADE = [(1, "deployed", "Install complete"), (2, "pending-upgrade", "Preparing upgrade")]
