#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_release_backup
short_description: Save a release's values, manifest and every release record before a destructive step
version_added: 0.1.0
description:
  - Writes, under C(<backup_dir>/<namespace>/<release>/), every release record of the release exactly as the API
    returns it (a Kubernetes C(List) that M(helmops.recovery.helm_release_restore) restores), and the newest
    revision's user-supplied values and manifest - what C(helm get values) and C(helm get manifest) print.
  - Directories are created with mode 0700 and files with mode 0600, never overwriting an earlier backup.
  - With O(export=true), writes the records alone, without the identity this API server gave them (uid,
    resourceVersion, creation time, managed fields), as one file that M(helmops.recovery.helm_release_restore) imports
    into another cluster (the same namespace and driver there).
  - Only reads from the cluster. The files hold release values, which often contain secrets; their content is never
    returned.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - helmops.recovery.connection
  - helmops.recovery.connection.attributes
  - helmops.recovery.release
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    description: Reports where the backup would go and writes nothing.
    support: full
  diff_mode:
    description: No diff; the cluster is not changed.
    support: none
  idempotent:
    description: Every run writes a new, time-stamped backup (and reports a change).
    support: none
options:
  backup_dir:
    description: The backup root directory.
    type: path
    default: ~/.helmops-recovery/backups
  export:
    description:
      - Write an export for another cluster (C(<release history>.export.<time>.json), records only) instead of a
        backup of records, values and manifest.
    type: bool
    default: false
seealso:
  - module: helmops.recovery.helm_release_recover
  - module: helmops.recovery.helm_release_restore
"""

EXAMPLES = r"""
- name: Back up web before uninstalling it
  helmops.recovery.helm_release_backup:
    release: web
    namespace: team-a
    backup_dir: /var/backups/helm

- name: Export web for the new cluster
  helmops.recovery.helm_release_backup:
    release: web
    namespace: team-a
    backup_dir: /srv/exports
    export: true
  register: exported

- name: Import it there
  helmops.recovery.helm_release_restore:
    path: "{{ exported.files[0] }}"
    kubeconfig: ~/.kube/new-cluster
"""

RETURN = r"""
files:
  description: The files written (records, values, manifest; with O(export=true) the export alone); empty in check mode.
  returned: always
  type: list
  elements: str
  sample:
    - /var/backups/helm/team-a/web/sh.helm.release.v1.web.20261124T101500.000000Z.json
    - /var/backups/helm/team-a/web/values.20261124T101500.000000Z.yaml
    - /var/backups/helm/team-a/web/manifest.20261124T101500.000000Z.yaml
directory:
  description: The directory the backup goes to.
  returned: always
  type: str
"""

import os
import typing as t

from ansible_collections.helmops.recovery.plugins.module_utils._backup import backup_release, export_release
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._module import (
    ONE_RELEASE_ARGUMENT_SPEC,
    Context,
    run_module,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import (
    validate_namespace_name,
    validate_release_name,
)
from ansible_collections.helmops.recovery.plugins.module_utils._storage import ReleaseStorage

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **ONE_RELEASE_ARGUMENT_SPEC,
    "backup_dir": {"type": "path", "default": "~/.helmops-recovery/backups"},
    "export": {"type": "bool", "default": False},
}


def run(context: Context) -> dict[str, t.Any]:
    params = context.params
    namespace = validate_namespace_name(params["namespace"])
    release = validate_release_name(params["release"])
    directory = os.path.join(params["backup_dir"], namespace, release)
    result: dict[str, t.Any] = {"changed": True, "files": [], "directory": directory}
    if context.check_mode:
        return result
    records, _errors = ReleaseStorage(context.client, context.driver).history(namespace, release)
    if not records:
        raise ModuleError(f"release {release!r} not found in namespace {namespace}; nothing to back up")
    if params["export"]:
        result["files"] = [export_release(params["backup_dir"], namespace, release, records, context.client.host)]
    else:
        result["files"] = backup_release(params["backup_dir"], namespace, release, records, context.client.host)
    return result


def main() -> None:
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
