# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The attributes of the report writers (triage_report, fleet_report): action plugins on the controller.
    # Used with ansible.builtin.action_common_attributes and its .flow part, which define these attributes; each
    # module says itself how check mode and diff mode behave.
    DOCUMENTATION = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: all
"""
