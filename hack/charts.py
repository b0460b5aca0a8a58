"""The test charts as Helm reads them.

    hack/charts NAME     print the path of chart NAME (tests/charts/NAME, assembled when it is a version overlay)

A chart's next major version lives in tests/charts/<name>-<major> and holds only
the files that differ from tests/charts/<name> (Chart.yaml, values.yaml and the
templates it changed), so the two versions cannot drift apart by accident. It is
assembled into .cluster/charts/<name>-<major>-<digest of both>: the base chart, then
the overlay on top; an assembled chart is never changed, so parallel test workers
can share it. Helm then reads a plain directory (no symbolic links, which Helm warns about
on every command).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "tests" / "charts"
ASSEMBLED = ROOT / ".cluster" / "charts"
OVERLAYS = {"database-2": "database"}  # overlay -> the chart it changes


def chart_path(name: str) -> Path:
    """The directory Helm should read for chart ``name``."""
    source = SOURCES / name
    if not source.is_dir():
        raise SystemExit(f"no test chart {name!r} under {SOURCES}")
    base = OVERLAYS.get(name)
    if base is None:
        return source
    target = ASSEMBLED / f"{name}-{_digest(SOURCES / base, source)}"
    if target.is_dir():
        return target
    ASSEMBLED.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=ASSEMBLED)) / name
    shutil.copytree(SOURCES / base, staging)
    shutil.copytree(source, staging, dirs_exist_ok=True)
    try:
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():  # another worker assembled the same digest first: theirs is identical
            raise
    shutil.rmtree(staging.parent, ignore_errors=True)
    return target


def _digest(*directories: Path) -> str:
    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: hack/charts NAME")
    print(chart_path(sys.argv[1]))
