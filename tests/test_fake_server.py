"""FakeZoho over real loopback HTTP, with a plain aiohttp client (no SDK involved)."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import re
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import requests
import trustme

from zoho_async.testing import FakeZoho, Fault
from zoho_async.testing._wire import zoho_time
from zoho_async.testing.pytest_plugin import FakeZohoFactory

pytestmark = pytest.mark.anyio

TIME_RE = re.compile(r"^\d\d [A-Z][a-z]+, \d{4} \d\d:\d\d:\d\d [AP]M [A-Z]+$")


class ManualClock:
    """A monotonic clock the test moves by hand, so nothing ever really waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def grant(fake: FakeZoho) -> dict[str, str]:
    """The refresh-token grant fields for the fake's credentials."""
    return {
        "grant_type": "refresh_token",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "refresh_token": fake.refresh_token,
    }


class Client:
    """The few HTTP calls the tests need, written out by hand."""

    def __init__(self, session: aiohttp.ClientSession, fake: FakeZoho) -> None:
        self.session = session
        self.fake = fake
        self.token = ""

    async def login(self) -> str:
        params = grant(self.fake)
        async with self.session.post(
            self.fake.accounts_url + "/oauth/v2/token", params=params
        ) as resp:
            body = await resp.json(content_type=None)
        self.token = body["access_token"]
        return self.token

    def headers(self, org: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Zoho-oauthtoken {self.token}"}
        if org is not None:
            headers["ZANALYTICS-ORGID"] = org
        return headers

    async def get(self, path: str, org: str | None = None) -> tuple[int, Any]:
        async with self.session.get(
            self.fake.api_url + "/restapi/v2" + path, headers=self.headers(org)
        ) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def sync(
        self,
        ws: str,
        ds: str,
        org: str | None,
        config: dict[str, Any] | str | None = None,
        where: str = "query",
    ) -> tuple[int, Any]:
        raw = config if isinstance(config, str) or config is None else json.dumps(config)
        url = f"{self.fake.api_url}/restapi/v2/workspaces/{ws}/datasources/{ds}/sync"
        params = {"CONFIG": raw} if raw is not None and where == "query" else None
        data = {"CONFIG": raw} if raw is not None and where == "form" else None
        async with self.session.post(
            url, params=params, data=data, headers=self.headers(org)
        ) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def entries(self, ws: str, org: str) -> list[dict[str, Any]]:
        status, body = await self.get(f"/workspaces/{ws}/datasources", org)
        assert status == 200, body
        entries: list[dict[str, Any]] = body["data"]["dataSources"]
        return entries


def code(body: Any) -> int:
    assert body["status"] == "failure"
    value: int = body["data"]["errorCode"]
    return value


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def world(fake: FakeZoho) -> tuple[str, str]:
    org = fake.add_org(name="Acme")
    ws = fake.add_workspace(org.org_id, name="Sales")
    return org.org_id, ws.workspace_id


# -- accounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["query", "form"])
async def test_token_grant_by_query_or_form(session: aiohttp.ClientSession, where: str) -> None:
    async with FakeZoho(token_lifetime=120.4) as fake:
        fields = {"grant_type": "refresh_token", **fake.credentials}
        kwargs: dict[str, Any] = {"params": fields} if where == "query" else {"data": fields}
        async with session.post(fake.accounts_url + "/oauth/v2/token", **kwargs) as resp:
            assert resp.status == 200
            body = await resp.json(content_type=None)
        assert re.fullmatch(r"1000\.[0-9a-f]{32}\.[0-9a-f]{32}", body["access_token"])
        assert body["expires_in"] == 120
        assert body["token_type"] == "Bearer"
        assert body["api_domain"] == "https://www.zohoapis.com"
        assert fake.stats.token_requests == 1
        assert fake.stats.tokens_issued == [body["access_token"]]


async def test_token_errors(session: aiohttp.ClientSession) -> None:
    async with FakeZoho() as fake:
        url = fake.accounts_url + "/oauth/v2/token"
        base = grant(fake)
        for change, expected in [
            ({"client_secret": "wrong"}, "invalid_client"),
            ({"client_id": "1000.NOPE"}, "invalid_client"),
            ({"refresh_token": "1000.abc.def"}, "invalid_code"),
        ]:
            async with session.post(url, params={**base, **change}) as resp:
                assert resp.status == 200
                assert (await resp.json(content_type=None)) == {"error": expected}
        fake.revoke_refresh_token()
        async with session.post(url, data=base) as resp:
            assert (await resp.json(content_type=None)) == {"error": "invalid_code"}
        assert fake.stats.tokens_issued == []


@pytest.mark.parametrize("throttle_status", [400, 200])
async def test_token_throttle(session: aiohttp.ClientSession, throttle_status: int) -> None:
    clock = ManualClock()
    async with FakeZoho(token_limit=2, throttle_status=throttle_status, clock=clock) as fake:
        client = Client(session, fake)
        await client.login()
        await client.login()
        async with session.post(
            fake.accounts_url + "/oauth/v2/token",
            params=grant(fake),
        ) as resp:
            assert resp.status == throttle_status
            body = await resp.json(content_type=None)
        assert body["error"] == "Access Denied"
        assert "too many requests" in body["error_description"]
        clock.advance(600.0)
        await client.login()
        assert fake.stats.token_requests == 4
        assert len(fake.stats.tokens_issued) == 3


async def test_missing_revoked_and_expired_tokens(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with FakeZoho(token_lifetime=10.0, clock=clock) as fake:
        client = Client(session, fake)
        assert (await client.get("/orgs"))[0] == 401  # no token at all
        async with session.get(fake.api_url + "/restapi/v2/orgs") as resp:
            assert resp.status == 401
            assert resp.headers["Content-Type"] == "application/json;charset=UTF-8"
            assert code(await resp.json(content_type=None)) == 8535
        await client.login()
        assert (await client.get("/orgs"))[0] == 200
        fake.revoke_tokens()
        status, body = await client.get("/orgs")
        assert (status, code(body)) == (401, 8535)
        await client.login()
        fake.expire_tokens()
        assert (await client.get("/orgs"))[0] == 401
        await client.login()
        clock.advance(9.9)
        assert (await client.get("/orgs"))[0] == 200
        clock.advance(0.2)
        assert (await client.get("/orgs"))[0] == 401


# -- discovery -------------------------------------------------------------------------------------


async def test_discovery_shapes(session: aiohttp.ClientSession) -> None:
    async with FakeZoho() as fake:
        org_a = fake.add_org(name="A")
        org_b = fake.add_org(name="B")
        owned = fake.add_workspace(org_a.org_id, name="Mine")
        shared = fake.add_workspace(org_b.org_id, name="Theirs", owned=False)
        client = Client(session, fake)
        await client.login()
        assert fake.default_org_id == org_a.org_id
        status, body = await client.get("/orgs")
        assert status == 200
        assert body["status"] == "success"
        first, second = body["data"]["orgs"]
        assert first["isDefault"] is True
        assert second["isDefault"] is False
        # Both spellings of the workspace count occur, as in the wild.
        assert first["numberOfWorkspaces"] == "1"
        assert second["numberOfworkspaces"] == "1"
        _, body = await client.get("/workspaces")
        assert [w["workspaceId"] for w in body["data"]["ownedWorkspaces"]] == [owned.workspace_id]
        assert [w["workspaceId"] for w in body["data"]["sharedWorkspaces"]] == [shared.workspace_id]
        assert body["data"]["ownedWorkspaces"][0]["createdTime"].isdigit()
        _, body = await client.get("/workspaces/shared")
        assert [w["workspaceName"] for w in body["data"]["workspaces"]] == ["Theirs"]
        _, body = await client.get(f"/workspaces/{owned.workspace_id}")
        assert body["data"]["workspaces"]["orgId"] == org_a.org_id
        status, body = await client.get("/resources", org_a.org_id)
        usage = body["data"]["resourceDetails"][0]["resourceUsage"]
        assert status == 200
        assert int(usage["allocated"]) > int(usage["used"]) > 0
        status, body = await client.get("/nowhere")
        assert (status, code(body)) == (404, 7404)
        # The singular path of Zoho's OpenAPI file is not a route.
        url = f"/workspaces/{owned.workspace_id}/datasource/1/sync"
        async with session.post(
            fake.api_url + "/restapi/v2" + url, headers=client.headers(org_a.org_id)
        ) as resp:
            assert resp.status == 404


async def test_datasource_entries_by_kind(session: aiohttp.ClientSession) -> None:
    # instant syncs: the sync's outcome is read back at once
    async with FakeZoho(time_zone="PST", sync_duration=0.0) as fake:
        org, ws = world(fake)
        plain = fake.add_datasource(ws)
        multi = fake.add_datasource(ws, intervals=3, outcome="Failed")
        fake.add_datasource(ws, kind="local_drive")
        fake.add_datasource(ws, kind="snapshot")
        live = fake.add_datasource(ws, kind="live")
        client = Client(session, fake)
        await client.login()
        first, second, drive, snap, live_entry = await client.entries(ws, org)
        assert first["datasourceId"] == plain.datasource_id
        assert first["syncIntervalId"] == plain.interval_ids[0]
        assert "syncIntervals" not in first
        assert (first["syncUsed"], first["totalSyncAllowed"]) == ("0", "5")
        assert all(isinstance(v, str) for k, v in first.items() if k != "tableDetails")
        assert "syncIntervalId" not in second
        assert [i["syncIntervalId"] for i in second["syncIntervals"]] == multi.interval_ids
        assert "datasourceId" not in drive
        assert drive["source"] == "Local Drive"
        assert "datasourceId" not in snap
        assert snap["source"] == "Snapshot"
        assert "lastDesignSyncStatus" in live_entry
        assert "lastDataSyncStatus" not in live_entry
        assert live.datasource_id is not None
        status, body = await client.sync(ws, live.datasource_id, org)
        assert (status, code(body)) == (400, 18061)
        # Sync one interval of the multi-interval source: it fails, as configured.
        assert multi.datasource_id is not None
        status, _ = await client.sync(
            ws, multi.datasource_id, org, {"scheduleId": multi.interval_ids[1]}
        )
        assert status == 204
        second = (await client.entries(ws, org))[1]
        assert second["lastDataSyncStatus"] == "Failed"
        assert TIME_RE.match(second["lastDataSyncTime"])
        assert second["lastDataSyncTime"].endswith(" PST")
        statuses = [i["lastDataSyncStatus"] for i in second["syncIntervals"]]
        assert statuses == ["", "Failed", ""]


def test_zoho_time_format() -> None:
    moment = dt.datetime(2024, 8, 3, 10, 9, 16, tzinfo=dt.UTC)
    assert zoho_time(moment, "IST") == "03 August, 2024 03:39:16 PM IST"
    assert zoho_time(moment, "UTC") == "03 August, 2024 10:09:16 AM UTC"
    assert zoho_time(moment, "PST") == "03 August, 2024 02:09:16 AM PST"


# -- sync errors -----------------------------------------------------------------------------------


async def test_org_and_lookup_errors(session: aiohttp.ClientSession) -> None:
    async with FakeZoho() as fake:
        org, ws = world(fake)
        other = fake.add_org(name="Other").org_id
        ds = fake.add_datasource(ws).datasource_id
        assert ds is not None
        client = Client(session, fake)
        await client.login()
        for status, body in [
            await client.get(f"/workspaces/{ws}/datasources"),
            await client.sync(ws, ds, None),
            await client.get("/resources"),
        ]:
            assert (status, code(body)) == (400, 8083)
        status, body = await client.sync("12345678901234567", ds, org)
        assert (status, code(body)) == (404, 7103)
        status, body = await client.sync(ws, ds, other)
        assert (status, code(body)) == (400, 7387)
        status, body = await client.get(f"/workspaces/{ws}/datasources", other)
        assert (status, code(body)) == (400, 7387)
        status, body = await client.sync(ws, "98765432109876543", org)
        assert (status, code(body)) == (404, 18061)
        assert fake.stats.syncs_started.total() == 0
        assert fake.stats.sync_calls[ds] == 3  # any answer counts


async def test_sync_refusals(session: aiohttp.ClientSession) -> None:
    async with FakeZoho() as fake:
        org, ws = world(fake)
        forbidden = fake.add_datasource(ws, forbidden=True).datasource_id
        multi = fake.add_datasource(ws, intervals=2)
        single = fake.add_datasource(ws)
        assert forbidden
        assert multi.datasource_id
        assert single.datasource_id
        client = Client(session, fake)
        await client.login()
        cases: list[tuple[str, Any, int, int]] = [
            (forbidden, None, 403, 7301),
            (multi.datasource_id, None, 403, 8182),
            (multi.datasource_id, {"syncIntervalId": single.interval_ids[0]}, 400, 8183),
            (single.datasource_id, {"scheduleId": "1"}, 400, 8183),
            (single.datasource_id, {"userName": "u" * 3000}, 400, 8507),
            (single.datasource_id, "{not json", 400, 8504),
            (single.datasource_id, "[1, 2]", 400, 8504),
        ]
        for ds, config, http_status, error in cases:
            status, body = await client.sync(ws, ds, org, config)
            assert (status, code(body)) == (http_status, error), (ds, config)
        assert fake.stats.syncs_started.total() == 0
        status, _ = await client.sync(
            ws, multi.datasource_id, org, {"syncIntervalId": multi.interval_ids[0]}
        )
        assert status == 204
        # Interval ids sent as JSON numbers are accepted too.
        status, _ = await client.sync(
            ws, single.datasource_id, org, {"scheduleId": int(single.interval_ids[0])}
        )
        assert status == 204


async def test_running_sync_then_finish(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with FakeZoho(clock=clock, sync_duration=30.0) as fake:
        org, ws = world(fake)
        stuck = fake.add_datasource(ws, running=True, sync_duration=0.0)
        timed = fake.add_datasource(ws)
        assert stuck.datasource_id
        assert timed.datasource_id
        client = Client(session, fake)
        await client.login()
        status, body = await client.sync(ws, stuck.datasource_id, org)
        assert (status, code(body)) == (400, 18073)
        clock.advance(3000)  # long after any duration, token still valid
        assert (await client.sync(ws, stuck.datasource_id, org))[0] == 400  # until finished
        fake.finish_sync(stuck.datasource_id)
        assert (await client.sync(ws, stuck.datasource_id, org))[0] == 204

        assert (await client.sync(ws, timed.datasource_id, org))[0] == 204
        status, body = await client.sync(ws, timed.datasource_id, org)
        assert (status, code(body)) == (400, 18073)
        entry = (await client.entries(ws, org))[1]
        assert entry["lastDataSyncTime"] == ""
        assert entry["syncUsed"] == "1"
        clock.advance(30.0)
        entry = (await client.entries(ws, org))[1]
        assert entry["lastDataSyncStatus"] == "Success"
        assert TIME_RE.match(entry["lastDataSyncTime"])
        assert entry["lastDataSyncTime"].endswith("IST")
        assert entry["tableDetails"][0]["syncStatus"] == "Success"
        assert fake.stats.syncs_started[timed.datasource_id] == 1
        assert fake.stats.sync_calls[timed.datasource_id] == 2


async def test_syncs_take_three_seconds_unless_told_otherwise(
    session: aiohttp.ClientSession,
) -> None:
    clock = ManualClock()
    async with FakeZoho(clock=clock) as fake:  # the default duration
        org, ws = world(fake)
        realistic = fake.add_datasource(ws).datasource_id
        instant = fake.add_datasource(ws, sync_duration=0).datasource_id
        assert realistic and instant
        client = Client(session, fake)
        await client.login()

        assert (await client.sync(ws, realistic, org))[0] == 204
        clock.advance(2.5)
        status, body = await client.sync(ws, realistic, org)
        assert (status, code(body)) == (400, 18073)  # still in progress
        assert (await client.entries(ws, org))[0]["lastDataSyncStatus"] == ""
        clock.advance(0.5)  # 3 s after the start: finished
        assert (await client.entries(ws, org))[0]["lastDataSyncStatus"] == "Success"
        assert (await client.sync(ws, realistic, org))[0] == 204

        # sync_duration=0: the sync finishes the moment it starts
        assert (await client.sync(ws, instant, org))[0] == 204
        assert (await client.entries(ws, org))[1]["lastDataSyncStatus"] == "Success"
        assert (await client.sync(ws, instant, org))[0] == 204
        assert dict(fake.stats.syncs_started) == {realistic: 2, instant: 2}


async def test_a_fake_wide_zero_duration_makes_every_sync_instant(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeZoho(sync_duration=0.0) as fake:
        org, ws = world(fake)
        ds = fake.add_datasource(ws).datasource_id
        assert ds
        client = Client(session, fake)
        await client.login()
        for _ in range(3):
            assert (await client.sync(ws, ds, org))[0] == 204
        assert fake.stats.syncs_started[ds] == 3


def test_negative_sync_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="sync_duration"):
        FakeZoho(sync_duration=-1.0)
    fake = FakeZoho()
    _, ws = world(fake)
    with pytest.raises(ValueError, match="sync_duration"):
        fake.add_datasource(ws, sync_duration=-0.5)


def test_fake_server_command_takes_the_fakes_default_sync_duration() -> None:
    from click.testing import CliRunner

    from zoho_async.cli import cli
    from zoho_async.cli._demo import fake_server

    (option,) = [p for p in fake_server.params if p.name == "sync_duration"]
    default = inspect.signature(FakeZoho).parameters["sync_duration"].default
    assert option.default == default == 3.0
    shown = CliRunner().invoke(cli, ["fake-server", "--help"])
    assert shown.exit_code == 0
    assert "--sync-duration" in shown.output


async def test_quota_is_shared_per_connection(session: aiohttp.ClientSession) -> None:
    # instant syncs: the first datasource is synced again, to meet the spent quota
    async with FakeZoho(sync_duration=0.0) as fake:
        org, ws = world(fake)
        first = fake.add_datasource(ws, connection_id="c1", sync_used=3, total_sync_allowed=5)
        second = fake.add_datasource(ws, connection_id="c1")
        assert first.datasource_id
        assert second.datasource_id
        client = Client(session, fake)
        await client.login()
        assert (await client.sync(ws, first.datasource_id, org))[0] == 204
        assert (await client.sync(ws, second.datasource_id, org))[0] == 204
        status, body = await client.sync(ws, first.datasource_id, org)
        assert (status, code(body)) == (400, 19000048)
        assert [e["syncUsed"] for e in await client.entries(ws, org)] == ["5", "5"]
        assert fake.datasource(first.datasource_id).sync_used == 5


async def test_config_origin_is_recorded(session: aiohttp.ClientSession) -> None:
    async with FakeZoho() as fake:
        org, ws = world(fake)
        ds = fake.add_datasource(ws, sync_duration=0.0)
        assert ds.datasource_id
        interval = ds.interval_ids[0]
        client = Client(session, fake)
        await client.login()
        assert (await client.sync(ws, ds.datasource_id, org, {"syncIntervalId": interval}))[
            0
        ] == 204
        config = {"scheduleId": interval, "userName": "me"}
        assert (await client.sync(ws, ds.datasource_id, org, config, where="form"))[0] == 204
        assert (await client.sync(ws, ds.datasource_id, org))[0] == 204
        assert fake.stats.configs == [
            (ds.datasource_id, {"syncIntervalId": interval}, "query"),
            (ds.datasource_id, config, "form"),
            (ds.datasource_id, None, "none"),
        ]
        assert fake.datasource(ds.datasource_id).sync_used == 3


# -- rate limits -----------------------------------------------------------------------------------


async def test_rate_limit_rejects_without_processing(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with FakeZoho(requests_per_minute=3, metadata_per_minute=None, clock=clock) as fake:
        org, ws = world(fake)
        other = fake.add_org(name="Other").org_id
        ds = fake.add_datasource(ws).datasource_id
        assert ds
        client = Client(session, fake)
        await client.login()
        for _ in range(3):
            assert (await client.get("/resources", org))[0] == 200
        status, body = await client.sync(ws, ds, org)
        assert (status, code(body)) == (400, 6045)
        assert fake.stats.syncs_started.total() == 0
        assert (await client.get("/resources", other))[0] == 200  # limits are per org
        clock.advance(60.0)
        assert (await client.sync(ws, ds, org))[0] == 204
        stats = fake.stats
        assert stats.rejected_rate_limited == 1
        assert stats.window_counts[org] == {0: 4, 1: 1}
        assert stats.max_window_count() == 4
        assert stats.max_window_count(other) == 1
        assert stats.max_rolling(60.0, org) == 4
        assert stats.max_rolling(61.0, org) == 5
        assert stats.sync_calls[ds] == 2


async def test_metadata_limit(session: aiohttp.ClientSession) -> None:
    async with FakeZoho(requests_per_minute=None, metadata_per_minute=2) as fake:
        client = Client(session, fake)
        await client.login()
        statuses = [(await client.get("/orgs"))[0] for _ in range(3)]
        assert statuses == [200, 200, 400]
        assert fake.stats.metadata_window_counts[""][0] == 3
        assert fake.stats.max_metadata_window_count() == 3


# -- faults ----------------------------------------------------------------------------------------


async def test_scripted_answers(session: aiohttp.ClientSession) -> None:
    async with FakeZoho() as fake:
        org, ws = world(fake)
        ds = fake.add_datasource(ws).datasource_id
        assert ds
        client = Client(session, fake)
        fake.script("token", [Fault.html(503)])
        async with session.post(fake.accounts_url + "/oauth/v2/token") as resp:
            assert resp.status == 503
            assert "text/html" in resp.headers["Content-Type"]
        await client.login()
        fake.script("sync", [Fault.error(7005, http_status=500), Fault.rate_limited("7")])
        fake.script("*", [Fault(status=418, body=b"teapot")])
        status, body = await client.sync(ws, ds, org)
        assert (status, code(body)) == (500, 7005)
        url = f"{fake.api_url}/restapi/v2/workspaces/{ws}/datasources/{ds}/sync"
        async with session.post(url, headers=client.headers(org)) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "7"
            assert code(await resp.json(content_type=None)) == 6045
        # "*" applies to any analytics route, and faults come before authentication.
        async with session.get(fake.api_url + "/restapi/v2/orgs") as resp:
            assert (resp.status, await resp.read()) == (418, b"teapot")
        assert (await client.get("/orgs"))[0] == 200
        assert fake.stats.syncs_started.total() == 0
        assert fake.stats.requests_by_route == {"sync": 2, "orgs": 2}


async def test_drop_with_and_without_processing(session: aiohttp.ClientSession) -> None:
    # instant syncs: the datasource is synced again after the lost answer
    async with FakeZoho(sync_duration=0.0) as fake:
        org, ws = world(fake)
        ds = fake.add_datasource(ws).datasource_id
        assert ds
        client = Client(session, fake)
        await client.login()
        fake.script("sync", [Fault(drop=True), Fault(drop=True, then_process=True)])
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.sync(ws, ds, org)
        assert fake.stats.syncs_started[ds] == 0
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.sync(ws, ds, org)
        assert fake.stats.syncs_started[ds] == 1  # the work happened, the answer was lost
        assert (await client.sync(ws, ds, org))[0] == 204


async def test_delays(session: aiohttp.ClientSession) -> None:
    async with FakeZoho() as fake:
        org, ws = world(fake)
        lost = fake.add_datasource(ws).datasource_id
        late = fake.add_datasource(ws).datasource_id
        assert lost
        assert late
        client = Client(session, fake)
        await client.login()
        # Delay before processing: a client that gives up leaves nothing started.
        fake.script("sync", [Fault(delay=30.0), Fault(delay=30.0, then_process=True)])
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.2):
                await client.sync(ws, lost, org)
        assert fake.stats.syncs_started[lost] == 0
        # then_process: started at once, the answer comes too late for the client.
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.2):
                await client.sync(ws, late, org)
        assert fake.stats.syncs_started[late] == 1
        fake.script("orgs", [Fault(delay=0.2)])
        started = time.monotonic()
        assert (await client.get("/orgs"))[0] == 200
        assert time.monotonic() - started >= 0.2


async def test_latency_and_in_flight(session: aiohttp.ClientSession) -> None:
    async with FakeZoho(latency=0.3, seed=1) as fake:
        client = Client(session, fake)
        await client.login()
        fake.reset_stats()
        results = await asyncio.gather(*(client.get("/orgs") for _ in range(5)))
        assert [status for status, _ in results] == [200] * 5
        assert fake.stats.peak_in_flight == 5
        assert fake.stats.in_flight == 0
        assert fake.stats.requests == 5
        assert fake.stats.token_requests == 0
        assert fake.stats.last_headers["Authorization"].startswith("Zoho-oauthtoken ")
        fake.set_latency(0.0)
        assert (await client.get("/orgs"))[0] == 200


# -- generator, plugin, TLS, threads ---------------------------------------------------------------


def describe(fake: FakeZoho) -> list[tuple[Any, ...]]:
    return [
        (d.workspace_id, d.datasource_id, d.kind, d.interval_ids, d.sync_used, d.forbidden)
        for d in fake.datasources()
    ]


def test_populated_is_deterministic() -> None:
    assert describe(FakeZoho.populated(seed=3)) == describe(FakeZoho.populated(seed=3))
    assert describe(FakeZoho.populated(seed=3)) != describe(FakeZoho.populated(seed=4))
    mixed = FakeZoho.populated(orgs=2, workspaces=3, datasources_per_workspace=100)
    sources = mixed.datasources()
    assert len(sources) == 600
    assert sum(d.forbidden for d in sources) == 1
    assert any(d.datasource_id is None for d in sources)
    assert any(len(d.intervals) > 1 for d in sources)
    assert any(d.running for d in sources)
    assert any(d.sync_used >= d.total_sync_allowed for d in sources)
    ids = [d.datasource_id for d in sources if d.datasource_id]
    assert len(set(ids)) == len(ids)
    assert all(int(i) > 2**32 and 17 <= len(i) <= 19 for i in ids)
    plain = FakeZoho.populated(workspaces=2, datasources_per_workspace=10, mix=False)
    assert all(
        d.syncable and len(d.intervals) == 1 and not d.forbidden for d in plain.datasources()
    )


async def test_plugin_fixture(fake_zoho: FakeZoho, session: aiohttp.ClientSession) -> None:
    client = Client(session, fake_zoho)
    await client.login()
    org = fake_zoho.default_org_id
    assert org is not None
    _, body = await client.get("/workspaces")
    spaces = body["data"]["ownedWorkspaces"] + body["data"]["sharedWorkspaces"]
    assert len(spaces) == 2
    for space in spaces:
        for entry in await client.entries(space["workspaceId"], org):
            assert (await client.sync(space["workspaceId"], entry["datasourceId"], org))[0] == 204
    assert fake_zoho.stats.syncs_started.total() == 20


async def test_plugin_factory(fake_zoho_factory: FakeZohoFactory) -> None:
    async with fake_zoho_factory(populated=True, workspaces=1, datasources_per_workspace=2) as fake:
        assert len(fake.datasources()) == 2
        assert fake.api_url.startswith("http://")
    async with fake_zoho_factory(token_limit=1) as empty:
        assert empty.default_org_id is None


async def test_https(session: aiohttp.ClientSession) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with FakeZoho(ssl_context=server_context) as fake:
        assert fake.api_url.startswith("https://127.0.0.1:")
        connector = aiohttp.TCPConnector(ssl=client_context)
        async with aiohttp.ClientSession(connector=connector) as tls_session:
            client = Client(tls_session, fake)
            await client.login()
            assert (await client.get("/orgs"))[0] == 200


def test_official_client_style_over_thread() -> None:
    """What Zoho's AnalyticsClient 2.1.0 puts on the wire, replayed with requests."""
    user_agent = "Analytics Python Client v2.1.0"
    with FakeZoho.run_in_thread(seed=5) as fake:
        # Built from this thread while the server runs on its own.
        org = fake.add_org(name="Threaded").org_id
        ws = fake.add_workspace(org)
        multi = fake.add_datasource(ws.workspace_id, intervals=2)
        with requests.Session() as http:

            def token() -> str:
                # The official client url-encodes the fields into the QUERY of a body-less POST.
                params = urllib.parse.urlencode(
                    {
                        "client_id": fake.client_id,
                        "client_secret": fake.client_secret,
                        "refresh_token": fake.refresh_token,
                        "grant_type": "refresh_token",
                    }
                )
                resp = http.post(
                    fake.accounts_url + "/oauth/v2/token",
                    params=params,
                    headers={"User-Agent": user_agent},
                )
                assert resp.status_code == 200
                value: str = resp.json()["access_token"]
                return value

            def sync(access: str) -> requests.Response:
                config = {"syncIntervalId": multi.interval_ids[1]}
                return http.post(
                    f"{fake.api_url}/restapi/v2/workspaces/{ws.workspace_id}"
                    f"/datasources/{multi.datasource_id}/sync",
                    params="CONFIG=" + urllib.parse.quote_plus(json.dumps(config)),
                    headers={
                        "ZANALYTICS-ORGID": org,
                        "Authorization": "Zoho-oauthtoken " + access,
                        "User-Agent": user_agent,
                    },
                )

            access = token()
            fake.expire_tokens()
            resp = sync(access)
            # The official client refreshes once on 8535 and retries once.
            assert resp.status_code == 401
            assert resp.json()["data"]["errorCode"] == 8535
            resp = sync(token())
            assert resp.status_code == 204
            assert resp.text == ""
    assert fake.stats.configs[-1] == (
        multi.datasource_id,
        {"syncIntervalId": multi.interval_ids[1]},
        "query",
    )
    assert fake.stats.syncs_started[str(multi.datasource_id)] == 1
    assert fake.stats.last_headers["User-Agent"] == user_agent
    assert fake.stats.token_requests == 2


def test_plain_asyncio_run() -> None:
    async def main() -> str:
        fake = FakeZoho()
        await fake.start()
        try:
            return fake.api_url
        finally:
            await fake.stop()
            await fake.stop()  # idempotent

    assert asyncio.run(main()).startswith("http://127.0.0.1:")
