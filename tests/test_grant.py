"""``exchange_grant_code`` and ``revoke_refresh_token``: the SDK side of ``auth login`` and
``auth logout``, against FakeZoho's accounts server, and the CLI through a real proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypedDict

import pytest

from zoho_async import (
    AnalyticsSession,
    InsecureURLError,
    InvalidInputError,
    TokenError,
    TokenRefreshError,
    UnknownDataCentreError,
    exchange_grant_code,
    revoke_refresh_token,
)
from zoho_async.testing import FakeZoho

from .test_auth_cli import MemoryKeyring, env, fake, login_args, memory_keyring, run
from .test_proxy import PASSWORD, QUOTED, USER, proxy_in_thread

__all__ = ["env", "fake", "memory_keyring"]  # fixtures, imported to be used here

pytestmark = pytest.mark.anyio


@pytest.fixture
async def accounts() -> AsyncIterator[FakeZoho]:
    async with FakeZoho(requests_per_minute=None, metadata_per_minute=None) as running:
        running.add_org(is_default=True)
        yield running


class _On(TypedDict):
    client_id: str
    client_secret: str
    accounts_url: str


def _on(fake: FakeZoho) -> _On:
    return {"client_id": fake.client_id, "client_secret": fake.client_secret,
            "accounts_url": fake.accounts_url}  # fmt: skip


async def test_a_grant_code_gives_a_refresh_token_that_works_once_exchanged(
    accounts: FakeZoho,
) -> None:
    code = accounts.issue_grant_code()
    tokens = await exchange_grant_code(code, **_on(accounts))
    assert tokens.refresh_token in accounts.refresh_tokens
    assert tokens.expires_in > 0 and tokens.scope
    assert tokens.refresh_token not in repr(tokens) and tokens.access_token not in repr(tokens)
    async with AnalyticsSession(
        accounts.client_id, accounts.client_secret, tokens.refresh_token,
        api_url=accounts.api_url, accounts_url=accounts.accounts_url,
    ) as session:  # fmt: skip
        assert len(await session.get_orgs()) == 1
    with pytest.raises(TokenRefreshError, match="expired, already used") as used:
        await exchange_grant_code(code, **_on(accounts))  # single use
    assert used.value.error == "invalid_code"
    wrong = _on(accounts)
    wrong["client_secret"] = "0" * 42
    with pytest.raises(TokenRefreshError) as refused:
        await exchange_grant_code(accounts.issue_grant_code(), **wrong)
    assert refused.value.error == "invalid_client"
    assert "0" * 42 not in str(refused.value)


async def test_revoking_ends_the_refresh_token_and_a_second_revoke_is_refused(
    accounts: FakeZoho,
) -> None:
    tokens = await exchange_grant_code(accounts.issue_grant_code(), **_on(accounts))
    before = accounts.stats.token_requests
    await revoke_refresh_token(tokens.refresh_token, accounts_url=accounts.accounts_url)
    assert accounts.stats.token_requests == before + 1
    assert tokens.refresh_token not in accounts.refresh_tokens
    with pytest.raises(TokenError, match="revocation refused") as again:
        await revoke_refresh_token(tokens.refresh_token, accounts_url=accounts.accounts_url)
    assert tokens.refresh_token not in str(again.value)


async def test_bad_input_is_refused_before_any_request(accounts: FakeZoho) -> None:
    before = accounts.stats.token_requests
    with pytest.raises(InvalidInputError, match="code"):
        await exchange_grant_code(" ", **_on(accounts))
    with pytest.raises(UnknownDataCentreError):
        await exchange_grant_code("1000.x", client_id="1", client_secret="s", data_center="mars")
    with pytest.raises(InsecureURLError):
        await revoke_refresh_token("1000.x", accounts_url="http://accounts.example.com")
    with pytest.raises(InvalidInputError, match="refresh_token"):
        await revoke_refresh_token("", accounts_url=accounts.accounts_url)
    assert accounts.stats.token_requests == before


def test_cli_login_and_logout_go_through_the_proxy(
    fake: FakeZoho, env: dict[str, str | None], memory_keyring: MemoryKeyring
) -> None:
    # ZOHO_PROXY (or --proxy) carries login's exchange and logout's revocation too
    with proxy_in_thread((USER, PASSWORD)) as proxy:
        env = {**env, "ZOHO_PROXY": proxy.url(f"{USER}:{QUOTED}")}
        secret = ["--client-secret", fake.client_secret]
        login = run([*login_args(fake, fake.issue_grant_code()), *secret], env)
        minted = {t for t in memory_keyring.passwords.values() if t in fake.refresh_tokens}
        logout = run(["auth", "logout", "--profile", "fake"], env)
        passed = [target.split("?")[0] for target in proxy.targets()]
    assert login.exit_code == 0, login.output
    assert logout.exit_code == 0 and "Revoked" in logout.output, logout.output
    assert passed == [
        f"POST {fake.accounts_url}/oauth/v2/token",
        f"POST {fake.accounts_url}/oauth/v2/token/revoke",
    ]
    assert len(minted) == 1 and not minted & set(fake.refresh_tokens)  # revoked at the fake
    assert PASSWORD not in login.output + logout.output
