# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cyclic garbage collector while a cluster's worth of facts is built or
received: the one place the collection changes it.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import contextlib
import gc
import typing as t


@contextlib.contextmanager
def quiet_collector(*, active: bool = True) -> t.Iterator[None]:
    """Keep the cyclic collector off a heap that only grows, then out of it.

    A bulk read (helm_release_facts in the module, and its result as the
    controller's worker parses it) builds hundreds of thousands of containers
    with no reference cycles worth collecting; every few hundred allocations
    the collector would walk them all again. So the heap is frozen first (what
    the process inherited or imported), the collector paused while the body
    runs, and what the body built frozen too, so that no later collection (the
    one at interpreter exit included) walks it. Reference counting still frees
    all of it. The collector is then restored as it was. What this saves is
    measured in docs/performance.md ("The collector while a cluster's facts
    arrive"). ``active=False``: the body runs with the collector untouched
    (modules that write keep it).
    """
    if not active:
        yield
        return
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
