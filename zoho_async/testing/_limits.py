"""Zoho's per-minute request limits, as fixed windows counted per org."""

from __future__ import annotations


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
