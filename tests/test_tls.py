"""TLS: verification on by default, a custom CA accepted, plain http only for loopback."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from zoho_async import AnalyticsSession, InsecureURLError, TransportError
from zoho_async.testing import FakeZoho

from .helpers import session_for

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def https_fake(authority: trustme.CA) -> FakeZoho:  # type: ignore[misc]
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    async with FakeZoho(
        ssl_context=server_context, requests_per_minute=None, metadata_per_minute=None
    ) as fake:
        fake.add_org(is_default=True)
        assert fake.api_url.startswith("https://")
        yield fake


async def test_self_signed_is_rejected_by_default(https_fake: FakeZoho) -> None:
    async with session_for(https_fake) as session:
        with pytest.raises(TransportError) as info:
            await session.get_orgs()
    assert info.value.sent is False
    assert https_fake.stats.token_requests == 0


async def test_custom_ca_context_is_accepted(https_fake: FakeZoho, authority: trustme.CA) -> None:
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with session_for(https_fake, ssl=client_context) as session:
        assert len(await session.get_orgs()) == 1


async def test_ca_bundle_path_is_accepted(
    https_fake: FakeZoho, authority: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    async with session_for(https_fake, ssl=str(bundle)) as session:
        assert len(await session.get_orgs()) == 1


def test_plain_http_is_refused_for_remote_hosts() -> None:
    for url in ("http://analyticsapi.zoho.com", "http://10.0.0.5:8080", "http://example.test"):
        with pytest.raises(InsecureURLError):
            AnalyticsSession(
                "id", "secret", "refresh", api_url=url, accounts_url="https://accounts.zoho.com"
            )
    for url in ("http://127.0.0.1:1", "http://localhost:2", "http://[::1]:3"):
        AnalyticsSession("id", "secret", "refresh", api_url=url, accounts_url=url)
