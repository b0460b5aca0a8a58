# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One cluster's triage reports in one pass: per-release JSON and Markdown, the counts and the console lines."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible_collections.helmops.recovery.plugins.plugin_utils._reports import (
    ReportAction,
    ReportError,
    ReportWriter,
    cluster_summary,
    counts_line,
    write_cluster_reports,
)

SPEC: dict[str, t.Any] = {
    "cluster": {"type": "str", "required": True},
    "rows": {"type": "list", "elements": "dict", "default": []},
    "releases": {"type": "list", "elements": "dict", "default": []},
    "scope_errors": {"type": "list", "elements": "str", "default": []},
    "error": {"type": "str", "default": ""},
    "dir": {"type": "path", "default": ""},
}


class ActionModule(ReportAction):
    ARGUMENT_SPEC = SPEC

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        args, templates = self._arguments_and_templates()
        summary = cluster_summary(args["cluster"], args["rows"], args["scope_errors"], args["error"])
        writer = ReportWriter(args["dir"] or ".", write=not self._task.check_mode)
        try:
            if args["dir"]:
                write_cluster_reports(writer, templates, args["cluster"], args["rows"], args["releases"])
            console = templates.render("console.j2", summary=summary, counts_line=counts_line(summary))
        except ReportError as error:
            raise AnsibleActionFail(str(error)) from error
        result.update(
            changed=False,  # reports are the output of a read-only look; files says which were written
            files=writer.changed,
            unchanged=writer.unchanged,
            summary=summary,
            console=console.strip().split("\n"),
        )
        return result
