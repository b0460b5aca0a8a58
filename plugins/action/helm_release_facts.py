# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs helm_release_facts and, when it returns release values
(include_values: true), marks the task result no_log so no callback, log or
-vvv output shows them. A module cannot do that for its own result; the
facts still reach the host's variables."""

from __future__ import annotations

import contextlib
import gc
import typing as t

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        with quiet_collector():
            result.update(self._execute_module(module_name="helmops.recovery.helm_release_facts", task_vars=task_vars))
        if self._task.args.get("include_values"):
            result["_ansible_no_log"] = True
        return result


@contextlib.contextmanager
def quiet_collector() -> t.Iterator[None]:
    """Keep the cyclic garbage collector off the heap while a cluster's facts arrive.

    ansible-core forks a worker process for the task; it builds the module's
    payload, parses the module's result and copies it several times before
    handing it over. Every few hundred containers built, the collector would
    walk them and everything the worker inherited from the controller (about
    0.1 s of worker time for 1,000 releases). So the inherited heap is frozen
    first (gc.freeze, as for any forked child), the collector is paused while
    the module runs and its result is parsed, and the parsed result is frozen
    too: JSON holds no reference cycles, and reference counting still frees
    all of it. The collector then runs as before on whatever comes next.
    """
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
