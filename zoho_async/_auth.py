"""Access tokens: one cache per credential, single-flight refresh, optional file store.

The rules come from Zoho's limits: at most 10 token requests per 10 minutes per refresh
token, and a cap on live access tokens per refresh token. So every task of a session shares
one token, one refresh runs at a time, a failed refresh is shared by everyone who was
waiting for it (no storm of retries), and ``FileTokenStore`` lets repeated runs of a script
reuse a still-valid token instead of minting a new one each time. A refresh before expiry
runs in the background, so callers wait only when no valid token is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread
import attrs
import filelock

from . import _telemetry
from ._errors import TokenError, TokenRefreshError, TokenThrottledError
from ._protocol import TokenGrant
from ._upkeep import Upkeep

__all__ = [
    "FileTokenStore",
    "MemoryTokenStore",
    "StoredToken",
    "TokenBudget",
    "TokenCache",
    "TokenStore",
    "token_key",
]

log = logging.getLogger("zoho_async")


def digest(text: str) -> str:
    """A SHA-256 hex digest: how secrets and credentials become store keys."""
    return _digest(text)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def token_key(accounts_url: str, client_id: str, refresh_token: str) -> str:
    """The store key of a credential: a hash, so no secret is written as a key."""
    return _digest(f"{accounts_url}\n{client_id}\n{_digest(refresh_token)}")


@attrs.frozen
class StoredToken:
    """An access token and its wall-clock expiry (``time.time()`` seconds)."""

    access_token: str = attrs.field(repr=False)
    expires_at: float


class TokenStore(Protocol):
    """Where access tokens live between refreshes. Implement it to share tokens elsewhere.

    ``lock`` must exclude other holders of the same key (other processes, for a shared
    store) for the span of a load-refresh-save, so that only one of them mints a token.
    """

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def load(self, key: str) -> StoredToken | None: ...

    async def save(self, key: str, token: StoredToken) -> None: ...

    async def discard(self, key: str, access_token: str) -> None: ...


class MemoryTokenStore:
    """The default store: a dict in this process (the in-process lock is the cache's)."""

    def __init__(self) -> None:
        self._tokens: dict[str, StoredToken] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._tokens)} tokens)"

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        yield

    async def load(self, key: str) -> StoredToken | None:
        return self._tokens.get(key)

    async def save(self, key: str, token: StoredToken) -> None:
        self._tokens[key] = token

    async def discard(self, key: str, access_token: str) -> None:
        current = self._tokens.get(key)
        if current is not None and current.access_token == access_token:
            del self._tokens[key]


