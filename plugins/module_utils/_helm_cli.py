# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the helm binary, for the steps only Helm itself may take
(rollback, upgrade, uninstall).

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Credentials never reach Helm's command line, where any user of the machine
could read them in the process table: the bearer token travels in
``HELM_KUBETOKEN`` and everything else (server, CA, client certificate paths)
in a private kubeconfig file (mode 0600 in a 0700 directory) named by
``KUBECONFIG``. The connection is the one the Python client resolved, so Helm
talks to exactly the cluster, as exactly the identity, the facts were read with.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import typing as t
from dataclasses import dataclass, field

from ._errors import ModuleError

# Helm settings that would override the connection we hand it.
_OVERRIDDEN_HELM_SETTINGS = (
    "HELM_KUBEAPISERVER",
    "HELM_KUBECONTEXT",
    "HELM_KUBECAFILE",
    "HELM_KUBETLS_SERVER_NAME",
    "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
    "HELM_NAMESPACE",
)


@dataclass
class HelmCall:
    """One helm command: its argv (no secrets) and environment additions."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def command_line(self) -> str:
        """The command as a person would paste it: every argument shell-quoted."""
        return shlex.join(self.argv)


def bearer_token(configuration: t.Any) -> str | None:
    api_key = getattr(configuration, "api_key", None) or {}
    value = api_key.get("authorization") or api_key.get("BearerToken")
    if not value:
        return None
    prefix = (getattr(configuration, "api_key_prefix", None) or {}).get("authorization", "")
    token = str(value)
    if prefix and token.startswith(prefix + " "):
        token = token[len(prefix) + 1 :]
    return token.replace("Bearer ", "", 1).strip() or None


def kubeconfig_document(configuration: t.Any) -> dict[str, t.Any]:
    """A one-context kubeconfig for the resolved connection, without the token."""
    cluster: dict[str, t.Any] = {"server": str(configuration.host)}
    if getattr(configuration, "ssl_ca_cert", None):
        cluster["certificate-authority"] = str(configuration.ssl_ca_cert)
    if getattr(configuration, "verify_ssl", True) is False:
        cluster["insecure-skip-tls-verify"] = True
    if getattr(configuration, "proxy", None):
        cluster["proxy-url"] = str(configuration.proxy)
    user: dict[str, t.Any] = {}
    if getattr(configuration, "cert_file", None):
        user["client-certificate"] = str(configuration.cert_file)
    if getattr(configuration, "key_file", None):
        user["client-key"] = str(configuration.key_file)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "target", "cluster": cluster}],
        "users": [{"name": "target", "user": user}],
        "contexts": [{"name": "target", "context": {"cluster": "target", "user": "target"}}],
        "current-context": "target",
    }


def helm_environment(
    configuration: t.Any,
    driver: str,
    workdir: str,
    impersonate_user: str | None = None,
    impersonate_groups: t.Sequence[str] = (),
) -> dict[str, str]:
    """The environment that points Helm at the resolved cluster and identity."""
    private = tempfile.mkdtemp(prefix="helm-", dir=workdir)  # mkdtemp creates it 0700
    path = os.path.join(private, "kubeconfig")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(kubeconfig_document(configuration), handle)  # JSON is YAML
    env = {name: "" for name in _OVERRIDDEN_HELM_SETTINGS}
    env.update({"KUBECONFIG": path, "HELM_DRIVER": driver})
    token = bearer_token(configuration)
    env["HELM_KUBETOKEN"] = token or ""
    env["HELM_KUBEASUSER"] = impersonate_user or ""
    env["HELM_KUBEASGROUPS"] = ",".join(impersonate_groups)
    return env


def helm_major_version(version_output: str) -> int:
    """3 or 4 from `helm version --template {{.Version}}` (v3.22.0, v4.3.1)."""
    match = re.match(r"\s*v?(\d+)\.", version_output)
    if not match:
        raise ModuleError(f"could not tell the Helm version from {version_output.strip()[:80]!r}")
    major = int(match.group(1))
    if major not in (3, 4):
        raise ModuleError(f"Helm {version_output.strip()} is not supported; use Helm 3 or Helm 4")
    return major


@dataclass(frozen=True)
class HelmFlags:
    wait: bool = True
    timeout: str = "5m"

    def args(self, major: int) -> list[str]:
        """Helm 4's bare --wait is its status watcher, which takes a Deployment whose Progressing condition
        says ProgressDeadlineExceeded as failed for good (pkg/kube/statuswait.go, statusObserver). A rollback to
        a revision whose ReplicaSet still exists keeps that condition until the rollout completes (the
        Deployment controller's sync sets a new condition only for a new ReplicaSet), so the watcher can fail a
        rollback that converges a moment later: the very releases this collection recovers. --wait=legacy is
        Helm 3's waiter (pkg/kube/ready.go), the readiness the lock verdict and the verify step read."""
        wait = "--wait=legacy" if major == 4 else "--wait"
        return ([wait] if self.wait else []) + ["--timeout", self.timeout]


def without_wait(argv: t.Sequence[str]) -> list[str]:
    """The same command without the wait flag, in either Helm's form (HelmFlags.args)."""
    return [arg for arg in argv if arg != "--wait" and not arg.startswith("--wait=")]


def rollback_argv(helm: str, major: int, release: str, namespace: str, *, revision: int, flags: HelmFlags) -> list[str]:
    return [helm, "rollback", release, str(revision), "--namespace", namespace, *flags.args(major)]


# Where an upgrade's values come from (pkg/action/upgrade.go, reuseValues; "current" there is the last
# deployed revision, or the newest when it failed and none was deployed):
#   newest    the user-supplied values the newest revision recorded (what the interrupted or failed operation
#             meant to apply), from a file, with --reset-values so the new chart's own defaults apply;
#   deployed  --reset-then-reuse-values: the current revision's user-supplied values on the new chart's defaults;
#   reuse     --reuse-values: the current revision's values AND its chart's defaults (a new chart version whose
#             values moved fails to render with it);
#   chart     --reset-values: the chart's defaults and values_files only.
_VALUES_FLAGS = {
    "newest": ["--reset-values"],
    "deployed": ["--reset-then-reuse-values"],
    "reuse": ["--reuse-values"],
    "chart": ["--reset-values"],
}
VALUES_SOURCES = tuple(_VALUES_FLAGS)


def upgrade_argv(
    helm: str,
    major: int,
    release: str,
    namespace: str,
    chart: str,
    *,
    chart_version: str | None,
    values_source: str,
    values_files: t.Sequence[str] = (),
    force: bool,
    flags: HelmFlags,
) -> list[str]:
    """``values_files`` come last: for values_source newest, the first is the newest revision's values."""
    # NOTES.txt often prints credentials: Helm is asked not to print it (output_without_notes strips it too).
    argv = [helm, "upgrade", release, chart, "--namespace", namespace, "--hide-notes"]
    if chart_version:
        argv += ["--version", chart_version]
    argv += _VALUES_FLAGS[values_source]
    for path in values_files:
        argv += ["--values", path]
    if force and major == 3:
        argv.append("--force")
    elif force:
        # Helm 4 renamed --force to --force-replace, and replacing objects needs client-side apply.
        argv += ["--force-replace", "--server-side=false"]
    return argv + flags.args(major)


def uninstall_argv(
    helm: str, major: int, release: str, namespace: str, *, no_hooks: bool, keep_history: bool, flags: HelmFlags
) -> list[str]:
    argv = [helm, "uninstall", release, "--namespace", namespace]
    if no_hooks:
        argv.append("--no-hooks")
    if keep_history:
        argv.append("--keep-history")
    return argv + flags.args(major)


def chart_is_local(chart: str) -> bool:
    """A chart directory or packaged .tgz on disk carries its own version."""
    return os.path.isdir(chart) or (os.path.isfile(chart) and chart.endswith((".tgz", ".tar.gz")))


def output_without_notes(output: str) -> str:
    """What Helm printed, without the chart's NOTES section (it often holds credentials)."""
    kept = []
    for line in output.splitlines():
        if line.strip() == "NOTES:":
            break
        kept.append(line)
    return "\n".join(kept).strip()


# What the API server says when an object cannot be changed in place, as Helm passes it on
# (pkg/kube/client.go: "cannot patch %q with kind %s: %w" for a patch, "failed to replace object: %w"
# for --force / --force-replace). Helm appends a diff of the object after it, which explains nothing.
_INVALID_OBJECT = re.compile(
    r'(?:cannot patch "(?P<patched>[^"]+)" with kind (?P<patched_kind>\w+): )?'
    r'(?P<kind>[A-Z]\w*)(?:\.[\w.]+)? "(?P<name>[^"]+)" is invalid: (?P<field>[\w.\[\]-]+): (?P<reason>[^\n]*)'
)
_IMMUTABLE = re.compile(r"immutable|Forbidden: updates to statefulset spec")
_WHAT_TO_DO = {
    "StatefulSet": (
        "delete only the StatefulSet and keep its pods and claims (kubectl delete statefulset {name} "
        "--cascade=orphan -n {namespace}), then run the upgrade again: Helm recreates it and it adopts them"
    ),
    "PersistentVolumeClaim": (
        "a bound claim's spec cannot change except to grow its storage request: keep the claim's settings as they "
        "are in the values (and do not use force_replace, which tries to replace the claim)"
    ),
}
_DEFAULT_TO_DO = "delete and recreate that object after checking it holds no data, or keep the field as it is"


# The API server quotes the whole refused value ("Invalid value: [{...}]: field is immutable"), compact JSON.
_QUOTED_VALUE = re.compile(r'Invalid value: [\[{"].*?(?=: (?:field is immutable|[A-Za-z][\w ]*$))', re.MULTILINE)


def helm_error_cause(output: str) -> str:
    """Helm's own error without what it appends (Helm 3 a diff of the object, Helm 4 a log line
    with the same text escaped): its `Error:` line, the refused value elided, at most 600 characters."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    cause = errors[0] if errors else " ".join(lines[-3:])
    return _QUOTED_VALUE.sub("Invalid value: (elided)", cause)[:600]


def refused_objects(output: str, namespace: str) -> list[dict[str, t.Any]]:
    """Each object the API server refused to change, its field and what the person can do."""
    found: dict[tuple[str, str, str], dict[str, t.Any]] = {}
    for match in _INVALID_OBJECT.finditer(output):
        kind = match.group("patched_kind") or match.group("kind")
        name = match.group("patched") or match.group("name")
        field_path = match.group("field")
        reason = _QUOTED_VALUE.sub("Invalid value: (elided)", match.group("reason").split(" && ")[0])
        immutable = bool(_IMMUTABLE.search(reason))
        advice = _WHAT_TO_DO.get(kind, _DEFAULT_TO_DO) if immutable else "fix the value that renders this field"
        found.setdefault(
            (kind, name, field_path),
            {
                "kind": kind,
                "name": name,
                "field": field_path,
                "immutable": immutable,
                "reason": reason.strip()[:200],
                "what_to_do": advice.format(name=shlex.quote(name), namespace=shlex.quote(namespace)),
            },
        )
    return list(found.values())
