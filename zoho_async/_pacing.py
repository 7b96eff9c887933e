"""Pacing: stay inside Zoho's per-minute limits, smoothly, per org.

Zoho allows 100 requests a minute, 60 of them METADATA calls (Sync Data and discovery
count as metadata), per organisation, counted over a 60-second window. A leaky bucket
with the full minute's capacity would let 60 calls out at once and then 60 more as it
drains - 120 in the first window. So each budget here is a leaky bucket that drains one
call every ``interval`` seconds (the rate less a small safety margin) and holds at most
``Limits.burst`` calls: 1 at Zoho's limits (calls at least one interval apart), up to 3
at high rates, where it lets calls that a late timer held back catch up. A window of W
seconds then holds at most ``burst + floor(W / interval)`` turns, and ``burst`` is chosen
so that this stays within the limit of the window the server counts in
(``Limits.window_seconds``, 60 s for Zoho) and of its whole multiples. What the margin
leaves over absorbs the variation in the time from a turn to the request reaching Zoho.
The executor takes the turn right before the send, with the access token already at
hand, so this variation is the trip itself (plus, rarely, a token refresh that fell due
during a long wait for the turn).

A metadata call takes its turn from both budgets at the same instant, once both have
room: taking one and then waiting for the other would let the first run ahead of the
request it was taken for.

A 6045 pauses the org for every caller: one waiting for a turn re-reads the pause each
time it wakes, and one that took its turn before the pause began (and then awaited its
token or its journal line) is stopped by :meth:`Pacer.paused` right before the send and
takes a new turn. After the pause the org paces at a lower rate factor, which climbs back
by the coordinators' rule (:func:`~zoho_async._coord_local.current_factor`, the one
implementation): a step per whole ``Limits.window_seconds`` without a 6045.
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

from ._coord_local import current_factor, paused_factor
from ._errors import InvalidInputError

__all__ = ["Limits", "PaceView", "Pacer"]

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


def _seconds(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0.0:
        raise InvalidInputError(f"{attribute.name} must be > 0 seconds, got {value!r}")


def _pause(_inst: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0.0:
        raise InvalidInputError(f"{attribute.name} must be >= 0 seconds or None, got {value!r}")


@attrs.frozen
class Limits:
    """Per-minute budgets and the in-flight cap.

    Defaults are Zoho's documented limits: 100 requests a minute in all, 60 of them
    metadata calls (Sync Data and discovery are metadata calls), at most 8 requests in
    flight. ``per_org=True`` keeps a separate budget per organisation (Zoho's limit is per
    org); ``False`` shares one budget for the whole credential. ``safety_margin`` paces a
    little below the limit (1% by default); what it leaves beyond the burst absorbs
    jitter (how much: see :meth:`burst`).
    ``window_seconds`` is the length of the window the server counts in (Zoho: 60 s; a
    test server may count ``rate * window_seconds / 60`` calls in shorter windows). It is
    the unit of pacing (it bounds the catch-up allowance, see :meth:`burst`), of pauses
    and of recovery, so scaling it (with the rates to match) scales all three.
    After a 6045 (or a 429 without Retry-After) the org pauses ``rate_limit_pause``
    seconds (None, the default: one window, by which the window that refused it has
    ended) and then paces at ``slowdown`` times its rate; each whole window without
    another 6045 gives back ``RECOVERY_STEP`` (0.05) of the rate, up to the full rate.

    Example::

        Limits(metadata_per_minute=60, max_in_flight=16)
    """

    requests_per_minute: int = attrs.field(default=100, validator=_positive_int)
    metadata_per_minute: int = attrs.field(default=60, validator=_positive_int)
    max_in_flight: int = attrs.field(default=8, validator=_positive_int)
    per_org: bool = True
    safety_margin: float = attrs.field(default=0.01, validator=_fraction)
    slowdown: float = attrs.field(default=0.8, validator=_slowdown)
    rate_limit_pause: float | None = attrs.field(default=None, validator=_pause)
    window_seconds: float = attrs.field(default=60.0, validator=_seconds)

    def pause_seconds(self) -> float:
        """How long a 6045 without Retry-After pauses the org: ``rate_limit_pause``, or
        one window when it is None."""
        return self.window_seconds if self.rate_limit_pause is None else self.rate_limit_pause

    def interval(self, metadata: bool) -> float:
        """Seconds between two calls of this kind when pacing at full speed."""
        return 60.0 / (self._rate(metadata) * (1.0 - self.safety_margin))

    def _rate(self, metadata: bool) -> int:
        rate = self.metadata_per_minute if metadata else self.requests_per_minute
        return min(rate, self.requests_per_minute)

    def burst(self, metadata: bool, factor: float = 1.0) -> int:
        """Bucket capacity k: how many calls may go back to back after the loop was late.

        A capacity of 1 never lets a late timer be made up, so at high rates every ~1 ms
        of lateness is lost for good (0.94 of 3,000/min). With capacity k, any span of W
        seconds holds at most ``k + floor(W / interval)`` turns. With
        ``L = rate * factor * window_seconds / 60`` (the calls a window holds at the paced
        rate; ``factor`` is below 1 after a 6045), k is ``floor(safety_margin * L)`` kept
        within 1..3: catch-up only when the margin is worth 2 whole calls in a window.
        Then ``k + floor(window_seconds / interval)`` stays within the window's limit,
        ``rate * window_seconds / 60``, whenever that is a whole number of calls, and so
        do spans of whole multiples of the window. What the margin leaves over - at full
        speed at least ``min(interval, safety_margin * window_seconds)`` seconds -
        absorbs variation in the delay from a turn to the request's arrival. At Zoho's
        60/min in 60 s the margin is 0.6 of a call and k is 1 (a 1 s interval loses only
        ~0.1% to lateness); at 6,000/min k is 3 in 60 s windows but 1 in 1 s windows.
        """
        calls = self._rate(metadata) * factor * self.window_seconds / 60.0
        return max(1, min(3, math.floor(self.safety_margin * calls)))


@attrs.define
class _Bucket:
    """A leaky bucket of ``capacity`` calls draining one call every ``interval`` seconds.

    It is kept as the moment it would be empty (``empty_at``): a call fits when at most
    ``capacity - 1`` calls are still in it, i.e. ``empty_at - now <= (capacity - 1) *
    interval``. Taking a call moves ``empty_at`` one interval on.
    """

    interval: float
    capacity: int
    empty_at: float = -math.inf

    def delay(self, now: float) -> float:
        """Seconds until a call fits (zero or less: it fits now)."""
        return self.empty_at - (self.capacity - 1) * self.interval - now

    def take(self, now: float) -> None:
        self.empty_at = max(self.empty_at, now) + self.interval


@attrs.frozen
class PaceView:
    """One org's pacing as a pacer sees it now (for ``session.snapshot()``).

    ``waiting``: calls of this process waiting for a turn (queue depth); ``factor``: the
    rate factor (1.0 = the full rate, lower after a 6045, climbing back); ``paused_until``
    (monotonic, 0.0 when never paused) and ``paused_for`` (seconds left, 0.0 = none): the
    org's rate-limit pause; ``rejections``: 6045/429 answers this process received.
    """

    waiting: int
    factor: float
    paused_until: float
    paused_for: float
    rejections: int


@attrs.define
class _OrgBudget:
    """One org's buckets and its rate-limit pause."""

    overall: _Bucket
    metadata: _Bucket
    factor: float = 1.0  # the factor the buckets are built for (1.0 = full speed)
    paused_until: float = 0.0  # monotonic
    rejections: int = 0
    # One waiter at a time sleeps on the buckets, the others queue here in order: without
    # it every waiter would wake at each slot, and one would win it at random.
    queue: anyio.Lock = attrs.field(factory=anyio.Lock)
    factor_at_pause: float = 1.0  # set by the last pause; recovery climbs from here
    waiting: int = 0  # callers inside the slow path of turn()

    def wait(self, metadata: bool, now: float) -> float:
        """Seconds until this kind of call may go (zero or less: now)."""
        wait = max(self.paused_until - now, self.overall.delay(now))
        return max(wait, self.metadata.delay(now)) if metadata else wait

    def take(self, metadata: bool, now: float) -> None:
        # both buckets at the same instant: the turn is the moment the request goes
        self.overall.take(now)
        if metadata:
            self.metadata.take(now)


