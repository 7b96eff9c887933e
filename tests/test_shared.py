"""Sessions that share a coordinator share Zoho's budgets: one token, one pace, one claim.

Each "process" here is a session with its own coordinator object over the same store (a
SQLite file), as separate processes would have; the fake counts what reaches Zoho.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from zoho_async import (
    AnalyticsSession,
    Limits,
    SyncReport,
    SyncStatus,
    SyncTarget,
    TokenThrottledError,
)
from zoho_async._coord_sqlite import SqliteCoordinator
from zoho_async._coordinator import CoordinatorUnavailableError
from zoho_async.testing import FakeZoho, Fault

from .helpers import ds_id, jitter_room, session_for, workspace_fake

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def _sharer(fake: FakeZoho, path: Path, **overrides: Any) -> AsyncIterator[AnalyticsSession]:
    """An open session with a coordinator of its own over the store at ``path``."""
    async with (
        SqliteCoordinator(path) as shared,
        session_for(fake, coordinator=shared, **overrides) as session,
    ):
        yield session


async def test_sharers_mint_one_token_between_them(tmp_path: Path) -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(8)]
        db = tmp_path / "shared.db"
        async with (
            _sharer(fake, db) as one,
            _sharer(fake, db) as two,
            anyio.create_task_group() as tg,
        ):
            for n, d in enumerate(ids):
                session = one if n % 2 else two
                tg.start_soon(session.workspace("1001").sync_data, d)
    assert fake.stats.token_requests == 1
    assert sum(fake.stats.syncs_started.values()) == 8


async def test_the_token_budget_is_counted_across_sharers(tmp_path: Path) -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        db = tmp_path / "shared.db"
        async with _sharer(fake, db, token_requests_per_10_minutes=3) as one:
            await one.get_access_token()  # 1
            fake.revoke_tokens()
            await one.get_orgs()  # the 8535 makes it mint a second: 2
        async with _sharer(fake, db, token_requests_per_10_minutes=3) as two:
            await two.get_access_token()  # adopts the shared token: still 2
            assert fake.stats.token_requests == 2
            fake.revoke_tokens()
            await two.get_orgs()  # 3
        async with _sharer(fake, db, token_requests_per_10_minutes=3) as three:
            fake.revoke_tokens()
            with pytest.raises(TokenThrottledError, match="every process sharing"):
                await three.get_orgs()
        # three requests in all, counted across the sharers; the fourth was never sent
        assert fake.stats.token_requests == 3


async def test_sharers_refresh_in_the_background_with_one_token_request(tmp_path: Path) -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        db = tmp_path / "shared.db"
        # a timeout far above the refresh's delay: it must answer, not time out
        async with _sharer(fake, db, timeout=30.0) as one, _sharer(fake, db, timeout=30.0) as two:
            clock = [0.0]
            caches = [one._tokens, two._tokens]
            for cache in caches:
                assert cache is not None
                cache._clock = lambda: clock[0]  # both caches' monotonic clocks, by hand
            first = await one.get_access_token()
            assert await two.get_access_token() == first  # adopted from the coordinator
            fake.script("token", [Fault(delay=3.0)])
            clock[0] = 3600 - 100  # both due for a refresh, both still valid
            got: list[str] = []

            async def get(session: AnalyticsSession) -> None:
                got.append(await session.get_access_token())

            async with anyio.create_task_group() as tg:
                tg.start_soon(get, one)
                tg.start_soon(get, two)
            # both callers were served before any new token existed at the fake
            assert got == [first, first]
            assert fake.stats.tokens_issued == [first]
            for cache in caches:
                assert cache is not None
                await cache.wait_background()
            # one token request across the sharers: the other adopted its token
            assert fake.stats.token_requests == 2
            second = fake.stats.tokens_issued[1]
            assert await one.get_access_token() == await two.get_access_token() == second


async def test_two_sharers_together_stay_inside_the_org_limit(tmp_path: Path) -> None:
    # The fake enforces 200 metadata calls per 5 s window; each sharer is told exactly that.
    # A 10% margin leaves half a second for the delay from a turn to its arrival to vary on
    # a loaded machine (see helpers.jitter_room), wherever a burst falls in a window.
    limits = Limits(
        requests_per_minute=2400,
        metadata_per_minute=2400,
        window_seconds=5.0,
        max_in_flight=8,
        safety_margin=0.1,
    )
    assert jitter_room(limits) >= 0.5
    async with workspace_fake(
        sync_duration=0.0,
        requests_per_minute=200,
        metadata_per_minute=200,
        window_seconds=5.0,
    ) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(300)]
        db = tmp_path / "shared.db"
        reports: list[SyncReport] = []

        async def run(part: list[str]) -> None:
            async with _sharer(fake, db, limits=limits) as session:
                reports.append(await session.sync_many([SyncTarget("1001", d) for d in part]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, ids[:150])
            tg.start_soon(run, ids[150:])
    assert all(r.ok for r in reports), [r.counts for r in reports]
    assert fake.stats.rejected_rate_limited == 0
    assert fake.stats.max_rolling(5.0) <= 200
    assert fake.stats.token_requests == 1


async def test_overlapping_runs_sync_each_datasource_once(tmp_path: Path) -> None:
    async with workspace_fake(sync_duration=5.0) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(30)]
        db = tmp_path / "shared.db"
        targets = [SyncTarget("1001", d) for d in ids]
        reports: list[SyncReport] = []

        async def run() -> None:
            async with _sharer(fake, db) as session:
                reports.append(await session.sync_many(targets))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(run)
    assert max(fake.stats.syncs_started[d] for d in ids) == 1
    statuses = Counter(r.status for report in reports for r in report.results)
    assert statuses == {SyncStatus.STARTED: 30, SyncStatus.CLAIMED: 30}, [
        (r.status.value, r.error_type, r.error_message)
        for report in reports
        for r in report.results
        if r.status not in (SyncStatus.STARTED, SyncStatus.CLAIMED)
    ]
    claimed = [r for report in reports for r in report.results if r.status is SyncStatus.CLAIMED]
    assert all("claimed by run" in (r.error_message or "") for r in claimed)
    assert all(report.ok for report in reports)  # CLAIMED is not a failure


async def test_a_failed_target_gives_its_claim_back(tmp_path: Path) -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        ok = ds_id(fake.add_datasource("1001"))
        forbidden = ds_id(fake.add_datasource("1001", forbidden=True))
        db = tmp_path / "shared.db"
        targets = [SyncTarget("1001", ok), SyncTarget("1001", forbidden)]
        async with _sharer(fake, db) as session:
            first = await session.sync_many(targets)
        async with _sharer(fake, db) as session:
            again = await session.sync_many(targets)
    assert [r.status for r in first.results] == [SyncStatus.STARTED, SyncStatus.FAILED]
    # the started one is still claimed (the first run just ended); the failed one is free
    assert [r.status for r in again.results] == [SyncStatus.CLAIMED, SyncStatus.FAILED]


async def test_an_unusable_store_is_one_clear_error_before_any_request(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    async with workspace_fake() as fake:
        with pytest.raises(CoordinatorUnavailableError):
            async with _sharer(fake, blocker / "shared.db") as session:
                await session.get_orgs()
    assert fake.stats.token_requests == 0


async def test_losing_the_store_mid_run_stops_sending_and_cancels_the_rest(
    redis_doomed: Any,
) -> None:
    from zoho_async import RedisCoordinator

    limits = Limits(requests_per_minute=1200, metadata_per_minute=1200, max_in_flight=2)
    async with workspace_fake(sync_duration=0.0) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(30)]
        shared = RedisCoordinator(f"redis://127.0.0.1:{redis_doomed.port}/0")

        def on_result(result: Any) -> None:
            if result.index == 4:
                redis_doomed.stop()  # the store goes away mid-run

        async with session_for(fake, coordinator=shared, limits=limits) as session:
            report = await session.sync_many(
                [SyncTarget("1001", d) for d in ids], on_result=on_result
            )
        await shared.aclose()
    statuses = Counter(r.status for r in report.results)
    assert set(statuses) == {SyncStatus.STARTED, SyncStatus.CANCELLED}, statuses
    assert statuses[SyncStatus.STARTED] >= 5
    cancelled = [r for r in report.results if r.status is SyncStatus.CANCELLED]
    assert all("shared state unavailable" in (r.error_message or "") for r in cancelled)
    # nothing was sent on per-process guesses once the store was gone
    assert fake.stats.sync_calls.total() == statuses[SyncStatus.STARTED]
    assert max(fake.stats.syncs_started[d] for d in ids) == 1


def _cli_sync_on_unreachable_redis(tmp_path: Path) -> tuple[str, int, FakeZoho]:
    """``zoho-async sync`` with ``ZOHO_SHARED`` naming a redis nobody listens on (with a
    password): its exit code, its output and the fake it ran against."""
    from click.testing import CliRunner

    from zoho_async.cli import cli

    from .helpers import cli_env

    with FakeZoho.run_in_thread() as fake:
        fake.add_org(is_default=True)
        fake.add_workspace(str(fake.default_org_id), "1001")
        env = cli_env(fake, tmp_path)
        env["ZOHO_SHARED"] = "redis://user:s3cret-pass@127.0.0.1:1/0"
        result = CliRunner().invoke(cli, ["sync", "1001"], env=env)
    return result.output, result.exit_code, fake


def test_cli_with_an_unreachable_store_exits_2_without_its_password(tmp_path: Path) -> None:
    output, code, fake = _cli_sync_on_unreachable_redis(tmp_path)
    assert code == 2, output
    assert "shared state unavailable" in output
    assert "s3cret-pass" not in output
    assert fake.stats.token_requests == 0 and fake.stats.sync_calls.total() == 0


def test_cli_without_redis_py_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # how Python marks a module as absent
    output, code, fake = _cli_sync_on_unreachable_redis(tmp_path)
    assert code == 2, output
    assert "pip install 'zoho-async[redis]'" in output
    assert "s3cret-pass" not in output and "Traceback" not in output
    assert fake.stats.token_requests == 0 and fake.stats.sync_calls.total() == 0
