"""What several processes (or hosts) share so that Zoho's budgets are spent once.

Zoho's budgets belong to the account and the org, not to a process: 10 token requests per
10 minutes per refresh token, 100 requests (60 metadata) a minute per org, 5 manual syncs
per connection a day. A :class:`Coordinator` is the one place that keeps them for every
process that shares it:

- the access token, and a *lease* so that one process refreshes it while the others wait;
- the token-request budget, counted across every sharer;
- per-org pacing (GCRA: one theoretical arrival time per key), rate-limit pauses, and a
  rate factor that drops on a pause and climbs back;
- *claims*: a run claims each (org, workspace, datasource, interval) before sending, so two
  overlapping runs never sync the same thing twice.

Keys are opaque strings built by the caller from hashes (never a secret in a key). Every
method is atomic with respect to every other sharer. Time is the coordinator's own clock
(wall time for one host, the server's clock for Redis), so sharers on different hosts
agree on it. Implementations: ``LocalCoordinator`` (one process), ``SqliteCoordinator`` (the
processes of one host), ``RedisCoordinator`` (many hosts).

A coordinator that cannot reach its store raises :class:`CoordinatorUnavailableError`; the
callers never fall back to per-process budgets silently.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import attrs

from ._auth import StoredToken
from ._errors import ZohoError

__all__ = [
    "MIN_FACTOR",
    "RECOVERY_STEP",
    "Claim",
    "Coordinator",
    "CoordinatorUnavailableError",
    "OpenClose",
    "PaceState",
]


RECOVERY_STEP = 0.05  # rate factor regained per clean recovery window
MIN_FACTOR = 0.1  # pauses never slow a key below a tenth of its rate


class CoordinatorUnavailableError(ZohoError):
    """The shared store (SQLite file, Redis) cannot be reached or written.

    The message names the store without any password.
    """


@attrs.frozen
class Claim:
    """The holder of a claim: who, where, since when (for the CLAIMED message)."""

    owner: str  # opaque id of the run that holds it
    host: str
    pid: int
    started_at: float  # wall time the holding run started

    def describe(self) -> str:
        return f"run {self.owner[:8]} (host {self.host}, pid {self.pid})"


@attrs.frozen
class PaceState:
    """What a pacing key looks like now (for reports and tests)."""

    factor: float  # 1.0 = the full rate; lowered by pauses, climbing back
    paused_for: float  # seconds left of a pause (0.0 = none)


@runtime_checkable
class Coordinator(Protocol):
    """Shared budgets, tokens and claims; see the module docstring.

    Example::

        async with SqliteCoordinator(path) as shared:
            session = AnalyticsSession(..., coordinator=shared)
    """

    async def open(self) -> None:
        """Connect and check the store is usable; raises CoordinatorUnavailableError."""

    async def aclose(self) -> None:
        """Release connections (claims and leases expire by their TTLs)."""

    # -- the access token -----------------------------------------------------------------

    async def get_token(self, key: str) -> StoredToken | None:
        """The shared access token of ``key``, or None."""

    async def put_token(self, key: str, token: StoredToken) -> None:
        """Share a freshly minted token (replaces any other)."""

    async def drop_token(self, key: str, access_token: str) -> None:
        """Forget the token, but only if it is still ``access_token`` (Zoho refused it)."""

    async def lease(self, key: str, holder: str, ttl: float) -> bool:
        """Become the one sharer that refreshes ``key``'s token, for at most ``ttl``
        seconds; False while another holder's lease lives. Re-leasing by the same holder
        extends it."""

    async def unlease(self, key: str, holder: str) -> None:
        """Give the lease up (only when ``holder`` holds it)."""

    async def take_token_request(self, key: str, limit: int, window: float) -> float:
        """Count one token request against ``limit`` per rolling ``window`` seconds.

        Returns 0.0 when it is granted (and counted), else the seconds until one is
        free (nothing counted)."""

    async def block_token_requests(self, key: str, seconds: float) -> None:
        """Zoho refused token creation ("Access Denied"): grant none for ``seconds``."""

    # -- pacing -----------------------------------------------------------------------------

    async def reserve(
        self, key: str, interval: float, burst: int, *, recovery_window: float = 60.0
    ) -> float:
        """Reserve the next turn of ``key`` at one per ``interval / factor`` seconds, at most
        ``burst`` at once (GCRA); returns the seconds to wait before sending (0.0 = now).
        The turn is taken: the caller sends after the wait and does not ask again.

        While the key is paused, the turn comes after the pause - a burst too. The factor is
        the one :meth:`pace_state` reports. With ``iv = interval / factor``::

            tat  = max(tat, now, paused_until)
            wait = max(0, tat - now - (burst - 1) * iv, paused_until - now)
            tat  = tat + iv
        """

    async def pause(self, key: str, seconds: float, *, slowdown: float = 0.8) -> float:
        """Zoho said 6045/429: no turn for ``seconds`` for every sharer (a longer pause
        already in place stays), and the current factor times ``slowdown`` (at least
        :data:`MIN_FACTOR`) becomes the factor at this pause (the current factor is reckoned
        with the ``recovery_window`` of the key's last :meth:`reserve`, 60 s before any).
        Each call slows it again. New reservations come after the pause; a caller already
        waiting on an earlier reservation checks :meth:`pace_state` when it wakes and
        reserves again while paused, so nothing leaks through a pause. Returns the seconds
        the pause now lasts."""

    async def pace_state(self, key: str, *, recovery_window: float = 60.0) -> PaceState:
        """The key's rate factor and pause. After a pause ends, the factor climbs back by
        :data:`RECOVERY_STEP` per whole ``recovery_window`` without a pause, up to 1.0:
        ``min(1, factor_at_pause + STEP * floor((now - paused_until) / window))``."""

    # -- claims -------------------------------------------------------------------------------

    async def claim(self, key: str, holder: Claim, ttl: float) -> Claim | None:
        """Claim ``key`` for ``ttl`` seconds: None when it is now ``holder``'s (or already
        was), else the live claim of another holder (nothing changes)."""

    async def release(self, key: str, owner: str) -> None:
        """Give up ``key`` (only when ``owner`` holds it)."""


class OpenClose:
    """``async with`` for a coordinator: :meth:`open` on entry, ``aclose`` on exit."""

    async def open(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
