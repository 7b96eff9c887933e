"""AnalyticsSession against FakeZoho over loopback: calls, errors, CONFIG, lifecycle."""

from __future__ import annotations

import logging

import aiohttp
import anyio
import pytest

from zoho_async import (
    USER_AGENT,
    AuthError,
    ConfigTooLongError,
    InvalidConfigError,
    InvalidIdError,
    NotFoundError,
    OrgRequiredError,
    PermissionDeniedError,
    ProtocolError,
    ServerError,
    SyncConfig,
    SyncInProgressError,
    SyncQuotaExceededError,
    TimeoutError,
    TransportError,
)
from zoho_async.testing import FakeZoho, Fault

from .helpers import ds_id, session_for

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake() -> FakeZoho:  # type: ignore[misc]
    async with FakeZoho(requests_per_minute=None, metadata_per_minute=None) as server:
        org = server.add_org(name="Acme", is_default=True)
        server.add_workspace(org.org_id, "1001", name="Owned")
        server.add_workspace(org.org_id, "1002", name="Shared", owned=False)
        yield server


async def test_discovery_calls(fake: FakeZoho) -> None:
    ds = ds_id(fake.add_datasource("1001", name="Sales", intervals=1))
    fake.add_datasource("1001", kind="local_drive", name="upload.csv")
    async with session_for(fake) as session:
        orgs = await session.get_orgs()
        assert [o.org_id for o in orgs] == [fake.default_org_id]
        workspaces = await session.get_workspaces()
        assert {(w.workspace_id, w.owned) for w in workspaces} == {("1001", True), ("1002", False)}
        sources = await session.workspace("1001").get_datasources()
        assert [s.datasource_id for s in sources] == [ds, None]
        assert sources[0].name == "Sales" and sources[0].quota_left == 5
        assert sources[1].skip_reason == "Local Drive"
    headers = fake.stats.last_headers
    assert headers.get("User-Agent") == USER_AGENT


async def test_sync_data_starts_a_sync_and_sends_config_in_the_body(fake: FakeZoho) -> None:
    ds = ds_id(fake.add_datasource("1001"))
    async with session_for(fake) as session:
        ws = session.workspace("1001")
        await ws.sync_data(ds)  # None on 204
        other = ds_id(fake.add_datasource("1001"))
        await ws.sync_data(other, config=SyncConfig(user_name="u", password="pw"))
    assert fake.stats.syncs_started[ds] == 1
    assert fake.stats.configs[0] == (ds, None, "none")
    assert fake.stats.configs[1] == (other, {"userName": "u", "password": "pw"}, "form")


async def test_config_in_query_option(fake: FakeZoho) -> None:
    ds = fake.add_datasource("1001", intervals=2)
    async with session_for(fake, config_in_query=True) as session:
        await session.sync_data("1001", ds_id(ds), sync_interval_id=ds.interval_ids[1])
    assert fake.stats.configs[-1] == (
        ds.datasource_id,
        {"syncIntervalId": ds.interval_ids[1]},
        "query",
    )


async def test_each_sync_error_maps_to_its_class(fake: FakeZoho) -> None:
    # in progress until finish_sync (sync_duration=0.0), not for the default 3 s
    running = fake.add_datasource("1001", running=True, sync_duration=0.0)
    spent = fake.add_datasource("1001", sync_used=5, total_sync_allowed=5)
    forbidden = fake.add_datasource("1001", forbidden=True)
    multi = fake.add_datasource("1001", intervals=3)
    async with session_for(fake) as session:
        ws = session.workspace("1001")
        with pytest.raises(SyncInProgressError) as in_progress:
            await ws.sync_data(ds_id(running))
        assert in_progress.value.code == 18073 and in_progress.value.http_status == 400
        with pytest.raises(SyncQuotaExceededError):
            await ws.sync_data(ds_id(spent))
        with pytest.raises(PermissionDeniedError) as denied:
            await ws.sync_data(ds_id(forbidden))
        assert denied.value.http_status == 403
        with pytest.raises(InvalidConfigError) as no_interval:
            await ws.sync_data(ds_id(multi))
        assert no_interval.value.code == 8182
        with pytest.raises(InvalidConfigError) as wrong_interval:
            await ws.sync_data(ds_id(multi), sync_interval_id="123")
        assert wrong_interval.value.code == 8183
        with pytest.raises(NotFoundError) as unknown:
            await ws.sync_data("999999999999")
        assert unknown.value.code == 18061
        with pytest.raises(NotFoundError) as no_ws:
            await session.workspace("424242").get_datasources()
        assert no_ws.value.code == 7103
    # nothing but the multi-interval datasource's interval errors reached a sync
    assert sum(fake.stats.syncs_started.values()) == 0


