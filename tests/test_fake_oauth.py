"""FakeZoho's authorization-code grant and revocation, over loopback with plain aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from zoho_async.testing import FakeZoho

pytestmark = pytest.mark.anyio


class ManualClock:
    """A monotonic clock the test moves by hand, so expiry needs no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeZoho]:
    async with FakeZoho.populated(workspaces=1, datasources_per_workspace=2, clock=clock) as f:
        yield f


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, *, data: Any = None, params: Any = None
) -> tuple[int, dict[str, Any]]:
    async with http.post(url, data=data, params=params) as resp:
        return resp.status, await resp.json(content_type=None)


def exchange(fake: FakeZoho, code: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        **extra,
    }


def refresh(fake: FakeZoho, token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
    }


async def orgs_status(http: aiohttp.ClientSession, fake: FakeZoho, access: str) -> int:
    headers = {"Authorization": "Zoho-oauthtoken " + access}
    async with http.get(fake.api_url + "/restapi/v2/orgs", headers=headers) as resp:
        return resp.status


async def test_code_exchange_answers_like_zoho_and_the_refresh_token_works(
    fake: FakeZoho, http: aiohttp.ClientSession
) -> None:
    code = fake.issue_grant_code()
    token_url = fake.accounts_url + "/oauth/v2/token"
    # Zoho documents query parameters; a redirect_uri is accepted and not needed.
    status, body = await post(
        http, token_url, params=exchange(fake, code, redirect_uri="https://example.com/cb")
    )
    assert status == 200
    assert set(body) >= {"access_token", "refresh_token", "expires_in", "api_domain"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "ZohoAnalytics.metadata.create,ZohoAnalytics.metadata.read"
    assert body["refresh_token"] in fake.refresh_tokens
    assert await orgs_status(http, fake, body["access_token"]) == 200
    # the new refresh token mints access tokens (form body, as the SDK sends)
    status, again = await post(http, token_url, data=refresh(fake, body["refresh_token"]))
    assert status == 200 and await orgs_status(http, fake, again["access_token"]) == 200
    assert fake.stats.token_requests == 2


async def test_code_is_single_use(fake: FakeZoho, http: aiohttp.ClientSession) -> None:
    code = fake.issue_grant_code()
    url = fake.accounts_url + "/oauth/v2/token"
    assert "refresh_token" in (await post(http, url, data=exchange(fake, code)))[1]
    assert await post(http, url, data=exchange(fake, code)) == (200, {"error": "invalid_code"})


async def test_code_expires(
    fake: FakeZoho, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    url = fake.accounts_url + "/oauth/v2/token"
    default, short = fake.issue_grant_code(), fake.issue_grant_code(ttl=10)
    clock.now += 10
    assert await post(http, url, data=exchange(fake, short)) == (200, {"error": "invalid_code"})
    clock.now += 169.9  # Zoho's default: 3 minutes
    assert "refresh_token" in (await post(http, url, data=exchange(fake, default)))[1]
    late = fake.issue_grant_code()
    clock.now += 180
    assert await post(http, url, data=exchange(fake, late)) == (200, {"error": "invalid_code"})
    unknown = exchange(fake, "1000.nope")
    assert await post(http, url, data=unknown) == (200, {"error": "invalid_code"})


async def test_wrong_client_is_invalid_client_and_keeps_the_code(
    fake: FakeZoho, http: aiohttp.ClientSession
) -> None:
    url = fake.accounts_url + "/oauth/v2/token"
    code = fake.issue_grant_code()
    wrong = exchange(fake, code, client_secret="0" * 42)
    assert await post(http, url, data=wrong) == (200, {"error": "invalid_client"})
    assert "refresh_token" in (await post(http, url, data=exchange(fake, code)))[1]


async def test_revoke_refresh_token_revokes_its_access_tokens_only(
    fake: FakeZoho, http: aiohttp.ClientSession
) -> None:
    url = fake.accounts_url + "/oauth/v2/token"
    _, minted = await post(http, url, data=exchange(fake, fake.issue_grant_code()))
    _, seeded = await post(http, url, data=refresh(fake, fake.refresh_token))
    revoke = fake.accounts_url + "/oauth/v2/token/revoke"
    assert await post(http, revoke, params={"token": minted["refresh_token"]}) == (
        200,
        {"status": "success"},
    )
    assert minted["refresh_token"] not in fake.refresh_tokens
    assert await post(http, url, data=refresh(fake, minted["refresh_token"])) == (
        200,
        {"error": "invalid_code"},
    )
    assert await orgs_status(http, fake, minted["access_token"]) == 401
    assert await orgs_status(http, fake, seeded["access_token"]) == 200
    # a second revoke of the same token is refused with HTTP 400
    status, _ = await post(http, revoke, params={"token": minted["refresh_token"]})
    assert status == 400
    assert fake.stats.token_requests == 5  # revocations count as token requests


async def test_twenty_refresh_tokens_at_most_the_oldest_goes(
    fake: FakeZoho, http: aiohttp.ClientSession
) -> None:
    url = fake.accounts_url + "/oauth/v2/token"
    for _ in range(20):
        await post(http, url, data=exchange(fake, fake.issue_grant_code()))
    assert len(fake.refresh_tokens) == 20
    assert fake.refresh_token not in fake.refresh_tokens  # the seeded one was the oldest
    assert await post(http, url, data=refresh(fake, fake.refresh_token)) == (
        200,
        {"error": "invalid_code"},
    )


def test_owner_api_checks_its_arguments() -> None:
    fake = FakeZoho()
    with pytest.raises(ValueError):
        fake.issue_grant_code(ttl=0)
    with pytest.raises(ValueError):
        fake.issue_grant_code(scopes=())


async def test_scopes_of_the_code_are_enforced(fake: FakeZoho, http: aiohttp.ClientSession) -> None:
    url = fake.accounts_url + "/oauth/v2/token"
    code = fake.issue_grant_code(scopes=["ZohoAnalytics.metadata.read"])
    _, body = await post(http, url, data=exchange(fake, code))
    access = body["access_token"]
    assert await orgs_status(http, fake, access) == 200
    ws = fake.datasources()[0]
    sync = f"{fake.api_url}/restapi/v2/workspaces/{ws.workspace_id}/datasources/"
    headers = {"Authorization": "Zoho-oauthtoken " + access, "ZANALYTICS-ORGID": ws.org_id}
    async with http.post(sync + f"{ws.datasource_id}/sync", headers=headers) as resp:
        assert resp.status == 401
        assert (await resp.json(content_type=None))["data"]["errorCode"] == 8535
    assert fake.stats.syncs_started.total() == 0
    code = fake.issue_grant_code(scopes=["ZohoAnalytics.metadata.all"])
    _, body = await post(http, url, data=exchange(fake, code))
    headers["Authorization"] = "Zoho-oauthtoken " + body["access_token"]
    async with http.post(sync + f"{ws.datasource_id}/sync", headers=headers) as resp:
        assert resp.status == 204


def test_login_asks_for_the_scopes_the_fake_requires() -> None:
    from zoho_async.profiles import REQUIRED_SCOPES
    from zoho_async.testing._accounts import DEFAULT_GRANT_SCOPES

    assert tuple(REQUIRED_SCOPES) == DEFAULT_GRANT_SCOPES


async def test_fake_mints_codes_on_its_own_path(
    fake: FakeZoho, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    status, minted = await post(http, fake.api_url + "/_fake/grant-code", params={"ttl": "30"})
    assert status == 200 and minted["expires_in"] == 30
    assert minted["scope"] == "ZohoAnalytics.metadata.create,ZohoAnalytics.metadata.read"
    assert fake.stats.token_requests == 0 and fake.stats.requests == 0
    status, _ = await post(http, fake.api_url + "/_fake/grant-code", params={"ttl": "-1"})
    assert status == 400
    clock.now += 30
    url = fake.accounts_url + "/oauth/v2/token"
    assert await post(http, url, data=exchange(fake, minted["code"])) == (
        200,
        {"error": "invalid_code"},
    )
