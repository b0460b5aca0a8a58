"""A loopback fault proxy between the modules and the real API server.

It terminates TLS with the local control plane's own serving certificate (made
for 127.0.0.1 and signed by .cluster/pki/ca.crt, so a kubeconfig only changes
the port), forwards every request to the real API server over TLS, and, for the
requests a rule matches, answers instead with a fault:

- ``429`` (with ``Retry-After``), ``500``, ``503``: a Kubernetes Status body,
  the request never reaches the API server;
- ``reset``: the connection is reset before the request is forwarded;
- ``reset-after``: the request is forwarded (and applied), then the connection
  is reset before the answer reaches the client;
- ``trickle``: the real answer (status line, headers and body) is sent one byte
  every ``interval`` seconds, as a stalled network or server does; from the
  ``start``-th byte (0: the status line trickles too);
- ``hook``: ``before`` is called before the request is forwarded and ``after``
  once the API server answered, before the answer is returned (used to stop
  the API server in mid-run). When the API server is gone the client's
  connection is reset, as it would be without the proxy.

A rule applies to the first ``times`` matching requests, or to all of them
when ``times`` is None. Every request is logged with the fault it got.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import struct
import threading
import time
import typing as t
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATUS_FAULTS = {"429": "TooManyRequests", "500": "InternalError", "503": "ServiceUnavailable"}
FAULTS = (*STATUS_FAULTS, "reset", "reset-after", "hook", "trickle")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


@dataclass
class Rule:
    method: str  # an HTTP method, or "*"
    path: str  # a regular expression searched in the path (query included)
    fault: str
    times: int | None = 1  # None: every matching request
    retry_after: int = 1
    interval: float = 1.0  # trickle: seconds between two bytes
    start: int = 0  # trickle: bytes sent at once before the trickle
    before: t.Callable[[str, str], None] | None = None  # hook: (method, path), before forwarding
    after: t.Callable[[str, str, int], None] | None = None  # hook: (method, path, status), after it
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return self.method in ("*", method) and re.search(self.path, path) is not None


@dataclass
class Seen:
    method: str
    path: str
    fault: str | None
    status: int | None  # what the client got (None: reset)


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    cert: Path
    key: Path
    ca: Path
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for fault in (rule.fault for rule in self.rules):
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        self.server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def add(self, rule: Rule) -> Rule:
        if rule.fault not in FAULTS:
            raise ValueError(f"unknown fault {rule.fault!r}")
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.seen.clear()

    def pick(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def record(self, method: str, path: str, fault: str | None, status: int | None) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, fault, status))

    def faulted(self) -> list[Seen]:
        return [s for s in self.seen if s.fault]

    def forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, list, bytes]:
        context = ssl.create_default_context(cafile=str(self.ca))
        connection = http.client.HTTPSConnection(self.upstream_host, self.upstream_port, context=context, timeout=60)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_HEADERS:
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        return  # a connection we reset on purpose is not an error


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: t.Any) -> None:
            return

        def _serve(self) -> None:
            method, path = self.command, self.path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rule = proxy.pick(method, path)
            fault = rule.fault if rule else None
            if fault in STATUS_FAULTS:
                self._status_fault(int(str(fault)), STATUS_FAULTS[str(fault)], rule)
                proxy.record(method, path, fault, int(str(fault)))
                return
            if fault == "reset":
                proxy.record(method, path, fault, None)
                self._reset()
                return
            if fault == "hook" and rule and rule.before:
                rule.before(method, path)
            try:
                status, headers, payload = proxy.forward(method, path, list(self.headers.items()), body)
            except OSError:
                # The API server is gone: the client sees what it would see, a broken connection.
                proxy.record(method, path, "upstream-unreachable", None)
                self._reset()
                return
            if fault == "reset-after":
                proxy.record(method, path, fault, None)
                self._reset()
                return
            if fault == "hook" and rule and rule.after:
                rule.after(method, path, status)
            proxy.record(method, path, fault, status)
            if fault == "trickle" and rule:
                self._trickle(status, headers, payload, rule)
                return
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _trickle(self, status: int, headers: list[tuple[str, str]], payload: bytes, rule: Rule) -> None:
            lines = [f"HTTP/1.1 {status} OK"]
            lines += [f"{name}: {value}" for name, value in headers if name.lower() not in _HOP_HEADERS]
            lines.append(f"Content-Length: {len(payload)}")
            answer = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
            self.close_connection = True
            try:
                self.wfile.write(answer[: rule.start])
                self.wfile.flush()
                for index in range(rule.start, len(answer)):
                    time.sleep(rule.interval)
                    self.wfile.write(answer[index : index + 1])
                    self.wfile.flush()
            except OSError:
                return  # the client gave up, as it should

        def _status_fault(self, code: int, reason: str, rule: Rule | None) -> None:
            payload = json.dumps(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"injected {code} by the fault proxy",
                    "reason": reason,
                    "code": code,
                }
            ).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if code == 429 and rule:
                self.send_header("Retry-After", str(rule.retry_after))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout: close() sends RST, not FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

    return Handler


def for_cluster(kubeconfig: str, pki: Path, directory: Path) -> tuple[FaultProxy, str]:
    """A proxy in front of the cluster of ``kubeconfig`` and a kubeconfig (same token) that points at it.

    ``pki`` holds the control plane's ca.crt and the serving certificate the proxy reuses.
    """
    import yaml

    config = yaml.safe_load(Path(kubeconfig).read_text())
    server = config["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    proxy = FaultProxy(host, int(port), pki / "apiserver.crt", pki / "apiserver.key", pki / "ca.crt")
    config["clusters"][0]["cluster"]["server"] = proxy.url
    config["clusters"][0]["cluster"]["certificate-authority"] = str(pki / "ca.crt")
    path = directory / f"kubeconfig-proxy-{proxy.port}"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return proxy, str(path)
