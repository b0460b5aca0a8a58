# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes API access: client construction from connection options, raw
JSON requests, retries with backoff, and the mapping of every failure to a
typed error that names the object and the cause.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Requests go through the official client's ApiClient (auth, TLS, proxy,
kubeconfig handling) but bodies are read as plain JSON: release records are
large and the typed models would only slow listing down. A caller listing
Secrets whole may accept protobuf instead (``request(protobuf=...)``).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import quote

from ._protobuf import MEDIA_TYPE as PROTOBUF
from ._protobuf import ProtobufError, decode_status

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR: Exception | None = None
except ImportError as _import_error:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = _import_error

FIELD_MANAGER = "helmops.recovery"
USER_AGENT = "helmops.recovery"
RETRYABLE_STATUSES = (429, 500, 502, 503, 504)
DEFAULT_REQUEST_TIMEOUT = 60  # seconds for one request, from connecting to its last byte
CONNECT_TIMEOUT = 10


class KubeError(Exception):
    """A Kubernetes API request that did not succeed.

    ``status`` is the HTTP status (0 when the server could not be reached),
    ``reason`` the API's machine-readable reason where it gave one.
    """

    def __init__(self, message: str, status: int = 0, reason: str = "", target: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.target = target


class KubeUnreachable(KubeError):
    """The API server could not be reached or its TLS identity not verified."""


class KubeUnauthorized(KubeError):
    """401: the credentials were rejected."""


class KubeForbidden(KubeError):
    """403: the identity may not perform the request (RBAC)."""


class KubeNotFound(KubeError):
    """404."""


class KubeConflict(KubeError):
    """409: the object changed since it was read (resourceVersion / precondition)."""


class KubeInvalid(KubeError):
    """422: the API server rejected the object (for example the 1 MiB limit)."""


class KubeConfigError(KubeError):
    """The connection options or kubeconfig are unusable."""


class KubeDeadline(KubeUnreachable):
    """The request did not complete within its overall deadline (a stalled or trickling server)."""


_ERRORS_BY_STATUS: dict[int, type[KubeError]] = {
    401: KubeUnauthorized,
    403: KubeForbidden,
    404: KubeNotFound,
    409: KubeConflict,
    422: KubeInvalid,
}


@dataclass
class ConnectionOptions:
    """The kubernetes.core-compatible connection options."""

    kubeconfig: str | dict[str, t.Any] | None = None
    context: str | None = None
    host: str | None = None
    api_key: str | None = None
    validate_certs: bool | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    proxy: str | None = None
    impersonate_user: str | None = None
    impersonate_groups: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> ConnectionOptions:
        names = cls.__dataclass_fields__.keys()
        values: dict[str, t.Any] = {name: params.get(name) for name in names}
        values["impersonate_groups"] = list(params.get("impersonate_groups") or [])
        return cls(**values)


def _load_configuration(options: ConnectionOptions) -> t.Any:
    configuration = k8s_client.Configuration()
    kubeconfig = options.kubeconfig
    try:
        if isinstance(kubeconfig, dict):
            k8s_config.load_kube_config_from_dict(
                kubeconfig, context=options.context, client_configuration=configuration, persist_config=False
            )
        elif kubeconfig or not options.host:
            try:
                k8s_config.load_kube_config(
                    config_file=kubeconfig,
                    context=options.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (ConfigException, FileNotFoundError):
                if kubeconfig or options.context:
                    raise
                try:
                    k8s_config.load_incluster_config(client_configuration=configuration)
                except ConfigException as exc:
                    raise KubeConfigError(
                        "no Kubernetes credentials: no kubeconfig option (or K8S_AUTH_KUBECONFIG), no ~/.kube/config "
                        "(or KUBECONFIG), no host and api_key, and not running inside a cluster"
                    ) from exc
    except KubeConfigError:
        raise
    except (ConfigException, FileNotFoundError, OSError, ValueError) as exc:
        where = kubeconfig if isinstance(kubeconfig, str) else "the default kubeconfig or in-cluster config"
        raise KubeConfigError(f"cannot load Kubernetes credentials from {where}: {exc}") from exc
    return configuration


def default_kubeconfig() -> tuple[str, str]:
    """(file, current context) of the default kubeconfig (KUBECONFIG or ~/.kube/config), the one a module without
    connection options uses: a printed command names both, so it keeps acting there after the shell's KUBECONFIG
    or context changes. The file is '' for a KUBECONFIG list (helm and kubectl take one file); ('', '') when there
    is none (in a pod, in-cluster config)."""
    try:
        _contexts, active = k8s_config.list_kube_config_contexts()
    except (ConfigException, FileNotFoundError, OSError, ValueError):
        return "", ""
    paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    single = "" if os.pathsep in paths else os.path.abspath(paths)
    return single, str((active or {}).get("name") or "")


def build_api_client(options: ConnectionOptions) -> t.Any:
    """An official-client ApiClient configured like kubernetes.core does."""
    configuration = _load_configuration(options)
    if options.host:
        configuration.host = options.host
    if options.api_key:
        configuration.api_key = {"authorization": f"Bearer {options.api_key}"}
        configuration.api_key_prefix = {}
    if options.validate_certs is not None:
        configuration.verify_ssl = options.validate_certs
    if options.ca_cert:
        configuration.ssl_ca_cert = options.ca_cert
    if options.client_cert:
        configuration.cert_file = options.client_cert
    if options.client_key:
        configuration.key_file = options.client_key
    if options.proxy:
        configuration.proxy = options.proxy
    # Retries are ours (bounded, logged); the pool must cover our worker threads.
    configuration.retries = False
    configuration.connection_pool_maxsize = 16
    api_client = k8s_client.ApiClient(configuration)
    api_client.user_agent = USER_AGENT
    if options.impersonate_user:
        api_client.set_default_header("Impersonate-User", options.impersonate_user)
    # The API wants one Impersonate-Group header per group; default headers hold one
    # value per name, so KubeClient adds them itself as repeated headers.
    api_client.impersonate_groups = list(options.impersonate_groups)
    return api_client


@dataclass
class RetryPolicy:
    """How transient failures (429, 5xx, connection resets) are retried."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_total: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay, self.base_delay * (2**attempt)) * (0.5 + random.random() / 2)
        return max(backoff, retry_after or 0.0)


class KubeClient:
    """Raw-JSON access to the Kubernetes API with bounded retries."""

    def __init__(
        self, api_client: t.Any, retry: RetryPolicy | None = None, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        self.api_client = api_client
        self.retry = retry or RetryPolicy()
        self.timeout = timeout  # the overall deadline of one request (seconds)
        self.retries_done = 0  # reported by the module as a warning

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def request(
        self,
        method: str,
        path: str,
        *,
        target: str,
        query: list[tuple[str, str]] | None = None,
        body: t.Any = None,
        headers: dict[str, str] | None = None,
        retry: bool = True,
        protobuf: t.Callable[[bytes], dict[str, t.Any]] | None = None,
    ) -> dict[str, t.Any]:
        """Send one request; return the decoded JSON body.

        ``target`` names the object for error messages ("Secret ns/name").
        ``protobuf`` offers the API server protobuf as well as JSON and decodes
        a protobuf answer with it (_protobuf.py); a JSON answer is read as usual.
        Reads are retried after 429, 5xx and lost connections. PUT, POST and
        PATCH are retried only after a 429 (refused before processing): after a
        5xx or a lost connection they may have been applied, so the error is
        raised and never repeated blindly. Deletes carry uid + resourceVersion
        preconditions and callers treat 404 as done, so they are retried too.
        """
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._send(
                    method, path, target=target, query=query, body=body, headers=headers, protobuf=protobuf
                )
            except KubeError as exc:
                retry_after = getattr(exc, "retry_after", None)
                transient = isinstance(exc, KubeUnreachable) and getattr(exc, "transient", False)
                if not retry or not (exc.status in RETRYABLE_STATUSES or transient):
                    raise
                if method in ("PUT", "POST", "PATCH") and exc.status != 429:
                    # After a 5xx or a lost connection the write may have been applied: a
                    # retry would then report a conflict for our own change. Only a 429
                    # (rejected before processing) is safe to repeat. Deletes carry
                    # preconditions and treat 404 as done, so they may be retried.
                    raise
                attempt += 1
                delay = self.retry.delay(attempt, retry_after)
                if attempt >= self.retry.attempts or time.monotonic() - started + delay > self.retry.max_total:
                    raise type(exc)(
                        f"{exc} (gave up after {attempt} attempts in {time.monotonic() - started:.1f}s)",
                        exc.status,
                        exc.reason,
                        target,
                    ) from exc
                self.retries_done += 1
                time.sleep(delay)

    def _send(
        self,
        method: str,
        path: str,
        *,
        target: str,
        query: list[tuple[str, str]] | None,
        body: t.Any,
        headers: dict[str, str] | None,
        protobuf: t.Callable[[bytes], dict[str, t.Any]] | None = None,
    ) -> dict[str, t.Any]:
        header_params = {"Accept": f"{PROTOBUF}, application/json" if protobuf else "application/json"}
        if body is not None:
            header_params["Content-Type"] = "application/json"
        header_params.update(headers or {})
        _method, url, header_params, _body, _post = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=header_params,
            body=body,
            auth_settings=["BearerToken"],
        )
        groups = getattr(self.api_client, "impersonate_groups", None)
        if groups:
            header_params = urllib3.HTTPHeaderDict(header_params)
            for group in groups:
                header_params.add("Impersonate-Group", group)

        def exchange() -> t.Any:
            try:
                response = self.api_client.call_api(
                    method,
                    url,
                    header_params=header_params,
                    body=_body,
                    _request_timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout),
                )
                response.read()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _unreachable(self.host, target, exc) from exc
            except k8s_client.ApiException as exc:
                # The REST layer reports TLS and connection failures as status 0.
                raise _unreachable(self.host, target, exc) from exc
            return response

        response = _within(self.timeout, exchange, lambda: _late(self.host, target, self.timeout))
        status = int(response.status)
        if protobuf and str(response.getheader("Content-Type") or "").startswith(PROTOBUF):
            return _protobuf_answer(method, target, status, response, protobuf)
        text = response.data.decode("utf-8", "replace") if response.data else ""
        if 200 <= status < 300:
            try:
                return json.loads(text) if text else {}
            except ValueError as exc:
                raise KubeError(f"the API server answered {target} with a body that is not JSON", status) from exc
        raise _api_error(method, target, status, text, response)


def namespace_exists(client: KubeClient, namespace: str) -> bool:
    """Whether the namespace exists; True when that cannot be told (a namespaced Role cannot read Namespace
    objects): callers then meet the API server's own answer."""
    try:
        client.request("GET", f"/api/v1/namespaces/{path_quote(namespace)}", target=f"namespace {namespace}")
    except KubeNotFound:
        return False
    except KubeForbidden:
        return True
    return True


def delete_options(uid: str, resource_version: str, dry_run: bool = False) -> dict[str, t.Any]:
    """A DELETE body that deletes the object only if it is still exactly the one that was read."""
    body: dict[str, t.Any] = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": uid, "resourceVersion": resource_version},
    }
    if dry_run:
        body["dryRun"] = ["All"]
    return body


def _within(seconds: float, work: t.Callable[[], t.Any], late: t.Callable[[], KubeError]) -> t.Any:
    """``work()`` under an overall deadline.

    The client's timeouts apply to each socket read, so a server that sends a byte
    a second never trips them. The exchange runs on a daemon thread and is given up
    after ``seconds``; the thread, blocked in a read of that connection, ends with
    the process (modules are short-lived) and holds no lock of ours. Its cost per
    request is in docs/reliability.md.
    """
    outcome: dict[str, t.Any] = {}
    finished = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=run, name="helmops-kube-request", daemon=True).start()
    if not finished.wait(seconds):
        raise late()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _late(host: str, target: str, seconds: float) -> KubeDeadline:
    error = KubeDeadline(
        f"the Kubernetes API server {host} did not answer {target} within {seconds:g}s (request_timeout); "
        "the server or the network is stalled",
        target=target,
    )
    error.transient = False  # type: ignore[attr-defined]
    return error


