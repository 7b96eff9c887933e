"""Pacing: stay inside Zoho's per-minute limits, smoothly, per org.

Zoho allows 100 requests a minute, 60 of them METADATA calls (Sync Data and discovery
count as metadata), per organisation. A leaky bucket with the full minute's capacity
would let 60 calls out at once and then 60 more as it drains - 120 in the first minute
window. So each limiter here is an ``AsyncLimiter(1, 60/rate)``: one call every 60/rate
seconds, no burst, which fills any 60-second window (fixed or rolling) with at most
``rate`` calls while leaving none of the budget idle. A small safety margin absorbs the
jitter between our clock and the time a request reaches Zoho.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import anyio
import attrs
from aiolimiter import AsyncLimiter

from ._errors import InvalidInputError

__all__ = ["Limits", "Pacer"]

log = logging.getLogger("zoho_async")


def _positive_int(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _fraction(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value < 0.5:
        raise InvalidInputError(f"{attribute.name} must be in [0, 0.5), got {value!r}")


def _slowdown(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise InvalidInputError(f"{attribute.name} must be in (0, 1], got {value!r}")


@attrs.frozen
class Limits:
    """Per-minute budgets and the in-flight cap.

    Defaults are Zoho's documented limits: 100 requests a minute in all, 60 of them
    metadata calls (Sync Data and discovery are metadata calls), at most 8 requests in
    flight. ``per_org=True`` keeps a separate budget per organisation (Zoho's limit is per
    org); ``False`` shares one budget for the whole credential. ``safety_margin`` paces a
    little below the limit (1% by default) so clock jitter never tips a window over.
    After a 6045 (or a 429 without Retry-After) the org pauses ``rate_limit_pause``
    seconds - Zoho's window is a minute - and then paces at ``slowdown`` times its rate.

    Example::

        Limits(metadata_per_minute=60, max_in_flight=16)
    """

    requests_per_minute: int = attrs.field(default=100, validator=_positive_int)
    metadata_per_minute: int = attrs.field(default=60, validator=_positive_int)
    max_in_flight: int = attrs.field(default=8, validator=_positive_int)
    per_org: bool = True
    safety_margin: float = attrs.field(default=0.01, validator=_fraction)
    slowdown: float = attrs.field(default=0.8, validator=_slowdown)
    rate_limit_pause: float = attrs.field(default=60.0, validator=attrs.validators.ge(0.0))

    def interval(self, metadata: bool) -> float:
        """Seconds between two calls of this kind when pacing at full speed."""
        return 60.0 / (self._rate(metadata) * (1.0 - self.safety_margin))

    def _rate(self, metadata: bool) -> int:
        rate = self.metadata_per_minute if metadata else self.requests_per_minute
        return min(rate, self.requests_per_minute)

    def burst(self, metadata: bool, factor: float = 1.0) -> int:
        """Bucket capacity: calls that may go back to back after the loop was late.

        A capacity of 1 never lets a late timer be made up, so at high rates every ~1 ms
        of lateness is lost for good (0.94 of 3,000/min). A capacity of k lets up to k-1
        late calls catch up, and a 60-second window still holds at most
        ``k + floor(60 / interval)`` calls, which stays within the rate while k is within
        the margin (``floor(margin * rate)``; at most 3, so a short window never sees a
        real burst). At Zoho's 60/min the margin is under one call and k stays 1 (a 1 s
        interval loses only ~0.1% to lateness).
        """
        rate = self._rate(metadata) * factor
        return max(1, min(3, math.floor(self.safety_margin * rate)))


@attrs.define
class _OrgBudget:
    """One org's limiters and its rate-limit pause."""

    overall: AsyncLimiter
    metadata: AsyncLimiter
    factor: float = 1.0  # 1.0 = full speed; lowered each time Zoho still says 6045
    paused_until: float = 0.0  # monotonic
    rejections: int = 0


