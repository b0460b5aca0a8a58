#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_release_recover
short_description: Let Helm itself recover a release - roll back, upgrade, or uninstall without hooks - behind guards
version_added: 0.1.0
description:
  - Runs C(helm rollback), C(helm upgrade --force) or C(helm uninstall --no-hooks) for one release, the recovery steps
    that change live resources and must therefore be taken by Helm, never by editing its records.
  - Acts only when the release's newest revision is in one of O(when_status) (by default the unhealthy states), so a
    second run on a recovered release changes nothing.
  - Refuses while an operation may still be running on the release (the lock verdict
    M(helmops.recovery.helm_release_facts) reports, see O(stale_after) and O(client_timeout)), an upgrade while the
    release is locked (unlock it first), an upgrade without an explicit chart version (never guesses the latest), and
    an uninstall without O(allow_destructive=true).
  - Every action goes through the same data-loss guard, computed from what Helm itself will delete (docs/safety.md).
    An uninstall deletes the objects of the newest revision's manifest; a rollback deletes the objects of the newest
    revision's manifest that the target revision lacks; an upgrade deletes the objects of the revision Helm diffs
    against that the rendered chart lacks (found by the same command run with C(--dry-run=server)). When any of them
    is a PersistentVolumeClaim, a StatefulSet whose claims are deleted with it, a CustomResourceDefinition, a
    Namespace or a PersistentVolume whose storage is deleted with it, or when what Helm would delete cannot be known
    (a manifest that cannot be read, an object that may not be read), the module refuses without
    O(allow_data_loss=true) and names the objects.
  - With O(expected_revision) and O(expected_status) it acts only on the newest record the caller's plan was made from.
    Right before Helm runs, the newest record is read again, and nothing runs if it changed since the check.
  - After a rollback, older C(pending-*) records Helm leaves in the history are marked C(failed), each write guarded by
    its resourceVersion, so C(helm history) stops showing a pending revision forever.
  - Before Helm runs, every record of the release and the newest revision's values and manifest are saved to
    O(backup_dir) (files 0600, directories 0700).
  - The chart's NOTES are never returned, as they often print credentials. Helm runs with C(--hide-notes) and its output
    is cut before any NOTES section.
  - Credentials reach Helm only through its environment and a private kubeconfig file, never its command line.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - helmops.recovery.connection
  - helmops.recovery.connection.attributes
  - helmops.recovery.release
  - helmops.recovery.lock
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    description:
      - Reports the Helm command it would run, why, and what Helm would delete; runs nothing and writes no backup.
      - For an upgrade, Helm renders the chart with C(--dry-run=server) (which writes nothing) to find what it would delete.
    support: full
  diff_mode:
    description: The newest revision's number and status before, and what Helm is expected to leave after.
    support: full
  idempotent:
    description: Once the release is out of O(when_status) (deployed, or gone after an uninstall) nothing more is done.
    support: full
