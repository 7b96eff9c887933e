"""Settle an ambiguous Sync Data attempt from Zoho's own counters, never by re-sending.

Sync Data answers 204 and nothing else: no job id. When an attempt fails after it may have
reached Zoho (a timeout or a drop after sending, a 5xx or 7005, a garbled answer), the only
witness of what happened is Get Datasources:

- ``syncUsed`` counts the connection's manual syncs the moment one *starts*;
- ``lastDataSyncStatus`` / ``lastDataSyncTime`` (per interval where there are intervals)
  change when a sync *finishes*.

Both are compared with a *baseline*: a listing read before the first attempt. The verdict
(:func:`settle`) is a pure function of the two listings:

======================================  =============================================
what the listing shows                  verdict
======================================  =============================================
``syncUsed`` unchanged (ours counted)   NOT_STARTED when Zoho answered (it had finished
                                        with the request); UNKNOWN when the answer was
                                        lost (the request may still be processed)
``syncUsed`` up, and the datasource's   STARTED
time text moved or it reads running
``syncUsed`` up, text unchanged, no     STARTED (the sync is still running)
other datasource with the same counter
``syncUsed`` up, text unchanged, a      UNKNOWN for now (a datasource sharing the
datasource with the same counter        connection may have spent it): listed again
                                        until the text moves, up to a patience
``syncUsed`` down, missing, no          UNKNOWN
baseline, listing failed
======================================  =============================================

The connection is not named in the listing, so "shares the connection" is inferred from
equal ``syncUsed``/``totalSyncAllowed`` pairs in the baseline: a shared connection implies
equal pairs, so a datasource with a unique pair has the connection to itself (within the
workspace). Another actor starting a manual sync of the same connection between the baseline
and the settling listing (a person in the web UI, another process) is the one case this
cannot see; issue "Shared budgets" coordinates processes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import anyio
import attrs

from ._errors import TimeoutError
from ._models import Datasource

__all__ = [
    "RECHECKS",
    "RESET_GRACE",
    "Baselines",
    "DsState",
    "Settlement",
    "Snapshot",
    "Verdict",
    "reads_running",
    "settle",
    "settler",
]

Key = tuple[str | None, str]  # (org_id, workspace_id)
Poll = Callable[[str | None, str], Awaitable[Any]]  # a listing's data, or None on failure

# How many more listings an attempt gets when only the end of its sync can tell (the
# counter moved, but a datasource sharing it may have spent it). Each waits for one
# recheck interval, and the attempt holds a worker meanwhile: syncs that end within about
# three request timeouts (capped at 30 s) are settled STARTED, longer ones UNCONFIRMED.
RECHECKS = 3

# A connection reset after sending is given this long (at most the timeout) before its
# listing is read: a reset usually means the far end is done with the request, unlike a
# timeout, where Zoho may still be working on it.
RESET_GRACE = 2.0

_IN_PROGRESS_WORDS = ("progress", "running", "queued", "syncing", "initiated", "scheduled")


def reads_running(status: str | None) -> bool:
    """Whether a ``lastDataSyncStatus`` reads as a sync still under way."""
    return bool(status) and any(word in (status or "").lower() for word in _IN_PROGRESS_WORDS)


@attrs.frozen
class DsState:
    """What one listing says about one datasource: counters and (status, time text) views.

    ``text`` is ``lastDataSyncTime`` as printed, ``""`` when the datasource never synced.
    """

    sync_used: int | None
    allowed: int | None
    status: str | None
    text: str
    intervals: Mapping[str, tuple[str | None, str]] = attrs.field(factory=dict)

    @classmethod
    def of(cls, ds: Datasource) -> DsState:
        return cls(
            sync_used=ds.sync_used,
            allowed=ds.total_sync_allowed,
            status=ds.last_sync_status,
            text=ds.last_sync_time_raw or "",
            intervals={
                i.sync_interval_id: (i.last_sync_status, i.last_sync_time_raw or "")
                for i in ds.intervals
            },
        )

    def view(self, interval_id: str | None) -> tuple[str | None, str]:
        """(status, time text) of ``interval_id`` when listed, else the datasource's own."""
        if interval_id is not None and interval_id in self.intervals:
            return self.intervals[interval_id]
        if interval_id is None and len(self.intervals) == 1:
            # a single-interval datasource synced without naming it syncs that interval
            return next(iter(self.intervals.values()))
        return self.status, self.text


