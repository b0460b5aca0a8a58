#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_release_facts
short_description: Helm release state, live-resource inventory and an evidence-backed diagnosis, as facts
version_added: 0.1.0
description:
  - Reads Helm's own release records (Helm 3 and Helm 4, Secret or ConfigMap driver) for one release, several,
    or every release in a namespace or the whole cluster, in one call.
  - For each release it reports every revision, the latest, last deployed and last known-good revisions,
    whether C(helm upgrade) would refuse with "another operation (install/upgrade/rollback) is in progress",
    a lock verdict (V(stale), V(possibly-running) or V(none)) with its evidence, the live resources against
    the manifests of the latest and the last deployed revision, risks (PVCs an uninstall would delete,
    missing CRDs, hooks, records near the 1 MiB limit, history size, a managing controller), and a
    diagnosis that follows the recovery decision tree with actions ordered safest first.
  - Never writes to the cluster. Each inventory host is a cluster, so the results are that host's facts.
  - Records that are not valid Helm records are reported on their release (or in RV(ansible_facts.helm_release_errors))
    and do not stop the others from being reported.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - helmops.recovery.connection
  - helmops.recovery.connection.attributes
  - helmops.recovery.connection.facts
  - helmops.recovery.lock
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
options:
  release:
    description:
      - Release name, or a list of names. Omit for every release in scope.
    type: list
    elements: str
    aliases: [name]
  namespace:
    description:
      - The release namespace. Omit for every namespace of the cluster.
    type: str
  include_values:
    description:
      - Include each release's user-supplied values (C(helm get values)) in RV(ansible_facts.helm_releases[].user_values).
      - Values often hold secrets; when included, the task result is marked C(no_log) (by the module's action
        plugin), so Ansible hides it from the output and logs while later tasks can still use the facts.
    type: bool
    default: false
  inspect_live:
    description:
      - Compare the release's manifests with the live objects and look for running hooks and rollouts.
      - Without it only Helm's records are read (faster, fewer permissions), and the lock verdict rests on
        the record's age alone.
    type: bool
    default: true
  history_threshold:
    description:
      - A history longer than this many revisions is reported as a preventive finding (no C(--history-max)).
    type: int
    default: 20
  history:
    description:
      - How each revision of the history is read.
      - V(full) reads every record's payload; every revision entry reports its chart, description, dates and size.
      - V(labels) is a faster, smaller read for cluster-wide triage. Every record is listed from its object metadata
        (one metadata-only listing) - revision, status from the C(status) label, object name and write time
        (C(modifiedAt)/C(createdAt) labels). Payloads are read for the records whose C(status) label is not
        V(superseded) (one listing, C(owner=helm,status!=superseded), in the same scope) and, one GET each, for the
        latest or last deployed revision when that listing did not hold it (a newest revision labelled superseded).
        With the Secret driver one more listing (C(type!=helm.sh/release.v1), normally empty) finds C(owner=helm)
        Secrets of another type, which object metadata cannot tell apart; they are reported as with V(full).
      - What V(labels) gives up, for revisions listed from metadata only (C(payload_read=false) in RV(ansible_facts.helm_releases[].revisions),
        in practice the superseded ones other than the newest) - their C(chart), C(chart_version), C(app_version),
        C(description), C(first_deployed), C(last_deployed), C(deleted), C(size_bytes) and C(status_label_mismatch)
        are null; their status is the label's, so a payload whose status disagrees with a V(superseded) label is
        not detected; a damaged payload in such a record is not reported under C(record_errors) (Helm reports it
        only when it reads that revision); a record near the 1 MiB limit among them is not in C(risks.large_records);
        C(risks.history.total_bytes) and C(largest_bytes) count only the revisions read whole
        (C(risks.history.sizes_unknown) says how many were not).
      - Everything else is as with V(full) - status, latest, last deployed and last known-good revisions, lock,
        live objects, risks from the manifests, and the diagnosis read the same payloads, with the same identity
        checks and C(record_errors) for them.
      - Default V(full), or V(labels) with O(detail=brief), which cannot be combined with V(full).
    type: str
    choices: [full, labels]
  detail:
    description:
      - How closely each release is looked at.
      - V(full) reads every release whole - payloads of the latest and last deployed revisions, their manifests
        and (with O(inspect_live)) the live objects.
      - V(brief) is the fast scan of a fleet, "wide first, deep where it is broken". The history is read as with
        O(history=labels). A release whose newest revision is V(deployed) by payload and by label, with every
        record valid, is reported from its records alone (RV(ansible_facts.helm_releases[].detail=brief)) - neither
        its payload nor its manifest is decoded and no live object is read. Its entry keeps identity, state, the
        revisions, C(record_errors) and the diagnosis (state, summary, findings with their evidence, actions); the
        evidence sections of the deep look - C(live), C(lock), C(risks), C(written_by) and C(pending_seconds) - are
        absent (what the records show of them reaches the findings - a long history, records near the size limit,
        a controller known from its HelmRelease or HelmChart object). Its diagnosis lacks what only the deep look
        finds - C(missing-crd), C(removed-api), C(pvc-without-keep), C(deployed-without-wait), failed or running hooks, a managing
        controller known only from manifest labels, and escalations for orphaned PVCs or objects owned by another
        release. Every other release (failed, pending, uninstalling, a label that disagrees with the payload, an
        invalid record) gets the deep look of V(full) (RV(ansible_facts.helm_releases[].detail=full)).
      - With V(brief) every entry's C(revisions) keeps only the revisions whose payload was read and the ones the
        facts name (latest, last deployed, last known good); in a deep entry C(risks.history.count) and
        C(risks.history.by_status) still count them all. Revisions labelled superseded are listed by name only
        (the names place them in their namespace; see the collection's C(docs/performance.md)), so a named one
        of those has a null C(written_at), and a label that disagrees with its object's name is not reported.
      - Use V(brief) to find the releases that need attention across a cluster, then V(full) on those.
    type: str
    choices: [full, brief]
    default: full
  orphan_search:
    description:
      - Where C(live.orphans) are looked for - objects that carry the release's
        ownership (its C(meta.helm.sh/release-name) annotation, or its C(app.kubernetes.io/instance) label in
        its namespace) but are in none of its manifests.
      - V(manifests) looks among the kinds of the latest and last deployed manifests (the lists the live
        comparison reads anyway).
      - V(history) looks also among the kinds any revision's manifest had, which the current ones may lack - a
        ConfigMap an older revision kept by C(helm.sh/resource-policy=keep), then dropped from the chart, stays
        in the cluster (Helm skips deleting kept objects on upgrade, C(pkg/kube/client.go)). It decodes every
        revision's payload while the history is listed (Secrets are never listed whole, so a leftover Secret is
        not found) and needs O(history=full) and O(inspect_live=true); use it for a closer look at a few releases, or a periodic audit.
      - Each orphan comes with the command that deletes it (C(command_if_unneeded)); check first that nothing
        needs it (a claim may hold data).
    type: str
    choices: [manifests, history]
    default: manifests
  as_facts:
    description:
      - Return the releases as host facts, RV(ansible_facts.helm_releases) and RV(ansible_facts.helm_release_errors).
      - V(false) returns the same as RV(helm_releases) and RV(helm_release_errors) in the task result only (use
        C(register)). Host facts are copied for every later task of the play - about 0.4 s per task at 1,000
        releases, measured on ansible-core 2.19 - so a play that runs tasks per release after a fleet-wide read
        should use V(false), as the roles of this collection do.
    type: bool
    default: true
  error:
    description:
      - An error text from the failed Helm command (for example pasted from a CI log); known Helm failure
        messages in it become findings.
    type: str
  operation:
    description:
      - The operation that was attempted when the release got stuck.
    type: str
    choices: [install, upgrade, rollback, uninstall]
  flags:
    description:
      - The flags the attempted operation used.
    type: dict
    suboptions:
      atomic:
        description: C(--atomic) (Helm 4 C(--rollback-on-failure)) was set.
        type: bool
      wait:
        description: C(--wait) was set.
        type: bool
      timeout:
        description: The C(--timeout) value.
        type: str
      cleanup_on_fail:
        description: C(--cleanup-on-fail) was set.
        type: bool