options:
  action:
    description:
      - V(rollback) runs C(helm rollback) to O(revision), by default the last known-good revision (the newest
        C(deployed) or C(superseded) one, never blindly the previous one). Helm allows it while the newest revision is
        pending.
      - V(upgrade) runs C(helm upgrade) with O(chart) and O(chart_version) and the values O(values_source) names. The
        release must not be locked, and the chart must be the release's own (its name is the one the newest revision
        or the revision Helm upgrades from recorded; Helm itself would install any chart over the release and delete
        every object the other chart lacks).
      - V(uninstall) runs C(helm uninstall), by default with C(--no-hooks). Destructive.
    type: str
    required: true
    choices: [rollback, upgrade, uninstall]
  revision:
    description: The revision to roll back to. Defaults to the last known-good revision.
    type: int
  chart:
    description:
      - The chart reference for V(upgrade) (C(repo/name), C(oci://...), a directory or a packaged C(.tgz)).
    type: str
  chart_version:
    description:
      - The exact chart version for V(upgrade). Required unless O(chart) is a local directory or package; the latest
        version is never assumed.
    type: str
  values_files:
    description:
      - Values files passed to the upgrade with C(-f), on top of the values O(values_source) names - typically the fix
        for what made the release fail.
    type: list
    elements: path
    default: []
  values_source:
    description:
      - Which values the V(upgrade) applies, before O(values_files).
      - V(newest) (default) applies the values the newest revision recorded, the change the interrupted or failed
        operation was making, on the new chart's own defaults (C(--reset-values) and a private values file). Helm's
        C(--reuse-values) would take the last deployed revision's values instead and drop that change.
      - V(deployed) is Helm's C(--reset-then-reuse-values) (the last deployed revision's values on the new chart's
        defaults); V(reuse) is Helm's C(--reuse-values) (its values and its chart's defaults, which fails on a chart
        version whose values moved); V(chart) is C(--reset-values) (the chart's defaults and O(values_files) only).
    type: str
    choices: [newest, deployed, reuse, chart]
    default: newest
  force_replace:
    description:
      - Pass C(--force) (Helm 3) or C(--force-replace --server-side=false) (Helm 4) to the upgrade, so objects that
        cannot be patched are deleted and recreated. Off by default; Kubernetes refuses to replace a bound
        PersistentVolumeClaim or a StatefulSet's claim templates, so this fails on most stateful charts. When a
        plain upgrade fails on a field that cannot change, the failure names the object, the field and what to do.
    type: bool
    default: false
  no_hooks:
    description: Pass C(--no-hooks) to the uninstall, so a broken hook cannot block it again.
    type: bool
    default: true
  keep_history:
    description: Pass C(--keep-history) to the uninstall.
    type: bool
    default: false
  wait:
    description:
      - Pass C(--wait), so Helm records success only once the resources are ready.
      - Helm 4 gets C(--wait=legacy), Helm 3's waiter. Helm 4's bare C(--wait) takes a Deployment whose rollout
        once passed its progress deadline as failed for good, also right after a rollback that converges.
    type: bool
    default: true
  timeout:
    description: Helm's C(--timeout).
    type: str
    default: 5m
  when_status:
    description: Act only when the newest revision has one of these statuses.
    type: list
    elements: str
    default: [failed, pending-install, pending-upgrade, pending-rollback, uninstalling]
  allow_destructive:
    description: Allow V(uninstall).
    type: bool
    default: false
  allow_data_loss:
    description:
      - Allow a rollback, upgrade or uninstall whose deletions lose data (see the description), or whose deletions
        cannot be known.
    type: bool
    default: false
  expected_revision:
    description:
      - Act only if the newest revision is still this one (the revision the caller's decision was made from);
        otherwise refuse and change nothing.
    type: int
  expected_status:
    description: Act only if the newest revision still has this status.
    type: str
  force:
    description:
      - Act even if there are signs of a running operation (a recent record, a running hook Job, a rollout in
        progress), for example a pre-delete hook Job that will never finish. Overrides that verdict only, never the
        other guards. The result lists what was overridden.
    type: bool
    default: false
  replace_stuck_pods:
    description:
      - A StatefulSet whose rolling update reached a pod that never became ready waits for that pod before it
        replaces any pod, also after Helm reverted its template (Kubernetes' "forced rollback" case), so a V(rollback)
        or V(upgrade) that changes it could only time out. Without this option such a step is refused, naming the
        pods. With it, Helm runs without C(--wait), then the module deletes those pods (each only if it is still the
        pod that was read) and waits, up to O(timeout), until the StatefulSets are ready at the new template. The
        controller recreates each pod with the same claims.
    type: bool
    default: false
  backup_dir:
    description:
      - Where the records, values and manifest are saved before Helm runs, under C(<backup_dir>/<namespace>/<release>/).
    type: path
    default: ~/.helmops-recovery/backups
  helm_binary:
    description: The Helm 3 or Helm 4 binary, a path or a name looked up in E(PATH).
    type: str
    default: helm
requirements:
  - helm 3 or helm 4 on the managed node
seealso:
  - module: helmops.recovery.helm_release_facts
  - module: helmops.recovery.helm_release_unlock
"""

EXAMPLES = r"""
- name: See what a rollback would do
  helmops.recovery.helm_release_recover:
    release: web
    namespace: team-a
    action: rollback
  check_mode: true
  diff: true

- name: Roll a failed release back to its last known-good revision
  helmops.recovery.helm_release_recover:
    release: web
    namespace: team-a
    action: rollback

- name: Converge forward over a failed upgrade
  helmops.recovery.helm_release_recover:
    release: web
    namespace: team-a
    action: upgrade
    chart: oci://registry.example.com/charts/web
    chart_version: 4.2.1

- name: Remove a release stuck in uninstalling because of a broken hook (destructive)
  helmops.recovery.helm_release_recover:
    release: web
    namespace: team-a
    action: uninstall
    allow_destructive: true
"""

RETURN = r"""
release:
  description: The release name.
  returned: always
  type: str
namespace:
  description: The release namespace.
  returned: always
  type: str
action:
  description: The action asked for.
  returned: always
  type: str
  sample: rollback
reason:
  description: Why Helm ran, or why it did not.
  returned: always
  type: str
  sample: release web is failed; rolling back to revision 3
command:
  description: The Helm command line run (or that would run in check mode). It never holds credentials.
  returned: when Helm ran or would run
  type: str
  sample: helm rollback web 3 --namespace team-a --wait --timeout 5m
status_before:
  description: The newest revision's status before the run (C(absent) when the release does not exist).
  returned: always
  type: str
  sample: failed
revision_before:
  description: The newest revision before the run.
  returned: always
  type: int
replaced_pods:
  description: The StatefulSet pods deleted after Helm ran, so that the controller recreated them (O(replace_stuck_pods)).
  returned: when pods were replaced
  type: list
  elements: str
  sample: [db-0]
left_behind:
  description:
    - After an uninstall, what of the release is still in the cluster - C(kind), C(namespace) (empty for a
      cluster-scoped object), C(name), C(why) - with the C(command) that removes it, or for an object kept by
      C(helm.sh/resource-policy=keep) the C(command_if_unneeded). C(helm uninstall --no-hooks) neither runs nor deletes
      the release's hooks, so a stuck hook Job stays with its ServiceAccount and roles.
  returned: after an uninstall
  type: list
  elements: dict
  sample: [{kind: Job, namespace: team-a, name: web-cleanup, why: "a pre-delete hook: ...",
            command: "kubectl delete job web-cleanup -n team-a"}]
values_from_revision:
  description: The revision whose recorded values the upgrade applies (O(values_source=newest)).
  returned: for an upgrade with O(values_source=newest)
  type: int
  sample: 2
refused_objects:
  description:
    - When Helm failed because the API server refused to change objects, each of them, the field, whether the field
      cannot change at all (C(immutable)), and what to do.
  returned: when Helm failed that way
  type: list
  elements: dict
  sample: [{kind: StatefulSet, name: db, field: spec.volumeClaimTemplates, immutable: true,
            reason: "Invalid value: (elided): field is immutable",
            what_to_do: "delete only the StatefulSet and keep its pods and claims (...), then run the upgrade again"}]
target_revision:
  description: The revision a rollback went back to.
  returned: for a rollback that ran or would run
  type: int
status_after:
  description: The newest revision's status after Helm ran (C(absent) once uninstalled), read back from the cluster.
  returned: when Helm ran
  type: str
  sample: deployed
revision_after:
  description: The newest revision after Helm ran.
  returned: when Helm ran
  type: int
backup_files:
  description: The records, values and manifest saved before Helm ran (not written in check mode).
  returned: when Helm ran
  type: list
  elements: str
overridden:
  description: The evidence of a running operation that O(force=true) overrode.
  returned: always
  type: list
  elements: str
deletes:
  description:
    - What Helm deletes when it takes this step (or would, in check mode), and whether that loses data.
    - C(objects) is null when it cannot be known (C(unknown) says why).
  returned: when Helm ran or would run
  type: dict
  sample:
    revision: 2
    target: 1
    objects: [{kind: PersistentVolumeClaim, namespace: team-a, name: web-cache, data: "a PersistentVolumeClaim: its volume's data"}]
    data_loss: true
    unknown: null
marked_failed:
  description: The older pending revisions marked C(failed) after a rollback.
  returned: after a rollback
  type: list
  elements: int
helm_output:
  description: What Helm printed, without the chart's NOTES.
  returned: when Helm ran
  type: str
"""

import time
import typing as t

from ansible_collections.helmops.recovery.plugins.module_utils._backup import backup_release
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._helm_cli import (
    VALUES_SOURCES,
    HelmFlags,
    helm_environment,
    helm_major_version,
    output_without_notes,
)
from ansible_collections.helmops.recovery.plugins.module_utils._history import UNHEALTHY_STATUSES
from ansible_collections.helmops.recovery.plugins.module_utils._module import (
    LOCK_ARGUMENT_SPEC,
    ONE_RELEASE_ARGUMENT_SPEC,
    Context,
    run_module,
)
from ansible_collections.helmops.recovery.plugins.module_utils._recover import (
    RecoverOptions,
    RecoverPlan,
    guard_upgrade,
    left_behind,
    plan_recover,
    recheck,
    render_argv,
    rendered_release,
    run_helm,
    settle_pending,
    state_after,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import (
    validate_namespace_name,
    validate_release_name,
)
from ansible_collections.helmops.recovery.plugins.module_utils._rollout import (
    duration_seconds,
    replace_pods,
    wait_ready,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **ONE_RELEASE_ARGUMENT_SPEC,
    **LOCK_ARGUMENT_SPEC,
    "action": {"type": "str", "required": True, "choices": ["rollback", "upgrade", "uninstall"]},
    "revision": {"type": "int"},
    "chart": {"type": "str"},
    "chart_version": {"type": "str"},
    "values_files": {"type": "list", "elements": "path", "default": []},
    "values_source": {"type": "str", "choices": list(VALUES_SOURCES), "default": "newest"},
    "force_replace": {"type": "bool", "default": False},
    "no_hooks": {"type": "bool", "default": True},
    "keep_history": {"type": "bool", "default": False},
    "wait": {"type": "bool", "default": True},
    "timeout": {"type": "str", "default": "5m"},
    "when_status": {
        "type": "list",
        "elements": "str",
        "default": list(UNHEALTHY_STATUSES),
    },
    "allow_destructive": {"type": "bool", "default": False},
    "allow_data_loss": {"type": "bool", "default": False},
    "expected_revision": {"type": "int"},
    "expected_status": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "replace_stuck_pods": {"type": "bool", "default": False},
    "backup_dir": {"type": "path", "default": "~/.helmops-recovery/backups"},
    "helm_binary": {"type": "str", "default": "helm"},
}


def _helm(context: Context) -> tuple[str, int]:
    """The Helm binary's path and major version."""
    module = context.module
    path = module.get_bin_path(context.params["helm_binary"])
    if not path:
        raise ModuleError(f"the Helm binary {context.params['helm_binary']!r} was not found (set helm_binary)")
    rc, out, err = module.run_command([path, "version", "--template", "{{.Version}}"])
    if rc != 0:
        raise ModuleError(f"{path} version failed (exit {rc}): {(err or out).strip()[:200]}")
    return path, helm_major_version(out)


def run(context: Context) -> dict[str, t.Any]:
    params = context.params
    helm, major = _helm(context)
    options = RecoverOptions(
        namespace=validate_namespace_name(params["namespace"]),
        release=validate_release_name(params["release"]),
        action=params["action"],
        helm=helm,
        helm_major=major,
        revision=params["revision"],
        chart=params["chart"],
        chart_version=params["chart_version"],
        values_files=list(params["values_files"]),
        values_source=params["values_source"],
        force_replace=params["force_replace"],
        no_hooks=params["no_hooks"],
        keep_history=params["keep_history"],
        flags=HelmFlags(wait=params["wait"], timeout=params["timeout"]),
        allow_destructive=params["allow_destructive"],
        allow_data_loss=params["allow_data_loss"],
        when_status=tuple(params["when_status"]),
        stale_after=params["stale_after"],
        client_timeout=params["client_timeout"],
        force=params["force"],
        expected_revision=params["expected_revision"],
        expected_status=params["expected_status"],
        backup_dir=params["backup_dir"],
        replace_stuck_pods=params["replace_stuck_pods"],
        workdir=context.module.tmpdir,
    )
    plan = plan_recover(context.client, context.driver, options, time.time())
    # Helm runs in check mode only to render an upgrade (--dry-run=server) for its guard.
    helm_runs = plan.act and (options.action == "upgrade" or not context.check_mode)
    env = _environment(context) if helm_runs else {}
    if plan.act and options.action == "upgrade":
        guard_upgrade(plan, rendered_release(run_helm(plan, _runner(context), env, render_argv(plan))))
    result = _result(context, plan)
    if not plan.act or context.check_mode:
        return result
    result["backup_files"] = backup_release(
        options.backup_dir, options.namespace, options.release, plan.records, context.client.host
    )
    recheck(context.client, context.driver, plan)
    result["helm_output"] = output_without_notes(run_helm(plan, _runner(context), env))
    if plan.stuck:
        _replace_stuck_pods(context, plan, result)
    if options.action == "rollback":
        result["marked_failed"] = settle_pending(context.client, context.driver, plan)
    if options.action == "uninstall":
        result["left_behind"] = left_behind(context.client, plan)
    after = state_after(context.client, context.driver, options)
    result["status_after"] = after["status"]
    result["revision_after"] = after["revision"]
    return result


def _replace_stuck_pods(context: Context, plan: RecoverPlan, result: dict[str, t.Any]) -> None:
    """Helm applied the template without --wait: replace the pods the StatefulSets wait on, then wait
    for them as Helm's --wait would have."""
    result["replaced_pods"] = replace_pods(context.client, plan.stuck)
    waiting = wait_ready(context.client, plan.stuck, duration_seconds(plan.options.flags.timeout))
    if waiting:
        raise ModuleError(
            f"{plan.options.action} of {plan.options.release} ran and pods {', '.join(result['replaced_pods'])} were "
            f"replaced, but StatefulSet {', '.join(waiting)} is not ready after {plan.options.flags.timeout}",
            changed=True,
            replaced_pods=result["replaced_pods"],
        )


def _result(context: Context, plan: RecoverPlan) -> dict[str, t.Any]:
    options = plan.options
    result: dict[str, t.Any] = {
        "changed": plan.act,
        "release": options.release,
        "namespace": options.namespace,
        "action": options.action,
        "reason": plan.reason,
        "status_before": plan.status or "absent",
        "revision_before": plan.revision,
        "overridden": plan.overridden,
    }
    if plan.call is not None:
        result["command"] = plan.call.command_line
    if plan.target_revision is not None:
        result["target_revision"] = plan.target_revision
    if plan.values_from_revision is not None:
        result["values_from_revision"] = plan.values_from_revision
    if plan.deletions is not None:
        result["deletes"] = plan.deletions.as_dict()
    if context.module._diff:
        result["diff"] = plan.diff()
    for warning in plan.warnings:
        context.module.warn(warning)
    if plan.overridden:
        context.module.warn("force overrode signs of a running operation: " + "; ".join(plan.overridden))
    return result


def _environment(context: Context) -> dict[str, str]:
    params = context.params
    return helm_environment(
        context.client.api_client.configuration,
        context.driver,
        context.module.tmpdir,
        params.get("impersonate_user"),
        params.get("impersonate_groups") or [],
    )


def _runner(context: Context) -> t.Callable[[list[str], dict[str, str]], tuple[int, str, str]]:
    def runner(argv: list[str], extra: dict[str, str]) -> tuple[int, str, str]:
        rc, out, err = context.module.run_command(argv, environ_update=extra)
        return int(rc), str(out), str(err)

    return runner


def main() -> None:
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