class FileTokenStore:
    """Persist access tokens (never refresh tokens or client secrets) in a JSON file.

    The file is created with owner-only permissions (0600), keyed by a hash of (accounts
    URL, client id, refresh token), and updated under an OS file lock, so two processes
    started together mint one token and a script run ten times in a row reuses one token.

    Example::

        store = FileTokenStore("~/.cache/zoho-async/tokens.json")
        async with AnalyticsSession(..., token_store=store) as session: ...
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(self._ensure_dir)
        file_lock = filelock.FileLock(str(self._lock_path), mode=0o600)
        deadline = time.monotonic() + self._lock_timeout
        # Poll without blocking the event loop; a thread blocked in flock() could not be
        # cancelled, this loop can.
        while True:
            try:
                file_lock.acquire(blocking=False)
                break
            except filelock.Timeout:
                if time.monotonic() >= deadline:
                    raise TokenError(
                        f"could not lock the token store {str(self._lock_path)!r} within "
                        f"{self._lock_timeout:.0f}s"
                    ) from None
                await anyio.sleep(0.02)
        try:
            yield
        finally:
            file_lock.release()

    def _ensure_dir(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _read_all(self) -> dict[str, dict[str, object]]:
        try:
            text = self.path.read_text(encoding="utf-8")
            doc = json.loads(text)
        except (FileNotFoundError, ValueError, OSError):
            return {}
        tokens = doc.get("tokens") if isinstance(doc, dict) else None
        return tokens if isinstance(tokens, dict) else {}

    def _write_all(self, tokens: dict[str, dict[str, object]]) -> None:
        self._ensure_dir()
        now = time.time()
        live = {
            k: v
            for k, v in tokens.items()
            if isinstance(v, dict)
            and isinstance(v.get("expires_at"), int | float)
            and float(v["expires_at"]) > now  # type: ignore[arg-type]
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": 1, "tokens": live}, handle)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, self.path)

    def _load(self, key: str) -> StoredToken | None:
        entry = self._read_all().get(key)
        if not isinstance(entry, dict):
            return None
        token, expires = entry.get("access_token"), entry.get("expires_at")
        if not isinstance(token, str) or not isinstance(expires, int | float):
            return None
        return StoredToken(token, float(expires))

    def _save(self, key: str, token: StoredToken) -> None:
        tokens = self._read_all()
        tokens[key] = {"access_token": token.access_token, "expires_at": token.expires_at}
        self._write_all(tokens)

    def _discard(self, key: str, access_token: str) -> None:
        tokens = self._read_all()
        entry = tokens.get(key)
        if isinstance(entry, dict) and entry.get("access_token") == access_token:
            del tokens[key]
            self._write_all(tokens)

    async def load(self, key: str) -> StoredToken | None:
        return await anyio.to_thread.run_sync(self._load, key)

    async def save(self, key: str, token: StoredToken) -> None:
        await anyio.to_thread.run_sync(self._save, key, token)

    async def discard(self, key: str, access_token: str) -> None:
        await anyio.to_thread.run_sync(self._discard, key, access_token)


class SharedBudget(Protocol):
    """A token-request budget kept elsewhere (see ``_shared.SharedTokenBudget``)."""

    async def acquire(self) -> None: ...

    async def block(self, seconds: float) -> None: ...


class TokenBudget:
    """Client-side cap on token requests: ``limit`` per rolling ``window`` seconds.

    Zoho blocks token creation for 10 minutes past 10 requests in 10 minutes; failing fast
    here is better than being locked out.
    """

    def __init__(
        self,
        limit: int = 10,
        window: float = 600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._blocked_until = 0.0

    def _trim(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()

    def take(self) -> None:
        """Record one token request, or raise ``TokenThrottledError`` if it would exceed."""
        now = self._clock()
        if now < self._blocked_until:
            wait = self._blocked_until - now
            raise TokenThrottledError(
                f"token requests are throttled; try again in {wait:.0f}s",
                retry_at=time.time() + wait,
            )
        self._trim(now)
        if len(self._stamps) >= self.limit:
            wait = self._stamps[0] + self.window - now
            raise TokenThrottledError(
                f"{self.limit} token requests in the last {self.window:.0f}s already "
                f"(Zoho's limit); not sending another; try again in {wait:.0f}s",
                retry_at=time.time() + wait,
            )
        self._stamps.append(now)

    def block_for(self, seconds: float) -> None:
        """Zoho said "Access Denied": refuse further requests for ``seconds``."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    async def acquire(self) -> None:
        """:meth:`take`, awaitable (a shared budget asks its coordinator)."""
        self.take()

    async def block(self, seconds: float) -> None:
        """:meth:`block_for`, awaitable."""
        self.block_for(seconds)

    @property
    def used(self) -> int:
        self._trim(self._clock())
        return len(self._stamps)


@attrs.define
class _Cached:
    value: str = attrs.field(repr=False)
    expires_at: float  # monotonic
    refresh_at: float  # monotonic