seealso:
  - name: Helm release storage
    description: How Helm stores releases, and how this collection decodes them.
    link: https://helm.sh/docs/topics/advanced/#storage-backends
"""

EXAMPLES = r"""
- name: Triage one release
  helmops.recovery.helm_release_facts:
    release: web
    namespace: team-a

- name: Show the first recommended action
  ansible.builtin.debug:
    msg: "{{ ansible_facts.helm_releases[0].diagnosis.actions[0] }}"

- name: Every release of the cluster, with the CI error that was seen
  helmops.recovery.helm_release_facts:
    error: "{{ lookup('ansible.builtin.file', 'ci-error.log') }}"
    operation: upgrade
    flags:
      atomic: true
      timeout: 10m

- name: Releases stored as ConfigMaps, through an AWX Kubernetes bearer-token credential (K8S_AUTH_* variables)
  helmops.recovery.helm_release_facts:
    namespace: legacy
    driver: configmap

- name: Scan a whole cluster quickly; look deep only where the records show trouble
  helmops.recovery.helm_release_facts:
    detail: brief

- name: The releases that need attention
  ansible.builtin.debug:
    msg: "{{ ansible_facts.helm_releases | rejectattr('diagnosis.state', 'eq', 'deployed') | map(attribute='name') }}"

- name: Set the connection once for every module of the collection
  module_defaults:
    group/helmops.recovery.helm:
      kubeconfig: ~/.kube/prod.yaml
      context: prod-eu
  block:
    - name: Stuck releases only
      helmops.recovery.helm_release_facts:
        stale_after: 900

    - name: List them
      ansible.builtin.debug:
        msg: "{{ ansible_facts.helm_releases | selectattr('pending') | map(attribute='name') }}"
