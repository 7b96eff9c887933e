"""``wait=True``: hold started syncs per workspace, poll each workspace, match outcomes.

One poller per workspace lists it (Get Datasources) once per ``poll_interval`` and hands
the listing to :func:`match_listing`, a pure function: which pending syncs does this
listing show as finished? Tests feed it canned listings, with no server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import attrs

from .._models import Datasource
from .._results import SyncResult

__all__ = ["Pending", "Waiter", "finished", "match_listing"]

log = logging.getLogger("zoho_async")

Key = tuple[str | None, str]  # (org_id, workspace_id)
Emit = Callable[[SyncResult], Awaitable[None]]
Poll = Callable[[str | None, str], Awaitable[Any]]  # the listing's data, or None on failure

_IN_PROGRESS_WORDS = ("progress", "running", "queued", "syncing", "initiated", "scheduled")


@attrs.define
class Pending:
    """A started sync whose final outcome we are waiting for."""

    result: SyncResult
    trigger: datetime
    expires: float  # monotonic
    baseline: str | None  # lastDataSyncTime text seen before the trigger, when known
    first_seen: str | None = None


def finished(pending: Pending, status: str | None, when: datetime | None, raw: str | None) -> bool:
    """Whether a listing's (status, time) shows ``pending``'s sync as finished.

    A status that reads as in progress is never finished. A readable time must not be
    earlier than the trigger; an unreadable one must differ from the baseline text (or,
    without a baseline, from the first text this waiter saw).
    """
    if not status or any(word in status.lower() for word in _IN_PROGRESS_WORDS):
        return False
    if when is not None:
        # Zoho prints whole seconds: compare with the trigger truncated to the second.
        return when >= pending.trigger.replace(microsecond=0)
    if pending.baseline is None:
        if pending.first_seen is None:
            pending.first_seen = raw
            return False
        return raw != pending.first_seen
    return raw != pending.baseline


def match_listing(group: dict[int, Pending], data: Any) -> list[SyncResult]:
    """Take from ``group`` every pending sync this listing shows as finished.

    ``data`` is Get Datasources' ``data`` object. Returns the finished results with
    ``outcome`` (Zoho's ``lastDataSyncStatus``) and ``completed_at`` filled in; an interval
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
        status, when, raw = ds.last_sync_status, ds.last_sync_time, ds.last_sync_time_raw
        interval = target.sync_interval_id or (
            target.config.sync_interval_id if target.config else None
        )
        for candidate in ds.intervals:
            if candidate.sync_interval_id == interval:
                status = candidate.last_sync_status
                when = candidate.last_sync_time
                raw = candidate.last_sync_time_raw
        if finished(pending, status, when, raw):
            del group[index]
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
    ) -> None:
        self._poll = poll
        self._emit = emit
        self._poll_interval = poll_interval
        self._wait_timeout = wait_timeout
        self._clock = clock
        self._groups: dict[Key, dict[int, Pending]] = {}
        self._scopes: set[anyio.CancelScope] = set()
        self.stopped = False

    def add(self, key: Key, index: int, result: SyncResult, baseline: str | None) -> bool:
        """Wait for ``result``'s outcome; True when ``key`` needs a poller started."""
        trigger = result.started_at
        assert trigger is not None
        # waited=True: from here on, a result without an outcome is a wait that ended
        # unanswered, which is not ok (see _results.is_ok)
        result = attrs.evolve(result, waited=True)
        pending = Pending(result, trigger, self._clock() + self._wait_timeout, baseline)
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
                await self._emit(
                    attrs.evolve(
                        pending.result, error_message="wait timed out before a final status"
                    )
                )
            if not group or now < next_poll:
                continue
            last_poll = now
            data = await self._poll(org_id, workspace_id)
            if data is None:
                log.info("polling workspace %s failed; will poll again", workspace_id)
                continue
            for result in match_listing(group, data):
                await self._emit(result)
        for index in list(group):
            pending = group.pop(index)
            await self._emit(
                attrs.evolve(pending.result, error_message="stopped before the outcome was known")
            )
        del self._groups[key]
