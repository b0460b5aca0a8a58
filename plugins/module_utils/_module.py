# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every module of the collection shares: the connection argument spec,
building the API client, and the one place where exceptions become
``fail_json``.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import os
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ._collector import quiet_collector
from ._errors import ModuleError
from ._k8s import (
    DEFAULT_REQUEST_TIMEOUT,
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    ConnectionOptions,
    KubeClient,
    KubeError,
    build_api_client,
)
from ._manifest import HAS_YAML
from ._release_codec import Driver, InvalidNameError, ReleaseRecordError

# Same names, aliases and K8S_AUTH_* fallbacks as kubernetes.core, so
# module_defaults and AWX's Kubernetes bearer-token credential carry over.
# Documented by plugins/doc_fragments/connection.py (a unit test keeps them equal).
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "kubeconfig": {"type": "raw", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"], "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"])},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"], "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"])},
    "client_cert": {"type": "path", "aliases": ["cert_file"], "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE"])},
    "client_key": {
        "type": "path",
        "aliases": ["key_file"],
        "no_log": False,
        "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE"]),
    },
    "proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY"])},
    "impersonate_user": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_USER"])},
    "impersonate_groups": {
        "type": "list",
        "elements": "str",
        "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_GROUPS"]),
    },
    "driver": {"type": "str", "choices": ["secret", "configmap"]},
    "request_timeout": {"type": "int", "default": DEFAULT_REQUEST_TIMEOUT},
}

# The one release a writing module acts on; documented by plugins/doc_fragments/release.py.
ONE_RELEASE_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "release": {"type": "str", "required": True, "aliases": ["name"]},
    "namespace": {"type": "str", "required": True},
}

# How the lock verdict tells a live Helm client from a stale lock; documented by plugins/doc_fragments/lock.py.
LOCK_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "stale_after": {"type": "int", "default": 600},
    "client_timeout": {"type": "int", "default": 900},
}

_HELM_DRIVER_NAMES: dict[str, Driver] = {
    "": "secret",
    "secret": "secret",
    "secrets": "secret",
    "configmap": "configmap",
    "configmaps": "configmap",
}


def resolve_driver(params: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None) -> Driver:
    """The driver option, else $HELM_DRIVER as Helm reads it, else secret."""
    environ = os.environ if environ is None else environ
    if params.get("driver"):
        return t.cast(Driver, params["driver"])
    helm_driver = environ.get("HELM_DRIVER", "").strip().lower()
    if helm_driver not in _HELM_DRIVER_NAMES:
        raise ModuleError(
            f"HELM_DRIVER={helm_driver!r} is not supported: this collection reads the secret and configmap drivers "
            "(set driver: secret or driver: configmap)"
        )
    return _HELM_DRIVER_NAMES[helm_driver]


class Context:
    """What a module's run function gets: the module, the API client, the driver."""

    def __init__(self, module: AnsibleModule, client: KubeClient, driver: Driver) -> None:
        self.module = module
        self.client = client
        self.driver = driver

    @property
    def params(self) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], self.module.params)

    @property
    def check_mode(self) -> bool:
        return bool(self.module.check_mode)


# Kubeconfig user fields that name things rather than hold secrets; every other string under
# users[*].user (token, password, client-key-data, auth-provider config, exec env values and
# args, ...) is kept out of every output.
_NOT_SECRET_KUBECONFIG_FIELDS = frozenset(
    {"apiVersion", "command", "name", "installHint", "interactiveMode", "username", "client-certificate", "client-key"}
)


def _kubeconfig_secrets(value: t.Any, field: str = "") -> t.Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _kubeconfig_secrets(item, str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _kubeconfig_secrets(item, field)
    elif isinstance(value, str) and len(value) > 3 and field not in _NOT_SECRET_KUBECONFIG_FIELDS:
        yield value


def _hide_kubeconfig(module: AnsibleModule) -> None:
    """A kubeconfig given as a dictionary: every credential in it, however nested, is no_log,
    before anything (a failure to load it, say) can print it."""
    kubeconfig = module.params.get("kubeconfig")
    if isinstance(kubeconfig, dict):
        for user in kubeconfig.get("users") or []:
            if isinstance(user, dict):
                module.no_log_values.update(_kubeconfig_secrets(user.get("user")))


def _hide_credentials(module: AnsibleModule, api_client: t.Any) -> None:
    """Keep the resolved tokens (kubeconfig file, exec plugin, api_key) out of every output."""
    api_key = getattr(api_client.configuration, "api_key", None) or {}
    for value in api_key.values():
        if value:
            module.no_log_values.add(str(value))
            module.no_log_values.add(str(value).replace("Bearer ", "", 1).strip())


def run_module(
    argument_spec: dict[str, dict[str, t.Any]],
    run: t.Callable[[Context], dict[str, t.Any]],
    *,
    bulk_read: bool = False,
    **module_kwargs: t.Any,
) -> None:
    """Build the module, run ``run`` and exit; every failure ends here as fail_json.

    ``bulk_read``: the module reads a cluster's worth of records into a large
    result and writes nothing, so it runs with the collector quiet
    (_collector.py). Modules that write, and may send thousands of requests,
    keep the collector.
    """
    with quiet_collector(active=bulk_read):
        module = AnsibleModule(
            argument_spec={**CONNECTION_ARGUMENT_SPEC, **argument_spec}, supports_check_mode=True, **module_kwargs
        )
        result = _run(module, run)
        # Inside: exit_json copies the result (no_log values) and encodes it, a fleet's worth of containers.
        module.exit_json(**result)


def _run(module: AnsibleModule, run: t.Callable[[Context], dict[str, t.Any]]) -> dict[str, t.Any]:
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    _hide_kubeconfig(module)
    try:
        api_client = build_api_client(ConnectionOptions.from_params(module.params))
        _hide_credentials(module, api_client)
        client = KubeClient(api_client, timeout=float(module.params["request_timeout"]))
        context = Context(module, client, resolve_driver(module.params))
        result = run(context)
        if context.client.retries_done:
            module.warn(f"{context.client.retries_done} API request(s) were retried after transient errors")
    except KubeError as exc:
        module.fail_json(msg=str(exc), api_status=exc.status, api_reason=exc.reason)
    except ReleaseRecordError as exc:
        module.fail_json(msg=str(exc), record=exc.object_ref, reason=exc.reason)
    except (ModuleError, InvalidNameError) as exc:
        module.fail_json(msg=str(exc), **getattr(exc, "details", {}))
    except Exception as exc:
        module.fail_json(msg=f"unexpected error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    return result
