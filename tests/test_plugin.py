"""The pytest plugin's ``zoho_session`` fixture: a session on ``fake_zoho``'s fake that never
waits for a pacing turn."""

from __future__ import annotations

import anyio
import pytest

from zoho_async import AnalyticsSession, Limits, PacingTimeoutError, RetryPolicy
from zoho_async.testing import FAST_LIMITS, FakeZoho

pytest_plugins = ["pytester"]

USER_TEST = """
import pytest

from zoho_async import AnalyticsSession
from zoho_async.testing import FakeZoho


@pytest.fixture
def anyio_backend() -> str:  # as the README shows: older anyio releases also try trio
    return "asyncio"


@pytest.mark.anyio
async def test_sync(zoho_session: AnalyticsSession, fake_zoho: FakeZoho) -> None:
    report = await zoho_session.sync_workspaces(await zoho_session.get_workspaces())
    assert report.ok and len(report.results) == 20
    assert fake_zoho.stats.syncs_started.total() == 20  # the same fake
"""


def test_a_users_test_file_gets_the_fixture(pytester: pytest.Pytester) -> None:
    # a user's project: only the installed plugin (pytest11 entry point), no conftest
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.anyio
async def test_the_fixture_is_on_the_fake_zoho_fake(
    zoho_session: AnalyticsSession, fake_zoho: FakeZoho
) -> None:
    assert zoho_session.endpoints.api_url == fake_zoho.api_url
    assert zoho_session.org_id == fake_zoho.default_org_id
    assert zoho_session.limits == FAST_LIMITS
    assert zoho_session.retry == RetryPolicy.testing()
    assert not zoho_session.closed
    await zoho_session.get_orgs()
    assert fake_zoho.stats.token_requests == 1


async def _burst(session: AnalyticsSession, calls: int, timeout: float) -> None:
    # timeout= bounds only the wait before each request is sent (pacing turn, token):
    # past it the call raises PacingTimeoutError unsent
    async with anyio.create_task_group() as tasks:
        for _ in range(calls):
            tasks.start_soon(lambda: session.get_orgs(timeout=timeout))


@pytest.mark.anyio
async def test_fast_limits_never_make_a_call_wait_for_its_turn(
    zoho_session: AnalyticsSession, fake_zoho: FakeZoho
) -> None:
    # 30 calls at once: at Zoho's 100 a minute the last would wait 17 s for its turn
    await _burst(zoho_session, 30, timeout=8.0)
    assert fake_zoho.stats.requests_by_route.total() == 30


@pytest.mark.anyio
async def test_zohos_limits_would_make_the_same_burst_wait(fake_zoho: FakeZoho) -> None:
    # the contrast that makes the test above mean something
    session = AnalyticsSession(
        **fake_zoho.credentials,
        org_id=fake_zoho.default_org_id,
        api_url=fake_zoho.api_url,
        accounts_url=fake_zoho.accounts_url,
        limits=Limits(),
        retry=RetryPolicy.testing(),
    )
    async with session:
        with pytest.raises(ExceptionGroup) as caught:
            await _burst(session, 30, timeout=0.5)
    timed_out, rest = caught.value.split(PacingTimeoutError)
    assert timed_out is not None and rest is None
