"""``LocalCoordinator``: the coordinator of one process (the SDK's default).

Everything lives in dicts of this process. Every method is a read-modify-write with no
``await`` inside, so under anyio (one event loop, cooperative tasks) each one is atomic
without a lock. It is not thread-safe: use it from the event loop that uses the session.

The rules (shared with :mod:`zoho_async._coord_sqlite`, whose pure parts live here):

- **Pacing (GCRA).** Each key keeps a theoretical arrival time ``tat``, the end of its
  pause ``paused_until`` and the factor set at its last pause ``factor_at_pause``. A
  reservation at ``now`` with ``iv = interval / factor`` (the factor :meth:`pace_state`
  reports) takes::

      start = max(tat, now, paused_until)
      wait  = max(0, start - now - (burst - 1) * iv, paused_until - now)
      tat   = start + iv

  The last term of ``wait`` keeps a burst from starting inside a pause (the protocol: the
  turn comes after the pause); it only matters for ``burst > 1``.
- **Recovery.** Once the pause has ended the factor is
  ``min(1, factor_at_pause + RECOVERY_STEP * floor((now - paused_until) / window))``; while
  it lasts, ``factor_at_pause``. A pause sets ``factor_at_pause`` to the current factor
  times ``slowdown``, at least ``MIN_FACTOR``, and ``paused_until`` to the later of the
  old end and ``now + seconds``. :meth:`pause` is not told a recovery window: the current
  factor there is reckoned with the window of the key's last reservation (60 s before
  any), which is the one its callers pace with.
- **Token requests.** A rolling window of the times of granted requests per key, plus an
  instant before which none is granted (:meth:`block_token_requests`).
- **Expiry.** Leases and claims end ``ttl`` seconds after they were (re)taken; an access
  token ends at its ``expires_at``, after which :meth:`get_token` returns None. Dead
  entries are pruned at most once a minute, on the way through another call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

from ._auth import StoredToken
from ._coordinator import MIN_FACTOR, RECOVERY_STEP, Claim, OpenClose, PaceState
from ._errors import InvalidInputError

__all__ = ["LocalCoordinator"]

# How often dead entries are swept (seconds of the coordinator's clock).
PRUNE_EVERY = 60.0
# Token-request times are kept at least this long whatever the window a call names, so
# a sweep that does not know each key's window never drops a time still counted.
STAMP_KEEP = 86_400.0
# A pacing key untouched this long has no pause left and (at any sane recovery window)
# has recovered: its row is dropped and a new one starts at full speed.
PACE_KEEP = 86_400.0


def check_positive(name: str, value: float) -> None:
    """Reject a non-positive (or NaN) duration or count from a caller."""
    if not value > 0:
        raise InvalidInputError(f"{name} must be > 0, got {value!r}")


def check_pause(seconds: float, slowdown: float) -> None:
    """Reject a negative pause or a slowdown outside (0, 1]."""
    if not seconds >= 0:
        raise InvalidInputError(f"seconds must be >= 0, got {seconds!r}")
    if not 0.0 < slowdown <= 1.0:
        raise InvalidInputError(f"slowdown must be in (0, 1], got {slowdown!r}")


def current_factor(factor_at_pause: float, paused_until: float, now: float, window: float) -> float:
    """The rate factor at ``now``: the pause's factor, climbing back once it has ended."""
    if now < paused_until:
        return factor_at_pause
    if factor_at_pause >= 1.0:
        return 1.0
    steps = math.floor((now - paused_until) / window)
    return min(1.0, factor_at_pause + RECOVERY_STEP * steps)


def gcra(tat: float, paused_until: float, now: float, iv: float, burst: int) -> tuple[float, float]:
    """One GCRA reservation: (seconds to wait, the new theoretical arrival time)."""
    start = max(tat, now, paused_until)
    wait = max(0.0, start - now - (burst - 1) * iv, paused_until - now)
    return wait, start + iv


def paused_factor(factor: float, slowdown: float) -> float:
    """The factor a pause sets from the current one."""
    return max(MIN_FACTOR, factor * slowdown)


def token_wait(stamps: list[float], limit: int, window: float, now: float) -> float:
    """Seconds until one more of ``limit`` per ``window`` fits (0.0: now).

    ``stamps`` are the live request times, oldest first (all newer than ``now - window``).
    """
    excess = len(stamps) - limit
    if excess < 0:
        return 0.0
    # that many must leave the window, and the one after them too, for one more to fit
    return stamps[excess] + window - now


@attrs.define
class _Pace:
    tat: float = -math.inf
    paused_until: float = -math.inf
    factor_at_pause: float = 1.0
    window: float = 60.0  # the recovery window of the last reservation