"""

RETURN = r"""
helm_releases:
  description: The same as RV(ansible_facts.helm_releases), in the task result only.
  returned: when O(as_facts=false)
  type: list
  elements: dict
helm_release_errors:
  description: The same as RV(ansible_facts.helm_release_errors), in the task result only.
  returned: when O(as_facts=false)
  type: list
  elements: str
ansible_facts:
  description: Facts about the cluster's Helm releases.
  returned: unless O(as_facts=false)
  type: dict
  contains:
    helm_releases:
      description: One entry per release in scope, sorted by namespace and name.
      returned: always
      type: list
      elements: dict
      contains:
        name:
          description: Release name.
          type: str
          sample: web
        namespace:
          description: Release namespace.
          type: str
          sample: team-a
        driver:
          description: Storage driver the records were read from.
          type: str
          sample: secret
        detail:
          description:
            - V(full) when the release was looked at whole, V(brief) when it was reported from its records alone
              (O(detail=brief) and a healthy deployed release; see O(detail) for what that leaves out).
          type: str
          sample: full
        status:
          description: Status of the newest revision, from its payload (what C(helm status) shows).
          type: str
          sample: pending-upgrade
        written_by:
          description:
            - V(helm4) if Helm 4 wrote the newest revision (it records C(apply_method)), else V(helm3).
            - Absent from a V(brief) entry (the payload was not decoded).
          type: str
        latest_revision:
          description: Newest revision number.
          type: int
        last_deployed_revision:
          description: Newest revision whose status is deployed, or null.
          type: int
        last_known_good_revision:
          description: Newest revision that is deployed or superseded (was deployed once).
          type: int
        rollback_target_revision:
          description:
            - The revision a recovery rolls back to when the newest one failed or is pending - the revision an
              interrupted rollback aimed at ("Rollback to N") when it is known-good, else the last known-good revision
              before the newest; null otherwise.
          type: int
        pending:
          description: Whether the newest revision is pending-install, pending-upgrade or pending-rollback.
          type: bool
        pending_seconds:
          description: Age in seconds of the pending record, or null. Absent from a V(brief) entry.
          type: int
        upgrade_blocked:
          description: Whether C(helm upgrade) would refuse with "another operation (install/upgrade/rollback) is in progress".
          type: bool
        revisions:
          description:
            - Every revision, oldest first (with O(detail=brief), only the ones read whole or named; see O(detail)).
            - With O(history=labels), entries listed from metadata only have null C(chart), C(chart_version),
              C(app_version), C(description), C(first_deployed), C(last_deployed), C(deleted), C(size_bytes) and
              C(status_label_mismatch), and their C(status) is the C(status) label; every entry has two more keys,
              C(payload_read) (whether its payload was read) and C(written_at) (when Helm wrote it, from the
              C(modifiedAt)/C(createdAt) labels, UTC, or null).
          type: list
          elements: dict
          sample:
            - revision: 1
              status: deployed
              status_label: deployed
              status_label_mismatch: false
              chart: app
              chart_version: 0.1.0
              app_version: 1.0.0
              description: Install complete
              first_deployed: "2026-11-24T08:42:18.09Z"
              last_deployed: "2026-11-24T08:42:18.09Z"
              deleted: null
              object: sh.helm.release.v1.web.v1
              size_bytes: 6804
        lock:
          description:
            - Lock verdict for a pending or uninstalling newest revision, with the evidence.
            - V(stale) means older than O(stale_after) with no running hook, no rollout its controller still drives, no
              recent change and, while a client with C(--timeout) up to O(client_timeout) could still be waiting
              (C(client_bound) seconds after the record), nothing C(helm --wait) would wait on.
            - C(evidence) lists the signs of activity; C(checked) (pending and uninstalling revisions) what was
              checked and found quiet, with the thresholds.
            - Absent from a V(brief) entry (its newest revision is deployed, so the verdict is V(none)).
          type: dict
          sample:
            verdict: possibly-running
            age_seconds: 950
            stale_after: 600
            client_timeout: 900
            client_bound: 2760
            evidence:
              - "Deployment web-web is not ready (1/1 updated, 1 available, 1 old, past its progress deadline); a client
                with --timeout up to 900s may wait on it until the record is 2760s old"
            checked: ["the pending-upgrade record was written 950s ago, more than stale_after 600s"]
        live:
          description:
            - Live objects against the latest and the last deployed manifests (V(present), V(missing), V(differs) per object),
              whether the cluster is closer to the V(new) or V(old) revision, orphans and objects owned by another release.
            - An object whose stored apiVersion the API no longer serves is read through the version it serves the
              kind as, and its entry names it (C(served_as)).
            - C(checked=false) when O(inspect_live=false); absent from a V(brief) entry.
          type: dict
        risks:
          description:
            - PVCs an uninstall would delete, kept objects, missing CRDs, hooks, large records, history size (with
              C(history.by_status), the number of revisions in each status), managing controller.
            - C(deletions.uninstall) and C(deletions.rollback) (when a rollback is a recovery option) - what Helm would
              delete, from its own rules (docs/safety.md) - C(revision) (the manifest it deletes from), C(target) (a
              rollback's), C(objects) (C(kind), C(namespace), C(name), C(data) - why deleting it loses data, or null;
              C(unverified) when the live object could not be read), C(data_loss), and C(unknown) (why C(objects) is
              null).
            - C(pvcs_deleted_on_uninstall) comes from the newest revision, which is what C(helm uninstall) deletes.
            - C(removed_apis) lists the objects of the revisions Helm reads next (the newest, the one C(helm upgrade)
              diffs against, the rollback target of a failed or pending release) whose apiVersion the API no longer
              serves, although it serves the kind at another version or Kubernetes removed it - C(apiVersion),
              C(kind), C(namespace), C(name), C(served_as) (null when no version serves the kind), C(removed_in)
              (for built-in kinds) and C(revisions). A custom resource whose CRD is not installed at all is in
              C(missing_crds) instead.
            - C(hooks) lists the newest revision's hooks with C(last_run_phase) (as the record says) and, when the live
              objects were read, C(live_phase) (V(Running), V(Succeeded), V(Failed), or V(absent)), which the
              C(hook-*) findings prefer.
            - C(unreadable_manifests) names the manifests that cannot be read as Helm reads them (the guards that read
              them fail closed); C(managed_by_unknown) says why a managing controller could not be ruled out.
            - Absent from a V(brief) entry.
          type: dict
        record_errors:
          description: Storage objects of this release that are not valid Helm records, with the reason.
          type: list
          elements: dict
        user_values:
          description: User-supplied values of the newest revision; only with O(include_values=true).
          type: dict
          returned: when O(include_values=true)
        diagnosis:
          description:
            - The decision tree applied to these facts. C(actions) are ordered safest first; each has a C(name) from
              V(none), V(wait), V(rollback), V(unlock), V(upgrade), V(reinstall), V(uninstall_no_hooks),
              V(delete_revision), V(mark_deployed), V(prune_history), V(map_apis), V(escalate),
              V(leave_to_controller), V(delete_hook), whether it is C(destructive), the C(command) a person would run, its
              C(preconditions) and C(why); a V(rollback) also names its target C(revision) (the last known-good one,
              or the one an interrupted rollback aimed at).
            - A C(command) is the argv the collection's module runs for that step (same flags and timeout),
              shell-quoted, with C(HELM_DRIVER) for a ConfigMap release, the user's O(stale_after) and
              O(client_timeout), and the cluster these facts were read from (O(kubeconfig) and O(context), O(host),
              or the current context of the default kubeconfig); a kubeconfig given inline is named by a placeholder.
            - V(leave_to_controller) comes first for a release a controller (Flux, k3s, Fleet) manages; its command
              suspends the Flux HelmRelease (or shows the controller's object); the tree's steps follow, for after.
            - V(delete_hook) follows a V(wait) when the lock is held only by a hook Job or Pod that still runs past the
              client bound (no Helm client waits on it; finding C(hook-outlived-client)); its C(why) says how to
              inspect the hook first.
            - C(if_stale), only for a pending or uninstalling release whose lock is not judged stale - the actions as
              if it were, which the remediate role's C(force) takes; their module commands carry C(force=true).
            - Each action says what Helm would delete when it takes it - C(deletes) (as in C(risks.deletions), null when
              not known yet, for an upgrade until the chart is rendered), C(data_loss) (true when one of them holds data;
              the step then needs C(allow_data_loss)) and C(deletes_unknown).
          type: dict
          sample:
            state: pending-upgrade
            summary: Revision 2 is pending-upgrade and the lock is stale (900s old, no activity). ...
            findings:
              - code: upgrade-blocked
                severity: critical
                message: "'helm upgrade' would refuse: another operation (install/upgrade/rollback) is in progress."
                evidence: ["revision 2 is pending-upgrade"]
                advice: ""
            actions:
              - name: unlock
                destructive: false
                command: >-
                  ansible localhost -m helmops.recovery.helm_release_unlock
                  -a 'release=web namespace=team-a kubeconfig=/etc/clusters/prod-eu.yaml context=prod-eu'
                preconditions: ["no Helm client is still working on revision 2"]
                why: Marks the stale pending-upgrade revision 2 failed ...
    helm_release_errors:
      description:
        - Problems not tied to one release (a release name that was not found, an object carrying owner=helm
          that is not a release record, a forbidden list).
      returned: always
      type: list
      elements: str
"""

import typing as t

from ansible_collections.helmops.recovery.plugins.module_utils._commands import CommandSettings
from ansible_collections.helmops.recovery.plugins.module_utils._diagnosis import UserContext
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._facts import GatherOptions, gather
from ansible_collections.helmops.recovery.plugins.module_utils._history import DEFAULT_HISTORY_THRESHOLD
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import default_kubeconfig
from ansible_collections.helmops.recovery.plugins.module_utils._module import LOCK_ARGUMENT_SPEC, Context, run_module
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import (
    validate_namespace_name,
    validate_release_name,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "release": {"type": "list", "elements": "str", "aliases": ["name"]},
    "namespace": {"type": "str"},
    **LOCK_ARGUMENT_SPEC,
    "include_values": {"type": "bool", "default": False},
    "inspect_live": {"type": "bool", "default": True},
    "history_threshold": {"type": "int", "default": DEFAULT_HISTORY_THRESHOLD},
    "history": {"type": "str", "choices": ["full", "labels"]},
    "detail": {"type": "str", "choices": ["full", "brief"], "default": "full"},
    "orphan_search": {"type": "str", "choices": ["manifests", "history"], "default": "manifests"},
    "as_facts": {"type": "bool", "default": True},
    "error": {"type": "str"},
    "operation": {"type": "str", "choices": ["install", "upgrade", "rollback", "uninstall"]},
    "flags": {
        "type": "dict",
        "options": {
            "atomic": {"type": "bool"},
            "wait": {"type": "bool"},
            "timeout": {"type": "str"},
            "cleanup_on_fail": {"type": "bool"},
        },
    },
}


def run(context: Context) -> dict[str, t.Any]:
    params = context.params
    releases = [validate_release_name(name) for name in params["release"] or []] or None
    namespace = validate_namespace_name(params["namespace"]) if params["namespace"] else None
    flags = params["flags"] or {}
    options = GatherOptions(
        namespace=namespace,
        releases=releases,
        stale_after=params["stale_after"],
        client_timeout=params["client_timeout"],
        include_values=params["include_values"],
        inspect_live=params["inspect_live"],
        history_threshold=params["history_threshold"],
        history=_history(params["history"], params["detail"], params["orphan_search"], params["inspect_live"]),
        detail=params["detail"],
        orphan_search=params["orphan_search"],
        context=UserContext(
            error=params["error"] or "",
            operation=params["operation"] or "",
            atomic=flags.get("atomic"),
            wait=flags.get("wait"),
            timeout=flags.get("timeout") or "",
            cleanup_on_fail=flags.get("cleanup_on_fail"),
        ),
        commands=CommandSettings.from_params(params, default_kubeconfig),
    )
    facts, errors = gather(context.client, context.driver, options)
    found = {"helm_releases": facts, "helm_release_errors": errors}
    # With include_values the action plugin of the same name marks the task result no_log.
    return {"changed": False, **({"ansible_facts": found} if params["as_facts"] else found)}


def _history(history: str | None, detail: str, orphan_search: str, inspect_live: bool) -> t.Literal["full", "labels"]:
    """A brief look lists the history from labels; the full default reads every payload."""
    if orphan_search == "history" and (detail == "brief" or history == "labels" or not inspect_live):
        raise ModuleError(
            "orphan_search=history reads every revision's payload to search the live objects, which history=labels "
            "(and detail=brief) leave unread and inspect_live=false does not search; use history=full, detail=full "
            "and inspect_live=true, or orphan_search=manifests"
        )
    if detail == "brief":
        if history == "full":
            raise ModuleError(
                "detail=brief reads the history from object labels and cannot be combined with history=full; "
                "leave history unset (or set it to labels)"
            )
        return "labels"
    return "labels" if history == "labels" else "full"


def main() -> None:
    run_module(ARGUMENT_SPEC, run, bulk_read=True)


if __name__ == "__main__":
    main()
