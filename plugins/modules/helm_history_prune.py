#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_history_prune
short_description: Prune Helm release-history records without an upgrade, safely, for one release or a whole cluster
version_added: 0.1.0
description:
  - Helm prunes history only when it writes a new revision. This module prunes on its own, so it can run unattended on a
    schedule (for example an AWX schedule) for one release, several, every release of a namespace or of the cluster.
  - Keeps the newest O(keep) revisions of each release and never deletes the newest revision, the last deployed
    revision, the last known-good revision a rollback would need, or any pending or uninstalling revision; the result
    lists what was protected and why.
  - Deletes oldest first, each delete with uid and resourceVersion preconditions, so a run that is interrupted or races
    a real C(helm upgrade) leaves a valid history and never removes a record that changed after it was read. Running it
    again converges.
  - Transient API errors (429 with Retry-After, 5xx, connection resets) are retried with backoff within a bound.
  - The first delete that still fails ends that release's run (the newer records are kept and listed under
    C(skipped) of each entry of RV(releases)); when the API server cannot be reached at all, every release stops.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - helmops.recovery.connection
  - helmops.recovery.connection.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    description: Returns the same plan and deletes nothing (no backup file either).
    support: full
  diff_mode:
    description: Shows each release's revision list before and after.
    support: full
  idempotent:
    description: A second run with the same arguments deletes nothing.
    support: full
options:
  release:
    description: Release name, or a list of names. Omit for every release in scope.
    type: list
    elements: str
    aliases: [name]
  namespace:
    description: The namespace. Omit for every namespace of the cluster.
    type: str
  keep:
    description: How many of the newest revisions of each release to keep (protected revisions are kept besides).
    type: int
    default: 10
  older_than:
    description:
      - Only prune records last written longer ago than this, for example V(30d), V(12h), V(90m) or a number of seconds.
    type: str
  statuses:
    description:
      - Only prune revisions with these statuses, for example V([failed, superseded]).
    type: list
    elements: str
    choices: [superseded, failed, uninstalled, deployed, unknown]
  backup_dir:
    description:
      - When set, each record is exported there before it is deleted, as
        C(<backup_dir>/<namespace>/<release>/<object>.<time>.json) (directories 0700, files 0600).
    type: path
  concurrency:
    description: How many releases are pruned at the same time (deletes within one release go one by one, oldest first).
    type: int
    default: 4
seealso:
  - module: helmops.recovery.helm_release_facts
"""

EXAMPLES = r"""
- name: What would go (look first)
  helmops.recovery.helm_history_prune:
    namespace: team-a
    keep: 5
  check_mode: true
  diff: true

- name: Keep 10 revisions of every release in the cluster
  helmops.recovery.helm_history_prune:
    keep: 10

- name: Clear old failed attempts only, with a copy of each record
  helmops.recovery.helm_history_prune:
    release: [web, worker]
    namespace: team-a
    keep: 3
    statuses: [failed]
    older_than: 30d
    backup_dir: /var/backups/helm
"""

RETURN = r"""
releases:
  description: One entry per release in scope.
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: team-a
      release: web
      kept: [28, 29, 30]
      deleted: [1, 2, 3]
      protected:
        - revision: 30
          reasons: [newest revision, last deployed revision, last known-good revision (rollback target)]
      skipped: []
      bytes_reclaimed: 1048000
      errors: []
totals:
  description: Sums over all releases.
  returned: always
  type: dict
  sample: {releases: 12, kept: 120, deleted: 240, bytes_reclaimed: 5242880}
errors:
  description: Problems not tied to one release (a release not found, objects that are not valid records - left alone).
  returned: always
  type: list
  elements: str
"""

import typing as t

from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._module import Context, run_module
from ansible_collections.helmops.recovery.plugins.module_utils._prune import (
    PruneOptions,
    apply_prune,
    parse_duration,
    plan_prune,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import (
    validate_namespace_name,
    validate_release_name,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "release": {"type": "list", "elements": "str", "aliases": ["name"]},
    "namespace": {"type": "str"},
    "keep": {"type": "int", "default": 10},
    "older_than": {"type": "str"},
    "statuses": {
        "type": "list",
        "elements": "str",
        "choices": ["superseded", "failed", "uninstalled", "deployed", "unknown"],
    },
    "backup_dir": {"type": "path"},
    "concurrency": {"type": "int", "default": 4},
}


def run(context: Context) -> dict[str, t.Any]:
    params = context.params
    if params["keep"] < 1:
        raise ModuleError(f"keep must be at least 1 (got {params['keep']}): the newest revision is always kept")
    options = PruneOptions(
        namespace=validate_namespace_name(params["namespace"]) if params["namespace"] else None,
        releases=[validate_release_name(name) for name in params["release"] or []] or None,
        keep=params["keep"],
        older_than=parse_duration(params["older_than"]),
        statuses=params["statuses"],
        backup_dir=params["backup_dir"],
        concurrency=params["concurrency"],
    )
    plans, errors = plan_prune(context.client, context.driver, options)
    planned = any(plan.delete for plan in plans)
    if planned and not context.check_mode:
        apply_prune(context.client, context.driver, plans, options)
    releases = [plan.result(done=not context.check_mode) for plan in plans]
    result: dict[str, t.Any] = {
        "changed": any(r["deleted"] for r in releases),
        "releases": releases,
        "totals": {
            "releases": len(releases),
            "kept": sum(len(r["kept"]) for r in releases),
            "deleted": sum(len(r["deleted"]) for r in releases),
            "bytes_reclaimed": sum(r["bytes_reclaimed"] for r in releases),
        },
        "errors": errors,
    }
    if context.module._diff:
        result["diff"] = {
            "before": {f"{p.namespace}/{p.release}": p.before for p in plans if p.delete},
            "after": {f"{r['namespace']}/{r['release']}": r["kept"] for r in releases if r["deleted"]},
        }
    failures = [e for r in releases for e in r["errors"]]
    if failures:
        context.module.fail_json(msg=f"{len(failures)} record(s) could not be deleted: {failures[0]}", **result)
    return result


def main() -> None:
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
