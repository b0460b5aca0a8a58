# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The commands shown to a person: the same argv the modules run (``_helm_cli``), pinned to the cluster the
facts were read from, with the release's storage driver and the user's options, shell-quoted.

PRIVATE: this module util is for the collection's own use and may change at any time without notice.

A printed command is pasted into some shell, later, on some machine: it names its cluster (the kubeconfig file
and context the module used), never relies on the shell's current context, and carries no credential. When the
cluster cannot be named (a kubeconfig given inline), it holds a placeholder, so that pasted as it is it fails
instead of acting on another cluster.
"""

from __future__ import annotations

import dataclasses
import shlex
import typing as t
from dataclasses import dataclass, field

from ._helm_cli import HelmFlags, rollback_argv, uninstall_argv, upgrade_argv
from ._history import DEFAULT_CLIENT_TIMEOUT, DEFAULT_STALE_AFTER

INLINE_KUBECONFIG = "<the kubeconfig given inline>"
IN_CLUSTER = "<the in-cluster service account>"


@dataclass(frozen=True)
class ClusterPin:
    """How a printed command names the cluster: the options the module was given (or the current context of
    the default kubeconfig it loaded)."""

    kubeconfig: str = ""
    context: str = ""
    server: str = ""

    @classmethod
    def from_params(
        cls, params: t.Mapping[str, t.Any], default_kubeconfig: t.Callable[[], tuple[str, str]] = lambda: ("", "")
    ) -> ClusterPin:
        """``default_kubeconfig``: (file, current context) of the default kubeconfig, asked for only when the
        params name no kubeconfig and no host (the module passes _k8s.default_kubeconfig)."""
        kubeconfig = params.get("kubeconfig")
        context = str(params.get("context") or "")
        server = str(params.get("host") or "")  # the client takes host over the kubeconfig's server
        if isinstance(kubeconfig, t.Mapping):
            return cls(INLINE_KUBECONFIG, context, server)
        if kubeconfig or server:
            return cls(str(kubeconfig or ""), context, server)
        path, current = default_kubeconfig()
        if not path and not current:
            return cls(IN_CLUSTER, context)
        return cls(path, context or current)

    def helm_args(self) -> list[str]:
        return self._args("--kubeconfig", "--kube-context", "--kube-apiserver")

    def kubectl_args(self) -> list[str]:
        return self._args("--kubeconfig", "--context", "--server")

    def module_args(self) -> list[tuple[str, str]]:
        pairs = [("kubeconfig", self.kubeconfig), ("context", self.context), ("host", self.server)]
        return [(name, value) for name, value in pairs if value]

    def _args(self, kubeconfig: str, context: str, server: str) -> list[str]:
        args = [kubeconfig, self.kubeconfig] if self.kubeconfig else []
        args += [context, self.context] if self.context else []
        return args + ([server, self.server] if self.server else [])


@dataclass(frozen=True)
class CommandSettings:
    """What every printed command carries besides the release: the cluster and the user's options."""

    pin: ClusterPin = field(default_factory=ClusterPin)
    stale_after: int = DEFAULT_STALE_AFTER
    client_timeout: int = DEFAULT_CLIENT_TIMEOUT
    helm_flags: HelmFlags = field(default_factory=HelmFlags)
    force: bool = False  # the steps of a lock decided as stale by force: the module is told so too

    @classmethod
    def from_params(
        cls, params: t.Mapping[str, t.Any], default_kubeconfig: t.Callable[[], tuple[str, str]] = lambda: ("", "")
    ) -> CommandSettings:
        stale_after, client_timeout = params.get("stale_after"), params.get("client_timeout")
        return cls(
            ClusterPin.from_params(params, default_kubeconfig),
            DEFAULT_STALE_AFTER if stale_after is None else int(stale_after),
            DEFAULT_CLIENT_TIMEOUT if client_timeout is None else int(client_timeout),
        )

    def lock_options(self) -> list[tuple[str, str]]:
        """The lock verdict's options a module command needs to decide as the facts did."""
        options = []
        if self.stale_after != DEFAULT_STALE_AFTER:
            options.append(("stale_after", str(self.stale_after)))
        if self.client_timeout != DEFAULT_CLIENT_TIMEOUT:
            options.append(("client_timeout", str(self.client_timeout)))
        if self.force:
            options.append(("force", "true"))
        return options


