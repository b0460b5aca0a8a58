# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The one release a writing module acts on. Kept in step with
    # plugins/module_utils/_module.py ONE_RELEASE_ARGUMENT_SPEC.
    DOCUMENTATION = r"""
options:
  release:
    description: The release name.
    type: str
    required: true
    aliases: [name]
  namespace:
    description: The release namespace.
    type: str
    required: true
"""