def _protobuf_answer(
    method: str, target: str, status: int, response: t.Any, decode: t.Callable[[bytes], dict[str, t.Any]]
) -> dict[str, t.Any]:
    body = response.data or b""
    if not 200 <= status < 300:
        try:
            text = json.dumps(decode_status(body))
        except ProtobufError as exc:
            text = f"(a protobuf body that cannot be read: {exc})"
        raise _api_error(method, target, status, text, response)
    try:
        return decode(body)
    except ProtobufError as exc:
        raise KubeError(
            f"the API server answered {target} with a protobuf body that cannot be read: {exc}", status
        ) from exc


def _unreachable(host: str, target: str, exc: Exception) -> KubeUnreachable:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(exc).__name__ or "certificate" in text.lower():
        error = KubeUnreachable(
            f"cannot verify the TLS certificate of the API server {host} while accessing {target}: {text}. "
            "Check ca_cert (or K8S_AUTH_SSL_CA_CERT) and validate_certs.",
            target=target,
        )
        error.transient = False  # type: ignore[attr-defined]
        return error
    error = KubeUnreachable(
        f"cannot reach the Kubernetes API server {host} while accessing {target}: {text}", target=target
    )
    error.transient = True  # type: ignore[attr-defined]
    return error


def _api_error(method: str, target: str, status: int, text: str, response: t.Any) -> KubeError:
    reason = ""
    message = text.strip()[:500]
    try:
        body = json.loads(text)
        if isinstance(body, dict):
            reason = str(body.get("reason") or "")
            message = str(body.get("message") or message)
    except ValueError:
        pass
    verb = {"GET": "read", "PUT": "update", "POST": "create", "DELETE": "delete", "PATCH": "patch"}.get(method, method)
    if status == 401:
        summary = f"the API server rejected the credentials (401 Unauthorized) while trying to {verb} {target}"
    elif status == 403:
        summary = f"forbidden (403) to {verb} {target}: {message}"
    elif status == 404:
        summary = f"{target} not found (404)"
    elif status == 409:
        summary = f"conflict (409) trying to {verb} {target}: it changed since it was read ({message})"
    else:
        summary = f"failed to {verb} {target}: {status} {reason or ''} {message}".replace("  ", " ")
    error = _ERRORS_BY_STATUS.get(status, KubeError)(summary, status, reason, target)
    retry_after = _retry_after(response)
    if retry_after is not None:
        error.retry_after = retry_after  # type: ignore[attr-defined]
    return error


def _retry_after(response: t.Any) -> float | None:
    try:
        value = response.getheader("Retry-After")
    except AttributeError:
        headers = getattr(response, "headers", None) or {}
        value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(float(value), 30.0)
    except ValueError:
        return None


def path_quote(value: str) -> str:
    return quote(value, safe="")
