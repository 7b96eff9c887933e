"""A session's budgets kept by a :class:`~zoho_async.Coordinator` instead of in-process.

Three adapters, each the in-process part's shared twin:

- :class:`SharedTokenStore`: the access token lives in the coordinator, and the refresh
  lock is the coordinator's *lease*, so one process mints a token and the others adopt it;
- :class:`SharedTokenBudget`: the 10-per-10-minutes budget counted across every sharer;
- :class:`SharedPacer`: per-org turns reserved from the coordinator (GCRA), taken right
  before the send; a pause seen by one sharer holds for all. The in-flight cap stays local.

Keys carry no secret: the token key is already a hash, and org ids are not secrets.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager

import anyio

from ._auth import StoredToken
from ._coord_local import paused_factor
from ._coordinator import Coordinator
from ._errors import TokenError, TokenThrottledError
from ._pacing import Limits, Pacer

__all__ = ["SharedPacer", "SharedTokenBudget", "SharedTokenStore"]

log = logging.getLogger("zoho_async")

# How often a process waiting for another's token refresh looks again.
LEASE_POLL = 0.05
# How long before its turn a waiting call asks whether the org was paused meanwhile.
PAUSE_CHECK_LEAD = 0.05


class SharedTokenStore:
    """A :class:`~zoho_async.TokenStore` in a coordinator; its lock is a lease with a TTL.

    A leader that dies stops renewing nothing: its lease simply expires after
    ``lease_ttl`` and the next process takes it.
    """

    def __init__(
        self, coordinator: Coordinator, holder: str, *, lease_ttl: float, wait: float
    ) -> None:
        self._coordinator = coordinator
        self._holder = holder
        self._lease_ttl = lease_ttl
        self._wait = wait

    def __repr__(self) -> str:
        return f"SharedTokenStore({type(self._coordinator).__name__})"

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        with anyio.move_on_after(self._wait) as scope:
            while True:
                if await self._coordinator.lease(key, self._holder, self._lease_ttl):
                    break
                # Another process is refreshing: its token appears in the store when it is
                # done, or its lease expires if it died. Nothing in this process can signal
                # either (an Event cannot cross processes), so look again shortly.
                await anyio.sleep(LEASE_POLL)
        if scope.cancelled_caught:
            raise TokenError(f"another process held the token refresh for over {self._wait:.0f}s")
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self._coordinator.unlease(key, self._holder)

    async def load(self, key: str) -> StoredToken | None:
        return await self._coordinator.get_token(key)

    async def save(self, key: str, token: StoredToken) -> None:
        await self._coordinator.put_token(key, token)

    async def discard(self, key: str, access_token: str) -> None:
        await self._coordinator.drop_token(key, access_token)


class SharedTokenBudget:
    """Token requests counted in the coordinator: ``limit`` per ``window`` for all sharers."""

    def __init__(self, coordinator: Coordinator, key: str, limit: int, window: float) -> None:
        self._coordinator = coordinator
        self._key = "tokens:" + key
        self.limit = limit
        self.window = window

    async def acquire(self) -> None:
        """Count one token request, or raise ``TokenThrottledError`` before it is sent."""
        wait = await self._coordinator.take_token_request(self._key, self.limit, self.window)
        if wait > 0:
            raise TokenThrottledError(
                f"{self.limit} token requests in the last {self.window:.0f}s already, across "
                f"every process sharing this credential (Zoho's limit); not sending another; "
                f"try again in {math.ceil(wait)}s",
                retry_at=None,
            )

    async def block(self, seconds: float) -> None:
        await self._coordinator.block_token_requests(self._key, seconds)


class SharedPacer(Pacer):
    """A :class:`Pacer` whose per-org turns and pauses live in a coordinator.

    Its in-process budgets (``Pacer._orgs``) only mirror what this process learnt of each
    org's pause and factor, for :meth:`paused` (the last check before a send, which must
    not cost a round trip) and :meth:`~Pacer.org_states`.
    """

    def __init__(self, limits: Limits, coordinator: Coordinator, *, namespace: str) -> None:
        super().__init__(limits, clock=anyio.current_time)
        self._coordinator = coordinator
        self._namespace = namespace

    def _shared_key(self, org_id: str | None, kind: str) -> str:
        return f"pace:{self._namespace}:{self._key(org_id)}:{kind}"

    def _note_pause(self, org_id: str | None, paused_for: float, factor: float) -> None:
        """Mirror a pause of the org seen at the coordinator (``factor``: the one it sets)."""
        budget = self._budget(self._key(org_id))
        budget.paused_until = max(budget.paused_until, self._clock() + paused_for)
        budget.factor_at_pause = factor

    async def turn(
        self,
        org_id: str | None,
        *,
        metadata: bool,
        guard: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> bool:
        window = self.limits.window_seconds
        overall = self._shared_key(org_id, "all")
        kinds: list[tuple[str, bool]] = [(overall, False)]
        if metadata:
            kinds.append((self._shared_key(org_id, "meta"), True))
        waited = False
        budget = self._budget(self._key(org_id))
        try:
            with guard() if guard is not None else contextlib.nullcontext():
                while True:
                    # The coordinator reckons each turn from its own clock at some instant
                    # during the round trip; its midpoint is the best guess of that instant,
                    # so a slow round trip shifts the send by half of it, not all of it.
                    send_at = -math.inf
                    for key, meta in kinds:
                        asked = anyio.current_time()
                        reserved = await self._coordinator.reserve(
                            key,
                            self.limits.interval(meta),
                            self.limits.burst(meta),
                            recovery_window=window,
                        )
                        if reserved > 0:
                            send_at = max(send_at, (asked + anyio.current_time()) / 2 + reserved)
                    wait = send_at - anyio.current_time()
                    if wait <= 0 and not self.paused(org_id):
                        # reserve placed the turn after any pause known at that instant
                        return waited
                    if not waited:
                        waited = True
                        budget.waiting += 1
                    # Look for a pause shortly before the turn, not after it: the round trip
                    # then overlaps the wait instead of delaying the send (a late send
                    # bunches with the next turns at Zoho). A pause that another process
                    # begins in the last PAUSE_CHECK_LEAD seconds is as racy as one that
                    # begins right after a send; one this process learnt of is seen below.
                    if wait > PAUSE_CHECK_LEAD:
                        await anyio.sleep(wait - PAUSE_CHECK_LEAD)
                    state = await self._coordinator.pace_state(overall, recovery_window=window)
                    if state.paused_for > 0:
                        # a pause began while we waited: the turn is void; nothing leaks
                        self._note_pause(org_id, state.paused_for, state.factor)
                        await anyio.sleep(state.paused_for)
                        continue
                    await anyio.sleep(max(send_at - anyio.current_time(), 0.0))
                    if self.paused(org_id):
                        # this process was told 6045 during the last sleep: void too
                        await anyio.sleep(self.paused_until(org_id) - self._clock())
                        continue
                    return waited
        finally:
            if waited:
                budget.waiting -= 1

    async def on_rate_limited(self, org_id: str | None, retry_after: float | None) -> float:
        """Pause the org for every sharer and slow it; returns the pause."""
        pause = retry_after if retry_after is not None else self.limits.pause_seconds()
        window = self.limits.window_seconds
        overall = self._shared_key(org_id, "all")
        state = await self._coordinator.pace_state(overall, recovery_window=window)
        self._budget(self._key(org_id)).rejections += 1
        if state.paused_for >= 0.5 * pause:
            # another sharer already paused for this storm: do not slow twice
            self._note_pause(org_id, state.paused_for, state.factor)
            return state.paused_for
        self.pauses += 1
        lasts = 0.0
        for kind in ("all", "meta"):
            lasts = await self._coordinator.pause(
                self._shared_key(org_id, kind), pause, slowdown=self.limits.slowdown
            )
        # the factor the coordinator set: the one reached so far, slowed (one rule)
        self._note_pause(org_id, lasts, paused_factor(state.factor, self.limits.slowdown))
        log.info("rate limited by Zoho; every sharer pauses %.1fs", lasts)
        return lasts
