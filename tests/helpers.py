"""Helpers shared by the tests: a session pointed at a FakeZoho."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from zoho_async import AnalyticsSession, Limits, RetryPolicy
from zoho_async.testing import FakeZoho


def jitter_room(limits: Limits, metadata: bool = True) -> float:
    """Seconds by which the delay from a turn to its arrival at the server may vary
    without a window of ``limits.window_seconds`` overflowing: turns in any span of
    W + room hold at most ``burst + floor((W + room) / interval)``, which stays within the
    window's limit. A pacing test against the fake keeps this well above a loaded
    machine's stalls, so it cannot flake wherever a burst falls in a window."""
    limit = limits._rate(metadata) * limits.window_seconds / 60
    spare = limit - limits.burst(metadata) + 1  # what floor((W + room) / interval) may reach
    return spare * limits.interval(metadata) - limits.window_seconds


FAST = Limits(requests_per_minute=600_000, metadata_per_minute=600_000, max_in_flight=16)


def session_for(fake: FakeZoho, **overrides: Any) -> AnalyticsSession:
    """A session on the fake, with no waiting in retries and pacing far above the tests."""
    options: dict[str, Any] = {
        "org_id": fake.default_org_id,
        "api_url": fake.api_url,
        "accounts_url": fake.accounts_url,
        "limits": FAST,
        "retry": RetryPolicy.testing(),
        "timeout": 5.0,
    }
    options.update(overrides)
    client_id = options.pop("client_id", fake.client_id)
    client_secret = options.pop("client_secret", fake.client_secret)
    refresh_token = options.pop("refresh_token", fake.refresh_token)
    return AnalyticsSession(client_id, client_secret, refresh_token, **options)


def ds_id(datasource: object) -> str:
    """The id of a syncable fake datasource (typed: fake ids are ``str | None``)."""
    value = getattr(datasource, "datasource_id", None)
    assert isinstance(value, str)
    return value


@contextmanager
def plain_fake_in_thread(
    workspaces: int, per_workspace: int, **settings: Any
) -> Iterator[FakeZoho]:
    """A populated fake of plain syncable datasources without rate limits, served from a
    thread: the command line runs its own event loop. ``settings`` go to
    ``FakeZoho.populated`` (``sync_duration=0`` for instant syncs)."""
    built = FakeZoho.populated(
        workspaces=workspaces,
        datasources_per_workspace=per_workspace,
        mix=False,
        requests_per_minute=None,
        metadata_per_minute=None,
        **settings,
    )
    with FakeZoho.run_in_thread(built) as running:
        yield running


@asynccontextmanager
async def workspace_fake(**kwargs: Any) -> AsyncIterator[FakeZoho]:
    """A started fake with one org (the default) and workspace "1001"; no rate limits
    unless given."""
    options: dict[str, Any] = {"requests_per_minute": None, "metadata_per_minute": None}
    options.update(kwargs)
    async with FakeZoho(**options) as fake:
        org = fake.add_org(is_default=True)
        fake.add_workspace(org.org_id, "1001")
        yield fake


# the client's pacing, lifted so CLI tests never wait on the per-minute budget
CLI_FAST = ["--rate", "100000", "--metadata-rate", "100000"]
CLI_ENV_NAMES = (
    "ZOHO_CLIENT_ID",
    "ZOHO_CLIENT_SECRET",
    "ZOHO_REFRESH_TOKEN",
    "ZOHO_ORG_ID",
    "ZOHO_DATA_CENTER",
    "ZOHO_API_URL",
    "ZOHO_ACCOUNTS_URL",
    "ZOHO_TOKEN_CACHE",
)


def cli_env(fake: FakeZoho, tmp_path: Path) -> dict[str, str | None]:
    """The CLI's environment pointed at ``fake``; every other ZOHO_* variable unset."""
    values: dict[str, str | None] = dict.fromkeys(CLI_ENV_NAMES)
    values.update(
        ZOHO_CLIENT_ID=fake.client_id,
        ZOHO_CLIENT_SECRET=fake.client_secret,
        ZOHO_REFRESH_TOKEN=fake.refresh_token,
        ZOHO_ORG_ID=fake.default_org_id,
        ZOHO_API_URL=fake.api_url,
        ZOHO_ACCOUNTS_URL=fake.accounts_url,
        ZOHO_TOKEN_CACHE=str(tmp_path / "cache" / "tokens.json"),
    )
    return values
