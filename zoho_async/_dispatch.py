"""Bulk sync: workers pull targets lazily, each gets exactly one result.

Shape of a run::

    source (lazy iterable / async iterable / discovery)
        -> N workers (pull one item at a time, under a lock)
            -> Executor.call (pacing per org, in-flight cap, token, retries)
        -> emit(result)                 (sync_many: collect + on_result; iter_sync: stream)
        -> waiter (wait=True only: polls Get Datasources once per workspace per interval)

Nothing holds more than a bounded number of items: the input is never materialised and no
task is created per target. If the run is cancelled, what was in flight is reported as
CANCELLED (or with the result it already had), started syncs that were being waited on as
STARTED without an outcome, and the rest of a plain iterable as CANCELLED.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import (
    ApiError,
    InvalidInputError,
    ProtocolError,
    SyncInProgressError,
    SyncQuotaExceededError,
    TransportError,
    ZohoError,
)
from ._executor import RunControl
from ._models import Datasource, SyncConfig, WorkspaceInfo
from ._protocol import datasources_request
from ._results import (
    PlanEntry,
    PlannedTarget,
    SyncPlan,
    SyncReport,
    SyncResult,
    SyncStatus,
    SyncTarget,
    coerce_target,
)
from ._session import _entries, build_sync_request
from ._validation import check_id, check_optional_id, check_positive

if TYPE_CHECKING:
    from ._session import AnalyticsSession

__all__ = ["SyncIterator", "discovered_items", "plan_sync", "sync_many"]

log = logging.getLogger("zoho_async")

Emit = Callable[[SyncResult], Awaitable[None]]
_DEFAULT_WAIT = 3600.0
_IN_PROGRESS_WORDS = ("progress", "running", "queued", "syncing", "initiated", "scheduled")


def _now() -> datetime:
    return datetime.now(UTC)


Prepared = PlannedTarget


def _unchecked_target(item: object) -> SyncTarget:
    """A placeholder target for an input item that failed validation (shown, not sent)."""
    target = object.__new__(SyncTarget)
    values: list[object] = list(item) if isinstance(item, tuple | list) else [item]
    fields = ("workspace_id", "datasource_id", "org_id", "config", "sync_interval_id", "name")
    for i, field in enumerate(fields):
        value = values[i] if i < len(values) and i < 2 else None
        object.__setattr__(target, field, None if value is None else str(value)[:64])
    return target


def _prepare(item: object) -> Prepared:
    if isinstance(item, Prepared):
        return item
    try:
        return Prepared(coerce_target(item))
    except (InvalidInputError, TypeError, ValueError) as exc:
        return Prepared(
            _unchecked_target(item),
            preset=SyncStatus.FAILED,
            reason=f"invalid target: {exc}",
            error_type="InvalidInputError",
        )


class _Source:
    """Pulls from an iterable or async iterable, one item at a time, under a lock."""

    def __init__(self, targets: Iterable[Any] | AsyncIterable[Any]) -> None:
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        if isinstance(targets, AsyncIterable):
            self._async = aiter(targets)
        elif isinstance(targets, Iterable) and not isinstance(targets, str | bytes):
            self._sync = iter(targets)
        else:
            raise InvalidInputError("targets must be an iterable or async iterable of targets")
        # fast_acquire: an uncontended pull does not yield to the loop (a yield per target
        # cost ~15 us); _Run._worker yields instead after a target that sent nothing.
        self._lock = anyio.Lock(fast_acquire=True)
        self._index = 0
        self.exhausted = False

    async def next(self) -> tuple[int, Prepared] | None:
        if self._async is None:
            # A plain iterator is pulled without an await, so no other task can interleave:
            # no lock needed. (A generator that is already running raises ValueError; it
            # cannot be, since nothing here awaits while one is being advanced.)
            return self._pull_sync()
        async with self._lock:
            if self.exhausted:
                return None
            try:
                raw = await anext(self._async)
            except StopAsyncIteration:
                self.exhausted = True
                return None
            index = self._index
            self._index += 1
            return index, _prepare(raw)

    def _pull_sync(self) -> tuple[int, Prepared] | None:
        if self.exhausted:
            return None
        assert self._sync is not None
        try:
            raw = next(self._sync)
        except StopIteration:
            self.exhausted = True
            return None
        index = self._index
        self._index += 1
        return index, _prepare(raw)

    def drain_sync(self) -> Iterator[tuple[int, Prepared]]:
        """The rest of a plain iterable, without awaiting (safe while cancelled)."""
        if self._sync is None or self.exhausted:
            return
        for raw in self._sync:
            index = self._index
            self._index += 1
            yield index, _prepare(raw)
        self.exhausted = True

    async def aclose(self) -> None:
        closer = getattr(self._async, "aclose", None)
        if closer is not None:
            with anyio.move_on_after(2, shield=True):
                await closer()


@attrs.define
class _Pending:
    """A started sync whose final outcome we are waiting for."""

    result: SyncResult
    trigger: datetime
    expires: float  # monotonic
    baseline: str | None
    first_seen: str | None = None


class _Run:
    """One bulk run: workers, deadline, waiter, and the one-result-per-target bookkeeping."""

    def __init__(
        self,
        session: AnalyticsSession,
        *,
        config: SyncConfig | None,
        wait: bool,
        wait_timeout: float | None,
        deadline: float | None,
        poll_interval: float,
        emit: Emit,
        emit_final: Emit | None = None,
        stop: anyio.Event | None = None,
    ) -> None:
        if config is not None and not isinstance(config, SyncConfig):
            raise InvalidInputError("config must be a SyncConfig or None")
        if deadline is not None:
            check_positive(deadline, "deadline")
        if wait_timeout is not None:
            check_positive(wait_timeout, "wait_timeout")
        check_positive(poll_interval, "poll_interval")
        self.session = session
        self.executor = session._exec
        self.config = config
        self.wait = bool(wait)
        self.wait_timeout = _DEFAULT_WAIT if wait_timeout is None else wait_timeout
        self.poll_interval = poll_interval
        self._emit = emit
        # used while cancelled: must not block (a stream whose reader is gone)
        self._emit_final = emit_final or emit
        self._clock = time.monotonic
        self.started = self._clock()
        self.deadline = None if deadline is None else self.started + deadline
        self.control = RunControl(self.deadline)
        self._stop_event = stop
        # index -> (item, result once known); what the finaliser must still report
        self._active: dict[int, tuple[Prepared, SyncResult | None]] = {}
        self._waiting: dict[tuple[str | None, str], dict[int, _Pending]] = {}
        self._task_group: TaskGroup | None = None
        self._poll_scopes: set[anyio.CancelScope] = set()
        self.workers = max(2 * session.limits.max_in_flight, 2)

    def stop(self) -> None:
        """Stop gracefully: send nothing new, let requests on the wire finish, and report
        everything else as CANCELLED (started syncs still being waited on as STARTED)."""
        if not self.control.stopped:
            log.info("stopping: no new requests; in-flight ones finish")
        self.control.stop()
        for scope in list(self._poll_scopes):
            scope.cancel()

    def _why_not_sent(self) -> str:
        return (
            "stopped before it was sent"
            if self.control.stopped
            else ("deadline reached before it was sent")
        )

    async def run(self, targets: Iterable[Any] | AsyncIterable[Any]) -> None:
        source = _Source(targets)
        await self._preflight_token()
        try:
            async with anyio.create_task_group() as outer:
                if self._stop_event is not None:
                    outer.start_soon(self._watch_stop, self._stop_event)
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    for _ in range(self.workers):
                        tg.start_soon(self._worker, source)
                outer.cancel_scope.cancel()  # the watcher is done too
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._report_unfinished(source)
            if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                # one error (say, from an on_result callback): raise it, not a group
                raise exc.exceptions[0] from None
            raise
        finally:
            await source.aclose()

    async def _watch_stop(self, event: anyio.Event) -> None:
        await event.wait()
        self.stop()

    async def _preflight_token(self) -> None:
        """One token before dispatch: bad credentials or a dead accounts server give one
        clear error here instead of a thousand identical FAILED results. Transient
        failures (network, 5xx) are retried like any safe call."""
        policy = self.executor.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                await self.session.get_access_token()
                return
            except (TransportError, ProtocolError):
                if attempt == policy.attempts:
                    raise
                await anyio.sleep(policy.backoff(attempt))

    async def _report_unfinished(self, source: _Source) -> None:
        """After cancellation: every target not yet reported gets its one result."""
        now = _now()
        for index, (item, known) in sorted(self._active.items()):
            await self._safe_emit(known or self._cancelled(index, item, now, "run cancelled"))
        self._active.clear()
        for group in self._waiting.values():
            for pending in group.values():
                await self._safe_emit(
                    attrs.evolve(
                        pending.result, error_message="run cancelled before the outcome was known"
                    )
                )
            group.clear()
        for index, item in source.drain_sync():
            await self._safe_emit(self._cancelled(index, item, now, "run cancelled"))

    async def _safe_emit(self, result: SyncResult) -> None:
        # the reader of an iter_sync stream may be gone; the result then has nowhere to go
        with contextlib.suppress(
            anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.WouldBlock
        ):
            await self._emit_final(result)

    def _cancelled(self, index: int, item: Prepared, now: datetime, why: str) -> SyncResult:
        return SyncResult(
            item.target,
            index,
            SyncStatus.CANCELLED,
            error_message=why,
            started_at=now,
            finished_at=now,
        )

    async def _worker(self, source: _Source) -> None:
        while True:
            pulled = await source.next()
            if pulled is None:
                return
            index, item = pulled
            self._active[index] = (item, None)
            result = await self._process(index, item)
            self._active[index] = (item, result)
            if result.attempts == 0:
                # nothing was sent, so nothing yielded: let other tasks (and cancellation)
                # in, or a long run of presets/invalid targets would hog the loop
                await anyio.lowlevel.checkpoint()
            if self.wait and result.status in (SyncStatus.STARTED, SyncStatus.ALREADY_RUNNING):
                self._start_waiting(index, item, result)
                del self._active[index]
                continue
            await self._emit(result)
            del self._active[index]

    async def _process(self, index: int, item: Prepared) -> SyncResult:
        started = _now()
        target = item.target
        if item.preset is not None:
            return SyncResult(
                target,
                index,
                item.preset,
                error_code=item.error_code,
                error_message=item.reason,
                http_status=item.http_status,
                error_type=item.error_type,
                started_at=started,
                finished_at=started,
            )
        if self.control.over():
            return self._cancelled(index, item, started, self._why_not_sent())
        if target.datasource_id is None:
            return SyncResult(
                target,
                index,
                SyncStatus.SKIPPED,
                error_message="no datasource id",
                started_at=started,
                finished_at=started,
            )
        try:
            request = build_sync_request(
                self.session,
                target.workspace_id,
                target.datasource_id,
                target.org_id or self.session.org_id,
                target.config or self.config,
                target.sync_interval_id,
            )
        except InvalidInputError as exc:
            return SyncResult(
                target,
                index,
                SyncStatus.FAILED,
                error_message=str(exc),
                error_type=type(exc).__name__,
                started_at=started,
                finished_at=_now(),
            )
        call = await self.executor.call(request, control=self.control)
        finished = _now()
        common: dict[str, Any] = {
            "attempts": call.attempts,
            "http_status": call.http_status,
            "started_at": started,
            "finished_at": finished,
        }
        error = call.error
        if call.ok or call.ours_in_progress:
            return SyncResult(target, index, SyncStatus.STARTED, **common)
        if call.cancelled:
            why = self._why_not_sent()
            if error is not None:
                cause = "stopped" if self.control.stopped else "deadline reached"
                why = f"{cause} while retrying ({_message(error)})"
            return SyncResult(
                target,
                index,
                SyncStatus.CANCELLED,
                error_message=why,
                error_code=_code(error),
                error_type=_type(error),
                **common,
            )
        assert error is not None
        if isinstance(error, SyncInProgressError):
            status = SyncStatus.ALREADY_RUNNING
        elif isinstance(error, SyncQuotaExceededError):
            status = SyncStatus.QUOTA_EXHAUSTED
        else:
            status = SyncStatus.FAILED
        return SyncResult(
            target,
            index,
            status,
            error_code=_code(error),
            error_message=_message(error),
            error_type=_type(error),
            **common,
        )

    # -- waiting for outcomes -------------------------------------------------------------

    def _start_waiting(self, index: int, item: Prepared, result: SyncResult) -> None:
        target = result.target
        key = (target.org_id or self.session.org_id, target.workspace_id)
        group = self._waiting.get(key)
        pending = _Pending(
            result, result.started_at or _now(), self._clock() + self.wait_timeout, item.baseline
        )
        if group is None:
            group = self._waiting[key] = {}
            group[index] = pending
            assert self._task_group is not None
            self._task_group.start_soon(self._poll_group, key)
        else:
            group[index] = pending

    async def _poll_group(self, key: tuple[str | None, str]) -> None:
        org_id, workspace_id = key
        group = self._waiting[key]
        last_poll = self._clock()
        while group and not self.control.stopped:
            next_poll = last_poll + self.poll_interval
            expires = min(p.expires for p in group.values())
            delay = min(next_poll, expires) - self._clock()
            if delay > 0:
                # a stop() wakes this sleep; the run's deadline does not end the waiting
                with anyio.CancelScope() as scope:
                    self._poll_scopes.add(scope)
                    try:
                        await anyio.sleep(delay)
                    finally:
                        self._poll_scopes.discard(scope)
                if self.control.stopped:
                    break
            now = self._clock()
            for index in [i for i, p in group.items() if p.expires <= now]:
                pending = group.pop(index)
                await self._emit(
                    attrs.evolve(
                        pending.result, error_message="wait timed out before a final status"
                    )
                )
            if not group or now < next_poll:
                continue
            last_poll = now
            call = await self.executor.call(datasources_request(workspace_id, org_id))
            if call.error is not None or call.cancelled:
                log.info(
                    "polling workspace %s failed (%s); will poll again",
                    workspace_id,
                    type(call.error).__name__,
                )
                continue
            await self._match(group, call.data)
        for index in list(group):
            pending = group.pop(index)
            await self._emit(
                attrs.evolve(pending.result, error_message="stopped before the outcome was known")
            )
        del self._waiting[key]

    async def _match(self, group: dict[int, _Pending], data: Any) -> None:
        entries = data.get("dataSources") if isinstance(data, dict) else None
        by_id: dict[str, Datasource] = {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                listed = Datasource.from_api(entry)
                if listed.datasource_id is not None:
                    by_id[listed.datasource_id] = listed
        for index in list(group):
            pending = group[index]
            target = pending.result.target
            ds = by_id.get(target.datasource_id or "")
            if ds is None:
                continue
            status, when, raw = ds.last_sync_status, ds.last_sync_time, ds.last_sync_time_raw
            interval = target.sync_interval_id or (
                target.config.sync_interval_id if target.config else None
            )
            for candidate in ds.intervals:
                if candidate.sync_interval_id == interval:
                    status = candidate.last_sync_status
                    when = candidate.last_sync_time
                    raw = candidate.last_sync_time_raw
            if _finished(pending, status, when, raw):
                del group[index]
                await self._emit(attrs.evolve(pending.result, outcome=status, completed_at=when))


def _finished(
    pending: _Pending, status: str | None, when: datetime | None, raw: str | None
) -> bool:
    if not status or any(word in status.lower() for word in _IN_PROGRESS_WORDS):
        return False
    if when is not None:
        # Zoho prints whole seconds: compare with the trigger truncated to the second.
        return when >= pending.trigger.replace(microsecond=0)
    # Unreadable time: fall back to "the text changed since we last knew it".
    if pending.baseline is None:
        if pending.first_seen is None:
            pending.first_seen = raw
            return False
        return raw != pending.first_seen
    return raw != pending.baseline


def _code(error: ZohoError | None) -> int | None:
    return error.code if isinstance(error, ApiError) and error.code else None


def _type(error: ZohoError | None) -> str | None:
    return type(error).__name__ if error is not None else None


def _message(error: ZohoError) -> str:
    return str(error)[:500]


# -- entry points ---------------------------------------------------------------------


async def sync_many(
    session: AnalyticsSession,
    targets: Iterable[Any] | AsyncIterable[Any],
    *,
    config: SyncConfig | None,
    wait: bool,
    wait_timeout: float | None,
    deadline: float | None,
    on_result: Callable[[SyncResult], Awaitable[None] | None] | None,
    poll_interval: float,
    stop: anyio.Event | None = None,
) -> SyncReport:
    results: dict[int, SyncResult] = {}

    async def emit(result: SyncResult) -> None:
        results[result.index] = result
        if on_result is not None:
            outcome = on_result(result)
            if inspect.isawaitable(outcome):
                await outcome

    _check_sequence(targets)
    tokens_before, http_before = session.token_requests, session.http_requests
    run = _Run(
        session,
        config=config,
        wait=wait,
        wait_timeout=wait_timeout,
        deadline=deadline,
        poll_interval=poll_interval,
        emit=emit,
        stop=stop,
    )
    started_at = _now()
    await run.run(targets)
    return SyncReport(
        tuple(results[i] for i in sorted(results)),
        duration=time.monotonic() - run.started,
        token_requests=session.token_requests - tokens_before,
        http_requests=session.http_requests - http_before,
        started_at=started_at,
    )


def _check_sequence(targets: object) -> None:
    """A list or tuple is already in memory: validate all of it before any request."""
    if isinstance(targets, list | tuple):
        for position, item in enumerate(targets):
            if isinstance(item, Prepared):
                continue
            try:
                coerce_target(item)
            except InvalidInputError as exc:
                raise type(exc)(f"target {position}: {exc}") from None


class SyncIterator(AsyncIterator[SyncResult]):
    """What :meth:`AnalyticsSession.iter_sync` returns: results as they become final.

    The run lives in the session's task group; leaving the loop early (``break``) or
    cancelling the consumer cancels the run. Use ``async with`` (or ``aclose()``) to stop
    it deterministically.
    """

    def __init__(
        self, session: AnalyticsSession, targets: Iterable[Any] | AsyncIterable[Any], **options: Any
    ) -> None:
        _check_sequence(targets)
        self._session = session
        self._targets = targets
        self._options = options
        self._receive: MemoryObjectReceiveStream[SyncResult] | None = None
        self._scope: anyio.CancelScope | None = None
        self._error: ZohoError | None = None
        self._run: _Run | None = None
        self._stop_requested = False
        self._closed = False
        # validate options now, before any request
        _Run(session, emit=_noop_emit, **options)

    def __aiter__(self) -> SyncIterator:
        return self

    def __del__(self) -> None:
        # `async for` does not close an iterator it leaves by an exception: stop the run
        # once nobody can read from it any more.
        scope, receive = getattr(self, "_scope", None), getattr(self, "_receive", None)
        with contextlib.suppress(RuntimeError):  # no event loop left at interpreter exit
            if scope is not None:
                scope.cancel()
            if receive is not None:
                receive.close()

    async def _start(self) -> MemoryObjectReceiveStream[SyncResult]:
        send: MemoryObjectSendStream[SyncResult]
        # no buffer: a result counts as delivered only once the consumer has it
        send, receive = anyio.create_memory_object_stream[SyncResult](0)
        scope = anyio.CancelScope()
        self._scope, self._receive = scope, receive

        async def send_now(result: SyncResult) -> None:
            send.send_nowait(result)

        run = _Run(self._session, emit=send.send, emit_final=send_now, **self._options)
        self._run = run
        if self._stop_requested:
            run.stop()

        async def drive() -> None:
            with scope:
                async with send:
                    try:
                        await run.run(self._targets)
                    except ZohoError as exc:
                        # hand it to the consumer; it must not crash the session's tasks
                        self._error = exc

        self._session._background().start_soon(drive)
        return receive

    async def __anext__(self) -> SyncResult:
        if self._closed:
            raise StopAsyncIteration
        receive = self._receive or await self._start()
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            await self.aclose()
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None
        except BaseException:
            await self.aclose()
            raise

    def stop(self) -> None:
        """Stop gracefully: nothing new is sent, requests on the wire finish, and the
        remaining targets still come out of the loop (as CANCELLED) before it ends."""
        self._stop_requested = True
        if self._run is not None:
            self._run.stop()

    async def aclose(self) -> None:
        """Stop now: cancel the run (in-flight requests too) and end the iteration."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        if self._receive is not None:
            await self._receive.aclose()

    async def __aenter__(self) -> SyncIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _noop_emit(result: SyncResult) -> None:
    return None