@attrs.frozen
class Snapshot:
    """One workspace listing, reduced to what settling and waiting compare.

    ``sent_at`` is the monotonic time its request was sent: a listing proves nothing about
    an attempt made after it was sent.
    """

    sent_at: float
    datasources: Mapping[str, DsState]

    @classmethod
    def from_data(cls, data: Any, sent_at: float) -> Snapshot | None:
        """From Get Datasources' ``data``; ``None`` when it has no ``dataSources`` list."""
        entries = data.get("dataSources") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return None
        states: dict[str, DsState] = {}
        for entry in entries:
            if isinstance(entry, dict):
                ds = Datasource.from_api(entry)
                if ds.datasource_id is not None:
                    states[ds.datasource_id] = DsState.of(ds)
        return cls(sent_at, states)

    def text(self, datasource_id: str | None, interval_id: str | None) -> str | None:
        """The time text a wait compares with (``None`` when the datasource is not listed)."""
        state = self.datasources.get(datasource_id or "")
        return None if state is None else state.view(interval_id)[1]


class Verdict(enum.Enum):
    STARTED = "started"
    NOT_STARTED = "not started"
    UNKNOWN = "unknown"


@attrs.frozen
class Settlement:
    """A verdict and the evidence behind it (goes into the result's ``error_message``)."""

    verdict: Verdict
    evidence: str
    # UNKNOWN for now: the sync, if it is ours, is still running; its end will tell
    later: bool = False


def settle(
    baseline: Snapshot | None,
    now: Snapshot | None,
    datasource_id: str,
    interval_id: str | None,
    *,
    ours: int = 0,
    answered: bool,
) -> Settlement:
    """Did the ambiguous attempt on ``datasource_id`` start a sync? (pure; see the table).

    ``ours`` counts the syncs this datasource is known to have started since the baseline
    (an earlier interval of the same run); ``answered`` is False when the answer was lost
    (timeout, drop), so Zoho may still act on the request.
    """

    def unknown(why: str) -> Settlement:
        return Settlement(Verdict.UNKNOWN, why)

    if baseline is None:
        return unknown("no baseline listing was read before the attempt")
    if now is None:
        return unknown("the settling listing (Get Datasources) failed")
    before = baseline.datasources.get(datasource_id)
    after = now.datasources.get(datasource_id)
    if before is None or after is None:
        return unknown("the datasource is missing from Get Datasources")
    if before.sync_used is None or after.sync_used is None:
        return unknown("Get Datasources shows no syncUsed for it")
    counter = f"syncUsed {before.sync_used}->{after.sync_used}"
    if ours:
        counter += f" ({ours} started earlier in this run)"
    delta = after.sync_used - before.sync_used - ours
    if delta < 0:
        return unknown(f"{counter}: the counter went down (a new quota day?)")
    if delta == 0:
        if answered:
            return Settlement(Verdict.NOT_STARTED, f"{counter}: no sync started")
        return unknown(f"{counter} after the answer was lost; Zoho may still act on it")
    old, new = before.view(interval_id), after.view(interval_id)
    if new != old or reads_running(new[0]):
        return Settlement(
            Verdict.STARTED,
            f"{counter}; lastDataSync {old[0]!s} {old[1]!r} -> {new[0]!s} {new[1]!r}",
        )
    pair = (before.sync_used, before.allowed)
    shared = sum(
        1
        for other_id, other in baseline.datasources.items()
        if other_id != datasource_id and (other.sync_used, other.allowed) == pair
    )
    if shared:
        return Settlement(
            Verdict.UNKNOWN,
            f"{counter} but the sync time did not move, and {shared} other datasource(s) "
            "may share the connection",
            later=True,
        )
    return Settlement(Verdict.STARTED, f"{counter}; the sync is still running")


@attrs.define
class _Entry:
    snapshot: Snapshot | None
    taken: float  # monotonic, when its request was sent
    ours: dict[str, int] = attrs.field(factory=dict)  # datasource -> starts since baseline


