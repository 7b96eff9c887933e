"""A :class:`~zoho_async.Coordinator` in Redis: the budgets of every process on every host.

Install it with ``pip install 'zoho-async[redis]'`` (redis-py's asyncio client); the import
happens when a coordinator is built, so the rest of the SDK works without it.

Every read-modify-write is one Lua script (run with EVALSHA), so it is atomic against every
other sharer on every host. Time is the Redis server's ``TIME``, read inside the scripts:
hosts whose clocks disagree still agree on the one clock that matters. Every key lives under
``{prefix}:`` and carries a TTL, so a crashed sharer leaves nothing behind for long:

=================================  ===========  ==============================================
key                                type         expires
=================================  ===========  ==============================================
``{prefix}:token:{key}``           hash         some minutes after the token does
``{prefix}:lease:{key}``           string       after the lease's ``ttl``
``{prefix}:treq:{key}``            sorted set   one ``window`` after the last request stamp
``{prefix}:tblock:{key}``          string       when the block ends
``{prefix}:pace:{key}``            hash         once its turns are past and its rate recovered
``{prefix}:claim:{key}``           hash         after the claim's ``ttl``
=================================  ===========  ==============================================

Pacing is GCRA with one theoretical arrival time (``tat``) per key. A reservation, with
``iv = interval / factor``::

    tat  = max(tat, now, paused_until)
    wait = max(0, tat - now - (burst - 1) * iv, paused_until - now)
    tat  = tat + iv

The last term keeps a burst from starting inside a pause: while the key is paused, the turn
comes after the pause. ``factor`` is the one :meth:`RedisCoordinator.pace_state` reports: the
factor at the last pause while it lasts, then
``min(1, factor_at_pause + RECOVERY_STEP * floor((now - paused_until) / recovery_window))``.

Secrets: the only secret stored is the access token (the caller's keys are hashes). The
URL's password and user name never appear in a repr, a log line or an error message.
Needs Redis 4.0 or newer (multi-field HSET); tested against 7.0. One server (with replicas
if you like), not Redis Cluster: the token-request script touches two keys.
"""

from __future__ import annotations

import math
import ssl as ssl_module
import time
import uuid
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from ._auth import StoredToken
from ._coordinator import (
    MIN_FACTOR,
    RECOVERY_STEP,
    Claim,
    CoordinatorUnavailableError,
    OpenClose,
    PaceState,
)
from ._errors import InsecureURLError, InvalidInputError
from ._regions import _is_loopback

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisCoordinator"]

# A token is kept this long past its expiry: long enough that a sharer whose clock runs a
# little behind still finds it, short enough that a dead token does not linger for long.
_TOKEN_GRACE = 600.0
# Pace state outlives its last turn and its recovery by this much, so that its expiry is
# indistinguishable from a fresh key (no pause, full rate, full burst).
_PACE_GRACE = 60.0

# Shared by every script: the server's clock, in seconds, and floats formatted losslessly
# (Lua returns numbers to Redis as integers, so every float travels as a string).
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.17g', x) end
local function ms(seconds) return math.max(1, math.ceil(seconds * 1000)) end
"""

# Pace state: the effective factor (see the module docstring) and the key's TTL.
_PACE_PRELUDE = (
    _PRELUDE
    + f"""
local STEP = {RECOVERY_STEP!r}
local MIN_FACTOR = {MIN_FACTOR!r}
local function load(key)
  local v = redis.call('HMGET', key, 'tat', 'pu', 'fap', 'rw')
  return tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 1, tonumber(v[4]) or 60
end
local function factor(now, pu, fap, window)
  if now < pu then return fap end
  return math.min(1, fap + STEP * math.floor((now - pu) / window))
end
local function keep(key, now, tat, pu, fap, window)
  local recovery = math.ceil((1 - fap) / STEP) * window
  local ttl = math.max(tat - now, pu - now + recovery, 0) + {_PACE_GRACE!r}
  redis.call('PEXPIRE', key, ms(ttl))
end
"""
)

_RESERVE = (
    _PACE_PRELUDE
    + """
local interval, burst, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_s()
local tat, pu, fap = load(KEYS[1])
local iv = interval / factor(now, pu, fap, window)
tat = math.max(tat, now, pu)
local wait = math.max(0, tat - now - (burst - 1) * iv, pu - now)
tat = tat + iv
redis.call('HSET', KEYS[1], 'tat', fmt(tat), 'rw', fmt(window))
keep(KEYS[1], now, tat, pu, fap, window)
return fmt(wait)
"""
)

_PAUSE = (
    _PACE_PRELUDE
    + """
