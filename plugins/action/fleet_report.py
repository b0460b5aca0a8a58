# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet's triage summary in one pass: fleet-summary.{md,html,json} and the Prometheus metrics file."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible_collections.helmops.recovery.plugins.plugin_utils._reports import (
    HAS_PROMETHEUS,
    ReportAction,
    ReportError,
    ReportWriter,
    stats,
    write_fleet_reports,
)

SPEC: dict[str, t.Any] = {
    "clusters": {"type": "list", "elements": "dict", "required": True},
    "dir": {"type": "path", "required": True},
    "metrics": {"type": "bool", "default": True},
}


class ActionModule(ReportAction):
    ARGUMENT_SPEC = SPEC
    TEMPLATE = "fleet-summary.md.j2"

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        args, templates = self._arguments_and_templates()
        writer = ReportWriter(args["dir"], write=not self._task.check_mode)
        try:
            document = write_fleet_reports(writer, templates, args["clusters"], args["metrics"])
        except ReportError as error:
            raise AnsibleActionFail(str(error)) from error
        if args["metrics"] and not HAS_PROMETHEUS:
            result["warnings"] = ["the metrics file was not written: install prometheus-client on the controller"]
        # changed stays false: reports are the output of a read-only look; files says which were written
        result.update(changed=False, files=writer.changed, fleet=document, stats=stats(document))
        return result
