"""OpenTelemetry spans and metrics, and the ``extra=`` fields of the SDK's log records.

With the ``otel`` extra (``pip install 'zoho-async[otel]'``, i.e. ``opentelemetry-api``)
importable, the SDK reports through the global tracer and meter providers, instrumentation
scope ``zoho_async``:

* one CLIENT span per API call (``Executor.call``: its retries are inside it), named
  ``zoho <route>`` (``zoho sync``, ``zoho datasources``...), with the attributes
  ``zoho.org_id``, ``zoho.workspace_id``, ``zoho.datasource_id`` (when the request has
  them), ``http.response.status_code``, ``zoho.error_code`` (Zoho's code of the last
  failure), ``error.type`` (its class), ``zoho.attempts``, ``zoho.retry_reason`` (the class
  of the failure that caused the last retry) and, for Sync Data in a bulk run,
  ``zoho.sync_status`` (the target's status when its call ended: ``STARTED``,
  ``ALREADY_RUNNING``, ``FAILED``...);
* one INTERNAL span ``zoho sync run`` per bulk run (``sync_many``, ``iter_sync``,
  ``sync_workspaces``), the parent of its calls, whatever task they run in;
* counters ``zoho.sync.results`` (attribute ``status``: each result a run emits; a
  journal's replay of an earlier run's result is not counted again),
  ``zoho.rate_limited`` (6045 / HTTP 429 rejections), ``zoho.token.requests`` (access
  tokens requested from the accounts server), ``zoho.retries`` (attribute ``reason``, as
  ``zoho.retry_reason``), and the histogram ``zoho.pacing.wait`` (seconds a call waited
  for its pacing turn; 0 when it had not to wait).

Without the package nothing is imported, and every hook here is a no-op: the decorators
return the function they are given, unchanged. With the API but no SDK configured, the
API's no-op providers answer, and a call pays for one non-recording span.

Nothing secret is ever put in a span, a metric or a log extra: no token, no CONFIG (its
passwords), no request body or query; errors are named by class and code, not message.

Log records get the same fields under valid attribute names, the dots turned into
underscores: ``zoho.org_id`` -> ``record.zoho_org_id``, ``http.response.status_code`` ->
``record.http_response_status_code``, and so on (see :class:`LogFields`).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import unquote

if TYPE_CHECKING:
    from ._executor import CallResult
    from ._protocol import ApiRequest

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError:  # the extra is not installed: every hook below is a no-op
    ENABLED = False
else:
    ENABLED = True

__all__ = [
    "ENABLED",
    "LogFields",
    "rate_limited",
    "request_ids",
    "retried",
    "sync_outcome",
    "sync_result",
    "token_requested",
    "traced_call",
    "traced_run",
    "turn_waited",
]

_Call = TypeVar("_Call", bound=Callable[..., Awaitable["CallResult"]])
_Run = TypeVar("_Run", bound=Callable[..., Awaitable[None]])


def request_ids(request: ApiRequest) -> dict[str, str]:
    """The span attributes naming what ``request`` is about (org, workspace, datasource).

    The workspace and datasource ids are read from the path (``.../workspaces/<id>/
    datasources/<id>/...``): a segment counts only when another one follows it, so the
    listing ``.../workspaces/owned`` names no workspace.
    """
    ids: dict[str, str] = {}
    if request.org_id is not None:
        ids["zoho.org_id"] = request.org_id
    parts = request.path.split("/")
    for i in range(len(parts) - 2):
        if parts[i] == "workspaces":
            ids["zoho.workspace_id"] = unquote(parts[i + 1])
        elif parts[i] == "datasources":
            ids["zoho.datasource_id"] = unquote(parts[i + 1])
    return ids


class LogFields(Mapping[str, object]):
    """The ``extra=`` of a log record about one request: the span attributes' names with
    underscores for dots (``zoho_org_id``, ``zoho_workspace_id``, ``zoho_datasource_id``,
    ``http_response_status_code``, ``zoho_error_code``, ``zoho_attempts``,
    ``zoho_retry_reason``), absent when unknown.

    Lazy: ``logging`` reads an ``extra`` only when it makes a record, so a debug call
    that is filtered out costs one small object, not a parse of the path.
    """

    __slots__ = ("_fields", "_more", "_request")

    def __init__(self, request: ApiRequest, **more: object) -> None:
        self._request = request
        self._more = more
        self._fields: dict[str, object] | None = None

    def _all(self) -> dict[str, object]:
        if self._fields is None:
            fields: dict[str, object] = {
                key.replace(".", "_"): value for key, value in request_ids(self._request).items()
            }
            fields.update((k, v) for k, v in self._more.items() if v is not None)
            self._fields = fields
        return self._fields

    def __getitem__(self, key: str) -> object:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


if ENABLED:
    _VERSION: str
    try:
        _VERSION = _dist_version("zoho-async")
    except PackageNotFoundError:  # an uninstalled checkout: no version, still a scope
        _VERSION = ""

    # Proxies until the application sets its providers; they follow it once it does.
    _tracer = trace.get_tracer("zoho_async", _VERSION)
    _meter = metrics.get_meter("zoho_async", _VERSION)
    _results = _meter.create_counter(
        "zoho.sync.results", unit="{result}", description="Results emitted by bulk runs"
    )
    _rejections = _meter.create_counter(
        "zoho.rate_limited",
        unit="{rejection}",
        description="Calls Zoho rejected for the rate limit (6045 or HTTP 429)",
    )
    _tokens = _meter.create_counter(
        "zoho.token.requests",
        unit="{request}",
        description="Access tokens requested from the accounts server",
    )
    _retries = _meter.create_counter(
        "zoho.retries", unit="{retry}", description="Attempts retried, by reason"
    )
    _waits = _meter.create_histogram(
        "zoho.pacing.wait", unit="s", description="Time a call waited for its pacing turn"
    )
    # The bulk run's target whose Sync Data call is in progress in this task (see
    # sync_outcome): its call span stays open until the target's status is known.
    _outcome: contextvars.ContextVar[_SyncOutcome | None] = contextvars.ContextVar(
        "zoho_async_sync_outcome", default=None
    )

    def _end_call(span: Span, result: CallResult) -> None:
        if result.http_status is not None:
            span.set_attribute("http.response.status_code", result.http_status)
        span.set_attribute("zoho.attempts", result.attempts)
        error = result.error
        if error is not None:
            code = getattr(error, "code", None)
            if isinstance(code, int):
                span.set_attribute("zoho.error_code", code)
            span.set_attribute("error.type", type(error).__name__)
        if not result.ok:
            # the class only: a message could quote more than a span should carry
            span.set_status(
                Status(StatusCode.ERROR, type(error).__name__ if error else "cancelled")
            )

    def traced_call(method: _Call) -> _Call:
        """Wrap ``Executor.call``: one CLIENT span per call, current while it runs."""

        @functools.wraps(method)
        async def call(self: Any, request: ApiRequest, *args: Any, **kwargs: Any) -> CallResult:
            span = _tracer.start_span(
                f"zoho {request.route or request.method}", kind=SpanKind.CLIENT
            )
            if not span.is_recording():
                return await method(self, request, *args, **kwargs)
            span.set_attributes(request_ids(request))
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                result = await method(self, request, *args, **kwargs)
            except BaseException as exc:  # a bug or a cancellation: end the span, re-raise
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.end()
                raise
            finally:
                otel_context.detach(token)
            _end_call(span, result)
            outcome = _outcome.get() if request.route == "sync" else None
            if outcome is None or not outcome.hold(span):
                span.end()
            return result

        return cast(_Call, call)

    def traced_run(method: _Run) -> _Run:
        """Wrap ``Run.run``: the parent span of the run's calls (workers, waiter polls and
        discovery run in tasks started inside it, which copy its context)."""

        @functools.wraps(method)
        async def run(self: Any, *args: Any, **kwargs: Any) -> None:
            span = _tracer.start_span("zoho sync run", kind=SpanKind.INTERNAL)
            if not span.is_recording():
                return await method(self, *args, **kwargs)
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                await method(self, *args, **kwargs)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                otel_context.detach(token)
                span.end()
            return None

        return cast(_Run, run)

    class _SyncOutcome:
        """Keeps the span of the Sync Data call made inside it open until the target's
        status is known, then sets ``zoho.sync_status`` and ends it."""

        __slots__ = ("_reset", "_span", "_status")

        def __init__(self) -> None:
            self._span: Span | None = None
            self._status: str | None = None
            self._reset: contextvars.Token[_SyncOutcome | None] | None = None

        def __enter__(self) -> Callable[[str], None]:
            self._reset = _outcome.set(self)
            return self._set

        def _set(self, status: str) -> None:
            self._status = status

        def hold(self, span: Span) -> bool:
            if self._reset is None:
                return False  # over (a task that inherited it): end the span at once
            if self._span is not None:
                self._span.end()
            self._span = span
            return True

        def __exit__(self, *exc: object) -> None:
            if self._reset is not None:
                _outcome.reset(self._reset)
                self._reset = None
            span, self._span = self._span, None
            if span is not None:
                if self._status is not None:
                    span.set_attribute("zoho.sync_status", self._status)
                span.end()

    def sync_outcome() -> AbstractContextManager[Callable[[str], None]]:
        """``with sync_outcome() as outcome: ...; outcome(status)``: the status goes on
        the span of the Sync Data call made inside (see :class:`_SyncOutcome`)."""
        return _SyncOutcome()

    def sync_result(status: str) -> None:
        """A bulk run emitted a result with ``status``."""
        _results.add(1, {"status": status})

    def rate_limited() -> None:
        """Zoho rejected a call for the rate limit (6045 or HTTP 429)."""
        _rejections.add(1)

    def retried(reason: str) -> None:
        """The current call is retried because of ``reason`` (a failure's class name)."""
        _retries.add(1, {"reason": reason})
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("zoho.retry_reason", reason)

    def token_requested() -> None:
        """An access token was requested from the accounts server."""
        _tokens.add(1)

    def turn_waited(seconds: float) -> None:
        """A call waited ``seconds`` for its pacing turn."""
        _waits.record(max(seconds, 0.0))

else:

    class _NoOutcome:
        __slots__ = ()

        def __enter__(self) -> Callable[[str], None]:
            return _ignore

        def __exit__(self, *exc: object) -> None:
            return None

    _NO_OUTCOME = _NoOutcome()

    def _ignore(status: str) -> None:
        return None

    def traced_call(method: _Call) -> _Call:
        """No OpenTelemetry: ``method`` itself."""
        return method

    def traced_run(method: _Run) -> _Run:
        """No OpenTelemetry: ``method`` itself."""
        return method

    def sync_outcome() -> AbstractContextManager[Callable[[str], None]]:
        """No OpenTelemetry: a shared no-op."""
        return _NO_OUTCOME

    def sync_result(status: str) -> None:
        return None

    def rate_limited() -> None:
        return None

    def retried(reason: str) -> None:
        return None

    def token_requested() -> None:
        return None

    def turn_waited(seconds: float) -> None:
        return None