def normalise_workspaces(
    session: AnalyticsSession, workspaces: Iterable[str | int | WorkspaceInfo | tuple[str, str]]
) -> list[tuple[str | None, str]]:
    """(org_id, workspace_id) pairs, validated before any request."""
    if isinstance(workspaces, str):
        workspaces = [workspaces]
    out: list[tuple[str | None, str]] = []
    for entry in workspaces:
        if isinstance(entry, WorkspaceInfo):
            out.append((entry.org_id or session.org_id, entry.workspace_id))
        elif isinstance(entry, tuple) and len(entry) == 2:
            out.append(
                (
                    check_optional_id(entry[0], "org_id") or session.org_id,
                    check_id(entry[1], "workspace_id"),
                )
            )
        else:
            out.append((session.org_id, check_id(entry, "workspace_id")))
    return out


def expand(
    org_id: str | None, workspace_id: str, datasources: list[Datasource]
) -> Iterator[Prepared]:
    """Turn Get Datasources entries into prepared targets (skips, quotas, intervals)."""
    for ds in datasources:
        if ds.datasource_id is None:
            target = SyncTarget(workspace_id, None, org_id, name=ds.name)
            yield Prepared(target, preset=SyncStatus.SKIPPED, reason=ds.skip_reason)
            continue
        intervals = ds.intervals
        choices: list[tuple[str | None, str | None]] = (
            [(i.sync_interval_id, i.last_sync_time_raw) for i in intervals]
            if len(intervals) > 1
            else [(None, ds.last_sync_time_raw)]
        )
        left = ds.quota_left
        for n, (interval_id, baseline) in enumerate(choices):
            target = SyncTarget(
                workspace_id, ds.datasource_id, org_id, sync_interval_id=interval_id, name=ds.name
            )
            if left is not None and n >= left:
                yield Prepared(
                    target,
                    preset=SyncStatus.QUOTA_EXHAUSTED,
                    reason=f"manual-sync quota used: {ds.sync_used} of "
                    f"{ds.total_sync_allowed} (from Get Datasources)",
                )
            else:
                yield Prepared(target, baseline=baseline)


