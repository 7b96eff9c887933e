"""Counting requests: Zoho's per-minute limits, and the counters a test asserts on.

:class:`FixedWindowLimit` is Zoho's per-minute request limit, as fixed windows counted per
org. :class:`FakeStats` records what arrived, when, and what the fake did about it.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import attrs

# -- limits -----------------------------------------------------------------------------


class FixedWindowLimit:
    """Counts arrivals per key in fixed windows; admits while the count stays within ``limit``.

    Rejected arrivals count too: Zoho counts every request it receives, so a client that
    keeps hammering a full window gains nothing.

    Example::

        >>> limit = FixedWindowLimit(2)
        >>> [limit.admit("org", 0) for _ in range(3)]
        [True, True, False]
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        # key -> (window index, arrivals in it); only the current window matters.
        self._counts: dict[str, tuple[int, int]] = {}

    def admit(self, key: str, window: int) -> bool:
        index, count = self._counts.get(key, (window, 0))
        if index != window:
            count = 0
        count += 1
        self._counts[key] = (window, count)
        return self.limit is None or count <= self.limit


# -- counters ---------------------------------------------------------------------------

RECENT_HEADERS = 200  # how many request header sets to keep


@attrs.define(eq=False)
class FakeStats:
    """Plain attributes, updated by the server under its lock; read them after the fact.

    Example::

        assert fake.stats.syncs_started[ds.datasource_id] == 1
        assert fake.stats.max_window_count() <= 60
    """

    token_requests: int = 0
    tokens_issued: list[str] = attrs.field(factory=list)
    requests: int = 0
    requests_by_route: Counter[str] = attrs.field(factory=Counter)
    sync_calls: Counter[str] = attrs.field(factory=Counter)
    syncs_started: Counter[str] = attrs.field(factory=Counter)
    rejected_rate_limited: int = 0
    window_counts: dict[str, Counter[int]] = attrs.field(factory=dict)
    metadata_window_counts: dict[str, Counter[int]] = attrs.field(factory=dict)
    arrivals: dict[str, list[float]] = attrs.field(factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    configs: list[tuple[str, dict[str, Any] | None, str]] = attrs.field(factory=list)
    last_headers: dict[str, str] = attrs.field(factory=dict)
    recent_headers: deque[dict[str, str]] = attrs.field(
        factory=lambda: deque(maxlen=RECENT_HEADERS)
    )

    def reset(self) -> None:
        """Zero every counter in place (references held by tests stay valid)."""
        self.token_requests = 0
        self.tokens_issued.clear()
        self.requests = 0
        self.requests_by_route.clear()
        self.sync_calls.clear()
        self.syncs_started.clear()
        self.rejected_rate_limited = 0
        self.window_counts.clear()
        self.metadata_window_counts.clear()
        self.arrivals.clear()
        # in_flight is live state, not history: keep it, and restart the peak from it.
        self.peak_in_flight = self.in_flight
        self.configs.clear()
        self.last_headers = {}
        self.recent_headers.clear()

    def max_window_count(self, org_id: str | None = None) -> int:
        """Most requests that arrived in one fixed window (for one org, or the worst org)."""
        return _max_count(self.window_counts, org_id)

    def max_metadata_window_count(self, org_id: str | None = None) -> int:
        """Like :meth:`max_window_count`, for metadata requests."""
        return _max_count(self.metadata_window_counts, org_id)

    def max_rolling(self, window: float, org_id: str | None = None) -> int:
        """Most arrivals within any span of ``window`` seconds (half-open), per org.

        Example::

            assert fake.stats.max_rolling(60.0) <= 100
        """
        keys = [org_id] if org_id is not None else list(self.arrivals)
        best = 0
        for key in keys:
            times = sorted(self.arrivals.get(key, []))
            first = 0
            for last, moment in enumerate(times):
                while moment - times[first] >= window:
                    first += 1
                best = max(best, last - first + 1)
        return best


def _max_count(table: dict[str, Counter[int]], org_id: str | None) -> int:
    counters = [table.get(org_id, Counter())] if org_id is not None else list(table.values())
    return max((max(c.values(), default=0) for c in counters), default=0)
