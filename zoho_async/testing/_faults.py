"""Scripted faults: answers the fake gives instead of (or on top of) normal behaviour.

A :class:`Fault` describes one answer. ``FakeZoho.script(route, faults)`` queues faults per
route; the next requests to that route consume them in order, then normal behaviour resumes.

Example::

    fake.script("sync", [Fault.error(7005, http_status=500), Fault(drop=True, then_process=True)])
"""

from __future__ import annotations

import json as _json
import threading
from collections import deque
from collections.abc import Mapping, Sequence

import attrs

from ._wire import JSON_CONTENT_TYPE, failure_payload

# Route names a fault can be scripted on. "*" matches any analytics route (never "token",
# whose faults model the accounts server, a different host in production).
ROUTES = frozenset(
    {"token", "orgs", "workspaces", "workspace", "datasources", "sync", "resources", "unknown", "*"}
)


@attrs.frozen
class Fault:
    """One scripted answer.

    - ``status`` / ``body`` / ``json`` / ``headers`` / ``content_type``: the answer to send
      instead of the normal one. When none of ``status``, ``body`` and ``json`` is given, the
      normal answer is sent (useful with ``delay`` alone). ``status`` defaults to 200 when a
      body is given.
    - ``delay``: seconds to wait before answering (exceed a client timeout with it).
    - ``drop``: close the connection without any response.
    - ``then_process``: process the request normally first (a sync really starts), then
      answer with this fault: "the server did the work but the answer was lost".

    Example::

        Fault(status=502, body="bad gateway")
        Fault(delay=5.0)                       # slow, then the normal answer
        Fault(drop=True, then_process=True)    # sync starts, the client sees a reset
    """

    status: int | None = None
    body: bytes | str | None = None
    json: object | None = None
    headers: Mapping[str, str] | None = None
    content_type: str | None = None
    delay: float = 0.0
    drop: bool = False
    then_process: bool = False

    @property
    def overrides_answer(self) -> bool:
        """True when this fault replaces the normal answer with its own."""
        return self.status is not None or self.body is not None or self.json is not None

    def render(self) -> tuple[int, bytes, dict[str, str]]:
        """The status, body bytes and headers this fault answers with."""
        headers = dict(self.headers or {})
        if self.json is not None:
            body = _json.dumps(self.json).encode()
            content_type = self.content_type or JSON_CONTENT_TYPE
        elif isinstance(self.body, str):
            body = self.body.encode()
            content_type = self.content_type or "text/plain; charset=utf-8"
        else:
            body = self.body or b""
            content_type = self.content_type or "application/octet-stream"
        if body:
            headers.setdefault("Content-Type", content_type)
        status = self.status if self.status is not None else 200
        return status, body, headers

    @classmethod
    def error(cls, code: int, http_status: int = 400, message: str | None = None) -> Fault:
        """A Zoho failure envelope with ``code`` (any code, known to the fake or not).

        Example::

            Fault.error(7005, http_status=500)
        """
        return cls(status=http_status, json=failure_payload(code, message))

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """An HTML error page, as a load balancer or proxy sends.

        Example::

            Fault.html(503)
        """
        page = f"<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
        return cls(status=status, body=page, content_type="text/html; charset=utf-8")

    @classmethod
    def rate_limited(cls, retry_after: str | None = None, status: int = 429) -> Fault:
        """A rate-limit answer (error 6045), optionally with a ``Retry-After`` header.

        Example::

            Fault.rate_limited(retry_after="2")
        """
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        return cls(status=status, json=failure_payload(6045), headers=headers)


class FaultScript:
    """Per-route queues of pending faults; safe to fill from another thread."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()

    def add(self, route: str, faults: Sequence[Fault]) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {sorted(ROUTES)}")
        with self._lock:
            self._queues.setdefault(route, deque()).extend(faults)

    def take(self, route: str) -> Fault | None:
        """The next fault for ``route``: its own queue first, then the "*" queue."""
        with self._lock:
            candidates = [route] if route == "token" else [route, "*"]
            for name in candidates:
                queue = self._queues.get(name)
                if queue:
                    return queue.popleft()
        return None

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()