async def discovered_items(
    session: AnalyticsSession, workspaces: Iterable[str | WorkspaceInfo | tuple[str, str]]
) -> AsyncIterator[Prepared]:
    """List each workspace (one Get Datasources call each) and yield what to sync."""
    pairs = normalise_workspaces(session, workspaces)

    async def generate() -> AsyncIterator[Prepared]:
        for org_id, workspace_id in pairs:
            call = await session._exec.call(datasources_request(workspace_id, org_id))
            error: ZohoError | None = call.error
            if error is None and not call.cancelled:
                try:
                    entries = _entries(call.data, "dataSources")
                except ZohoError as exc:
                    error = exc
                else:
                    found = [Datasource.from_api(e, workspace_id=workspace_id) for e in entries]
                    for item in expand(org_id, workspace_id, found):
                        yield item
                    continue
            reason = "listing the workspace failed: " + (
                _message(error) if error is not None else "deadline reached"
            )
            yield Prepared(
                SyncTarget(workspace_id, None, org_id),
                preset=SyncStatus.FAILED if error is not None else SyncStatus.CANCELLED,
                reason=reason,
                error_code=_code(error),
                error_type=_type(error),
                http_status=call.http_status,
            )

    return generate()


def discover(
    session: AnalyticsSession, workspaces: Iterable[str | WorkspaceInfo | tuple[str, str]]
) -> AsyncIterator[Prepared]:
    """See :meth:`AnalyticsSession.discover` (validates ids now, lists lazily)."""
    pairs = normalise_workspaces(session, workspaces)

    async def generate() -> AsyncIterator[Prepared]:
        entries: list[str | tuple[str, str]] = [(o, w) if o else w for o, w in pairs]
        async for item in await discovered_items(session, entries):
            yield item

    return generate()


