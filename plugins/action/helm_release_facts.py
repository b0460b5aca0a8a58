# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs helm_release_facts and, when it returns release values
(include_values: true), marks the task result no_log so no callback, log or
-vvv output shows them. A module cannot do that for its own result; the
facts still reach the host's variables."""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase
from ansible_collections.helmops.recovery.plugins.module_utils._collector import quiet_collector


class ActionModule(ActionBase):
    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        with quiet_collector():
            result.update(self._execute_module(module_name="helmops.recovery.helm_release_facts", task_vars=task_vars))
        if self._task.args.get("include_values"):
            result["_ansible_no_log"] = True
        return result
