"""``wait=True``: hold started syncs per workspace, poll each workspace, match outcomes.

One poller per workspace lists it (Get Datasources) once per ``poll_interval`` and hands
the listing to :func:`match_listing`, a pure function: which pending syncs does this
listing show as finished? Tests feed it canned listings, with no server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import attrs

from .._models import Datasource
from .._results import SyncResult
from .._settle import reads_running
from .._zohotime import parse_zoho_time

__all__ = ["Pending", "Waiter", "finished", "in_progress", "match_listing"]

log = logging.getLogger("zoho_async")

Key = tuple[str | None, str]  # (org_id, workspace_id)
Emit = Callable[[SyncResult], Awaitable[None]]
Poll = Callable[[str | None, str], Awaitable[Any]]  # the listing's data, or None on failure
# Told of every pending sync's end: its result, and whether the listing showed it finished
# (False: the wait timed out or was stopped). The run releases the datasource's next
# interval with it.
Ended = Callable[[SyncResult, bool], Awaitable[None]]


@attrs.define
class Pending:
    """A started sync whose final outcome we are waiting for."""

    result: SyncResult
    trigger: datetime
    expires: float  # monotonic
    # lastDataSyncTime text of the datasource (or its interval) before the trigger: "" when
    # it had never synced, None when no listing was read before the trigger
    baseline: str | None
    seen_running: bool = False
    report: bool = True  # False: the result was already reported; only its end matters


def in_progress(status: str | None) -> bool:
    """Whether a ``lastDataSyncStatus`` reads as not final yet (or is missing)."""
    return not status or reads_running(status)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def finished(
    pending: Pending, status: str | None, raw: str | None, seen: datetime | None = None
) -> bool:
    """Whether a listing's (status, time text) shows ``pending``'s sync as finished.

    The rule compares text, never clocks or zone names: the status is final and the time
    text differs from the baseline read before the trigger. (``syncUsed`` cannot tell: it
    counts a sync when it starts.) Without a baseline, a final status is accepted once an
    when the time reads unambiguously as at or after the trigger, or, when it cannot be
    read, once an in-progress status was seen after the trigger; otherwise the wait ends
    at its timeout.
    """
    if in_progress(status):
        pending.seen_running = pending.seen_running or bool(status)
        return False
    text = raw or ""
    if pending.baseline is not None:
        return text != pending.baseline
    when = parse_zoho_time(text, between=(pending.trigger, seen or _utcnow()))
    if when is not None:
        # Zoho prints whole seconds: compare with the trigger truncated to the second
        return when >= pending.trigger.replace(microsecond=0)
    return pending.seen_running


def match_listing(
    group: dict[int, Pending], data: Any, seen: datetime | None = None
) -> list[SyncResult]:
    """Take from ``group`` every pending sync this listing shows as finished.

    ``data`` is Get Datasources' ``data`` object. Returns the finished results with
    ``outcome`` (Zoho's ``lastDataSyncStatus``) and ``completed_at`` (the printed time,
    read near the trigger; ``None`` when its zone is ambiguous) filled in; an interval
    target is read from its own interval's fields.
    """
    entries = data.get("dataSources") if isinstance(data, dict) else None
    by_id: dict[str, Datasource] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            listed = Datasource.from_api(entry)
            if listed.datasource_id is not None:
                by_id[listed.datasource_id] = listed
    done: list[SyncResult] = []
    for index in list(group):
        pending = group[index]
        target = pending.result.target
        ds = by_id.get(target.datasource_id or "")
        if ds is None:
            continue
        status, raw = ds.last_sync_status, ds.last_sync_time_raw
        interval = target.sync_interval_id or (
            target.config.sync_interval_id if target.config else None
        )
        for candidate in ds.intervals:
            if candidate.sync_interval_id == interval:
                status, raw = candidate.last_sync_status, candidate.last_sync_time_raw
        if finished(pending, status, raw, seen):
            del group[index]
            when = parse_zoho_time(raw, between=(pending.trigger, seen or _utcnow()))
            done.append(attrs.evolve(pending.result, outcome=status, completed_at=when))
    return done


class Waiter:
    """The pending syncs of one run, grouped by workspace, and their pollers.

    :meth:`add` returns True when a workspace gets its first pending sync: the run then
    starts :meth:`poll` for it in its task group. :meth:`stop` wakes every poller, which
    then reports what it still holds as "stopped before the outcome was known".
    """

    def __init__(
        self,
        *,
        poll: Poll,
        emit: Emit,
        poll_interval: float,
        wait_timeout: float,
        clock: Callable[[], float],
        ended: Ended | None = None,
    ) -> None:
        self._poll = poll
        self._emit = emit
        self._ended = ended
        self._poll_interval = poll_interval
        self._wait_timeout = wait_timeout
        self._clock = clock
        self._groups: dict[Key, dict[int, Pending]] = {}
        self._scopes: set[anyio.CancelScope] = set()
        self.stopped = False

    def add(
        self,
        key: Key,
        index: int,
        result: SyncResult,
        baseline: str | None,
        *,
        report: bool = True,
    ) -> bool:
        """Wait for ``result``'s outcome; True when ``key`` needs a poller started.

        ``report=False`` watches a sync whose result was already reported (``wait=False``)
        only to learn when it ends.
        """
        trigger = result.started_at
        assert trigger is not None
        if report:
            # waited=True: from here on, a result without an outcome is a wait that ended
            # unanswered, which is not ok (see _results.is_ok)
            result = attrs.evolve(result, waited=True)
        pending = Pending(
            result, trigger, self._clock() + self._wait_timeout, baseline, report=report
        )
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = {index: pending}
            return True
        group[index] = pending
        return False

    def stop(self) -> None:
        """Wake every poller; they report what they hold and end."""
        self.stopped = True
        for scope in list(self._scopes):
            scope.cancel()

    def drain(self) -> list[SyncResult]:
        """Take everything still pending (after cancellation), as STARTED without outcome."""
        out = [
            attrs.evolve(p.result, error_message="run cancelled before the outcome was known")
            for group in self._groups.values()
            for p in group.values()
            if p.report
        ]
        for group in self._groups.values():
            group.clear()
        return out

    async def poll(self, key: Key) -> None:
        """List ``key``'s workspace every ``poll_interval`` until nothing is pending."""
        org_id, workspace_id = key
        group = self._groups[key]
        last_poll = self._clock()
        while group and not self.stopped:
            next_poll = last_poll + self._poll_interval
            expires = min(p.expires for p in group.values())
            delay = min(next_poll, expires) - self._clock()
            if delay > 0:
                # stop() wakes this sleep; the run's deadline does not end the waiting
                with anyio.CancelScope() as scope:
                    self._scopes.add(scope)
                    try:
                        await anyio.sleep(delay)
                    finally:
                        self._scopes.discard(scope)
                if self.stopped:
                    break
            now = self._clock()
            for index in [i for i, p in group.items() if p.expires <= now]:
                pending = group.pop(index)
                await self._end(pending, "wait timed out before a final status")
            if not group or now < next_poll:
                continue
            last_poll = now
            data = await self._poll(org_id, workspace_id)
            if data is None:
                log.info("polling workspace %s failed; will poll again", workspace_id)
                continue
            reports = {i: p.report for i, p in group.items()}
            for result in match_listing(group, data):
                if reports[result.index]:
                    await self._emit(result)
                if self._ended is not None:
                    await self._ended(result, True)
        for index in list(group):
            pending = group.pop(index)
            await self._end(pending, "stopped before the outcome was known")
        del self._groups[key]

    async def _end(self, pending: Pending, why: str) -> None:
        """A wait that ended without a final status: report it (when it is ours to)."""
        result = attrs.evolve(pending.result, error_message=why)
        if pending.report:
            await self._emit(result)
        if self._ended is not None:
            await self._ended(result, False)
