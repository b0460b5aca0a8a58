"""Make `ansible_collections.helmops.recovery` importable from this checkout."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / ".collections"
if not (COLLECTIONS / "ansible_collections" / "helmops" / "recovery").exists():
    raise RuntimeError("run 'make setup' first: .collections/ansible_collections/helmops/recovery is missing")
sys.path.insert(0, str(COLLECTIONS))
