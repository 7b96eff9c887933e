"""The life of one sync: started, in progress for a while, then finished.

Completion is computed lazily: whoever reads a datasource first calls :func:`settle`, which
finishes a sync whose time is up. No background task, so nothing can outlive the server.
"""

from __future__ import annotations

from collections.abc import Callable

from ._model import FakeDatasource

Stamp = Callable[[float], str]  # clock reading -> Zoho timestamp string


def settle(datasource: FakeDatasource, now: float, stamp: Stamp) -> None:
    """Finish the datasource's sync if its duration has passed by ``now``."""
    until = datasource.running_until
    if datasource.running and until is not None and now >= until:
        complete(datasource, stamp(until))


def start(
    datasource: FakeDatasource,
    interval_id: str | None,
    now: float,
    duration: float,
    stamp: Stamp,
) -> None:
    """Start a sync: spend one unit of the connection's quota, then run for ``duration``."""
    datasource.quota.used += 1
    datasource.running = True
    datasource.running_interval = interval_id
    if duration > 0:
        datasource.running_until = now + duration
    else:
        complete(datasource, stamp(now))


def complete(datasource: FakeDatasource, when: str) -> None:
    """Record the outcome on the datasource, its interval and its tables."""
    datasource.running = False
    datasource.running_until = None
    datasource.last_status = datasource.outcome
    datasource.last_time = when
    # A single-interval datasource is synced through its only interval even when the
    # caller named none.
    target = datasource.running_interval
    if target is None and len(datasource.intervals) == 1:
        target = datasource.intervals[0].interval_id
    for interval in datasource.intervals:
        if interval.interval_id == target:
            interval.last_status = datasource.outcome
            interval.last_time = when
    for table in datasource.tables:
        table.sync_status = datasource.outcome
        table.last_sync_time = when
    datasource.running_interval = None
