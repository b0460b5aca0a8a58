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


@dataclass
class HelmFlags:
    wait: bool = True
    timeout: str = "5m"


def _wait_flags(flags: HelmFlags) -> list[str]:
    return (["--wait"] if flags.wait else []) + ["--timeout", flags.timeout]


def rollback_argv(helm: str, release: str, namespace: str, revision: int, flags: HelmFlags) -> list[str]:
    return [helm, "rollback", release, str(revision), "--namespace", namespace, *_wait_flags(flags)]


def upgrade_argv(
    helm: str,
    major: int,
    release: str,
    namespace: str,
    chart: str,
    *,
    chart_version: str | None,
    values_files: t.Sequence[str] = (),
    reuse_values: bool,
    force: bool,
    flags: HelmFlags,
) -> list[str]:
    # NOTES.txt often prints credentials: Helm is asked not to print it (output_without_notes strips it too).
    argv = [helm, "upgrade", release, chart, "--namespace", namespace, "--hide-notes"]
    if chart_version:
        argv += ["--version", chart_version]
    if reuse_values:
        argv.append("--reuse-values")
    for path in values_files:
        argv += ["--values", path]
    if force and major == 3:
        argv.append("--force")
    elif force:
        # Helm 4 renamed --force to --force-replace, and replacing objects needs client-side apply.
        argv += ["--force-replace", "--server-side=false"]
    return argv + _wait_flags(flags)


def uninstall_argv(
    helm: str, release: str, namespace: str, *, no_hooks: bool, keep_history: bool, flags: HelmFlags
) -> list[str]:
    argv = [helm, "uninstall", release, "--namespace", namespace]
    if no_hooks:
        argv.append("--no-hooks")
    if keep_history:
        argv.append("--keep-history")
    return argv + _wait_flags(flags)


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