class LocalCoordinator(OpenClose):
    """The :class:`~zoho_async.Coordinator` of one process: budgets kept in memory.

    This is the SDK's default and today's behaviour: the budgets are this process's own.
    ``clock`` (wall time by default) is injectable for tests.

    Example::

        async with LocalCoordinator() as shared:
            session = AnalyticsSession(..., coordinator=shared)
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, StoredToken] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # key -> (holder, expires_at)
        self._stamps: dict[str, list[float]] = {}  # key -> granted times, oldest first
        self._blocked: dict[str, float] = {}  # key -> no token request before this
        self._pace: dict[str, _Pace] = {}
        self._claims: dict[str, tuple[Claim, float]] = {}  # key -> (holder, expires_at)
        self._next_prune = -math.inf

    def __repr__(self) -> str:
        # counts only: the tokens are secrets
        return f"LocalCoordinator({len(self._tokens)} tokens, {len(self._claims)} claims)"

    async def open(self) -> None:
        """Nothing to connect to; always usable."""

    async def aclose(self) -> None:
        """Nothing to release; the state stays (a closed local coordinator can be reused)."""

    def _now(self) -> float:
        now = self._clock()
        if now >= self._next_prune:
            self._prune(now)
            self._next_prune = now + PRUNE_EVERY
        return now

    def _prune(self, now: float) -> None:
        self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
        self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
        self._claims = {k: v for k, v in self._claims.items() if v[1] > now}
        self._blocked = {k: v for k, v in self._blocked.items() if v > now}
        stamps = {k: [t for t in v if t > now - STAMP_KEEP] for k, v in self._stamps.items()}
        self._stamps = {k: v for k, v in stamps.items() if v}
        self._pace = {
            k: p for k, p in self._pace.items() if max(p.tat, p.paused_until) > now - PACE_KEEP
        }

    # -- the access token -----------------------------------------------------------------

    async def get_token(self, key: str) -> StoredToken | None:
        """The shared access token of ``key``, or None (also once it has expired)."""
        token = self._tokens.get(key)
        return token if token is not None and token.expires_at > self._now() else None

    async def put_token(self, key: str, token: StoredToken) -> None:
        """Share a freshly minted token (replaces any other)."""
        self._tokens[key] = token

    async def drop_token(self, key: str, access_token: str) -> None:
        """Forget the token, but only if it is still ``access_token``."""
        token = self._tokens.get(key)
        if token is not None and token.access_token == access_token:
            del self._tokens[key]

    async def lease(self, key: str, holder: str, ttl: float) -> bool:
        """Hold ``key``'s refresh lease for ``ttl`` seconds; False while another holds it."""
        check_positive("ttl", ttl)
        now = self._now()
        current = self._leases.get(key)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._leases[key] = (holder, now + ttl)
        return True

    async def unlease(self, key: str, holder: str) -> None:
        """Give the lease up (only when ``holder`` holds it)."""
        current = self._leases.get(key)
        if current is not None and current[0] == holder:
            del self._leases[key]

    async def take_token_request(self, key: str, limit: int, window: float) -> float:
        """Count one token request against ``limit`` per rolling ``window``; see the protocol."""
        check_positive("limit", limit)
        check_positive("window", window)
        now = self._now()
        stamps = [t for t in self._stamps.get(key, ()) if t > now - window]
        blocked = self._blocked.get(key, -math.inf) - now
        wait = max(blocked, token_wait(stamps, limit, window, now))
        if wait > 0:
            self._stamps[key] = stamps
            return wait
        stamps.append(now)
        self._stamps[key] = stamps
        return 0.0

    async def block_token_requests(self, key: str, seconds: float) -> None:
        """Grant no token request for ``key`` for ``seconds`` (a longer block stays)."""
        check_positive("seconds", seconds)
        until = self._now() + seconds
        self._blocked[key] = max(self._blocked.get(key, -math.inf), until)

    # -- pacing -----------------------------------------------------------------------------

    async def reserve(
        self, key: str, interval: float, burst: int, *, recovery_window: float = 60.0
    ) -> float:
        """Take the next GCRA turn of ``key``; the seconds to wait before sending."""
        check_positive("interval", interval)
        check_positive("burst", burst)
        check_positive("recovery_window", recovery_window)
        now = self._now()
        pace = self._pace.setdefault(key, _Pace())
        factor = current_factor(pace.factor_at_pause, pace.paused_until, now, recovery_window)
        wait, pace.tat = gcra(pace.tat, pace.paused_until, now, interval / factor, burst)
        pace.window = recovery_window
        return wait

    async def pause(self, key: str, seconds: float, *, slowdown: float = 0.8) -> float:
        """Pause ``key`` for every sharer and lower its factor; the seconds it now lasts."""
        check_pause(seconds, slowdown)
        now = self._now()
        pace = self._pace.setdefault(key, _Pace())
        # the factor reached at the moment of the pause, recovery included
        factor = current_factor(pace.factor_at_pause, pace.paused_until, now, pace.window)
        pace.factor_at_pause = paused_factor(factor, slowdown)
        pace.paused_until = max(pace.paused_until, now + seconds)
        return pace.paused_until - now

    async def pace_state(self, key: str, *, recovery_window: float = 60.0) -> PaceState:
        """The key's rate factor and the seconds left of its pause."""
        check_positive("recovery_window", recovery_window)
        now = self._now()
        pace = self._pace.get(key, _Pace())
        factor = current_factor(pace.factor_at_pause, pace.paused_until, now, recovery_window)
        return PaceState(factor=factor, paused_for=max(0.0, pace.paused_until - now))

    # -- claims -------------------------------------------------------------------------------

    async def claim(self, key: str, holder: Claim, ttl: float) -> Claim | None:
        """Claim ``key`` for ``ttl`` seconds; None when it is ``holder``'s, else the holder."""
        check_positive("ttl", ttl)
        now = self._now()
        current = self._claims.get(key)
        if current is not None and current[0].owner != holder.owner and current[1] > now:
            return current[0]
        self._claims[key] = (holder, now + ttl)
        return None

    async def release(self, key: str, owner: str) -> None:
        """Give up ``key`` (only when ``owner`` holds it)."""
        current = self._claims.get(key)
        if current is not None and current[0].owner == owner:
            del self._claims[key]