async def test_missing_org_header_is_8083(fake: FakeZoho) -> None:
    async with session_for(fake, org_id=None) as session:
        with pytest.raises(OrgRequiredError) as info:
            await session.workspace("1001").get_datasources()
        assert info.value.code == 8083


async def test_local_validation_happens_before_any_request(fake: FakeZoho) -> None:
    async with session_for(fake) as session:
        before = fake.stats.requests + fake.stats.token_requests
        with pytest.raises(InvalidIdError):
            session.workspace("abc")
        with pytest.raises(InvalidIdError):
            await session.workspace("1001").sync_data("")
        with pytest.raises(ConfigTooLongError):
            await session.workspace("1001").sync_data(
                "1", config=SyncConfig(user_name="\\" * 1000, password="\\" * 1000)
            )
        assert fake.stats.requests + fake.stats.token_requests == before


async def test_server_8507_is_invalid_config(fake: FakeZoho) -> None:
    # the local check makes a real 8507 unreachable; script one to see the mapping
    fake.script("sync", [Fault.error(8507, 400)])
    async with session_for(fake) as session:
        with pytest.raises(InvalidConfigError) as info:
            await session.sync_data("1001", "1")
        assert info.value.code == 8507


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.html(502), ServerError),
        (Fault(status=200, body=b'{"status": "success", "da'), ProtocolError),
        (Fault(status=200, json=["not", "an", "object"]), ProtocolError),
        (Fault(status=200, json={"status": "success", "data": {"orgs": "nope"}}), ProtocolError),
    ],
)
async def test_bad_answers_become_typed_errors(
    fake: FakeZoho, fault: Fault, error: type[Exception]
) -> None:
    fake.script("orgs", [fault] * 10)
    async with session_for(fake) as session:
        with pytest.raises(error):
            await session.get_orgs()


async def test_server_errors_are_retried_then_succeed(fake: FakeZoho) -> None:
    fake.script("orgs", [Fault.error(7005, 500), Fault.html(503)])
    async with session_for(fake) as session:
        assert len(await session.get_orgs()) == 1
    assert fake.stats.requests_by_route["orgs"] == 3


async def test_timeouts_and_dropped_connections_are_transport_errors(fake: FakeZoho) -> None:
    fake.script("orgs", [Fault(delay=2.0)] * 2 + [Fault(drop=True)] * 4)
    async with session_for(
        fake, timeout=0.3, retry=__import__("zoho_async").RetryPolicy(attempts=2, wait=False)
    ) as session:
        with pytest.raises(TimeoutError) as slow:
            await session.get_orgs()
        assert isinstance(slow.value, TransportError) and slow.value.sent
        with pytest.raises(TransportError) as dropped:
            await session.get_orgs()
        assert dropped.value.sent


async def test_connection_refused_is_not_sent(fake: FakeZoho) -> None:
    async with FakeZoho() as doomed:
        url = doomed.api_url
    async with session_for(fake, api_url=url) as session:
        with pytest.raises(TransportError) as info:
            await session.get_orgs()  # token comes from the live fake, the API is gone
        assert info.value.sent is False


async def test_lifecycle_errors(fake: FakeZoho) -> None:
    session = session_for(fake)
    with pytest.raises(RuntimeError, match="not open"):
        await session.get_orgs()
    async with session:
        await session.get_orgs()
    with pytest.raises(RuntimeError, match="closed"):
        await session.get_orgs()
    with pytest.raises(RuntimeError, match="closed"):
        await session.open()


async def test_caller_supplied_client_session_is_not_closed(fake: FakeZoho) -> None:
    async with aiohttp.ClientSession() as http:
        async with session_for(fake, client_session=http) as session:
            await session.get_orgs()
        assert not http.closed


async def test_close_releases_the_connector_when_cancelled(fake: FakeZoho) -> None:
    fake.set_latency(5.0)
    session = session_for(fake)
    with anyio.move_on_after(0.3):
        async with session:
            await session.get_orgs()
    assert session.closed
    fake.set_latency(0.0)


async def test_repr_and_logs_hold_no_secret(
    fake: FakeZoho, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="zoho_async")
    async with session_for(fake) as session:
        await session.get_orgs()
        text = repr(session) + caplog.text
    for secret in (fake.client_secret, fake.refresh_token, *fake.stats.tokens_issued):
        assert secret not in text
    assert "GET /restapi/v2/orgs" in caplog.text


async def test_auth_error_after_one_refresh(fake: FakeZoho) -> None:
    fake.script("orgs", [Fault.error(8535, 401)] * 2)
    async with session_for(fake) as session:
        with pytest.raises(AuthError) as info:
            await session.get_orgs()
        assert info.value.code == 8535 and "data centre" in str(info.value)
    assert fake.stats.token_requests == 2  # the first token and exactly one refresh
