# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A release's history as Helm's actions read it: the status sets, and which
revision each action takes as its reference.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Pure. A history is a mapping of revision number to (status, description),
oldest first or in any order.
"""

from __future__ import annotations

import re
import typing as t

from ._release_codec import PENDING_STATUSES

KNOWN_GOOD_STATUSES = ("deployed", "superseded")
UNHEALTHY_STATUSES = ("failed", *PENDING_STATUSES, "uninstalling")
# The newest statuses that block another operation until the client is gone (pkg/action: "another operation
# (install/upgrade/rollback) is in progress"; an uninstalling release is Helm's until the uninstall ends).
LOCKING_STATUSES = (*PENDING_STATUSES, "uninstalling")
# The lock verdict's defaults (_lock.py), which printed module commands leave out (_commands.py).
DEFAULT_STALE_AFTER = 600
DEFAULT_CLIENT_TIMEOUT = 900  # seconds: 15m, longer than Helm's default --timeout of 5m
# More revisions than this is a long history (finding history-too-long; helm_release_facts history_threshold).
DEFAULT_HISTORY_THRESHOLD = 20
# The newest statuses a recovery may roll back from.
ROLLBACK_STATUSES = ("failed", *PENDING_STATUSES)

History = t.Mapping[int, tuple[str, str]]  # revision -> (status, description)

_ROLLBACK_DESCRIPTION = re.compile(r"Rollback to (\d+)$")


def rollback_target(history: History) -> int | None:
    """The revision a recovery rolls back to: the one an interrupted rollback aimed at
    (pkg/action/rollback.go writes "Rollback to N" on the pending record) when it is
    known-good, else the last known-good revision before the newest; None when there is none."""
    ordered = sorted(history)
    if len(ordered) < 2:
        return None
    status, description = history[ordered[-1]]
    match = _ROLLBACK_DESCRIPTION.match(description or "") if status == "pending-rollback" else None
    aimed = int(match.group(1)) if match else None
    if aimed is not None and aimed in history and aimed != ordered[-1] and history[aimed][0] in KNOWN_GOOD_STATUSES:
        return aimed
    good = [n for n in ordered[:-1] if history[n][0] in KNOWN_GOOD_STATUSES]
    return good[-1] if good else None


def upgrade_base(newest_status: str, labelled_deployed: t.Sequence[int], newest: int) -> int | None:
    """The revision `helm upgrade` diffs the new manifest against (pkg/action/upgrade.go
    prepareUpgrade): the newest revision when it is deployed; else the newest record
    *labelled* deployed (storage.Deployed selects by label); else the newest revision
    when it failed or was superseded; None when Helm refuses ("has no deployed releases")."""
    if newest_status == "deployed":
        return newest
    if labelled_deployed:
        return max(labelled_deployed)
    if newest_status in ("failed", "superseded"):
        return newest
    return None
