"""`make bench QUICK=1`: the benchmark works end to end on a tiny fleet.

Only that it works: the fleet is listed by real Helm 3 and Helm 4, every item
is measured, the table and the ratios are printed and the JSON is complete.
Its timings are never checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .support import KUBECONFIG, ROOT

ITEMS = (
    "facts",
    "facts-labels",
    "facts-brief",
    "helm3-list",
    "helm4-list",
    "status-quo",
    "facts-hostile",
    "prune",
    "prune-hostile",
    "kubectl-delete",
    "triage",
    "triage-brief",
    "remediate-check",
    "ansible-floor",
)
RATIOS = (
    "facts / helm3-list (wall)",
    "facts / helm4-list (wall)",
    "facts / status-quo (wall)",
    "facts-labels / helm3-list (wall)",
    "facts-labels / helm4-list (wall)",
    "facts-labels / status-quo (wall)",
    "facts-brief / helm3-list (wall)",
    "facts-brief / helm4-list (wall)",
    "facts-brief / status-quo (wall)",
    "facts-hostile / facts (wall; target <= 2)",
    "prune-hostile / prune (wall; target <= 2)",
    "triage / helm3-list (wall; target <= 0.5)",
    "triage-brief / helm3-list (wall)",
    "remediate-check / triage (wall; target <= 3)",
    "triage / ansible-floor (wall; target <= 2 at R=50)",
    "prune / kubectl-delete (records per second)",
)


def test_quick_benchmark_measures_every_item(cluster: str, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    done = subprocess.run(
        [str(ROOT / "hack" / "bench"), "--quick", "--output", str(output)],
        env={**os.environ, "HELMOPS_TEST_KUBECONFIG": KUBECONFIG},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "helm3 list -A lists all 12 fleet releases" in done.stdout
    assert "helm4 list -A lists all 12 fleet releases" in done.stdout
    table = done.stdout.split("item ", 1)[1]
    for item in ITEMS:
        assert f"\n{item} " in table, f"{item} missing from the table:\n{table}"
    ratio_lines = done.stdout.split("ratios (ours / theirs", 1)[1]
    for ratio in RATIOS:
        assert ratio in ratio_lines

    result = json.loads(output.read_text())
    assert result["fleet"] == {**result["fleet"], "releases": 12, "revisions": 5, "records": 60, "quick": True}
    assert result["helm_list_check"]["passed"] is True
    assert result["helm_list_check"]["helm3"] >= 12 and result["helm_list_check"]["helm4"] >= 12
    assert set(result["items"]) == set(ITEMS)
    for name, item in result["items"].items():
        assert item["median_wall_seconds"] > 0, name
        assert item["peak_rss_mib"] > 0, name
        assert len(item["walls"]) == result["repetitions"] >= 2, name
        assert all(wall > 0 for wall in item["walls"]), name
    assert result["items"]["facts"]["count"] >= 12
    assert result["items"]["facts-labels"]["count"] == result["items"]["facts"]["count"]
    assert result["items"]["prune"]["count"] == result["items"]["kubectl-delete"]["count"] > 0
    assert result["items"]["prune-hostile"]["count"] == result["items"]["prune"]["count"]
    assert result["items"]["facts-hostile"]["count"] > result["items"]["facts"]["count"]
    assert set(result["ratios"]) == set(RATIOS)
    assert all(value > 0 for value in result["ratios"].values())
