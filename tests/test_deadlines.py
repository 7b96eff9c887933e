"""``timeout=`` on every single call: bounded before the send, never cutting a request.

Against FakeZoho over loopback. Pacing here is Zoho's own (60 metadata calls a minute,
one a second), so a second call has to wait about a second for its turn: a call whose
timeout is far shorter cannot be sent in time, whatever the machine's load.
"""

from __future__ import annotations

import anyio
import pytest

from zoho_async import (
    InvalidInputError,
    Limits,
    PacingTimeoutError,
    RateLimitedError,
    ZohoError,
)
from zoho_async.testing import Fault

from .helpers import ds_id, session_for, workspace_fake

pytestmark = pytest.mark.anyio

WS = "1001"
ZOHO_PACE = Limits()  # 100 a minute, 60 metadata: a turn every ~1 s


async def test_a_call_that_cannot_get_a_turn_in_time_sends_nothing() -> None:
    async with workspace_fake() as fake, session_for(fake, limits=ZOHO_PACE) as session:
        ws = session.workspace(WS)
        await ws.get_datasources()  # takes this second's turn
        before = fake.stats.requests_by_route["datasources"]
        with pytest.raises(PacingTimeoutError) as caught:
            await ws.get_datasources(timeout=0.05)
        assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, ZohoError)
        assert "nothing was sent" in str(caught.value)
        assert fake.stats.requests_by_route["datasources"] == before
        await ws.get_datasources(timeout=30)  # a timeout that allows the turn: served


async def test_the_session_default_applies_and_a_call_may_override_it() -> None:
    async with (
        workspace_fake() as fake,
        session_for(fake, limits=ZOHO_PACE, call_timeout=0.05) as session,
    ):
        await session.get_orgs()
        with pytest.raises(PacingTimeoutError):
            await session.get_workspaces()
        assert len(await session.get_workspaces(timeout=30)) == 1


async def test_a_sync_that_cannot_be_sent_in_time_is_not_sent() -> None:
    async with workspace_fake() as fake, session_for(fake, limits=ZOHO_PACE) as session:
        ds = ds_id(fake.add_datasource(WS))
        await session.get_orgs()  # the turn of this second is gone
        with pytest.raises(PacingTimeoutError):
            # its baseline listing (or, after it, the send) would have to wait for a turn
            await session.sync_data(WS, ds, timeout=0.05)
        assert fake.stats.sync_calls[ds] == 0


async def test_a_request_already_sent_is_never_cut_by_the_timeout() -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        fake.add_datasource(WS)
        fake.script("datasources", [Fault(delay=0.5)])  # a slow answer, within `timeout`
        found = await session.workspace(WS).get_datasources(timeout=0.05)
        assert len(found) == 1  # the answer came, though after the call's timeout


async def test_the_wait_for_the_token_counts_and_the_refresh_goes_on() -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        fake.script("token", [Fault(delay=0.5)])  # a slow accounts server
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.get_orgs)  # leads the refresh
            while fake.stats.token_requests == 0:
                await anyio.sleep(0.01)  # until the token request is on its way
            with pytest.raises(PacingTimeoutError):
                await session.get_workspaces(timeout=0.05)
            with pytest.raises(PacingTimeoutError):
                await session.get_access_token(timeout=0.05)
        assert fake.stats.requests_by_route["workspaces"] == 0
        assert fake.stats.requests_by_route["orgs"] == 1
        assert fake.stats.token_requests == 1  # one refresh served every caller


async def test_callers_during_a_rate_limit_pause_give_up_unsent() -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        fake.script("orgs", [Fault.rate_limited(retry_after="30")])
        async with anyio.create_task_group() as tg:
            first: list[BaseException] = []

            async def rejected() -> None:
                try:
                    await session.get_orgs(timeout=1)
                except RateLimitedError as exc:  # it was sent, and Zoho said 6045
                    first.append(exc)

            tg.start_soon(rejected)
        assert first
        with pytest.raises(PacingTimeoutError):  # the pause holds for the next caller
            await session.get_workspaces(timeout=0.2)
        assert fake.stats.requests_by_route["workspaces"] == 0


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "5"])
async def test_a_bad_timeout_is_refused_before_any_request(bad: object) -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        with pytest.raises(InvalidInputError):
            await session.get_orgs(timeout=bad)  # type: ignore[arg-type]
        assert fake.stats.requests == 0
