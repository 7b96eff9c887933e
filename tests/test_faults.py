"""The fault matrix: every fault FakeZoho can inject, one honest result per target."""

from __future__ import annotations

import email.utils
import time
from collections import Counter

import pytest

from zoho_async import (
    Limits,
    ProtocolError,
    RetryPolicy,
    SyncResult,
    SyncStatus,
    TimeoutError,
    TokenRefreshError,
    TokenThrottledError,
    TransportError,
)
from zoho_async.testing import FakeZoho, Fault

from .helpers import ds_id, session_for

pytestmark = pytest.mark.anyio

N = 20
FAST_PAUSE = Limits(
    requests_per_minute=600_000, metadata_per_minute=600_000, max_in_flight=8, rate_limit_pause=0.05
)


async def world(**kwargs: object) -> tuple[FakeZoho, list[str]]:
    options: dict[str, object] = {"requests_per_minute": None, "metadata_per_minute": None}
    options.update(kwargs)
    fake = FakeZoho(**options)  # type: ignore[arg-type]
    await fake.start()
    org = fake.add_org(is_default=True)
    fake.add_workspace(org.org_id, "1001")
    return fake, [ds_id(fake.add_datasource("1001")) for _ in range(N)]


def check_all_started_once(fake: FakeZoho, results: tuple[SyncResult, ...], ids: list[str]) -> None:
    assert [r.index for r in results] == list(range(N))
    assert [r.status for r in results] == [SyncStatus.STARTED] * N, [
        (r.status, r.error_message) for r in results if r.status is not SyncStatus.STARTED
    ]
    assert all(fake.stats.syncs_started[d] == 1 for d in ids)


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


ANALYTICS_FAULTS = {
    "7005 burst": [Fault.error(7005, 500)] * 6,
    "500/502/503 HTML": [Fault.html(500), Fault.html(502), Fault.html(503)] * 2,
    "7005 after starting the sync": [
        Fault(
            status=500,
            json={
                "status": "failure",
                "summary": "INTERNAL",
                "data": {"errorCode": 7005, "errorMessage": "oops"},
            },
            then_process=True,
        )
    ]
    * 4,
    "dropped before processing": [Fault(drop=True)] * 4,
    "dropped after processing": [Fault(drop=True, then_process=True)] * 4,
    "slower than the timeout, after processing": [Fault(delay=2.0, then_process=True)] * 3,
    "slower than the timeout": [Fault(delay=2.0)] * 3,
    "HTML page with HTTP 200": [
        Fault(status=200, body="<html>maintenance</html>", content_type="text/html")
    ]
    * 3,
    "truncated JSON": [Fault(status=200, body='{"status": "succ')] * 3,
    "wrongly typed envelope": [
        Fault(status=400, json={"status": "failure", "data": {"errorCode": "x"}})
    ]
    * 3,
    "401 without an envelope": [Fault(status=401, body="")],
    "429 Retry-After seconds": [Fault.rate_limited("0.1")] * 3,
    "429 Retry-After HTTP date": [Fault.rate_limited(http_date(1))] * 2,
    "429 without Retry-After": [Fault.rate_limited(None)] * 2,
    "6045 storm": [Fault.error(6045)] * 40,
}


TIMEOUT = 0.5
# How long the fake's syncs run: over before the answer, half the timeout, longer than it.
SYNC_DURATIONS = {"instant": 0.0, "half the timeout": TIMEOUT / 2, "longer": 2 * TIMEOUT}

# Faults after which Zoho never acted, or answered (so its counters are final): every
# target must end STARTED. After the others (a lost answer) UNCONFIRMED is honest too.
ALWAYS_STARTED = {
    "7005 burst",
    "500/502/503 HTML",
    "7005 after starting the sync",
    "HTML page with HTTP 200",
    "truncated JSON",
    "wrongly typed envelope",
    "401 without an envelope",
    "429 Retry-After seconds",
    "429 Retry-After HTTP date",
    "429 without Retry-After",
    "6045 storm",
    "slower than the timeout, after processing",
    "dropped after processing",
}


def check_settled_once(
    fake: FakeZoho, results: tuple[SyncResult, ...], ids: list[str], *, all_started: bool
) -> None:
    """Each target one result: STARTED only when the fake started it, UNCONFIRMED with its
    evidence, and never a second sync of any datasource."""
    assert [r.index for r in results] == list(range(N))
    started = fake.stats.syncs_started
    assert max(started[d] for d in ids) <= 1, dict(started)
    for result in results:
        datasource = result.target.datasource_id or ""
        assert result.status in (SyncStatus.STARTED, SyncStatus.UNCONFIRMED), result
        if result.status is SyncStatus.STARTED:
            assert started[datasource] == 1, result
        else:
            assert result.error_message and "Get Datasources" in result.error_message
    if all_started:
        assert [r.status for r in results] == [SyncStatus.STARTED] * N, [
            (r.status, r.error_message) for r in results if r.status is not SyncStatus.STARTED
        ]