class Pacer:
    """Rate limiters per org plus one in-flight cap, created inside the running loop.

    A request holds ``pacer.capacity`` while it is in flight and awaits
    ``pacer.turn(org_id, metadata=...)`` first, which waits out any rate-limit pause of
    that org and then its limiters.
    """

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        # A Semaphore with fast_acquire: an uncontended acquire does not yield to the event
        # loop, where CapacityLimiter always does (~50 us a request at full speed).
        self._capacity = anyio.Semaphore(limits.max_in_flight, fast_acquire=True)
        self._orgs: dict[str, _OrgBudget] = {}
        self.pauses = 0

    def _key(self, org_id: str | None) -> str:
        return (org_id or "") if self.limits.per_org else ""

    def _budget(self, key: str) -> _OrgBudget:
        budget = self._orgs.get(key)
        if budget is None:
            budget = self._orgs[key] = self._make(1.0)
        return budget

    def _limiter(self, metadata: bool, factor: float) -> AsyncLimiter:
        interval = self.limits.interval(metadata) / factor
        burst = self.limits.burst(metadata, factor)
        return AsyncLimiter(burst, burst * interval)

    def _make(self, factor: float, old: _OrgBudget | None = None) -> _OrgBudget:
        overall = self._limiter(False, factor)
        metadata = self._limiter(True, factor)
        if old is None:
            return _OrgBudget(overall, metadata, factor)
        return _OrgBudget(overall, metadata, factor, old.paused_until, old.rejections)

    @property
    def capacity(self) -> anyio.Semaphore:
        """The in-flight cap; hold it for the span of one request (not while backing off)."""
        return self._capacity

    async def turn(
        self,
        org_id: str | None,
        *,
        metadata: bool,
        guard: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        """Wait for any rate-limit pause of the org, then for its limiters.

        ``guard`` (a cancel-scope factory: a deadline, a stop) wraps the waits, and is only
        entered when there is something to wait for: at full speed a scope per request is
        a noticeable part of its cost.
        """
        key = self._key(org_id)
        budget = self._budget(key)
        if (
            budget.paused_until > self._clock()
            or not budget.overall.has_capacity()
            or (metadata and not budget.metadata.has_capacity())
        ):
            with guard() if guard is not None else contextlib.nullcontext():
                await self._wait_turn(key, metadata)
            return
        # capacity is there: these return at once, without yielding to the loop
        await budget.overall.acquire()
        if metadata:
            await budget.metadata.acquire()

    async def _wait_turn(self, key: str, metadata: bool) -> None:
        # Re-check after sleeping: another 6045 may have extended the pause meanwhile.
        while True:
            budget = self._budget(key)
            wait = budget.paused_until - self._clock()
            if wait <= 0:
                break
            await anyio.sleep(wait)
        await budget.overall.acquire()
        if metadata:
            await budget.metadata.acquire()

    def paused_until(self, org_id: str | None) -> float:
        """Monotonic time until which the org is paused (0 when it is not)."""
        budget = self._orgs.get(self._key(org_id))
        return budget.paused_until if budget is not None else 0.0

    def rate_limited(self, org_id: str | None, retry_after: float | None) -> float:
        """Zoho said 6045/429 for this org: pause it and slow it down. Returns the pause."""
        key = self._key(org_id)
        budget = self._budget(key)
        now = self._clock()
        pause = retry_after if retry_after is not None else self.limits.rate_limit_pause
        # a pause already covering this one means this is the same storm: do not slow twice
        already = budget.paused_until > now + 0.5 * pause
        budget.paused_until = max(budget.paused_until, now + pause)
        budget.rejections += 1
        if not already:
            factor = max(budget.factor * self.limits.slowdown, 0.1)
            self._orgs[key] = self._make(factor, budget)
            self._orgs[key].paused_until = budget.paused_until
            self.pauses += 1
            log.info(
                "rate limited by Zoho%s; pausing %.1fs, then pacing at %d%% of the limit",
                f" (org {key})" if key else "",
                pause,
                math.floor(factor * 100),
            )
        return pause