def module_argument(name: str, value: str) -> str:
    """One key=value of an ad-hoc module's -a string, quoted as Ansible's parse_kv reads it back."""
    if not any(c.isspace() or c in "'\"\\=" for c in value):
        return f"{name}={value}"
    quote = '"' if '"' not in value else "'"
    if quote in value or "\\" in value:
        raise ValueError(f"cannot quote {name} for an ad-hoc command: {value!r}")
    return f"{name}={quote}{value}{quote}"


def _argument_or_placeholder(name: str, value: str) -> str:
    try:
        return module_argument(name, value)
    except ValueError:  # both kinds of quote: a placeholder fails when pasted, instead of meaning something else
        return f"{name}=<{name}>"


class Commands:
    """The commands a person would run for one release, built from the argv the modules run."""

    def __init__(
        self,
        name: str,
        namespace: str,
        driver: str = "secret",
        settings: CommandSettings | None = None,
        helm_major: int = 3,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.driver = driver or "secret"
        self.settings = settings or CommandSettings()
        self.helm_major = helm_major  # the flags differ (_helm_cli.HelmFlags.args); the printed binary is `helm`

    def _line(self, argv: t.Sequence[str], *, helm: bool) -> str:
        pin = self.settings.pin.helm_args() if helm else self.settings.pin.kubectl_args()
        line = shlex.join([*argv, *pin])
        if helm and self.driver != "secret":
            # Helm reads ConfigMap-stored releases only when told to (without it: "release: not found").
            line = f"HELM_DRIVER={shlex.quote(self.driver)} {line}"
        return line

    def helm(self, verb: str, *args: str) -> str:
        return self._line(["helm", *verb.split(), self.name, *args, "--namespace", self.namespace], helm=True)

    def status(self) -> str:
        return self.helm("status")

    def rollback(self, revision: int, *, wait: bool = True) -> str:
        """What helm_release_recover runs: with stuck pods it applies the template without --wait (_recover.py
        plan_stuck_pods), then replaces the pods."""
        flags = dataclasses.replace(self.settings.helm_flags, wait=wait)
        return self._line(
            rollback_argv("helm", self.helm_major, self.name, self.namespace, revision=revision, flags=flags), helm=True
        )

    def upgrade(self, chart: str, chart_version: str, values_file: str, *, wait: bool = True) -> str:
        """What helm_release_recover runs with values_source newest: the newest revision's values on the
        chart's own defaults (_helm_cli.upgrade_argv)."""
        flags = dataclasses.replace(self.settings.helm_flags, wait=wait)
        argv = upgrade_argv(
            "helm",
            self.helm_major,
            self.name,
            self.namespace,
            chart,
            chart_version=chart_version,
            values_source="newest",
            values_files=[values_file],
            force=False,
            flags=flags,
        )
        return self._line(argv, helm=True)

    def install(self, chart: str, chart_version: str, values_file: str) -> str:
        argv = ["helm", "install", self.name, chart, "--namespace", self.namespace, "--hide-notes"]
        argv += ["--version", chart_version, "--values", values_file, *self.settings.helm_flags.args(self.helm_major)]
        return self._line(argv, helm=True)

    def uninstall(self, *, no_hooks: bool) -> str:
        argv = uninstall_argv(
            "helm",
            self.helm_major,
            self.name,
            self.namespace,
            no_hooks=no_hooks,
            keep_history=False,
            flags=self.settings.helm_flags,
        )
        return self._line(argv, helm=True)

    def kubectl(self, *args: str) -> str:
        return self.kubectl_in(self.namespace, *args)

    def kubectl_in(self, namespace: str, *args: str) -> str:
        return self._line(["kubectl", *args, "--namespace", namespace], helm=False)

    def module(self, name: str, *options: tuple[str, str], lock: bool = False) -> str:
        """An ad-hoc run of one of the collection's modules on this release; ``lock``: the module decides on the
        lock verdict, so it gets the options the facts decided with."""
        pairs = [("release", self.name), ("namespace", self.namespace), *options]
        if self.driver != "secret":
            pairs.append(("driver", self.driver))
        if lock:
            pairs += self.settings.lock_options()
        pairs += self.settings.pin.module_args()
        arguments = " ".join(_argument_or_placeholder(key, value) for key, value in pairs)
        return f"ansible localhost -m helmops.recovery.{name} -a {shlex.quote(arguments)}"