local seconds, slowdown = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_s()
local tat, pu, fap, window = load(KEYS[1])
fap = math.max(MIN_FACTOR, factor(now, pu, fap, window) * slowdown)
pu = math.max(pu, now + seconds)
redis.call('HSET', KEYS[1], 'pu', fmt(pu), 'fap', fmt(fap))
keep(KEYS[1], now, tat, pu, fap, window)
return fmt(pu - now)
"""
)

_PACE_STATE = (
    _PACE_PRELUDE
    + """
local now = now_s()
local tat, pu, fap = load(KEYS[1])
return {fmt(factor(now, pu, fap, tonumber(ARGV[1]))), fmt(math.max(0, pu - now))}
"""
)

_DROP_TOKEN = """
if redis.call('HGET', KEYS[1], 'access_token') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

_LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_UNLEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: stamps (sorted set: member = a unique id, score = server time), block (string).
_TAKE_TOKEN_REQUEST = (
    _PRELUDE
    + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then return fmt(blocked / 1000) end
local now = now_s()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now - window))
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], fmt(now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ms(window))
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
-- never 0 when refused: 0 means granted
return fmt(math.max(0.001, tonumber(oldest[2]) + window - now))
"""
)

_BLOCK = """
local cur = redis.call('PTTL', KEYS[1])
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 0
"""

_CLAIM = """
local cur = redis.call('HMGET', KEYS[1], 'owner', 'host', 'pid', 'started_at')
if cur[1] and cur[1] ~= ARGV[1] then return cur end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'host', ARGV[2], 'pid', ARGV[3],
           'started_at', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {}
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def _import_redis() -> Any:
    try:
        # the optional dependency, imported on use so the SDK works without it
        import redis
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
        import redis.exceptions
    except ImportError as exc:
        raise ImportError(
            "RedisCoordinator needs redis-py: pip install 'zoho-async[redis]'"
        ) from exc
    return redis


def _ms(seconds: float) -> int:
    """Whole milliseconds for PX/PEXPIRE, rounded up, at least 1."""
    return max(1, math.ceil(seconds * 1000))