@pytest.mark.parametrize("duration", list(SYNC_DURATIONS))
@pytest.mark.parametrize("name", list(ANALYTICS_FAULTS))
async def test_analytics_fault_never_starts_a_second_sync(name: str, duration: str) -> None:
    fake, ids = await world(sync_duration=SYNC_DURATIONS[duration])
    try:
        fake.script("sync", ANALYTICS_FAULTS[name])
        retry = RetryPolicy(attempts=6, wait=False)
        async with session_for(fake, limits=FAST_PAUSE, retry=retry, timeout=TIMEOUT) as session:
            report = await session.sync_many([("1001", d) for d in ids])
        check_settled_once(fake, report.results, ids, all_started=name in ALWAYS_STARTED)
        assert fake.stats.token_requests <= 2
        # the baseline listing, and the settling listings: shared per workspace
        assert fake.stats.requests_by_route["datasources"] <= 1 + 4 * 6
    finally:
        await fake.stop()


async def test_unrecoverable_burst_fails_each_target_with_its_code() -> None:
    fake, ids = await world()
    try:
        fake.script("sync", [Fault.error(7005, 500)] * 1000)
        async with session_for(fake, retry=RetryPolicy(attempts=3, wait=False)) as session:
            report = await session.sync_many([("1001", d) for d in ids])
        assert Counter((r.status, r.error_code, r.attempts) for r in report.results) == {
            (SyncStatus.FAILED, 7005, 3): N
        }
    finally:
        await fake.stop()


ACCOUNTS_FAULTS: dict[str, tuple[list[Fault], type[Exception], int]] = {
    "5xx": ([Fault.html(503)] * 10, ProtocolError, 4),
    "not JSON": ([Fault(status=200, body="<html>login</html>")] * 10, ProtocolError, 4),
    "slow past the timeout": ([Fault(delay=2.0)] * 10, TimeoutError, 4),
    "invalid_code": ([Fault(status=200, json={"error": "invalid_code"})], TokenRefreshError, 1),
    "invalid_client": ([Fault(status=200, json={"error": "invalid_client"})], TokenRefreshError, 1),
    "Access Denied (200)": (
        [Fault(status=200, json={"error": "Access Denied"})],
        TokenThrottledError,
        1,
    ),
    "Access Denied (400)": (
        [
            Fault(
                status=400,
                json={
                    "error": "Access Denied",
                    "error_description": "Token creation throttle limit reached",
                },
            )
        ],
        TokenThrottledError,
        1,
    ),
}


@pytest.mark.parametrize("name", list(ACCOUNTS_FAULTS))
async def test_accounts_fault_is_one_clear_error_before_dispatch(name: str) -> None:
    faults, error, token_requests = ACCOUNTS_FAULTS[name]
    fake, ids = await world()
    try:
        fake.script("token", faults)
        async with session_for(fake, timeout=0.5) as session:
            with pytest.raises(error):
                await session.sync_many([("1001", d) for d in ids])
        assert fake.stats.sync_calls.total() == 0
        assert fake.stats.token_requests == token_requests
    finally:
        await fake.stop()


async def test_accounts_server_down_is_one_transport_error() -> None:
    fake, ids = await world()
    try:
        async with FakeZoho() as gone:
            dead = gone.accounts_url
        async with session_for(fake, accounts_url=dead) as session:
            with pytest.raises(TransportError) as info:
                await session.sync_many([("1001", d) for d in ids])
        assert info.value.sent is False
        assert fake.stats.sync_calls.total() == 0
    finally:
        await fake.stop()


@pytest.mark.parametrize("expires", [None, 0])
async def test_missing_or_zero_expires_in_still_works(expires: int | None) -> None:
    fake, ids = await world()
    try:
        body: dict[str, object] = {
            "access_token": "1000.aaaa1111bbbb2222.cccc",
            "token_type": "Bearer",
        }
        if expires is not None:
            body["expires_in"] = expires
        # the scripted token is not one the fake knows: the first call gets 8535, and the
        # reactive refresh mints a real one - one refresh, not a storm
        fake.script("token", [Fault(status=200, json=body)])
        async with session_for(fake) as session:
            report = await session.sync_many([("1001", d) for d in ids])
        check_all_started_once(fake, report.results, ids)
        assert fake.stats.token_requests == 2
    finally:
        await fake.stop()


async def test_refresh_token_revoked_mid_run_fails_the_rest_without_a_storm() -> None:
    fake, ids = await world()
    try:
        seen: list[SyncResult] = []

        def on_result(result: SyncResult) -> None:
            seen.append(result)
            if len(seen) == 5:
                fake.revoke_refresh_token()
                fake.revoke_tokens()

        limits = Limits(requests_per_minute=600_000, metadata_per_minute=600_000, max_in_flight=1)
        async with session_for(fake, limits=limits) as session:
            report = await session.sync_many([("1001", d) for d in ids], on_result=on_result)
        statuses = Counter((r.status, r.error_type) for r in report.results)
        assert statuses[(SyncStatus.STARTED, None)] >= 5
        failed = statuses[(SyncStatus.FAILED, "TokenRefreshError")]
        assert failed + statuses[(SyncStatus.STARTED, None)] == N
        assert failed > 0
        assert fake.stats.token_requests == 2  # the first and one failed refresh, no storm
    finally:
        await fake.stop()
