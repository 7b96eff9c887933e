"""The token cache: single flight, proactive and reactive refresh, budget, file store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from zoho_async import (
    FileTokenStore,
    ProtocolError,
    TokenRefreshError,
    TokenThrottledError,
    TransportError,
)
from zoho_async._auth import TokenBudget
from zoho_async.testing import FakeZoho, Fault

from .helpers import session_for

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake() -> FakeZoho:  # type: ignore[misc]
    async with FakeZoho(requests_per_minute=None, metadata_per_minute=None) as server:
        server.add_org(is_default=True)
        yield server


async def test_500_concurrent_first_calls_mint_one_token(fake: FakeZoho) -> None:
    fake.set_latency(0.05)  # the refresh takes a while: everyone piles up behind it
    async with session_for(fake) as session:
        async with anyio.create_task_group() as tg:
            for _ in range(500):
                tg.start_soon(session.get_access_token)
        assert session.token_requests == 1
    assert fake.stats.token_requests == 1


async def test_reactive_refresh_after_revocation_is_single_flight(fake: FakeZoho) -> None:
    async with session_for(fake) as session:
        await session.get_orgs()
        fake.revoke_tokens()
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(session.get_orgs)
    # one first token, one refresh for all 100 concurrent 8535s
    assert fake.stats.token_requests == 2


async def test_proactive_refresh_before_expiry(fake: FakeZoho) -> None:
    clock = [0.0]
    async with session_for(fake) as session:
        tokens = session._tokens
        assert tokens is not None
        tokens._clock = lambda: clock[0]  # drive the cache's monotonic clock by hand
        first = await session.get_access_token()
        clock[0] = 3600 * 0.5
        assert await session.get_access_token() == first
        clock[0] = 3600 - 299  # inside the 300 s margin: refresh now
        second = await session.get_access_token()
        assert second != first
        assert fake.stats.token_requests == 2


async def test_failed_proactive_refresh_keeps_the_valid_token(fake: FakeZoho) -> None:
    clock = [0.0]
    async with session_for(fake) as session:
        tokens = session._tokens
        assert tokens is not None
        tokens._clock = lambda: clock[0]
        first = await session.get_access_token()
        clock[0] = 3600 - 100
        fake.script("token", [Fault.html(503)])
        assert await session.get_access_token() == first  # still valid: keep using it
        # and it does not retry on every call (no storm against a sick server)
        assert await session.get_access_token() == first
        assert fake.stats.token_requests == 2


async def test_expired_token_without_refresh_fails_clearly(fake: FakeZoho) -> None:
    fake.script("token", [Fault.html(503)] * 3)
    async with session_for(fake) as session:
        with pytest.raises(ProtocolError):
            await session.get_access_token()


async def test_invalid_code_is_not_retried(fake: FakeZoho) -> None:
    async with session_for(fake, refresh_token="1000.not-a-real-refresh-token") as session:
        with pytest.raises(TokenRefreshError, match="revoked"):
            await session.get_orgs()
        with pytest.raises(TokenRefreshError):
            await session.get_orgs()
    assert fake.stats.token_requests == 1  # the second call did not ask again


async def test_invalid_client_names_the_data_centre(fake: FakeZoho) -> None:
    async with session_for(fake, client_secret="wrong") as session:
        with pytest.raises(TokenRefreshError, match="data centre"):
            await session.get_orgs()


@pytest.mark.parametrize("status", [200, 400])
async def test_access_denied_throttle(fake: FakeZoho, status: int) -> None:
    fake.script(
        "token",
        [
            Fault(
                status=status,
                json={
                    "error": "Access Denied",
                    "error_description": "You have made too many requests continuously.",
                },
            )
        ],
    )
    async with session_for(fake) as session:
        with pytest.raises(TokenThrottledError) as info:
            await session.get_orgs()
        assert info.value.retry_at is not None
        with pytest.raises(TokenThrottledError):  # fails fast, no new request
            await session.get_orgs()
    assert fake.stats.token_requests == 1


async def test_client_side_budget_of_10_per_10_minutes(fake: FakeZoho) -> None:
    async with session_for(fake) as session:
        for _ in range(10):
            await session.get_orgs()
            fake.revoke_tokens()
        with pytest.raises(TokenThrottledError, match="10 token requests"):
            await session.get_orgs()
    assert fake.stats.token_requests == 10


def test_budget_rolls() -> None:
    now = [0.0]
    budget = TokenBudget(2, 600.0, clock=lambda: now[0])
    budget.take()
    budget.take()
    with pytest.raises(TokenThrottledError):
        budget.take()
    now[0] = 600.1
    budget.take()
    assert budget.used == 1


async def test_accounts_server_down_is_a_transport_error(fake: FakeZoho) -> None:
    async with FakeZoho() as doomed:
        gone = doomed.accounts_url
    async with session_for(fake, accounts_url=gone) as session:
        with pytest.raises(TransportError):
            await session.get_orgs()
        assert session.token_requests <= 4  # bounded by the retry policy


async def test_file_store_reuses_the_token_across_sessions(fake: FakeZoho, tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.json"
    for _ in range(10):
        async with session_for(fake, token_store=FileTokenStore(path)) as session:
            await session.get_orgs()
    assert fake.stats.token_requests == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert fake.refresh_token not in text and fake.client_secret not in text
    assert fake.stats.tokens_issued[0] in text
    assert set(json.loads(text)["tokens"]) and "1000." not in next(iter(json.loads(text)["tokens"]))


async def test_file_store_drops_a_revoked_token(fake: FakeZoho, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    async with session_for(fake, token_store=FileTokenStore(path)) as session:
        await session.get_orgs()
    fake.revoke_tokens()
    async with session_for(fake, token_store=FileTokenStore(path)) as session:
        await session.get_orgs()
    assert fake.stats.token_requests == 2
    assert fake.stats.tokens_issued[1] in path.read_text()


_CHILD = textwrap.dedent(
    """
    import sys, anyio
    from zoho_async import AnalyticsSession, FileTokenStore
    api, accounts, cid, secret, refresh, org, path = sys.argv[1:8]

    async def main() -> None:
        async with AnalyticsSession(cid, secret, refresh, org_id=org, api_url=api,
                                    accounts_url=accounts,
                                    token_store=FileTokenStore(path)) as session:
            await session.get_orgs()
            print(session.token_requests)

    anyio.run(main)
    """
)


def test_two_processes_started_together_mint_one_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    with FakeZoho.run_in_thread(
        requests_per_minute=None, metadata_per_minute=None, latency=0.2
    ) as fake:
        fake.add_org(is_default=True)
        args = [
            fake.api_url,
            fake.accounts_url,
            fake.client_id,
            fake.client_secret,
            fake.refresh_token,
            str(fake.default_org_id),
            str(path),
        ]
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _CHILD, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        outputs = [child.communicate(timeout=60) for child in children]
        for child, (out, err) in zip(children, outputs, strict=True):
            assert child.returncode == 0, err
        assert sorted(int(out.strip()) for out, _ in outputs) == [0, 1]
        assert fake.stats.token_requests == 1
