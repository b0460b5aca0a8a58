# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Errors the modules report as they are: bad input, a guard that refused.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import typing as t


class ModuleError(Exception):
    """A failure reported as is; ``details`` become extra keys of the failed result."""

    def __init__(self, message: str, **details: t.Any) -> None:
        super().__init__(message)
        self.details = details


class GuardRefused(ModuleError):
    """A guard refused to act (a write that would be unconditional, a step with nothing to act on): the write it
    guards was not made. The writing steps check every record before their first write. Reported as is, never as an
    unexpected error."""
