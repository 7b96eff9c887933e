"""A real ``redis-server`` for the tests: fixtures ``redis_url``, ``redis_clean`` and
``redis_auth_url`` (no fakeredis, no mock).

Each server runs on a free loopback port in a temporary directory, with persistence off,
for the whole test session. Without the ``redis-server`` binary (or without redis-py) the
Redis tests skip, saying why; with ``ZOHO_ASYNC_REQUIRE_REDIS=1`` (CI) they fail instead, so
CI can never pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import attrs
import pytest

__all__ = ["RedisTLS", "redis_auth_url", "redis_clean", "redis_tls", "redis_url", "resp_command"]

# Starting redis-server takes milliseconds; a loaded 2-core machine gets a wide margin.
_START_TIMEOUT = 30.0


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("ZOHO_ASYNC_REQUIRE_REDIS") == "1":
        pytest.fail(f"ZOHO_ASYNC_REQUIRE_REDIS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _encode(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def resp_command(port: int, *args: str, password: str | None = None) -> bytes:
    """Send one command (after AUTH when ``password``) over a fresh socket; the raw reply
    line. Enough for PING and FLUSHDB, without needing redis-py in the fixtures."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if password is not None:
            sock.sendall(_encode("AUTH", password))
            if not sock.recv(1024).startswith(b"+OK"):
                raise ConnectionError("AUTH refused")
        sock.sendall(_encode(*args))
        return sock.recv(1024)


class _Server:
    """One redis-server process; stopped (and waited for) on exit."""

    def __init__(self, binary: str, workdir: Path, password: str | None, extra: list[str]) -> None:
        self.password = password
        self.port = _free_port()
        self.tls_port = _free_port() if extra else 0
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
        ]
        if password is not None:
            args += ["--requirepass", password]
        if extra:
            args += ["--tls-port", str(self.tls_port), *extra]
        self.log = workdir / "redis.log"
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir
        )

    def wait_ready(self) -> bool:
        """Poll PING until it answers, the process dies, or the bounded time runs out."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if resp_command(self.port, "PING", password=self.password).startswith(b"+PONG"):
                    return True
            except OSError:
                pass
            # a bounded poll for a process that is starting, not a sleep over a race
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _start(tmp: Path, password: str | None, extra: list[str] | None = None) -> Iterator[_Server]:
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server is not installed (Debian: apt-get install redis-server)")
    if importlib.util.find_spec("redis") is None:
        _unavailable("redis-py is not installed (pip install 'zoho-async[redis]')")
    # A port found free can be taken before the server binds it: try a few.
    for _attempt in range(3):
        server = _Server(binary, tmp, password, extra or [])
        if server.wait_ready():
            break
        server.stop()
    else:
        log = server.log.read_text(errors="replace")[-2000:] if server.log.exists() else ""
        pytest.fail(f"redis-server did not start:\n{log}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    yield from _start(tmp_path_factory.mktemp("redis"), None)


@pytest.fixture(scope="session")
def redis_url(_redis_server: _Server) -> str:
    """``redis://127.0.0.1:PORT/0`` of a real redis-server started for this test session."""
    return f"redis://127.0.0.1:{_redis_server.port}/0"


@pytest.fixture
def redis_clean(_redis_server: _Server, redis_url: str) -> str:
    """``redis_url``, with its database emptied (FLUSHDB) before the test."""
    reply = resp_command(_redis_server.port, "FLUSHDB")
    assert reply.startswith(b"+OK"), reply
    return redis_url


@pytest.fixture(scope="session")
def redis_auth_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://:PASSWORD@127.0.0.1:PORT/0`` of a second server that requires a password
    (random per session), for tests that the password never leaks."""
    password = "pw-" + secrets.token_hex(16)
    for server in _start(tmp_path_factory.mktemp("redis-auth"), password):
        yield f"redis://:{password}@127.0.0.1:{server.port}/0"


@attrs.frozen
class RedisTLS:
    """A TLS-only endpoint (``rediss://``) and the CA bundle that verifies it."""

    url: str
    ca_path: Path


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTLS]:
    """A third server that also listens with TLS, its certificate from a throwaway CA."""
    trustme = pytest.importorskip("trustme")
    tmp = tmp_path_factory.mktemp("redis-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    extra = [
        "--tls-cert-file",
        str(tmp / "cert.pem"),
        "--tls-key-file",
        str(tmp / "key.pem"),
        "--tls-ca-cert-file",
        str(tmp / "ca.pem"),
        "--tls-auth-clients",
        "no",
    ]
    for server in _start(tmp, None, extra):
        yield RedisTLS(f"rediss://127.0.0.1:{server.tls_port}/0", tmp / "ca.pem")


@pytest.fixture
def redis_doomed(tmp_path: Path) -> Iterator[_Server]:
    """A redis-server of the test's own, which the test may stop (``.stop()``) mid-run."""
    yield from _start(tmp_path, None)