async def plan_sync(
    session: AnalyticsSession, targets_or_workspaces: Iterable[Any] | AsyncIterable[Any]
) -> SyncPlan:
    """See :meth:`AnalyticsSession.plan_sync`."""
    items: list[Any] = []
    if isinstance(targets_or_workspaces, AsyncIterable):
        items = [x async for x in targets_or_workspaces]
    else:
        items = (
            list(targets_or_workspaces)
            if not isinstance(targets_or_workspaces, str)
            else [targets_or_workspaces]
        )
    workspaces = [
        x for x in items if isinstance(x, str | int | WorkspaceInfo) and not isinstance(x, bool)
    ]
    targets = [coerce_target(x) for x in items if not isinstance(x, str | int | WorkspaceInfo)]
    pairs = normalise_workspaces(session, workspaces)
    entries: list[PlanEntry] = []
    listed: dict[tuple[str | None, str], list[Datasource] | ZohoError] = {}

    async def listing(org_id: str | None, workspace_id: str) -> list[Datasource] | ZohoError:
        key = (org_id, workspace_id)
        if key not in listed:
            call = await session._exec.call(datasources_request(workspace_id, org_id))
            if call.error is not None:
                listed[key] = call.error
            else:
                try:
                    listed[key] = [
                        Datasource.from_api(e, workspace_id=workspace_id)
                        for e in _entries(call.data, "dataSources")
                    ]
                except ZohoError as exc:
                    listed[key] = exc
        return listed[key]

    for org_id, workspace_id in pairs:
        found = await listing(org_id, workspace_id)
        if isinstance(found, ZohoError):
            entries.append(
                PlanEntry(SyncTarget(workspace_id, None, org_id), "error", reason=_message(found))
            )
            continue
        by_id = {d.datasource_id: d for d in found}
        for item in expand(org_id, workspace_id, found):
            ds = by_id.get(item.target.datasource_id)
            action = {
                None: "sync",
                SyncStatus.SKIPPED: "skip",
                SyncStatus.QUOTA_EXHAUSTED: "quota",
            }[item.preset]
            entries.append(
                PlanEntry(
                    item.target,
                    action,
                    reason=item.reason,
                    quota_left=ds.quota_left if ds else None,
                    last_sync_status=ds.last_sync_status if ds else None,
                )
            )
    planned: dict[str, int] = {}
    for target in targets:
        org_id = target.org_id or session.org_id
        found = await listing(org_id, target.workspace_id)
        if isinstance(found, ZohoError):
            entries.append(PlanEntry(target, "error", reason=_message(found)))
            continue
        match = next((d for d in found if d.datasource_id == target.datasource_id), None)
        if match is None:
            entries.append(PlanEntry(target, "skip", reason="not in this workspace's datasources"))
            continue
        used = planned.get(target.datasource_id or "", 0)
        left = match.quota_left
        if left is not None and used >= left:
            entries.append(
                PlanEntry(
                    target,
                    "quota",
                    reason="manual-sync quota used",
                    quota_left=left,
                    last_sync_status=match.last_sync_status,
                )
            )
            continue
        planned[target.datasource_id or ""] = used + 1
        entries.append(
            PlanEntry(target, "sync", quota_left=left, last_sync_status=match.last_sync_status)
        )
    return SyncPlan(tuple(entries))
