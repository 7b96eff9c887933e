"""Pytest fixtures for testing code against :class:`~zoho_async.testing.FakeZoho`.

Registered through the ``pytest11`` entry point. The fixtures are async: use them from tests
run by anyio's pytest plugin on the asyncio backend.

Example::

    @pytest.mark.anyio
    async def test_sync(zoho_session: AnalyticsSession, fake_zoho: FakeZoho) -> None:
        report = await zoho_session.sync_workspaces(await zoho_session.get_workspaces())
        assert report.ok and fake_zoho.stats.syncs_started.total() == 20

    @pytest.mark.anyio
    async def test_fake_only(fake_zoho: FakeZoho) -> None:
        ...  # fake_zoho is started, populated, without rate limits; syncs take 3 s

    @pytest.mark.anyio
    async def test_instant(fake_zoho_factory: FakeZohoFactory) -> None:
        async with fake_zoho_factory(populated=True, sync_duration=0) as fake:
            ...  # every sync finishes the moment it starts

    @pytest.mark.anyio
    async def test_limits(fake_zoho_factory: FakeZohoFactory) -> None:
        async with fake_zoho_factory(requests_per_minute=5, populated=True) as fake:
            ...
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from zoho_async import AnalyticsSession, RetryPolicy

from . import FAST_LIMITS
from ._fake import FakeZoho


class FakeZohoFactory(Protocol):
    """Makes started fakes: ``populated=True`` passes the keywords to ``FakeZoho.populated``
    (so ``orgs``, ``workspaces``, ``datasources_per_workspace``, ``mix`` work too), otherwise
    to ``FakeZoho(...)`` (an empty world for ``add_org`` and friends)."""

    def __call__(
        self, *, populated: bool = False, **kwargs: Any
    ) -> contextlib.AbstractAsyncContextManager[FakeZoho]: ...


@pytest.fixture
async def fake_zoho() -> AsyncIterator[FakeZoho]:
    """A started fake: 1 org, 2 workspaces of 10 plain syncable datasources, no rate limits.

    Syncs take the fake's default time (3 s), as real ones take seconds: a second sync of
    a datasource within that time answers 18073. For instant syncs use
    ``fake_zoho_factory(populated=True, sync_duration=0, ...)``.
    """
    fake = FakeZoho.populated(
        workspaces=2,
        datasources_per_workspace=10,
        mix=False,
        requests_per_minute=None,
        metadata_per_minute=None,
    )
    async with fake:
        yield fake


@pytest.fixture
async def zoho_session(fake_zoho: FakeZoho) -> AsyncIterator[AnalyticsSession]:
    """An open session on the ``fake_zoho`` fixture's fake (the same instance when a test
    asks for both), paced for a fake without rate limits.

    ``limits=FAST_LIMITS`` (no call waits for a pacing turn) and
    ``RetryPolicy.testing()`` (the same retry decisions, no backoff waits): a test runs
    at the speed of loopback HTTP, not at Zoho's 60 calls a minute. For a fake of your
    own (``fake_zoho_factory``) build the same session::

        AnalyticsSession(**fake.credentials, org_id=fake.default_org_id,
                         api_url=fake.api_url, accounts_url=fake.accounts_url,
                         limits=FAST_LIMITS, retry=RetryPolicy.testing())
    """
    session = AnalyticsSession(
        **fake_zoho.credentials,
        org_id=fake_zoho.default_org_id,
        api_url=fake_zoho.api_url,
        accounts_url=fake_zoho.accounts_url,
        limits=FAST_LIMITS,
        retry=RetryPolicy.testing(),
    )
    async with session:
        yield session


@contextlib.asynccontextmanager
async def _started(*, populated: bool = False, **kwargs: Any) -> AsyncIterator[FakeZoho]:
    fake = FakeZoho.populated(**kwargs) if populated else FakeZoho(**kwargs)
    async with fake:
        yield fake


@pytest.fixture
def fake_zoho_factory() -> FakeZohoFactory:
    """A factory of started fakes with custom settings, as async context managers.

    Settings left out take ``FakeZoho``'s defaults, syncs of 3 s included.
    """
    return _started
