"""KubeClient's retry policy, with a scripted stand-in for the HTTP layer
(the real-server behaviour is covered by the integration tests)."""

from __future__ import annotations

import json
import re
import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _k8s
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import (
    KubeClient,
    KubeConflict,
    KubeError,
    KubeForbidden,
    RetryPolicy,
)


class Response:
    def __init__(self, status: int, body: dict[str, t.Any] | None = None, retry_after: str | None = None) -> None:
        self.status = status
        self.data = json.dumps(body or {}).encode()
        self._headers = {"Retry-After": retry_after} if retry_after else {}

    def read(self) -> None:
        return None

    def getheader(self, name: str) -> str | None:
        return self._headers.get(name)


class ScriptedApiClient:
    """Answers each call with the next scripted response."""

    def __init__(self, responses: list[Response]) -> None:
        self.responses = responses
        self.calls: list[str] = []
        self.configuration = type("C", (), {"host": "https://127.0.0.1:1"})()

    def param_serialize(self, **kwargs: t.Any) -> tuple[t.Any, ...]:
        return kwargs["method"], kwargs["resource_path"], kwargs["header_params"], kwargs.get("body"), None

    def call_api(self, method: str, url: str, **kwargs: t.Any) -> Response:
        self.calls.append(method)
        return self.responses.pop(0)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(_k8s.time, "sleep", recorded.append)
    return recorded


def client(responses: list[Response]) -> tuple[KubeClient, ScriptedApiClient]:
    api = ScriptedApiClient(responses)
    return KubeClient(api, RetryPolicy(attempts=4, base_delay=0.1, max_delay=1.0, max_total=60)), api


def test_429_waits_at_least_retry_after(sleeps: list[float]) -> None:
    kube, api = client([Response(429, retry_after="3"), Response(200, {"items": []})])
    assert kube.request("DELETE", "/x", target="Secret a/b") == {"items": []}
    assert api.calls == ["DELETE", "DELETE"]
    assert sleeps and sleeps[0] >= 3.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_transient_5xx_reads_and_deletes_back_off_then_succeed(sleeps: list[float], status: int) -> None:
    for method in ("GET", "DELETE"):
        kube, api = client([Response(status), Response(status), Response(200, {"ok": True})])
        assert kube.request(method, "/x", target="t") == {"ok": True}
        assert len(api.calls) == 3
    assert all(0 < s <= 1.0 for s in sleeps)


def test_gives_up_within_the_bound_with_a_clear_message(sleeps: list[float]) -> None:
    kube, api = client([Response(503)] * 4)
    with pytest.raises(KubeError, match=r"gave up after 4 attempts"):
        kube.request("GET", "/x", target="secrets in namespace a")
    assert len(api.calls) == 4


def test_a_put_is_retried_only_on_429(sleeps: list[float]) -> None:
    kube, api = client([Response(503), Response(200)])
    with pytest.raises(KubeError) as caught:
        kube.request("PUT", "/x", target="Secret a/b", body={})
    assert caught.value.status == 503
    assert api.calls == ["PUT"]  # the write may have been applied: never repeated blindly
    kube, api = client([Response(429, retry_after="1"), Response(200, {"ok": True})])
    assert kube.request("PUT", "/x", target="Secret a/b", body={}) == {"ok": True}
    assert api.calls == ["PUT", "PUT"]


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (403, KubeForbidden, "forbidden (403) to update Secret a/b"),
        (409, KubeConflict, "conflict (409) trying to update Secret a/b: it changed since it was read"),
    ],
)
def test_client_errors_are_not_retried(sleeps: list[float], status: int, error: type, text: str) -> None:
    kube, api = client([Response(status, {"reason": "x", "message": "m"})])
    with pytest.raises(error, match=re.escape(text)):
        kube.request("PUT", "/x", target="Secret a/b", body={})
    assert api.calls == ["PUT"] and sleeps == []