def _text(value: Any) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _redact(url: str) -> str:
    """The URL without its user name, password or query (which may carry a password)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = ("***@" if "@" in parts.netloc else "") + host + (f":{port}" if port else "")
    return f"{parts.scheme}://{netloc}{parts.path}"


def _ssl_context(option: ssl_module.SSLContext | str | None) -> ssl_module.SSLContext:
    """The same meaning as AnalyticsSession's ``ssl``: None = the system's CAs, a path = that
    CA bundle, a context = itself."""
    if isinstance(option, ssl_module.SSLContext):
        return option
    return ssl_module.create_default_context(cafile=None if option is None else str(option))


class RedisCoordinator(OpenClose):
    """Budgets, tokens and claims shared through Redis, by every process on every host.

    ``url_or_client`` is a ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL, or a
    ``redis.asyncio.Redis`` client of the caller's (which :meth:`aclose` leaves open).
    ``ssl`` has AnalyticsSession's meaning for ``rediss://``: an ``ssl.SSLContext``, a CA
    bundle path, or None for the system's CAs (TLS settings come from ``ssl`` alone, not from
    the URL's query). A plain ``redis://`` URL to a host that is not
    loopback is refused (the access token and the password would cross the network in clear)
    unless ``allow_insecure=True``. ``timeout`` bounds connecting, each command, and the
    wait for one of the ``max_connections`` connections. ``url`` is the URL without its user,
    password or query: what messages show.

    Example::

        async with RedisCoordinator("rediss://:PASSWORD@redis.internal:6380/0") as shared:
            session = AnalyticsSession(..., coordinator=shared)
    """

    def __init__(
        self,
        url_or_client: str | Redis,
        *,
        prefix: str = "zoho-async",
        ssl: ssl_module.SSLContext | str | None = None,
        allow_insecure: bool = False,
        timeout: float = 5.0,
        max_connections: int = 32,
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise InvalidInputError("prefix must be a non-empty string")
        if not isinstance(timeout, int | float) or not timeout > 0:
            raise InvalidInputError("timeout must be a positive number of seconds")
        if not isinstance(max_connections, int) or max_connections < 1:
            raise InvalidInputError("max_connections must be an int >= 1")
        redis = _import_redis()
        self._prefix = prefix
        self._own = isinstance(url_or_client, str)
        if isinstance(url_or_client, str):
            self.url = _redact(url_or_client)
            self._client: Redis = self._connect(
                redis,
                url_or_client,
                ssl=ssl,
                allow_insecure=allow_insecure,
                timeout=timeout,
                max_connections=max_connections,
            )
        else:
            if not isinstance(url_or_client, redis.asyncio.Redis):
                raise InvalidInputError(
                    "url_or_client must be a redis URL or a redis.asyncio.Redis client"
                )
            if ssl is not None:
                raise InvalidInputError("ssl= applies to a URL; configure TLS on your own client")
            self._client = url_or_client
            self.url = self._describe_client(url_or_client)
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        register = self._client.register_script
        self._reserve = register(_RESERVE)
        self._pause = register(_PAUSE)
        self._pace_state = register(_PACE_STATE)
        self._drop_token = register(_DROP_TOKEN)
        self._lease = register(_LEASE)
        self._unlease = register(_UNLEASE)
        self._take_token_request = register(_TAKE_TOKEN_REQUEST)
        self._block = register(_BLOCK)
        self._claim = register(_CLAIM)
        self._release = register(_RELEASE)

    def _connect(
        self,
        redis: Any,
        url: str,
        *,
        ssl: ssl_module.SSLContext | str | None,
        allow_insecure: bool,
        timeout: float,
        max_connections: int,
    ) -> Redis:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise InvalidInputError(
                f"a Redis URL must start with redis://, rediss:// or unix://, got {self.url!r}"
            )
        if parts.scheme != "unix":
            if not parts.hostname:
                raise InvalidInputError(f"the Redis URL {self.url!r} has no host")
            if parts.scheme == "redis" and not allow_insecure and not _is_loopback(parts.hostname):
                raise InsecureURLError(
                    f"the Redis URL {self.url!r} uses plain redis:// to a non-loopback host; "
                    "use rediss:// (TLS), or pass allow_insecure=True on a network you trust"
                )
        if ssl is not None and parts.scheme != "rediss":
            # a CA given for a plain URL means TLS was meant: say so rather than ignore it
            raise InvalidInputError(f"ssl= applies to rediss:// URLs only, got {self.url!r}")
        connection = redis.asyncio.connection
        try:
            kwargs: dict[str, Any] = dict(connection.parse_url(url))
        except ValueError:
            # parse_url's message quotes the URL, password included
            raise InvalidInputError(f"the Redis URL {self.url!r} is not valid") from None
        if parts.scheme == "rediss":
            kwargs["connection_class"] = _ssl_connection_class(
                connection.SSLConnection, _ssl_context(ssl)
            )
        kwargs.update(
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One immediate retry: a pooled connection the server dropped (a restart, an
            # idle timeout) is replaced at once; a server that is down fails fast.
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 1),
        )
        # Many tasks of a session reserve turns at once: past max_connections they wait for
        # a free connection (up to ``timeout``) instead of failing.
        pool = connection.BlockingConnectionPool(
            max_connections=max_connections, timeout=timeout, **kwargs
        )
        client: Redis = redis.asyncio.Redis(connection_pool=pool)
        return client

    @staticmethod
    def _describe_client(client: Redis) -> str:
        pool = client.connection_pool
        found = pool.connection_kwargs
        if "path" in found:
            return f"unix://{found['path']}"
        scheme = "rediss" if "ssl" in pool.connection_class.__name__.lower() else "redis"
        host, port, db = found.get("host", "?"), found.get("port", "?"), found.get("db", 0)
        return f"{scheme}://{host}:{port}/{db}"

    def __repr__(self) -> str:
        return f"RedisCoordinator({self.url!r}, prefix={self._prefix!r})"

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Check that the server answers (PING); raises CoordinatorUnavailableError."""
        try:
            await self._client.ping()
        except self._errors as exc:
            self._unavailable(exc)

    async def aclose(self) -> None:
        """Close the client if this coordinator made it (claims and leases expire by TTL)."""
        if self._own:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()

    def _unavailable(self, exc: BaseException) -> NoReturn:
        # redis-py's messages name host and port, never the password; the URL shown is ours
        raise CoordinatorUnavailableError(
            f"the shared store at {self.url} is unavailable: {type(exc).__name__}: {exc}"
        ) from exc

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}:{kind}:{key}"

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except self._errors as exc:
            self._unavailable(exc)

    # -- the access token ---------------------------------------------------------------------

    async def get_token(self, key: str) -> StoredToken | None:
        """The shared access token of ``key``, or None."""
        try:
            found = await self._client.hmget(
                self._key("token", key), ["access_token", "expires_at"]
            )
        except self._errors as exc:
            self._unavailable(exc)
        if found[0] is None or found[1] is None:
            return None
        return StoredToken(_text(found[0]), float(_text(found[1])))

    async def put_token(self, key: str, token: StoredToken) -> None:
        """Share a freshly minted token (replaces any other)."""
        name = self._key("token", key)
        # The token's expiry is on the minting host's clock; the TTL only has to outlive it.
        left = min(max(token.expires_at - time.time(), 0.0), 86400.0)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(name)
                pipe.hset(
                    name,
                    mapping={
                        "access_token": token.access_token,
                        "expires_at": repr(token.expires_at),
                    },
                )
                pipe.pexpire(name, _ms(left + _TOKEN_GRACE))
                await pipe.execute()
        except self._errors as exc:
            self._unavailable(exc)

    async def drop_token(self, key: str, access_token: str) -> None:
        """Forget the token, but only if it is still ``access_token`` (Zoho refused it)."""
        await self._run(self._drop_token, [self._key("token", key)], [access_token])

    async def lease(self, key: str, holder: str, ttl: float) -> bool:
        """Become the one sharer that refreshes ``key``'s token for at most ``ttl`` seconds;
        False while another holder's lease lives. Re-leasing by the same holder extends it."""
        got = await self._run(self._lease, [self._key("lease", key)], [holder, _ms(ttl)])
        return int(got) == 1

    async def unlease(self, key: str, holder: str) -> None:
        """Give the lease up (only when ``holder`` holds it)."""
        await self._run(self._unlease, [self._key("lease", key)], [holder])

    async def take_token_request(self, key: str, limit: int, window: float) -> float:
        """Count one token request against ``limit`` per rolling ``window`` seconds: 0.0 when
        granted (and counted), else the seconds until one is free (nothing counted)."""
        wait = await self._run(
            self._take_token_request,
            [self._key("treq", key), self._key("tblock", key)],
            [limit, repr(float(window)), uuid.uuid4().hex],
        )
        return float(_text(wait))

    async def block_token_requests(self, key: str, seconds: float) -> None:
        """Zoho refused token creation: grant none for ``seconds`` (a longer block stays)."""
        await self._run(self._block, [self._key("tblock", key)], [_ms(seconds)])

    # -- pacing -------------------------------------------------------------------------------

    async def reserve(
        self, key: str, interval: float, burst: int, *, recovery_window: float = 60.0
    ) -> float:
        """Reserve the next turn of ``key``; returns the seconds to wait before sending.

        See :meth:`zoho_async.Coordinator.reserve` and the module docstring (GCRA)."""
        wait = await self._run(
            self._reserve,
            [self._key("pace", key)],
            [repr(float(interval)), int(burst), repr(float(recovery_window))],
        )
        return float(_text(wait))

    async def pause(self, key: str, seconds: float, *, slowdown: float = 0.8) -> float:
        """No turn for ``seconds`` for every sharer, and the rate factor slowed; returns the
        seconds the pause now lasts. See :meth:`zoho_async.Coordinator.pause`."""
        left = await self._run(
            self._pause, [self._key("pace", key)], [repr(float(seconds)), repr(float(slowdown))]
        )
        return float(_text(left))

    async def pace_state(self, key: str, *, recovery_window: float = 60.0) -> PaceState:
        """The key's rate factor and the seconds left of its pause."""
        factor, paused_for = await self._run(
            self._pace_state, [self._key("pace", key)], [repr(float(recovery_window))]
        )
        return PaceState(factor=float(_text(factor)), paused_for=float(_text(paused_for)))

    # -- claims -------------------------------------------------------------------------------

    async def claim(self, key: str, holder: Claim, ttl: float) -> Claim | None:
        """Claim ``key`` for ``ttl`` seconds: None when it is now ``holder``'s (or already
        was; its TTL is renewed), else the live claim of another holder (nothing changes)."""
        other = await self._run(
            self._claim,
            [self._key("claim", key)],
            [holder.owner, holder.host, holder.pid, repr(float(holder.started_at)), _ms(ttl)],
        )
        if not other:
            return None
        owner, host, pid, started_at = (_text(v) for v in other)
        return Claim(owner=owner, host=host, pid=int(pid), started_at=float(started_at))

    async def release(self, key: str, owner: str) -> None:
        """Give up ``key`` (only when ``owner`` holds it)."""
        await self._run(self._release, [self._key("claim", key)], [owner])


def _ssl_connection_class(base: type[Any], context: ssl_module.SSLContext) -> type[Any]:
    """redis-py's TLS connection, using ``context`` instead of one built from ssl_* options.

    redis-py takes CA options but no ready ``SSLContext``; overriding the hook where it hands
    its context to asyncio keeps AnalyticsSession's meaning of ``ssl`` (a context or a CA
    bundle) for Redis too.
    """

    class _ContextSSLConnection(base):  # type: ignore[misc]
        def _connection_arguments(self) -> Any:
            kwargs = super()._connection_arguments()
            kwargs["ssl"] = context
            return kwargs

    return _ContextSSLConnection