class TokenCache:
    """One access token per credential, shared by every task that uses it.

    ``get()`` checks without the lock, takes the lock, checks again and refreshes once. A
    refresh a little before expiry is proactive: with ``background`` (the session's
    :class:`Upkeep`) it runs there while every caller keeps getting the still-valid token
    at once, one refresh at a time; without it, the caller that finds the token due
    refreshes it. If a proactive refresh fails while the old token is still valid, the
    failure is logged, the old token keeps being used, and a caller after a short back-off
    (at most 30 s) has it tried again; once no valid token is left, callers wait for a
    refresh and see its error. A token request a caller waits for is finished even if the
    task that sent it is cancelled: its answer serves the tasks waiting for it.
    ``invalidate(token)`` drops the token only if it is still the cached one, so N
    concurrent 8535s cause one refresh, not N.
    """

    def __init__(
        self,
        *,
        key: str,
        fetch: Callable[[], Awaitable[TokenGrant]],
        store: TokenStore | None = None,
        budget: TokenBudget | SharedBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_margin: float = 300.0,
        background: Upkeep | None = None,
    ) -> None:
        self._key = key
        self._fetch = fetch
        self._store: TokenStore = store if store is not None else MemoryTokenStore()
        self._budget: TokenBudget | SharedBudget = (
            budget if budget is not None else TokenBudget(clock=clock)
        )
        self._clock = clock
        self._wall = wall_clock
        self._max_margin = max_margin
        self._lock = anyio.Lock()
        self._current: _Cached | None = None
        self._rejected: deque[str] = deque(maxlen=16)
        self._fatal: TokenRefreshError | None = None
        self._failure: tuple[int, TokenError | Exception] | None = None
        self._generation = 0
        self._background = background
        # set when the background refresh last started is over; None before the first
        self._refreshed: anyio.Event | None = None
        self.requests = 0  # token requests actually sent by this cache

    def __repr__(self) -> str:
        state = "empty" if self._current is None else "cached"
        return f"TokenCache({state}, requests={self.requests})"

    def _margin(self, lifetime: float) -> float:
        return min(self._max_margin, lifetime * 0.1)

    def _fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and self._clock() < cached.refresh_at

    def _valid(self, cached: _Cached | None) -> bool:
        return cached is not None and self._clock() < cached.expires_at

    def remaining(self) -> float | None:
        """Seconds the cached access token has left (0.0 once expired), ``None`` if none.

        Cheap and lock-free, for health checks; never the token itself.
        """
        cached = self._current
        if cached is None:
            return None
        return max(0.0, cached.expires_at - self._clock())

    async def get(self) -> str:
        """The current access token, refreshing it (once, for every waiter) if needed."""
        cached = self._current
        if self._fresh(cached):
            assert cached is not None
            return cached.value
        if self._valid(cached) and self._refresh_behind():
            # due for a refresh but still valid: it is being refreshed in the background
            assert cached is not None
            return cached.value
        generation = self._generation
        async with self._lock:
            cached = self._current
            if self._fresh(cached):
                assert cached is not None
                return cached.value
            if self._failure is not None and self._failure[0] > generation:
                # The refresh we were waiting for failed: share its error, send nothing.
                raise self._failure[1]
            try:
                return await self._refresh(cached)
            except Exception as exc:
                if self._keep_after_failure(cached, exc):
                    assert cached is not None
                    return cached.value
                raise

    def _refresh_behind(self) -> bool:
        """Have the token refreshed in the background: ``False`` if there is no background.

        Single flight: while one background refresh is on its way, nothing more starts. A
        refused refresh token (``_fatal``) starts nothing either: asking again could not
        succeed, so the valid token is used until it expires and callers then see the error.
        """
        if self._background is None:
            return False
        if self._fatal is not None or (
            self._refreshed is not None and not self._refreshed.is_set()
        ):
            return True
        refreshed = anyio.Event()
        if not self._background.start_soon(
            lambda: self._refresh_in_background(refreshed), "token refresh"
        ):
            return False  # closed: the caller refreshes as before
        self._refreshed = refreshed
        return True

    async def wait_background(self) -> None:
        """Wait until the background refresh on its way, if any, is over (for tests)."""
        if self._refreshed is not None:
            await self._refreshed.wait()

    async def _refresh_in_background(self, refreshed: anyio.Event) -> None:
        try:
            async with self._lock:
                cached = self._current
                if self._fresh(cached):
                    return  # a caller that could not wait refreshed it meanwhile
                try:
                    # Not shielded: only the session's close cancels this task, and then
                    # nobody is left to use the answer.
                    await self._refresh(cached, shield=False)
                except Exception as exc:
                    # Kept here, never raised: the callers that got the old token must not
                    # see it, and the upkeep group must not end over it.
                    self._keep_after_failure(cached, exc)
        finally:
            refreshed.set()

    def _keep_after_failure(self, cached: _Cached | None, exc: Exception) -> bool:
        """After a failed refresh: keep the still-valid ``cached`` (True) or record ``exc``.

        A recorded failure is shared by the callers already waiting for that refresh, so
        they do not each send a request of their own.
        """
        self._generation += 1
        if self._valid(cached) and not isinstance(exc, TokenRefreshError):
            assert cached is not None
            log.warning(
                "proactive token refresh failed (%s: %s); keeping the current token",
                type(exc).__name__,
                exc,
            )
            # try again later, not on every call: no storm against a sick server
            now = self._clock()
            cached.refresh_at = now + min(30.0, (cached.expires_at - now) / 2)
            return True
        if self._valid(cached) and self._background is not None:
            # A refused refresh token (``_fatal`` now): callers that got the valid token
            # were not waiting for this refresh, and keep that token until it expires.
            log.warning(
                "proactive token refresh refused (%s); the current token serves until it expires",
                type(exc).__name__,
            )
            return True
        self._failure = (self._generation, exc)
        return False

    async def _refresh(self, cached: _Cached | None, *, shield: bool = True) -> str:
        if self._fatal is not None:
            raise self._fatal
        async with self._store.lock(self._key):
            stored = await self._store.load(self._key)
            now_wall = self._wall()
            if (
                stored is not None
                and stored.access_token not in self._rejected
                and (cached is None or stored.access_token != cached.value)
            ):
                remaining = stored.expires_at - now_wall
                # adopt only a token that is not itself about to need a refresh
                if remaining > self._margin(remaining) + 1.0:
                    self._adopt(stored.access_token, remaining)
                    self._generation += 1
                    log.debug("using a stored access token (%.0fs left)", remaining)
                    return stored.access_token
            await self._budget.acquire()
            self.requests += 1
            _telemetry.token_requested()
            # INFO: each refresh spends Zoho's scarce token budget; -v shows it happening
            log.info("refreshing the access token (a token request)")
            return await self._fetch_and_keep(now_wall, shield)

    async def _fetch_and_keep(self, now_wall: float, shield: bool) -> str:
        # Shielded when callers wait for it: once sent, the request is spent budget (Zoho
        # counts it), and the other tasks queued on the lock are waiting for its answer. If
        # the task that sent it is cancelled meanwhile, abandoning it would make the next
        # waiter mint a second token; so it finishes (bounded by the transport's timeout),
        # its token is cached for everyone, and the cancellation lands right after. A
        # background refresh is cancelled only when the session closes: nobody waits then.
        with anyio.CancelScope(shield=shield):
            try:
                grant = await self._fetch()
            except TokenThrottledError as exc:
                await self._budget.block(600.0)
                raise exc from None
            except TokenRefreshError as exc:
                self._fatal = exc
                raise
            self._adopt(grant.access_token, grant.expires_in)
            await self._store.save(
                self._key, StoredToken(grant.access_token, now_wall + grant.expires_in)
            )
            self._generation += 1
        return grant.access_token

    def _adopt(self, token: str, lifetime: float) -> None:
        now = self._clock()
        self._current = _Cached(token, now + lifetime, now + lifetime - self._margin(lifetime))

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` (it was refused with 8535) if it is still the cached one."""
        self._rejected.append(token)
        cached = self._current
        if cached is not None and cached.value == token:
            self._current = None
            log.info("access token refused by Zoho; it will be refreshed once")
            with contextlib.suppress(OSError, TokenError):
                await self._store.discard(self._key, token)
