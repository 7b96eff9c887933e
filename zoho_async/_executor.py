"""Execute one API call: authenticate it, pace it, send it, decode it, retry it safely.

Every call of a session goes through here - single calls and bulk runs alike - so a
service that awaits ``sync_data`` in a loop is paced and protected like a bulk run.
Per-call failures come back as values (:class:`CallResult`), not exceptions: in a task
group one escaping exception would cancel every sibling.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import attrs

from . import _telemetry
from ._auth import TokenCache
from ._coordinator import CoordinatorUnavailableError
from ._errors import (
    ApiError,
    AuthError,
    ProtocolError,
    RateLimitedError,
    SyncInProgressError,
    TokenError,
    TransportError,
    ZohoError,
)
from ._pacing import Pacer
from ._protocol import ApiRequest, api_headers, decode_api_response
from ._retry import Decision, RetryPolicy, classify
from ._settle import Settlement, Verdict
from ._transport import Transport

__all__ = ["BeforeSend", "CallResult", "Executor", "RunControl", "Settle"]

# Settles an ambiguous attempt: (the failure, whether Zoho answered at all) -> a verdict.
Settle = Callable[[ZohoError, bool], Awaitable[Settlement]]
# Called with the attempt number right before a request is sent; False: do not send.
BeforeSend = Callable[[int], Awaitable[bool]]

log = logging.getLogger("zoho_async")


class RunControl:
    """Bounds the waits of a run's calls: a deadline, and a ``stop()`` that ends them now.

    Every wait (a pacer turn, a backoff) happens inside a cancel scope registered here, so
    ``stop()`` - a graceful Ctrl-C - wakes them at once; requests already sent finish.
    """

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.stopped = False
        self._scopes: set[anyio.CancelScope] = set()

    def remaining(self) -> float:
        if self.stopped:
            return 0.0
        return math.inf if self.deadline is None else self.deadline - anyio.current_time()

    def over(self) -> bool:
        return self.remaining() <= 0

    @contextlib.contextmanager
    def waiting(self) -> Iterator[anyio.CancelScope]:
        deadline = math.inf if self.deadline is None else self.deadline
        with anyio.CancelScope(deadline=deadline) as scope:
            if self.stopped:
                scope.cancel()
            self._scopes.add(scope)
            try:
                yield scope
            finally:
                self._scopes.discard(scope)

    def stop(self) -> None:
        """Send nothing new; wake every waiting call (they end ``cancelled``)."""
        self.stopped = True
        for scope in list(self._scopes):
            scope.cancel()


@attrs.frozen
class CallResult:
    """The end of one call: ``data`` on success, else ``error``; never both.

    ``cancelled`` is True when the deadline stopped the call before it could finish (then
    ``error`` is the last failure, if any). ``ours_in_progress`` is True when a retry of an
    ambiguous failure answered 18073/18072: our first attempt started the sync.
    ``settled`` is the evidence that an ambiguous attempt started the sync (read from Get
    Datasources, nothing re-sent); ``unconfirmed`` the evidence when it could not tell
    (then ``error`` is the ambiguous failure, and nothing was re-sent).
    """

    data: Any = None
    error: ZohoError | None = None
    attempts: int = 0
    http_status: int | None = None
    cancelled: bool = False
    ours_in_progress: bool = False
    settled: str | None = None
    unconfirmed: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


class Executor:
    """Pacing + token + transport + retry policy for one session."""

    def __init__(
        self,
        *,
        api_url: str,
        transport: Transport,
        tokens: TokenCache,
        pacer: Pacer,
        retry: RetryPolicy,
        user_agent: str,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._api_url = api_url
        self._transport = transport
        self._tokens = tokens
        self._pacer = pacer
        self._retry = retry
        self._user_agent = user_agent
        self._clock = clock
        self._rng = rng or random.Random()
        # what session.snapshot() reads: plain counters, updated without awaiting
        self.retries = 0
        self.in_flight = 0

    @property
    def pacer(self) -> Pacer:
        return self._pacer

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    @_telemetry.traced_call
    async def call(
        self,
        request: ApiRequest,
        *,
        deadline: float | None = None,
        control: RunControl | None = None,
        settle: Settle | None = None,
        before_send: BeforeSend | None = None,
    ) -> CallResult:
        """Run ``request`` to its end under the retry policy.

        ``deadline`` (monotonic) or a run's ``control`` bound the waits: once it is over,
        nothing new is sent and the result is ``cancelled``. A request already on the wire
        is never interrupted by them (only by the timeout), so its answer is not lost.

        ``settle`` (Sync Data): an attempt that may have reached Zoho is not re-sent
        blindly. Its verdict decides: started ends the call (``settled``), not started
        retries it as a safe failure, unknown ends it (``unconfirmed``) unless the policy's
        ``resend_unconfirmed`` allows the old retry.

        ``before_send`` (a journal's intent line) is awaited right before each request
        goes out, with the attempt number; when it returns False nothing is sent and the
        call ends ``cancelled``.
        """
        if control is None and deadline is not None:
            control = RunControl(deadline)
        attempts = 0  # requests we tried to make (token phase included)
        counted = 0  # attempts that count against RetryPolicy.attempts
        rate_retries = 0
        refreshed = False
        ambiguous = False
        error: ZohoError | None = None
        status: int | None = None
        while True:
            if control is not None and control.over():
                return CallResult(
                    error=error, attempts=attempts, http_status=status, cancelled=True
                )
            token: str | None = None
            async with self._pacer.capacity:
                attempts += 1
                try:
                    if control is not None and control.deadline is not None:
                        # a caller's timeout= covers the wait for the token too (the
                        # refresh itself goes on for everyone else)
                        with control.waiting():
                            token = await self._tokens.get()
                        if token is None:
                            return CallResult(
                                error=error,
                                attempts=attempts - 1,
                                http_status=status,
                                cancelled=True,
                            )
                    else:
                        token = await self._tokens.get()
                    # The turn comes last, right before the send: a stall fetching the
                    # token must not bunch paced calls together on their way to Zoho.
                    turn_began = self._clock()
                    waited = await self._pacer.turn(
                        request.org_id,
                        metadata=request.metadata,
                        guard=control.waiting if control is not None else None,
                    )
                    _telemetry.turn_waited(self._clock() - turn_began if waited else 0.0)
                    # a deadline or stop() during the wait ends it early, without the turn
                    if control is not None and control.over():
                        return CallResult(
                            error=error, attempts=attempts - 1, http_status=status, cancelled=True
                        )
                    if waited:
                        # a long wait (a 6045 pause) may outlast the token's refresh point
                        token = await self._tokens.get()
                except TokenError as exc:
                    return CallResult(error=exc, attempts=attempts, http_status=status)
                except CoordinatorUnavailableError as exc:
                    # the shared budgets are gone: send nothing on per-process guesses
                    return CallResult(
                        error=exc, attempts=attempts - 1, http_status=status, cancelled=True
                    )
                except (TransportError, ProtocolError) as exc:
                    # the accounts server failed; nothing reached the Analytics API
                    error, decision = exc, Decision.SAFE
                else:
                    if before_send is not None and not await before_send(attempts):
                        return CallResult(
                            error=error, attempts=attempts - 1, http_status=status, cancelled=True
                        )
                    if self._pacer.paused(request.org_id):
                        # A 6045 came back while this call awaited its token or its journal
                        # line: the turn is void, or it would go out inside the pause. No
                        # await between the turn taken here and the send.
                        try:
                            await self._pacer.turn(
                                request.org_id,
                                metadata=request.metadata,
                                guard=control.waiting if control is not None else None,
                            )
                        except CoordinatorUnavailableError as exc:
                            return CallResult(
                                error=exc, attempts=attempts - 1, http_status=status, cancelled=True
                            )
                        if control is not None and control.over():
                            return CallResult(
                                error=error,
                                attempts=attempts - 1,
                                http_status=status,
                                cancelled=True,
                            )
                    error, status, data = await self._send(request, token)
                    if error is None:
                        return CallResult(data=data, attempts=attempts, http_status=status)
                    decision = classify(error)

            if decision is Decision.AMBIGUOUS and settle is not None and error is not None:
                answered = not isinstance(error, TransportError)
                settlement = await settle(error, answered)
                log.debug(
                    "settled %s: %s",
                    request.route,
                    settlement.evidence,
                    extra=_telemetry.LogFields(request, zoho_attempts=attempts),
                )
                if settlement.verdict is Verdict.STARTED:
                    return CallResult(
                        attempts=attempts, http_status=status, settled=settlement.evidence
                    )
                if settlement.verdict is Verdict.NOT_STARTED:
                    decision = Decision.SAFE
                elif not self._retry.resend_unconfirmed:
                    return CallResult(
                        error=error,
                        attempts=attempts,
                        http_status=status,
                        unconfirmed=settlement.evidence,
                    )
            if decision is Decision.AMBIGUOUS:
                ambiguous = True
            if decision is Decision.NO:
                if ambiguous and request.route == "sync" and isinstance(error, SyncInProgressError):
                    # The sync is running, and an earlier attempt of ours may have been
                    # what started it: count it as started, not "already running".
                    return CallResult(attempts=attempts, http_status=status, ours_in_progress=True)
                return CallResult(error=error, attempts=attempts, http_status=status)
            if decision is Decision.REFRESH:
                if refreshed or token is None:
                    assert isinstance(error, ApiError)
                    final = AuthError(
                        error.code,
                        "access token refused again after a refresh: the token lacks the "
                        "scope, or belongs to another data centre than api_url "
                        f"({error.message})",
                        summary=error.summary,
                        http_status=error.http_status,
                    )
                    return CallResult(error=final, attempts=attempts, http_status=status)
                refreshed = True
                _telemetry.retried(type(error).__name__)
                await self._tokens.invalidate(token)
                self.retries += 1
                continue
            if decision is Decision.RATE_LIMITED:
                _telemetry.rate_limited()
                rate_retries += 1
                if rate_retries >= self._retry.rate_limit_attempts:
                    return CallResult(error=error, attempts=attempts, http_status=status)
                retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
                try:
                    pause = await self._pacer.on_rate_limited(
                        request.org_id, self._retry.retry_after(retry_after)
                    )
                except CoordinatorUnavailableError as exc:
                    return CallResult(
                        error=exc, attempts=attempts, http_status=status, cancelled=True
                    )
                if control is not None and control.remaining() < pause:
                    return CallResult(
                        error=error, attempts=attempts, http_status=status, cancelled=True
                    )
                self.retries += 1
                _telemetry.retried(type(error).__name__)
                continue
            # SAFE or AMBIGUOUS: back off, bounded by attempts and by the deadline
            counted += 1
            if counted >= self._retry.attempts:
                return CallResult(error=error, attempts=attempts, http_status=status)
            wait = self._retry.backoff(counted, self._rng)
            if control is not None and wait >= control.remaining():
                return CallResult(
                    error=error, attempts=attempts, http_status=status, cancelled=True
                )
            # INFO: a retry is worth a line at -v (one per retry, never a secret)
            log.info(
                "retrying %s %s in %.2fs after %s",
                request.method,
                request.route,
                wait,
                type(error).__name__,
                extra=_telemetry.LogFields(
                    request,
                    zoho_attempts=attempts,
                    zoho_retry_reason=type(error).__name__,
                    zoho_error_code=getattr(error, "code", None),
                ),
            )
            self.retries += 1
            _telemetry.retried(type(error).__name__)
            if wait > 0:
                if control is None:
                    await anyio.sleep(wait)
                else:
                    with control.waiting():
                        await anyio.sleep(wait)

    async def _send(
        self, request: ApiRequest, token: str
    ) -> tuple[ZohoError | None, int | None, Any]:
        url = self._api_url + request.path
        headers = api_headers(token, request.org_id, self._user_agent)
        started = self._clock()
        self.in_flight += 1
        try:
            raw = await self._transport.send(
                request.method, url, headers=headers, params=request.params, form=request.form
            )
        except TransportError as exc:
            log.debug(
                "%s %s -> %s after %.3fs",
                request.method,
                request.path,
                type(exc).__name__,
                self._clock() - started,
                extra=_telemetry.LogFields(request),
            )
            return exc, None, None
        finally:
            self.in_flight -= 1
        log.debug(
            "%s %s org=%s -> HTTP %d in %.3fs",
            request.method,
            request.path,
            request.org_id or "-",
            raw.status,
            self._clock() - started,
            extra=_telemetry.LogFields(request, http_response_status_code=raw.status),
        )
        try:
            data = decode_api_response(raw.status, raw.body, raw.headers)
        except ZohoError as exc:
            return exc, raw.status, None
        return None, raw.status, data