class Baselines:
    """Per workspace: the baseline listing, our starts since it, and fresh listings.

    ``before_send`` lists a workspace once (single-flight) before its first sync and reuses
    the listing for every later sync of it; with ``max_age`` (a long-lived session's single
    calls) an older baseline is read again. ``listing_after(key, t)`` returns a listing
    whose request was sent at or after ``t``, shared by every caller that can use it: one
    metadata call settles every pending attempt of a workspace.
    """

    def __init__(
        self,
        poll: Poll,
        *,
        clock: Callable[[], float],
        max_age: float | None = None,
    ) -> None:
        self._poll = poll
        self._clock = clock
        self._max_age = math.inf if max_age is None else max_age
        self._entries: dict[Key, _Entry] = {}
        self._latest: dict[Key, Snapshot | None] = {}
        self._locks: dict[Key, anyio.Lock] = {}

    def _lock(self, key: Key) -> anyio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        return lock

    async def _read(self, key: Key) -> tuple[Snapshot | None, float]:
        sent_at = self._clock()
        data = await self._poll(*key)
        snapshot = None if data is None else Snapshot.from_data(data, sent_at)
        self._latest[key] = snapshot
        return snapshot, sent_at

    def put(self, key: Key, data: Any, sent_at: float) -> None:
        """Use a listing already read (discovery's) as ``key``'s baseline."""
        if key not in self._entries:
            self._entries[key] = _Entry(Snapshot.from_data(data, sent_at), sent_at)

    async def before_send(self, key: Key) -> Snapshot | None:
        """The baseline of ``key``'s workspace, listing it first when there is none yet."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.taken <= self._max_age:
            return entry.snapshot
        async with self._lock(key):
            entry = self._entries.get(key)
            if entry is None or self._clock() - entry.taken > self._max_age:
                snapshot, sent_at = await self._read(key)
                entry = self._entries[key] = _Entry(snapshot, sent_at)
            return entry.snapshot

    def baseline(self, key: Key) -> Snapshot | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.snapshot

    def note_started(self, key: Key, datasource_id: str) -> None:
        """Count a sync of ours that started after ``key``'s baseline."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.ours[datasource_id] = entry.ours.get(datasource_id, 0) + 1

    def ours(self, key: Key, datasource_id: str) -> int:
        entry = self._entries.get(key)
        return 0 if entry is None else entry.ours.get(datasource_id, 0)

    async def listing_after(self, key: Key, moment: float) -> Snapshot | None:
        """A listing of ``key`` sent at or after ``moment`` (shared with other callers)."""
        async with self._lock(key):
            latest = self._latest.get(key)
            if latest is not None and latest.sent_at >= moment:
                return latest
            snapshot, _ = await self._read(key)
            return snapshot


def settler(
    baselines: Baselines,
    key: Key,
    datasource_id: str,
    interval_id: str | None,
    *,
    delay: float,
    waiting: Callable[[], AbstractContextManager[anyio.CancelScope]] | None = None,
) -> Callable[[Any, bool], Awaitable[Settlement]]:
    """The executor's ``settle`` callback for one Sync Data target.

    A lost answer (``answered=False``) is given ``delay`` seconds after a timeout (the
    request timeout: as long again as the answer had), or :data:`RESET_GRACE` after a
    reset connection, before the listing is read. When the listing can only
    tell once the sync ends, the workspace is listed again every ``delay`` (1-10 s), up to
    :data:`RECHECKS` times. ``waiting`` bounds every wait (a run's deadline or stop).
    Listings are shared with every attempt of the workspace settling at the same time.
    """
    recheck = min(max(delay, 1.0), 10.0)

    async def pause(seconds: float) -> bool:
        """Sleep; False when a stop or the deadline cut the sleep short."""
        if waiting is None:
            await anyio.sleep(seconds)
            return True
        with waiting() as scope:
            await anyio.sleep(seconds)
        return not scope.cancel_called

    async def settle_attempt(error: Any, answered: bool) -> Settlement:
        baseline = baselines.baseline(key)
        if baseline is None:
            return settle(None, None, datasource_id, interval_id, answered=answered)
        if not answered:
            await pause(delay if isinstance(error, TimeoutError) else min(delay, RESET_GRACE))
        rechecks = RECHECKS
        while True:
            now = await baselines.listing_after(key, anyio.current_time())
            verdict = settle(
                baseline,
                now,
                datasource_id,
                interval_id,
                ours=baselines.ours(key, datasource_id),
                answered=answered,
            )
            if not verdict.later or rechecks <= 0 or not await pause(recheck):
                return verdict
            rechecks -= 1

    return settle_attempt
