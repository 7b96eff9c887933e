"""What only the Redis coordinator has: URLs and passwords, TLS rules, a server that is down,
scripts that stay atomic across processes, TTLs on every key, no secrets in the store.

The behaviour every coordinator shares is in the contract suite (test_coordinators.py).
Everything here talks to a real redis-server (tests/redis_server.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import ssl
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from zoho_async._auth import StoredToken
from zoho_async._coordinator import MIN_FACTOR, RECOVERY_STEP, Claim, CoordinatorUnavailableError
from zoho_async._errors import InsecureURLError, InvalidInputError

from .redis_server import RedisTLS

pytestmark = pytest.mark.anyio

# CI (ZOHO_ASYNC_REQUIRE_REDIS=1) must run these: a missing redis-py fails there, not skips
if os.environ.get("ZOHO_ASYNC_REQUIRE_REDIS") == "1":
    import redis.asyncio as redis_asyncio
else:
    redis_asyncio = pytest.importorskip("redis.asyncio")
from zoho_async._coord_redis import RedisCoordinator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _password(url: str) -> str:
    password = urlsplit(url).password
    assert password
    return password


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def raw(redis_clean: str) -> AsyncIterator[Any]:
    """A plain redis-py client on the test server, to look at what the coordinator stored."""
    client = redis_asyncio.Redis.from_url(redis_clean, decode_responses=True)
    yield client
    await client.aclose()


async def _exercise(shared: RedisCoordinator, access_token: str, token_key: str) -> None:
    """Call every method that writes, the way a session would."""
    await shared.put_token(token_key, StoredToken(access_token, time.time() + 3600))
    assert await shared.lease(token_key, "holder-1", 30)
    assert await shared.take_token_request("tokens:" + token_key, 10, 600) == 0.0
    await shared.block_token_requests("tokens:blocked", 30)
    assert await shared.reserve("pace:org1:all", 0.6, 10) == 0.0
    assert await shared.pause("pace:org1:meta", 5.0) == pytest.approx(5.0, abs=1.0)
    mine = Claim(owner="run-1", host="host-a", pid=os.getpid(), started_at=time.time())
    assert await shared.claim("claim:org1:ws:ds:i", mine, 120) is None


# -- passwords never leak ---------------------------------------------------------------------


async def test_the_password_is_in_no_repr_error_or_log(
    redis_auth_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = _password(redis_auth_url)
    async with RedisCoordinator(redis_auth_url) as shared:
        assert password not in repr(shared)
        assert password not in str(shared)
        assert password not in shared.url
        assert "***@127.0.0.1" in repr(shared)
        await _exercise(shared, "access-abc", "k" * 64)

    wrong = redis_auth_url.replace(password, "wrong-" + password[::-1])
    with pytest.raises(CoordinatorUnavailableError) as caught:
        async with RedisCoordinator(wrong):
            pass
    shown = "".join(traceback.format_exception(caught.value))
    assert "***@127.0.0.1" in str(caught.value)
    for secret in (password, _password(wrong)):
        assert secret not in shown
        assert secret not in repr(caught.value)
        assert secret not in caplog.text


async def test_an_acl_user_confined_to_the_prefix_works_and_stays_hidden(
    redis_auth_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = "zoho-acl-user", "acl-" + _password(redis_auth_url)[::-1]
    admin: Any = redis_asyncio.Redis.from_url(redis_auth_url)
    try:
        # the least a deployment may grant: its own prefix, every command
        await admin.acl_setuser(
            user, enabled=True, passwords=["+" + password], keys=["zacl:*"], categories=["+@all"]
        )
        url = redis_auth_url.replace(f":{_password(redis_auth_url)}@", f"{user}:{password}@")
        async with RedisCoordinator(url, prefix="zacl") as shared:
            await _exercise(shared, "access-acl", "a" * 64)
            shown = repr(shared)
        # outside its prefix the server refuses: unavailable, and still nothing leaks
        with pytest.raises(
            CoordinatorUnavailableError, match=r"NoPermissionError|NOPERM"
        ) as caught:
            async with RedisCoordinator(url, prefix="elsewhere") as shared:
                await shared.reserve("k", 1.0, 1)
        texts = [shown, caplog.text, "".join(traceback.format_exception(caught.value))]
        for text in texts:
            assert user not in text
            assert password not in text
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()


async def test_an_acl_user_and_a_password_in_the_query_are_hidden_too() -> None:
    shared = RedisCoordinator("redis://zoho-user:s3cret@127.0.0.1:1/2?password=q-s3cret")
    try:
        assert shared.url == "redis://***@127.0.0.1:1/2"
        for text in (repr(shared), shared.url):
            assert "zoho-user" not in text
            assert "s3cret" not in text
    finally:
        await shared.aclose()


# -- URL rules ----------------------------------------------------------------------------------


async def test_plain_redis_to_a_non_loopback_host_is_refused() -> None:
    with pytest.raises(InsecureURLError, match=r"rediss://") as caught:
        RedisCoordinator("redis://user:hunter2@redis.example.com:6379/0")
    assert "hunter2" not in str(caught.value)
    assert "user" not in str(caught.value).split("rediss://")[0]
    with pytest.raises(InsecureURLError):
        RedisCoordinator("redis://10.0.0.5/0")


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://localhost/1",
        "redis://[::1]:6379",
        "rediss://:pw@redis.example.com:6380/0",
        "unix:///run/redis.sock?db=3",
    ],
)
async def test_loopback_tls_and_unix_urls_are_accepted(url: str) -> None:
    shared = RedisCoordinator(url)  # nothing connects before open()
    assert "pw" not in shared.url
    await shared.aclose()


async def test_allow_insecure_lets_plain_redis_reach_another_host() -> None:
    shared = RedisCoordinator("redis://:pw@10.0.0.5:6379/0", allow_insecure=True)
    assert shared.url == "redis://***@10.0.0.5:6379/0"
    await shared.aclose()


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("http://127.0.0.1:6379", {}, "redis://"),
        ("redis://", {}, "no host"),
        ("redis://127.0.0.1", {"prefix": ""}, "prefix"),
        ("redis://127.0.0.1", {"timeout": 0}, "timeout"),
        ("redis://127.0.0.1", {"max_connections": 0}, "max_connections"),
        ("redis://127.0.0.1", {"ssl": "/etc/ssl/ca.pem"}, "rediss://"),
    ],
)
async def test_bad_arguments_are_refused(url: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        RedisCoordinator(url, **kwargs)


def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'zoho-async\[redis\]'"):
        RedisCoordinator("redis://127.0.0.1")


async def test_rediss_verifies_with_a_ca_bundle_or_a_context(redis_tls: RedisTLS) -> None:
    async with RedisCoordinator(redis_tls.url, ssl=str(redis_tls.ca_path)) as shared:
        assert await shared.reserve("tls", 1.0, 1) == 0.0
    context = ssl.create_default_context(cafile=str(redis_tls.ca_path))
    async with RedisCoordinator(redis_tls.url, ssl=context) as shared:
        assert await shared.reserve("tls", 1.0, 1) > 0.0  # the same server, the same key
    # the system's CAs do not know the throwaway CA: refused, never sent in clear
    with pytest.raises(CoordinatorUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        async with RedisCoordinator(redis_tls.url):
            pass


# -- the server is down -----------------------------------------------------------------------


async def test_a_server_that_is_down_is_unavailable_at_open_and_mid_run() -> None:
    url = f"redis://:pw-down-123@127.0.0.1:{_free_port()}/0"
    with pytest.raises(
        CoordinatorUnavailableError, match=r"redis://\*\*\*@127\.0\.0\.1:"
    ) as caught:
        async with RedisCoordinator(url):
            pass
    assert "pw-down-123" not in "".join(traceback.format_exception(caught.value))

    shared = RedisCoordinator(url)
    try:
        with pytest.raises(CoordinatorUnavailableError, match="unavailable"):
            await shared.reserve("pace:org", 0.6, 10)
        with pytest.raises(CoordinatorUnavailableError):
            await shared.get_token("k")
        with pytest.raises(CoordinatorUnavailableError):
            await shared.put_token("k", StoredToken("a", time.time() + 60))
    finally:
        await shared.aclose()


async def test_a_callers_client_is_used_and_left_open(redis_clean: str, raw: Any) -> None:
    shared = RedisCoordinator(raw, prefix="theirs")
    assert shared.url.startswith("redis://127.0.0.1:")
    async with shared:
        assert await shared.reserve("k", 1.0, 1) == 0.0
    assert await raw.ping()  # still open: it is the caller's
    assert await raw.exists("theirs:pace:k") == 1


# -- what is stored ---------------------------------------------------------------------------


async def test_every_key_is_under_the_prefix_and_has_a_ttl(redis_clean: str, raw: Any) -> None:
    async with RedisCoordinator(redis_clean, prefix="zz") as shared:
        await _exercise(shared, "access-xyz", "t" * 64)
    keys = sorted(await raw.keys("*"))
    kinds = {key.split(":")[1] for key in keys}
    assert kinds == {"token", "lease", "treq", "tblock", "pace", "claim"}, keys
    for key in keys:
        assert key.startswith("zz:")
        assert await raw.pttl(key) > 0, key


async def test_the_store_holds_no_secret_but_the_access_token(
    redis_auth_url: str,
) -> None:
    client_secret = "cs-" + "9" * 30
    refresh_token = "1000.refresh." + "7" * 30
    access_token = "1000.access." + "5" * 30
    password = _password(redis_auth_url)
    # keys as the session builds them: hashes of the credential, never the credential
    token_key = hashlib.sha256(f"accounts|client|{refresh_token}".encode()).hexdigest()
    async with RedisCoordinator(redis_auth_url, prefix="scan") as shared:
        await _exercise(shared, access_token, token_key)

    raw: Any = redis_asyncio.Redis.from_url(redis_auth_url, decode_responses=True)
    try:
        dump: list[str] = []
        async for key in raw.scan_iter("scan:*"):
            dump.append(key)
            kind = await raw.type(key)
            if kind == "hash":
                dump += [f"{k}={v}" for k, v in (await raw.hgetall(key)).items()]
            elif kind == "string":
                dump.append(await raw.get(key))
            elif kind == "zset":
                dump += [f"{m}={s}" for m, s in await raw.zrange(key, 0, -1, withscores=True)]
            else:
                raise AssertionError(f"unexpected {kind} at {key}")
    finally:
        await raw.aclose()
    blob = "\n".join(dump)
    assert access_token in blob  # the scan does read values
    for secret in (client_secret, refresh_token, password, "1000.refresh"):
        assert secret not in blob


# -- pacing on the server's clock (the contract suite has the rest) --------------------------


async def test_gcra_turns_on_the_servers_clock_and_no_burst_inside_a_pause(
    redis_clean: str,
) -> None:
    async with RedisCoordinator(redis_clean) as shared:
        # 10 s apart, 3 at once: waits of 0, 0, 0, ~10, ~20 (less the ms between calls)
        waits = [await shared.reserve("org", 10.0, 3) for _ in range(5)]
        assert [round(w / 10.0) for w in waits] == [0, 0, 0, 1, 2]

        assert await shared.pause("paused", 100.0) == pytest.approx(100.0, abs=5.0)
        state = await shared.pace_state("paused")
        assert state.factor == 0.8
        # a burst of 3 never starts inside the pause: every turn waits for its end
        for _ in range(3):
            assert await shared.reserve("paused", 1.0, 3) >= state.paused_for - 5.0
        # a shorter pause does not shorten it; every pause slows the rate, never below 0.1
        assert await shared.pause("paused", 1.0) > 90.0
        for _ in range(12):
            await shared.pause("paused", 1.0)
        assert (await shared.pace_state("paused")).factor == MIN_FACTOR


async def test_the_rate_climbs_back_a_step_per_clean_window(redis_clean: str) -> None:
    async with RedisCoordinator(redis_clean) as shared:
        await shared.pause("org", 0.05)
        assert (await shared.pace_state("org", recovery_window=0.1)).factor == 0.8
        # poll (bounded) until the server's clock has passed the pause and a window
        deadline = time.monotonic() + 30
        while (state := await shared.pace_state("org", recovery_window=0.1)).factor == 0.8:
            assert time.monotonic() < deadline, state
            await anyio.sleep(0.02)
        assert state.paused_for == 0.0
        steps = (state.factor - 0.8) / RECOVERY_STEP
        assert steps == pytest.approx(round(steps)), state
        assert state.factor <= 1.0
        # long after: the full rate again, never slowed for good
        assert (await shared.pace_state("org", recovery_window=1e-6)).factor == 1.0


# -- atomic across processes ------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import anyio
    from zoho_async._coord_redis import RedisCoordinator
    from zoho_async._coordinator import Claim

    async def main(url, name):
        async with RedisCoordinator(url, prefix="race") as shared:
            waits, won = [], []

            async def reserve():
                waits.append(await shared.reserve("org", 1000.0, 1))

            async def claim(i):
                me = Claim(owner=name, host="h", pid=os.getpid(), started_at=0.0)
                if await shared.claim(f"ds{i}", me, 600) is None:
                    won.append(i)

            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(reserve)
                for i in range(100):
                    tg.start_soon(claim, i)
        print(json.dumps({"waits": waits, "won": won}))

    anyio.run(main, sys.argv[1], sys.argv[2])
    """
)


def test_scripts_are_atomic_across_four_processes(redis_clean: str) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_clean, f"worker-{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for n in range(4)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        results.append(json.loads(out))

    # One turn per 1000 s: the k-th turn granted waits about k * 1000 s minus how long
    # after the first it was asked (seconds). Two reservations that read the same state
    # would land on the same multiple; atomic ones land on each multiple exactly once.
    waits = sorted(w for r in results for w in r["waits"])
    assert len(waits) == 200
    assert [round(w / 1000.0) for w in waits] == list(range(200))

    # each datasource claimed by exactly one run
    won = sorted(i for r in results for i in r["won"])
    assert won == list(range(100))
