"""The public discovery API: ``session.discover`` yields ``PlannedTarget`` items."""

from __future__ import annotations

import pytest

from zoho_async import InvalidIdError, PlannedTarget, SyncStatus

from .helpers import session_for, workspace_fake

pytestmark = pytest.mark.anyio


async def test_discover_yields_planned_targets_that_sync_many_accepts() -> None:
    async with workspace_fake() as fake:
        for _ in range(4):
            fake.add_datasource("1001")
        fake.add_datasource("1001", kind="local_drive")
        async with session_for(fake) as session:
            planned = [p async for p in session.discover(["1001"])]
            assert planned and all(isinstance(p, PlannedTarget) for p in planned)
            report = await session.sync_many(planned)
    assert len(report.results) == len(planned)
    syncable = [p for p in planned if p.preset is None]
    assert report.counts[SyncStatus.STARTED] == len(syncable)
    assert len(syncable) == 4
    assert sum(fake.stats.sync_calls.values()) == len(syncable)


async def test_discover_validates_ids_before_any_request() -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        with pytest.raises(InvalidIdError):
            session.discover(["not-an-id"])
        assert fake.stats.requests == 0
