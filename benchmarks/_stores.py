"""The shared stores of scenarios 7-9: a SQLite file and a real ``redis-server``.

Every one of those scenarios runs once with each store (:data:`STORES`), side by side in
the same benchmark run. The Redis server is started here, on a free loopback port in a
temporary directory with persistence off, and stopped when the scenario ends (as the
tests' fixture does; no fakeredis). A scenario without ``redis-server`` or redis-py on the
machine still runs its SQLite half and says why the Redis half is missing.

Each measured run gets a store of its own: a fresh SQLite file, or a Redis database
emptied first (FLUSHDB). A store left over from the previous run would carry its pace,
its claims and its token, and the run after it would measure the leftovers.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from zoho_async import AnalyticsSession, Coordinator, Limits

STORES = ("sqlite", "redis")

JSONSpec = dict[str, Any]  # what a parent hands a child process, as JSON

# Starting redis-server takes milliseconds; a loaded 2-core machine gets a wide margin.
_START_TIMEOUT = 30.0


def redis_missing() -> str | None:
    """Why the Redis half of a scenario cannot run here, or None when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    if importlib.util.find_spec("redis") is None:
        return "redis-py is not installed (pip install 'zoho-async[redis]')"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(port: int, *args: str) -> bytes:
    """One RESP command over a fresh socket; the raw reply (PING, FLUSHDB: no redis-py
    needed in the orchestrator)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(parts))
        return sock.recv(1024)


@attrs.define
class RedisServer:
    """A ``redis-server`` process of this benchmark run (see :func:`redis_server`)."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """Empty the database: the next run starts with no token, pace or claim."""
        reply = _command(self.port, "FLUSHDB")
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"redis FLUSHDB answered {reply!r}")


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start ``redis-server`` on a free loopback port in a temporary directory; stop it
    (and wait for it) on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    with tempfile.TemporaryDirectory(prefix="zoho-bench-redis-") as tmp:
        # A port found free can be taken before the server binds it: try a few.
        for _attempt in range(3):
            port = _free_port()
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", tmp, "--logfile", str(Path(tmp) / "log")]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if _wait_ready(proc, port):
                break
            _stop(proc)
        else:
            raise RuntimeError("redis-server did not start")
        try:
            yield RedisServer(port, proc)
        finally:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if _command(port, "PING").startswith(b"+PONG"):
                return True
        except OSError:
            pass
        # a bounded poll for a process that is starting, not a sleep over a race
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stores:
    """Hands out a fresh store per measured run, for either kind.

    ``spec(kind)`` is what ``--shared`` takes (``sqlite:PATH`` or a redis URL); children
    build the coordinator from it with :func:`coordinator`.
    """

    def __init__(self, workdir: Path, redis: RedisServer | None) -> None:
        self._workdir = workdir
        self._redis = redis
        self._runs = 0
        self._lock = threading.Lock()  # scenarios run the two kinds from two threads

    def available(self) -> list[str]:
        return [kind for kind in STORES if kind != "redis" or self._redis is not None]

    def fresh(self, kind: str) -> str:
        """A store no run has used yet (a new SQLite file, or the emptied Redis db)."""
        with self._lock:
            self._runs += 1
            run = self._runs
        if kind == "sqlite":
            return f"sqlite:{self._workdir / f'shared-{run}.db'}"
        if kind == "redis" and self._redis is not None:
            self._redis.flush()
            return self._redis.url
        raise ValueError(f"no {kind} store in this run")


@contextmanager
def stores() -> Iterator[tuple[Stores, str | None]]:
    """Both stores when Redis can run here, else SQLite alone and the reason."""
    missing = redis_missing()
    with tempfile.TemporaryDirectory(prefix="zoho-bench-shared-") as tmp:
        if missing is not None:
            yield Stores(Path(tmp), None), missing
            return
        with redis_server() as server:
            yield Stores(Path(tmp), server), None


def coordinator(spec: str) -> Coordinator:
    """The coordinator a child process builds from a ``--shared``-style spec."""
    from zoho_async import RedisCoordinator, SqliteCoordinator

    if spec.startswith("sqlite:"):
        return SqliteCoordinator(Path(spec.removeprefix("sqlite:")))
    return RedisCoordinator(spec)


def child_session(spec: JSONSpec, limits: Limits, shared: Coordinator | None) -> AnalyticsSession:
    """A worker's session on the benchmark's fake, sharing ``shared`` (from a child's spec:
    credentials, org and URLs)."""
    from zoho_async import AnalyticsSession

    return AnalyticsSession(
        **spec["credentials"],
        org_id=spec["org_id"],
        api_url=spec["api_url"],
        accounts_url=spec["accounts_url"],
        limits=limits,
        coordinator=shared,
    )
