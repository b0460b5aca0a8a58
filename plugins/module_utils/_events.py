# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Kubernetes Event a writing module leaves on the release record it changed.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ._k8s import KubeClient, KubeError, path_quote
from ._release_codec import Driver, driver_kind, utc_now


@dataclass(frozen=True)
class ReleaseEvent:
    """What happened to one release, said on one of its records (``regarding``)."""

    namespace: str
    release: str
    record_name: str
    driver: Driver
    reason: str  # HelmReleaseUnlocked, HelmReleaseRestored
    action: str
    note: str
    module: str  # helm_release_unlock: the reporting controller is helmops.recovery/<module>
    name_hint: str  # the Event's generateName: <release>.helmops-<hint>-


def post_event(client: KubeClient, event: ReleaseEvent) -> str | None:
    """Post the Event; the write it reports is done, so a failure is returned as a warning, not raised."""
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"generateName": f"{event.release}.helmops-{event.name_hint}-", "namespace": event.namespace},
        "eventTime": utc_now("%Y-%m-%dT%H:%M:%S.%fZ"),
        "type": "Normal",
        "reason": event.reason,
        "action": event.action,
        "note": event.note[:1024],
        "reportingController": f"helmops.recovery/{event.module}",
        "reportingInstance": socket.gethostname()[:128],
        "regarding": {
            "apiVersion": "v1",
            "kind": driver_kind(event.driver),
            "namespace": event.namespace,
            "name": event.record_name,
        },
    }
    try:
        client.request(
            "POST",
            f"/apis/events.k8s.io/v1/namespaces/{path_quote(event.namespace)}/events",
            target=f"Event in namespace {event.namespace}",
            body=body,
            retry=False,
        )
    except KubeError as exc:
        return f"the {event.name_hint} succeeded but recording a Kubernetes Event failed: {exc}"
    return None
