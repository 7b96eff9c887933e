"""The transport reads whole answers, however they arrive, and caps their size.

Large answers (Get Datasources of a big workspace) reach the client in many socket reads;
reading only what happened to be buffered once gave truncated JSON. These run over real
loopback HTTP: FakeZoho, or for chunked answers (which FakeZoho never sends) a minimal
aiohttp server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from zoho_async import Limits, TransportError, ZohoError
from zoho_async import _transport as transport_module
from zoho_async._transport import Transport
from zoho_async.testing import FakeZoho

from .helpers import session_for

pytestmark = pytest.mark.anyio

# No pacing to speak of: 50 listings must not wait for a turn (nor trip the fake).
UNPACED = Limits(requests_per_minute=10**9, metadata_per_minute=10**9, max_in_flight=4)


def big_fake(datasources: int) -> FakeZoho:
    """One workspace of ``datasources`` entries (the realistic mix: Local Drive entries
    without ids, multi-interval ones...), no rate limits."""
    return FakeZoho.populated(
        workspaces=1,
        datasources_per_workspace=datasources,
        requests_per_minute=None,
        metadata_per_minute=None,
    )


def only_workspace(fake: FakeZoho) -> str:
    (workspace_id,) = {d.workspace_id for d in fake.datasources()}
    return workspace_id


@pytest.mark.slow
async def test_a_2000_datasource_workspace_is_listed_whole_50_times() -> None:
    async with big_fake(2000) as fake:
        workspace_id = only_workspace(fake)
        expected = sorted((d.datasource_id or "", d.name) for d in fake.datasources(workspace_id))
        assert len(expected) == 2000
        async with session_for(fake, limits=UNPACED) as session:
            for _ in range(50):
                listing = await session.get_datasources(workspace_id)
                assert len(listing) == 2000
                assert sorted((d.datasource_id or "", d.name or "") for d in listing) == expected
            # one token request and one request a listing: nothing failed and was retried
            assert session.token_requests == 1
            assert session.http_requests == 51
    assert fake.stats.requests_by_route["datasources"] == 50


async def test_an_answer_over_the_cap_is_a_transport_error_and_the_session_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ~60 KB of datasources against a 4 KiB cap; the fake sends a Content-Length
    monkeypatch.setattr(transport_module, "_MAX_BODY", 4096)
    async with big_fake(100) as fake:
        workspace_id = only_workspace(fake)
        async with session_for(fake, limits=UNPACED) as session:
            with pytest.raises(TransportError) as caught:
                await session.get_datasources(workspace_id)
            assert isinstance(caught.value, ZohoError)
            assert not isinstance(caught.value, aiohttp.ClientError)
            assert "larger than 4096 bytes" in str(caught.value)
            assert caught.value.sent
            # the half-read connection was not handed back to the pool: a small call works
            orgs = await session.get_orgs()
    assert [o.org_id for o in orgs] == [fake.default_org_id]


# -- chunked answers: no Content-Length, so the cap is enforced while reading ----------------

BLOCK = b"x" * 1000


@asynccontextmanager
async def chunked_server(blocks: int) -> AsyncIterator[str]:
    """A loopback server answering every GET with ``blocks`` x 1,000 bytes, chunked."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(blocks):
            await response.write(BLOCK)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def open_transport() -> AsyncIterator[Transport]:
    transport = Transport(timeout=5.0, connect_timeout=5.0)
    await transport.open()
    try:
        yield transport
    finally:
        await transport.close()


async def test_a_chunked_answer_is_read_whole_up_to_exactly_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport_module, "_MAX_BODY", 300 * len(BLOCK))
    async with chunked_server(300) as url, open_transport() as transport:
        raw = await transport.send("GET", url, headers={})
    assert raw.status == 200
    assert raw.body == BLOCK * 300


async def test_a_chunked_answer_past_the_cap_is_a_transport_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport_module, "_MAX_BODY", 50_000)
    async with chunked_server(300) as url, open_transport() as transport:
        with pytest.raises(TransportError, match="larger than 50000 bytes") as caught:
            await transport.send("GET", url + "?password=hunter2", headers={})
        assert "hunter2" not in str(caught.value)
        # the next request on the same pool gets a clean connection and the whole answer
        monkeypatch.setattr(transport_module, "_MAX_BODY", 1_000_000)
        raw = await transport.send("GET", url, headers={})
    assert raw.body == BLOCK * 300
