"""``AnalyticsSession.from_env()``: the ZOHO_* variables the CLI reads and fake-server prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoho_async import (
    AnalyticsSession,
    InvalidInputError,
    MissingCredentialsError,
    TransportError,
    UnknownDataCentreError,
)
from zoho_async._env import ENV_VARS
from zoho_async.cli._config import ENV_VARS as CLI_ENV_VARS
from zoho_async.testing import FAST_LIMITS, FakeZoho

pytestmark = pytest.mark.anyio

SECRET = "s3cret-client-secret"
REFRESH = "1000.refresh-token-value"


def fake_env(fake: FakeZoho) -> dict[str, str]:
    """The environment exactly as ``zoho-async fake-server`` prints it."""
    assert fake.default_org_id is not None
    return {
        "ZOHO_API_URL": fake.api_url,
        "ZOHO_ACCOUNTS_URL": fake.accounts_url,
        "ZOHO_CLIENT_ID": fake.client_id,
        "ZOHO_CLIENT_SECRET": fake.client_secret,
        "ZOHO_REFRESH_TOKEN": fake.refresh_token,
        "ZOHO_ORG_ID": fake.default_org_id,
    }


def test_the_sdk_reads_the_variables_the_cli_reads() -> None:
    # one set of names for the CLI and the SDK (the token cache is the CLI's own file)
    assert set(ENV_VARS.values()) == set(CLI_ENV_VARS.values()) - {"ZOHO_TOKEN_CACHE"}


async def test_a_session_from_the_printed_environment_talks_to_the_fake(
    fake_zoho: FakeZoho,
) -> None:
    env = fake_env(fake_zoho)
    async with AnalyticsSession.from_env(environ=env, limits=FAST_LIMITS) as session:
        assert session.org_id == env["ZOHO_ORG_ID"]
        assert session.limits is FAST_LIMITS  # other keywords pass through
        workspaces = await session.get_workspaces()
        datasources = await session.workspace(workspaces[0].workspace_id).get_datasources()
    assert len(workspaces) == 2 and len(datasources) == 10
    assert fake_zoho.stats.token_requests == 1


async def test_os_environ_is_the_default(
    fake_zoho: FakeZoho, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV_VARS.values():
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_env(fake_zoho).items():
        monkeypatch.setenv(name, value)
    async with AnalyticsSession.from_env(limits=FAST_LIMITS) as session:
        assert len(await session.get_orgs()) == 1


async def test_keywords_win_over_the_environment(fake_zoho: FakeZoho) -> None:
    env = fake_env(fake_zoho)
    env["ZOHO_API_URL"] = "http://127.0.0.1:1"  # nothing listens there
    env["ZOHO_ORG_ID"] = "999"
    session = AnalyticsSession.from_env(
        environ=env, api_url=fake_zoho.api_url, org_id=None, limits=FAST_LIMITS
    )
    assert session.org_id is None  # an explicit None wins too
    async with session:
        assert len(await session.get_orgs()) == 1


def test_missing_credentials_name_the_variables_and_where_to_get_them() -> None:
    env = {"ZOHO_CLIENT_ID": "1000.ABC", "ZOHO_CLIENT_SECRET": SECRET, "ZOHO_REFRESH_TOKEN": " "}
    with pytest.raises(MissingCredentialsError) as caught:
        AnalyticsSession.from_env(environ=env)
    message = str(caught.value)
    assert "ZOHO_REFRESH_TOKEN" in message and "ZOHO_CLIENT_ID" not in message
    assert "#credentials" in message and "Credentials" in message
    assert SECRET not in message
    with pytest.raises(MissingCredentialsError) as caught:
        AnalyticsSession.from_env(environ={})
    assert all(name in str(caught.value) for name in ENV_VARS.values() if "CLIENT" in name)
    # a keyword fills what the environment lacks
    session = AnalyticsSession.from_env(environ=env, refresh_token=REFRESH)
    assert REFRESH not in repr(session) and SECRET not in repr(session)


def test_bad_values_fail_before_any_request() -> None:
    env = {"ZOHO_CLIENT_ID": "1000.ABC", "ZOHO_CLIENT_SECRET": SECRET}
    env["ZOHO_REFRESH_TOKEN"] = REFRESH
    with pytest.raises(UnknownDataCentreError):
        AnalyticsSession.from_env(environ={**env, "ZOHO_DATA_CENTER": "mars"})
    with pytest.raises(InvalidInputError):  # plain http to a host that is not loopback
        AnalyticsSession.from_env(environ={**env, "ZOHO_API_URL": "http://zoho.example.com"})
    with pytest.raises(InvalidInputError) as caught:
        AnalyticsSession.from_env(
            environ={**env, "ZOHO_PROXY": f"ftp://user:{SECRET}@proxy.corp:3128"}
        )
    assert SECRET not in str(caught.value)
    eu = AnalyticsSession.from_env(environ={**env, "ZOHO_DATA_CENTER": "eu"})
    assert eu.endpoints.api_url.endswith(".eu")


async def test_proxy_and_ca_bundle_come_from_the_environment(
    fake_zoho: FakeZoho, tmp_path: Path
) -> None:
    env = fake_env(fake_zoho)
    # a proxy nobody listens on: the direct route to the fake works, so a failure shows
    # the request took the proxy
    proxied = AnalyticsSession.from_env(
        environ={**env, "ZOHO_PROXY": f"http://user:{SECRET}@127.0.0.1:1"}, limits=FAST_LIMITS
    )
    assert SECRET not in repr(proxied)
    async with proxied:
        with pytest.raises(TransportError) as caught:
            await proxied.get_orgs()
    assert caught.value.sent is False and SECRET not in str(caught.value)
    missing = tmp_path / "corp-ca.pem"
    with pytest.raises(InvalidInputError, match=r"corp-ca\.pem"):
        async with AnalyticsSession.from_env(environ={**env, "ZOHO_CA_BUNDLE": str(missing)}):
            pass
    assert fake_zoho.stats.token_requests == 0