class Pacer:
    """Rate budgets per org plus one in-flight cap, created inside the running loop.

    A request holds ``pacer.capacity`` while it is in flight and awaits
    ``pacer.turn(org_id, metadata=...)`` right before it is sent, which waits out any
    rate-limit pause of that org and then its budgets. If it awaited anything after its
    turn, it asks :meth:`paused` right before the send and takes a new turn when a pause
    began meanwhile.
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

    def _current(self, key: str, now: float) -> _OrgBudget:
        """The org's budget, its buckets rebuilt if recovery has raised the factor."""
        budget = self._budget(key)
        if budget.factor_at_pause >= 1.0:
            return budget  # never slowed, or fully recovered: the common case, no arithmetic
        factor = current_factor(
            budget.factor_at_pause, budget.paused_until, now, self.limits.window_seconds
        )
        if factor != budget.factor:
            budget = self._orgs[key] = self._make(factor, budget)
            if factor >= 1.0:
                budget.factor_at_pause = 1.0  # back at full speed: skip this from now on
        return budget

    def _bucket(self, metadata: bool, factor: float) -> _Bucket:
        interval = self.limits.interval(metadata) / factor
        return _Bucket(interval, self.limits.burst(metadata, factor))

    def _make(self, factor: float, old: _OrgBudget | None = None) -> _OrgBudget:
        overall = self._bucket(False, factor)
        metadata = self._bucket(True, factor)
        if old is None:
            return _OrgBudget(overall, metadata, factor)
        # other rate, but no fresh burst: they carry on from where the old ones were
        overall.empty_at = old.overall.empty_at
        metadata.empty_at = old.metadata.empty_at
        return _OrgBudget(
            overall,
            metadata,
            factor,
            old.paused_until,
            old.rejections,
            queue=old.queue,
            factor_at_pause=old.factor_at_pause,
            waiting=old.waiting,
        )

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
    ) -> bool:
        """Wait for any rate-limit pause of the org, then for its budgets; take the turn.

        Returns whether it had to wait. ``guard`` (a cancel-scope factory: a deadline, a
        stop) wraps the wait, and is only entered when there is something to wait for: at
        full speed a scope per request is a noticeable part of its cost. When the guard
        ends the wait, the turn is not taken (the caller must check its guard).
        """
        key = self._key(org_id)
        now = self._clock()
        budget = self._current(key, now)
        # nobody queued ahead and room now: take it without awaiting anything
        if budget.wait(metadata, now) <= 0 and not budget.queue.locked():
            budget.take(metadata, now)
            return False
        budget.waiting += 1
        try:
            with guard() if guard is not None else contextlib.nullcontext():
                await self._wait_turn(key, metadata)
        finally:
            # the budget object may have been rebuilt meanwhile (a pause, recovery)
            self._budget(key).waiting -= 1
        return True

    async def _wait_turn(self, key: str, metadata: bool) -> None:
        async with self._budget(key).queue:
            while True:
                # Re-read each time: a 6045 meanwhile may have paused and slowed the org,
                # and a sleep computed before it must not end in a turn inside the pause.
                now = self._clock()
                budget = self._current(key, now)
                wait = budget.wait(metadata, now)
                if wait <= 0:
                    budget.take(metadata, now)
                    return
                await anyio.sleep(wait)

    def paused(self, org_id: str | None) -> bool:
        """Whether the org is inside a rate-limit pause now (no await, for the last check
        right before a send: a turn taken before a pause began is void)."""
        budget = self._orgs.get(self._key(org_id))
        return budget is not None and budget.paused_until > self._clock()

    def paused_until(self, org_id: str | None) -> float:
        """Monotonic time until which the org is paused (0 when it is not)."""
        budget = self._orgs.get(self._key(org_id))
        return budget.paused_until if budget is not None else 0.0

    def org_states(self) -> dict[str, PaceView]:
        """Each org's pacing now, keyed by org id ("" when budgets are not per org).

        Cheap (no await, a few float operations per org): fit for a health endpoint.
        """
        now = self._clock()
        window = self.limits.window_seconds
        return {
            key: PaceView(
                waiting=budget.waiting,
                factor=current_factor(budget.factor_at_pause, budget.paused_until, now, window),
                paused_until=budget.paused_until,
                paused_for=max(0.0, budget.paused_until - now),
                rejections=budget.rejections,
            )
            for key, budget in self._orgs.items()
        }

    async def on_rate_limited(self, org_id: str | None, retry_after: float | None) -> float:
        """:meth:`rate_limited`, awaitable: a shared pacer tells its coordinator."""
        return self.rate_limited(org_id, retry_after)

    def rate_limited(self, org_id: str | None, retry_after: float | None) -> float:
        """Zoho said 6045/429 for this org: pause it and slow it down. Returns the pause.

        The slowdown follows the coordinators' rule: the factor reached so far (recovery
        included) times ``Limits.slowdown``, never below ``MIN_FACTOR``; answers to the
        calls that were in flight together (a pause already covering most of this one)
        slow it only once.
        """
        key = self._key(org_id)
        now = self._clock()
        budget = self._current(key, now)
        pause = retry_after if retry_after is not None else self.limits.pause_seconds()
        # a pause already covering this one means this is the same storm: do not slow twice
        already = budget.paused_until > now + 0.5 * pause
        budget.rejections += 1
        if already:
            budget.paused_until = max(budget.paused_until, now + pause)
            return pause
        factor = paused_factor(budget.factor, self.limits.slowdown)
        budget.factor_at_pause = factor
        budget.paused_until = max(budget.paused_until, now + pause)
        self._orgs[key] = self._make(factor, budget)
        self.pauses += 1
        log.info(
            "rate limited by Zoho%s; pausing %.1fs, then pacing at %d%% of the limit, "
            "climbing back every %.0fs without another",
            f" (org {key})" if key else "",
            pause,
            math.floor(factor * 100),
            self.limits.window_seconds,
        )
        return pause
