"""One meaning per tuple: ``plan_sync``, ``discover`` and ``sync_workspaces`` take the same
workspace references, and a bare 2-tuple where it could mean two things is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from zoho_async import (
    AnalyticsSession,
    InvalidInputError,
    PlannedTarget,
    SyncStatus,
    SyncTarget,
    WorkspaceInfo,
)
from zoho_async.testing import FakeZoho

from .helpers import ds_id, session_for, workspace_fake

pytestmark = pytest.mark.anyio


def org_of(fake: FakeZoho) -> str:
    org = fake.default_org_id
    assert org is not None
    return org


def references(session: AnalyticsSession, org: str, ws: str) -> list[Any]:
    """Every unambiguous kind of reference to workspace ``ws``."""
    return [
        ws,
        int(ws),
        WorkspaceInfo(ws, org_id=org),
        session.workspace(ws),
        session.workspace(ws, org_id=org),
        {"workspace_id": ws},
        {"workspace_id": ws, "org_id": org},
        {"workspace_id": ws, "org_id": org, "datasource_id": None},
    ]


def plan_keys(plan: Any) -> list[tuple[str, str | None, str]]:
    return [(e.target.workspace_id, e.target.datasource_id, e.action) for e in plan.entries]


async def test_plan_sync_and_discover_read_every_kind_of_reference_alike() -> None:
    async with workspace_fake() as fake:
        a, b = ds_id(fake.add_datasource("1001")), ds_id(fake.add_datasource("1001"))
        fake.add_datasource("1001", kind="local_drive")
        org = org_of(fake)
        async with session_for(fake) as session:
            expected = plan_keys(await session.plan_sync(["1001"]))
            for ref in references(session, org, "1001"):
                assert plan_keys(await session.plan_sync([ref])) == expected, ref
                found = [p.target async for p in session.discover([ref])]
                assert [(t.workspace_id, t.org_id) for t in found] == [("1001", org)] * 3, ref
            # discover and sync_workspaces also take an (org_id, workspace_id) tuple
            by_pair = [p.target.datasource_id async for p in session.discover([(org, "1001")])]
    assert expected == [("1001", a, "sync"), ("1001", b, "sync"), ("1001", None, "skip")]
    assert by_pair == [a, b, None]
    assert fake.stats.sync_calls.total() == 0


async def test_sync_workspaces_takes_handles_infos_mappings_and_pairs() -> None:
    async with workspace_fake() as fake:
        org = org_of(fake)
        for ws in ("1002", "1003", "1004"):
            fake.add_workspace(org, ws)
        ids = {ws: ds_id(fake.add_datasource(ws)) for ws in ("1001", "1002", "1003", "1004")}
        async with session_for(fake) as session:
            report = await session.sync_workspaces(
                [
                    session.workspace("1001"),
                    WorkspaceInfo("1002", org_id=org),
                    {"workspace_id": "1003", "org_id": org},
                    (org, "1004"),
                ]
            )
    assert [r.status for r in report.results] == [SyncStatus.STARTED] * 4
    assert [r.target.datasource_id for r in report.results] == list(ids.values())
    assert all(fake.stats.sync_calls[d] == 1 for d in ids.values())


@pytest.mark.parametrize("pair", [("55522777", "1001"), ["1001", "2002"], ("1001", 2002)])
async def test_plan_sync_refuses_a_bare_2_tuple_before_any_request(pair: Any) -> None:
    async with workspace_fake() as fake:
        fake.add_datasource("1001")
        async with session_for(fake) as session:
            with pytest.raises(InvalidInputError) as caught:
                await session.plan_sync([pair])

            async def lazily() -> AsyncIterator[Any]:
                yield "1001"
                yield pair

            with pytest.raises(InvalidInputError):
                await session.plan_sync(lazily())
    message = str(caught.value)
    for name in ("ambiguous", "SyncTarget", "WorkspaceInfo", "session.workspace", "'org_id'"):
        assert name in message
    assert fake.stats.requests == 0  # refused before the first listing (and token)


async def test_plan_sync_takes_targets_the_way_sync_many_does() -> None:
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource("1001", sync_used=2))
        org = org_of(fake)
        async with session_for(fake) as session:
            plan = await session.plan_sync(
                [
                    SyncTarget("1001", ds),
                    PlannedTarget(SyncTarget("1001", ds)),
                    {"workspace_id": "1001", "datasource_id": ds},
                    ("1001", ds, org),  # 3 values: a target, never a workspace
                ]
            )
    assert [e.action for e in plan.entries] == ["sync", "sync", "sync", "quota"]
    assert fake.stats.sync_calls.total() == 0


async def test_sync_many_takes_a_target_mapping() -> None:
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource("1001"))
        async with session_for(fake) as session:
            with pytest.raises(InvalidInputError, match=r"target 1: .*workspace_id and datasource"):
                await session.sync_many(
                    [{"workspace_id": "1001", "datasource_id": ds}, {"workspace_id": "1001"}]
                )
            assert fake.stats.sync_calls.total() == 0  # a list is checked before sending
            report = await session.sync_many([{"workspace_id": "1001", "datasource_id": ds}])
    assert [r.status for r in report.results] == [SyncStatus.STARTED]
    assert fake.stats.sync_calls[ds] == 1


@pytest.mark.parametrize(
    "entry",
    [
        SyncTarget("1001", "2002"),
        {"workspace_id": "1001", "datasource_id": "2002"},
        {"workspace_id": "1001", "org": "5"},
        ("55522777", "1001", "2002"),
        None,
    ],
)
async def test_sync_workspaces_refuses_what_is_not_a_workspace(entry: Any) -> None:
    async with workspace_fake() as fake, session_for(fake) as session:
        with pytest.raises(InvalidInputError) as caught:
            await session.sync_workspaces(["1001", entry])
        assert fake.stats.requests == 0
    assert "workspace" in str(caught.value)
