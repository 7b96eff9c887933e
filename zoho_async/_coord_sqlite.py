"""``SqliteCoordinator``: the coordinator of the processes of one host, in a SQLite file.

Every process that opens the same file shares one access token, one refresh lease, one
token-request budget, one pace per key and one set of claims. Standard library
:mod:`sqlite3` only:

- **Transactions.** Each method is one short transaction. A read-modify-write starts with
  ``BEGIN IMMEDIATE``, which takes the database's write lock at once, so two processes
  can never both read the old state and write over each other; the clock is read only
  once the lock is held, so the times the sharers see follow the order of their
  transactions. Plain reads (:meth:`get_token`, :meth:`pace_state`) read a snapshot. A
  writer waits up to ``busy_timeout`` seconds for another one; past that (or on any other
  SQLite error) the call raises :class:`CoordinatorUnavailableError`, never a silent
  per-process fallback.
- **WAL mode** (readers never wait on the writer) with ``synchronous=NORMAL``: a power
  cut may lose the last transactions (a claim, a pace step), never corrupt the file;
  the state is short-lived coordination, not a record.
- **Off the event loop.** SQLite calls block (on the disk, on another process's lock),
  so they run in a worker thread (``anyio.to_thread.run_sync``). One connection per
  coordinator, used by one thread at a time: a ``CapacityLimiter(1)`` queues this
  process's callers in the event loop (not in parked threads), and a thread lock guards
  the connection should two loops or threads share the coordinator. One connection per
  worker thread would buy nothing - SQLite admits one writer at a time anyway - and
  pooled threads would keep connections that :meth:`aclose` cannot reach. A call that is
  cancelled still lets its transaction finish (the thread is not abandoned), so nothing
  is left half done.
- **A secret store.** The file holds a live access token: it is created with mode 0600
  (SQLite gives its ``-wal`` and ``-shm`` files the same mode), and a missing directory
  is created with mode 0700. A file of ours found readable by others is tightened. Only
  what callers pass is stored; they pass keys that are hashes, never a refresh token or
  a client secret.

The rules (GCRA pacing, recovery, the token budget, expiry) are
:class:`~zoho_async._coord_local.LocalCoordinator`'s; see that module. Expired rows
(leases, claims, tokens, token blocks; request times older than a day; pace rows idle
for a day) are pruned at most once a minute per process, inside a write it makes anyway.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from ._auth import StoredToken
from ._coord_local import (
    PACE_KEEP,
    PRUNE_EVERY,
    STAMP_KEEP,
    check_pause,
    check_positive,
    current_factor,
    gcra,
    paused_factor,
    token_wait,
)
from ._coordinator import Claim, CoordinatorUnavailableError, OpenClose, PaceState

__all__ = ["SqliteCoordinator"]

log = logging.getLogger("zoho_async")

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    key TEXT PRIMARY KEY, access_token TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS token_requests (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS token_requests_by_key ON token_requests (key, at);
CREATE TABLE IF NOT EXISTS token_blocks (
    key TEXT PRIMARY KEY, until REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pace (
    key TEXT PRIMARY KEY,
    tat REAL NOT NULL,
    paused_until REAL NOT NULL,
    factor_at_pause REAL NOT NULL,
    recovery_window REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

# A key never paced: no arrival yet, no pause, full speed, the default recovery window.
# SQLite's REAL holds -inf.
_NO_PACE = (-math.inf, -math.inf, 1.0, 60.0)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # SQLITE_BUSY or SQLITE_LOCKED, with any extended code (the low byte is the primary)
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _check_version(version: int) -> None:
    # a newer zoho-async may have changed the tables: never write over its state
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"schema version {version} is newer than this zoho-async's {SCHEMA_VERSION}"
        )


class SqliteCoordinator(OpenClose):
    """The :class:`~zoho_async.Coordinator` of one host's processes: a SQLite file.

    ``path`` is the database file (``~`` is expanded); a missing directory is created
    with mode 0700 and the file with mode 0600. ``busy_timeout`` is how long a call waits
    for another process's transaction before it raises
    :class:`~zoho_async.CoordinatorUnavailableError`. ``clock`` (wall time by default)
    is injectable for tests; every process sharing the file must use the same clock.

    Example::

        async with SqliteCoordinator("~/.cache/zoho-async/shared.db") as shared:
            session = AnalyticsSession(..., coordinator=shared)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
    ) -> None:
        check_positive("busy_timeout", busy_timeout)
        self.path = Path(path).expanduser()
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._pid = 0  # the process that opened _conn (a forked child opens its own)
        self._lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None
        self._next_prune = -math.inf

    def __repr__(self) -> str:
        return f"SqliteCoordinator({str(self.path)!r})"

    async def open(self) -> None:
        """Create or open the file and check it is a usable database.

        Raises :class:`CoordinatorUnavailableError` naming the path when the directory or
        file cannot be created or written, or the file is not a coordinator database.
        """
        await self._run(lambda conn: None)

    async def aclose(self) -> None:
        """Close the connection (claims and leases expire by their TTLs).

        The coordinator opens a new connection if it is used again.
        """

        def close() -> None:
            with self._lock:
                conn, self._conn = self._conn, None
                if conn is not None and self._pid == os.getpid():
                    conn.close()

        await anyio.to_thread.run_sync(close, limiter=self._get_limiter())

    # -- plumbing -------------------------------------------------------------------------

    def _get_limiter(self) -> anyio.CapacityLimiter:
        # made on first use, inside the running loop (older anyio cannot make one outside)
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return self._limiter

    def _unavailable(self, what: str, exc: BaseException) -> CoordinatorUnavailableError:
        return CoordinatorUnavailableError(
            f"shared state unavailable: {what} SQLite coordinator {str(self.path)!r}: {exc}"
        )

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in a worker thread, opening the connection if needed."""

        def call() -> T:
            with self._lock:
                conn = self._connection()
                try:
                    return fn(conn)
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.rollback()
                    raise self._unavailable("cannot use the", exc) from exc

        return await anyio.to_thread.run_sync(call, limiter=self._get_limiter())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # a connection inherited over fork() must not be used (nor closed) by the child
        self._conn = None
        try:
            self._prepare_file()
        except OSError as exc:
            raise self._unavailable("cannot create or open the", exc) from exc
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # autocommit: transactions are explicit
                check_same_thread=False,  # one thread at a time, under self._lock
            )
        except sqlite3.Error as exc:
            raise self._unavailable("cannot open the", exc) from exc
        try:
            self._setup_patiently(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self._unavailable("cannot use the", exc) from exc
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _prepare_file(self) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            directory.mkdir(parents=True, mode=0o700)
            os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = os.open(self.path, os.O_RDWR)
            created = False
        else:
            created = True
        try:
            info = os.fstat(fd)
            if created:
                os.fchmod(fd, 0o600)  # whatever the umask took away or let through
            elif info.st_mode & 0o077 and info.st_uid == os.geteuid():
                # ours and open to others (an old file, a wide umask): tighten it; a file
                # of another user is theirs to guard
                os.fchmod(fd, stat.S_IMODE(info.st_mode) & 0o700 | 0o600)
        finally:
            os.close(fd)

    def _setup_patiently(self, conn: sqlite3.Connection) -> None:
        """:meth:`_setup`, retried while another process holds the file busy.

        Several processes opening a new file at once all switch it to WAL mode. That
        switch needs the file to themselves, and SQLite answers a switch that could
        deadlock with another connection's lock with an immediate ``SQLITE_BUSY``, without
        calling the busy handler (measured: 29 of 1,200 fresh opens, 6 processes at a
        time). So the busy timeout does not cover it; this loop does, up to the same
        ``busy_timeout``, with a short backoff (the other process holds the lock for
        one small transaction).
        """
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.002
        while True:
            try:
                self._setup(conn)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)  # a worker thread, never the event loop
            delay = min(delay * 2, 0.1)

    def _setup(self, conn: sqlite3.Connection) -> None:
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            # e.g. a file system without shared memory: still correct, only slower
            log.warning("SQLite coordinator %s runs in journal mode %s, not WAL", self.path, mode)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            _check_version(version)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise

    def _write(
        self, fn: Callable[[sqlite3.Connection, float], T]
    ) -> Callable[[sqlite3.Connection], T]:
        """Wrap ``fn(conn, now)`` in one ``BEGIN IMMEDIATE`` transaction."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()  # read under the write lock: see the module docstring
                if now >= self._next_prune:
                    self._prune(conn, now)
                    self._next_prune = now + PRUNE_EVERY
                result = fn(conn, now)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            return result

        return run

    @staticmethod
    def _prune(conn: sqlite3.Connection, now: float) -> None:
        conn.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM leases WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM token_blocks WHERE until <= ?", (now,))
        conn.execute("DELETE FROM token_requests WHERE at <= ?", (now - STAMP_KEEP,))
        conn.execute("DELETE FROM pace WHERE max(tat, paused_until) <= ?", (now - PACE_KEEP,))

    @staticmethod
    def _pace_row(conn: sqlite3.Connection, key: str) -> tuple[float, float, float, float]:
        row = conn.execute(
            "SELECT tat, paused_until, factor_at_pause, recovery_window FROM pace WHERE key = ?",
            (key,),
        ).fetchone()
        return _NO_PACE if row is None else (row[0], row[1], row[2], row[3])

    # -- the access token -----------------------------------------------------------------

    async def get_token(self, key: str) -> StoredToken | None:
        """The shared access token of ``key``, or None (also once it has expired)."""

        def read(conn: sqlite3.Connection) -> StoredToken | None:
            row = conn.execute(
                "SELECT access_token, expires_at FROM tokens WHERE key = ?", (key,)
            ).fetchone()
            if row is None or not row[1] > self._clock():
                return None
            return StoredToken(row[0], row[1])

        return await self._run(read)

    async def put_token(self, key: str, token: StoredToken) -> None:
        """Share a freshly minted token (replaces any other)."""

        def put(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO tokens (key, access_token, expires_at) VALUES (?, ?, ?)",
                (key, token.access_token, token.expires_at),
            )

        await self._run(self._write(put))

    async def drop_token(self, key: str, access_token: str) -> None:
        """Forget the token, but only if it is still ``access_token``."""

        def drop(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                "DELETE FROM tokens WHERE key = ? AND access_token = ?", (key, access_token)
            )

        await self._run(self._write(drop))

    async def lease(self, key: str, holder: str, ttl: float) -> bool:
        """Hold ``key``'s refresh lease for ``ttl`` seconds; False while another holds it."""
        check_positive("ttl", ttl)

        def take(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute(
                "SELECT holder, expires_at FROM leases WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[0] != holder and row[1] > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO leases (key, holder, expires_at) VALUES (?, ?, ?)",
                (key, holder, now + ttl),
            )
            return True

        return await self._run(self._write(take))

    async def unlease(self, key: str, holder: str) -> None:
        """Give the lease up (only when ``holder`` holds it)."""

        def give(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder))

        await self._run(self._write(give))

    async def take_token_request(self, key: str, limit: int, window: float) -> float:
        """Count one token request against ``limit`` per rolling ``window``; see the protocol."""
        check_positive("limit", limit)
        check_positive("window", window)

        def take(conn: sqlite3.Connection, now: float) -> float:
            conn.execute(
                "DELETE FROM token_requests WHERE key = ? AND at <= ?", (key, now - window)
            )
            stamps = [
                at
                for (at,) in conn.execute(
                    "SELECT at FROM token_requests WHERE key = ? ORDER BY at", (key,)
                )
            ]
            row = conn.execute("SELECT until FROM token_blocks WHERE key = ?", (key,)).fetchone()
            blocked = -math.inf if row is None else row[0] - now
            wait = max(blocked, token_wait(stamps, limit, window, now))
            if wait > 0:
                return float(wait)
            conn.execute("INSERT INTO token_requests (key, at) VALUES (?, ?)", (key, now))
            return 0.0

        return await self._run(self._write(take))

    async def block_token_requests(self, key: str, seconds: float) -> None:
        """Grant no token request for ``key`` for ``seconds`` (a longer block stays)."""
        check_positive("seconds", seconds)

        def block(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                "INSERT INTO token_blocks (key, until) VALUES (?, ?) ON CONFLICT (key) "
                "DO UPDATE SET until = max(until, excluded.until)",
                (key, now + seconds),
            )

        await self._run(self._write(block))

    # -- pacing -----------------------------------------------------------------------------

    async def reserve(
        self, key: str, interval: float, burst: int, *, recovery_window: float = 60.0
    ) -> float:
        """Take the next GCRA turn of ``key``; the seconds to wait before sending."""
        check_positive("interval", interval)
        check_positive("burst", burst)
        check_positive("recovery_window", recovery_window)

        def take(conn: sqlite3.Connection, now: float) -> float:
            tat, paused_until, factor_at_pause, _window = self._pace_row(conn, key)
            factor = current_factor(factor_at_pause, paused_until, now, recovery_window)
            wait, tat = gcra(tat, paused_until, now, interval / factor, burst)
            conn.execute(
                "INSERT OR REPLACE INTO pace "
                "(key, tat, paused_until, factor_at_pause, recovery_window) VALUES (?, ?, ?, ?, ?)",
                (key, tat, paused_until, factor_at_pause, recovery_window),
            )
            return wait

        return await self._run(self._write(take))

    async def pause(self, key: str, seconds: float, *, slowdown: float = 0.8) -> float:
        """Pause ``key`` for every sharer and lower its factor; the seconds it now lasts."""
        check_pause(seconds, slowdown)

        def take(conn: sqlite3.Connection, now: float) -> float:
            tat, paused_until, factor_at_pause, window = self._pace_row(conn, key)
            # reckoned with the last reservation's recovery window, as LocalCoordinator.pause
            factor = paused_factor(
                current_factor(factor_at_pause, paused_until, now, window), slowdown
            )
            paused_until = max(paused_until, now + seconds)
            conn.execute(
                "INSERT OR REPLACE INTO pace "
                "(key, tat, paused_until, factor_at_pause, recovery_window) VALUES (?, ?, ?, ?, ?)",
                (key, tat, paused_until, factor, window),
            )
            return paused_until - now

        return await self._run(self._write(take))

    async def pace_state(self, key: str, *, recovery_window: float = 60.0) -> PaceState:
        """The key's rate factor and the seconds left of its pause."""
        check_positive("recovery_window", recovery_window)

        def read(conn: sqlite3.Connection) -> PaceState:
            _tat, paused_until, factor_at_pause, _window = self._pace_row(conn, key)
            now = self._clock()
            factor = current_factor(factor_at_pause, paused_until, now, recovery_window)
            return PaceState(factor=factor, paused_for=max(0.0, paused_until - now))

        return await self._run(read)

    # -- claims -------------------------------------------------------------------------------

    async def claim(self, key: str, holder: Claim, ttl: float) -> Claim | None:
        """Claim ``key`` for ``ttl`` seconds; None when it is ``holder``'s, else the holder."""
        check_positive("ttl", ttl)

        def take(conn: sqlite3.Connection, now: float) -> Claim | None:
            row = conn.execute(
                "SELECT owner, host, pid, started_at, expires_at FROM claims WHERE key = ?",
                (key,),
            ).fetchone()
            if row is not None and row[0] != holder.owner and row[4] > now:
                return Claim(owner=row[0], host=row[1], pid=row[2], started_at=row[3])
            conn.execute(
                "INSERT OR REPLACE INTO claims (key, owner, host, pid, started_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, holder.owner, holder.host, holder.pid, holder.started_at, now + ttl),
            )
            return None

        return await self._run(self._write(take))

    async def release(self, key: str, owner: str) -> None:
        """Give up ``key`` (only when ``owner`` holds it)."""

        def give(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

        await self._run(self._write(give))
