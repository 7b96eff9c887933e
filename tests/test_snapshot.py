"""``session.snapshot()``: a frozen, cheap picture of a live session, against FakeZoho."""

from __future__ import annotations

import json

import anyio
import attrs
import pytest

from zoho_async import RateLimitedError, SessionSnapshot
from zoho_async.testing import Fault

from .helpers import session_for, workspace_fake

pytestmark = pytest.mark.anyio

WS = "1001"


async def test_a_fresh_session_and_one_after_calls() -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        first = session.snapshot()
        assert first.token_expires_in is None and first.requests == 0
        assert first.orgs == {} and first.waiting == 0
        fake.script("datasources", [Fault.error(7005, http_status=500)])
        await session.workspace(WS).get_datasources()  # one retry, after a 7005
        snap = session.snapshot()
        assert isinstance(snap, SessionSnapshot)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            snap.requests = 0  # type: ignore[misc]
        assert snap.token_requests == 1 and snap.retries == 1
        assert snap.requests == 3  # the token, the 7005, the retry
        assert snap.token_expires_in is not None and 0 < snap.token_expires_in <= 3600
        assert snap.in_flight == 0
        text = json.dumps(snap.to_dict())
        assert (await session.get_access_token()) not in text + repr(snap)


async def test_it_shows_a_pause_and_the_calls_waiting_through_it() -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        org = fake.default_org_id or ""
        fake.script("datasources", [Fault.rate_limited(retry_after="30")])
        with pytest.raises(RateLimitedError):
            await session.workspace(WS).get_datasources(timeout=1)  # 6045; a retry won't fit
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.workspace(WS).get_datasources)
            while session.snapshot().waiting == 0:
                await anyio.sleep(0.01)  # until the call queues behind the pause
            view = session.snapshot().orgs[org]
            assert view.waiting == 1 and view.rejections == 1
            assert 0 < view.paused_for <= 30 and view.rate_factor < 1.0
            tg.cancel_scope.cancel()
        assert session.snapshot().waiting == 0
        assert fake.stats.requests_by_route["datasources"] == 1
