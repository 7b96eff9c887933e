"""The token cache: single flight, proactive and reactive refresh, budget, file store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
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
from zoho_async._upkeep import Upkeep
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
        clock[0] = 3600 - 299  # inside the 300 s margin: refresh now, in the background
        assert await session.get_access_token() == first  # still valid: served at once
        await tokens.wait_background()
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
        await tokens.wait_background()
        # and it does not retry on every call (no storm against a sick server)
        assert await session.get_access_token() == first
        assert fake.stats.token_requests == 2


def _api_tokens(fake: FakeZoho) -> list[str]:
    """The access token of each API request the fake kept headers of (token requests have
    none)."""
    prefix = "Zoho-oauthtoken "
    return [
        h["Authorization"][len(prefix) :]
        for h in fake.stats.recent_headers
        if h.get("Authorization", "").startswith(prefix)
    ]


async def _until(done: Callable[[], bool]) -> None:
    """Wait for something the fake counts to happen (bounded, so a bug fails, not hangs)."""
    with anyio.fail_after(30):
        while not done():
            await anyio.sleep(0.01)


async def test_a_slow_proactive_refresh_blocks_no_one(
    fake: FakeZoho, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [0.0]
    # the refresh is slower than anything the test waits for; the timeout is longer still,
    # so the request is still on the wire when the session closes
    async with session_for(fake, timeout=120.0) as session:
        tokens = session._tokens
        assert tokens is not None
        tokens._clock = lambda: clock[0]
        first = await session.get_access_token()
        fake.script("token", [Fault(delay=60.0)])
        clock[0] = 3600 - 100  # due for a refresh, still valid for 100 s
        assert await session.get_access_token() == first
        await _until(lambda: fake.stats.token_requests == 2)  # the refresh is on the wire
        fake.stats.recent_headers.clear()
        # A bound so that blocking fails instead of hanging; no claim about speed.
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(session.get_orgs)
            assert tokens.remaining() == pytest.approx(100.0)
        # Measured at the fake: the 20 calls arrived and were answered, with the old
        # token, while the one token request was still unanswered.
        assert fake.stats.requests_by_route["orgs"] == 20
        assert _api_tokens(fake) == [first] * 20
        assert fake.stats.tokens_issued == [first]
        assert fake.stats.token_requests == 2
        caplog.clear()
    # Closing cancels the refresh still on the wire: no error, nothing logged about it.
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert fake.stats.token_requests == 2


async def test_without_a_valid_token_callers_wait_for_the_refresh(fake: FakeZoho) -> None:
    clock = [0.0]
    async with session_for(fake) as session:
        tokens = session._tokens
        assert tokens is not None
        assert tokens.remaining() is None  # no token yet
        tokens._clock = lambda: clock[0]
        first = await session.get_access_token()
        fake.script("token", [Fault(delay=0.5)])
        clock[0] = 3600 + 1  # expired in the cache's eyes: nothing valid to hand out
        assert tokens.remaining() == 0.0
        fake.stats.recent_headers.clear()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(session.get_orgs)
        # every call waited for the one refresh: none was sent with the expired token
        second = fake.stats.tokens_issued[1]
        assert second != first
        assert _api_tokens(fake) == [second] * 20
        assert fake.stats.token_requests == 2


async def test_a_failed_background_refresh_is_retried_by_a_later_caller(fake: FakeZoho) -> None:
    clock = [0.0]
    async with session_for(fake) as session:
        tokens = session._tokens
        assert tokens is not None
        tokens._clock = lambda: clock[0]
        first = await session.get_access_token()
        fake.script("token", [Fault.html(503)])
        clock[0] = 3600 - 100
        fake.stats.recent_headers.clear()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(session.get_orgs)  # none of them sees the 503
        await tokens.wait_background()
        assert await session.get_access_token() == first
        assert fake.stats.token_requests == 2  # one failed refresh, not one per call
        clock[0] += 31  # past the back-off: the next caller has it tried again
        assert await session.get_access_token() == first
        await tokens.wait_background()
        assert await session.get_access_token() == fake.stats.tokens_issued[1] != first
        assert fake.stats.token_requests == 3
        assert _api_tokens(fake) == [first] * 20


async def test_a_refused_background_refresh_surfaces_only_when_the_token_expires(
    fake: FakeZoho,
) -> None:
    clock = [0.0]
    async with session_for(fake) as session:
        tokens = session._tokens
        assert tokens is not None
        tokens._clock = lambda: clock[0]
        first = await session.get_access_token()
        # the refresh token is refused; the access token stays valid at the fake
        fake.script("token", [Fault(json={"error": "invalid_code"})])
        clock[0] = 3600 - 100
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(session.get_orgs)
        await tokens.wait_background()
        assert await session.get_access_token() == first
        assert fake.stats.requests_by_route["orgs"] == 20
        clock[0] = 3600 + 1  # expired: now the callers see why there is no new token
        with pytest.raises(TokenRefreshError):
            await session.get_access_token()
        with pytest.raises(TokenRefreshError):
            await session.get_orgs()
    assert fake.stats.token_requests == 2  # a refused refresh token is not asked again


async def test_a_session_closed_from_another_task_ends_its_background_work(
    fake: FakeZoho,
) -> None:
    # e.g. a fixture or a web app's cleanup: open in one task, close in another
    session = session_for(fake, timeout=120.0)
    clock = [0.0]

    async def opener() -> None:
        await session.open()

    async with anyio.create_task_group() as tg:
        tg.start_soon(opener)
    tokens = session._tokens
    assert tokens is not None
    tokens._clock = lambda: clock[0]
    first = await session.get_access_token()
    fake.script("token", [Fault(delay=60.0)])
    clock[0] = 3600 - 100
    assert await session.get_access_token() == first  # the refresh starts in the background

    async def closer() -> None:
        await session.close()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(closer)
    assert session.closed
    assert fake.stats.tokens_issued == [first]


async def test_upkeep_keeps_a_failing_job_to_itself(caplog: pytest.LogCaptureFixture) -> None:
    upkeep = Upkeep()
    await upkeep.open()
    raised, gate, finished, cancelled = (anyio.Event() for _ in range(4))

    async def patient() -> None:
        await gate.wait()
        finished.set()

    async def failing() -> None:
        raised.set()
        raise RuntimeError("a bug")

    async def endless() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    assert upkeep.start_soon(patient, "patient")
    assert upkeep.start_soon(endless, "endless")
    assert upkeep.start_soon(failing, "failing")
    await raised.wait()  # it raised in the same step: the error is already dealt with
    gate.set()
    await finished.wait()  # its sibling was not cancelled, nor was this task
    assert "background failing failed unexpectedly" in caplog.text
    await upkeep.close()
    assert cancelled.is_set()  # close() returns once every job is gone
    assert not upkeep.start_soon(patient, "late")  # nothing runs after close


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
