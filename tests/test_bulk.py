"""Bulk sync against FakeZoho: pacing, statuses, retries, deadline, cancellation, waiting."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from zoho_async import (
    Limits,
    RetryPolicy,
    SyncResult,
    SyncStatus,
    SyncTarget,
)
from zoho_async.testing import FakeZoho, Fault

from .helpers import ds_id, jitter_room, session_for, workspace_fake

pytestmark = pytest.mark.anyio


def add_plain(fake: FakeZoho, count: int, workspace_id: str = "1001", **kw: object) -> list[str]:
    return [ds_id(fake.add_datasource(workspace_id, **kw)) for _ in range(count)]  # type: ignore[arg-type]


def assert_one_result_each(results: list[SyncResult] | tuple[SyncResult, ...], n: int) -> None:
    indexes = Counter(r.index for r in results)
    assert sorted(indexes) == list(range(n))
    assert max(indexes.values()) == 1


async def test_1000_targets_at_the_limit_never_trip_it() -> None:
    # The fake enforces 500 per 5 s window (= 6,000/min); the SDK is told exactly that.
    # A 6% margin leaves ~0.3 s for the delay from turn to arrival to vary (a loaded
    # machine stalls less) wherever a catch-up burst falls in a window.
    limits = Limits(
        requests_per_minute=6000,
        metadata_per_minute=6000,
        max_in_flight=16,
        window_seconds=5.0,
        safety_margin=0.06,
    )
    assert jitter_room(limits) > 0.25
    async with workspace_fake(
        requests_per_minute=500, metadata_per_minute=500, window_seconds=5.0
    ) as fake:
        ids = add_plain(fake, 1000)
        async with session_for(fake, limits=limits) as session:
            report = await session.sync_many(("1001", d) for d in ids)
    assert report.counts[SyncStatus.STARTED] == 1000
    assert fake.stats.rejected_rate_limited == 0
    assert fake.stats.max_window_count() <= 500
    assert fake.stats.max_rolling(5.0) <= 500
    # 1,000 syncs, the token, and the workspace's one baseline listing
    assert report.http_requests == 1002 and report.token_requests == 1
    assert_one_result_each(report.results, 1000)
    assert [r.index for r in report.results] == list(range(1000))


async def test_every_documented_failure_maps_to_its_status() -> None:
    async with workspace_fake() as fake:
        ok = ds_id(fake.add_datasource("1001"))
        # sync_duration=0.0 with running=True: in progress until finish_sync, however slow
        # the machine, rather than for the fake's default 3 s
        running = ds_id(fake.add_datasource("1001", running=True, sync_duration=0.0))
        spent = ds_id(fake.add_datasource("1001", sync_used=5))
        forbidden = ds_id(fake.add_datasource("1001", forbidden=True))
        multi = fake.add_datasource("1001", intervals=2)
        targets = [
            SyncTarget("1001", ok),
            SyncTarget("1001", running),
            SyncTarget("1001", spent),
            SyncTarget("1001", forbidden),
            SyncTarget("1001", ds_id(multi)),  # no interval: 8182
            SyncTarget("1001", multi.datasource_id, sync_interval_id="42"),  # 8183
            SyncTarget("1001", multi.datasource_id, sync_interval_id=multi.interval_ids[0]),
            SyncTarget("1001", "123456789012"),  # not in the workspace: 18061
            SyncTarget("777", ok),  # unknown workspace: 7103
        ]
        async with session_for(fake) as session:
            report = await session.sync_many(targets)
    got = [(r.status, r.error_code) for r in report.results]
    assert got == [
        (SyncStatus.STARTED, None),
        (SyncStatus.ALREADY_RUNNING, 18073),
        (SyncStatus.QUOTA_EXHAUSTED, 19000048),
        (SyncStatus.FAILED, 7301),
        (SyncStatus.FAILED, 8182),
        (SyncStatus.FAILED, 8183),
        (SyncStatus.STARTED, None),
        (SyncStatus.FAILED, 18061),
        (SyncStatus.FAILED, 7103),
    ]
    assert all(r.attempts == 1 for r in report.results)  # none of these is retried
    assert report.failed == tuple(r for r in report.results if r.status is SyncStatus.FAILED)
    assert not report.ok
    with pytest.raises(Exception, match="5 of 9 targets not ok"):
        report.raise_for_failures()
    assert report.results[3].error_type == "PermissionDeniedError"
    assert report.results[3].http_status == 403


@pytest.mark.parametrize(
    "fault",
    [
        Fault.error(
            7005,
            500,
        ),
        Fault(status=502, body="<html>bad gateway</html>"),
        Fault(drop=True),
    ],
)
async def test_ambiguous_failure_is_settled_from_the_listing_not_resent(fault: Fault) -> None:
    async with workspace_fake(sync_duration=30.0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        # the server starts the sync, but the answer is lost or is an error
        fake.script(
            "sync",
            [
                Fault(
                    status=fault.status,
                    body=fault.body,
                    json=fault.json,
                    drop=fault.drop,
                    then_process=True,
                )
            ],
        )
        async with session_for(fake) as session:
            report = await session.sync_many([("1001", ds)])
    (result,) = report.results
    assert result.status is SyncStatus.STARTED
    assert result.attempts == 1  # settled by a listing, never sent again
    assert result.error_message and "syncUsed 0->1" in result.error_message
    assert fake.stats.syncs_started[ds] == 1


@pytest.mark.parametrize("resend", [False, True])
async def test_without_confirm_starts_an_ambiguous_attempt_is_unconfirmed_or_resent(
    resend: bool,
) -> None:
    async with workspace_fake(sync_duration=30.0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault.error(7005, http_status=500), Fault(then_process=True)])
        # the first answer is a 7005 with nothing done; the second would really start it
        retry = RetryPolicy(attempts=4, wait=False, resend_unconfirmed=resend)
        async with session_for(fake, retry=retry) as session:
            report = await session.sync_many([("1001", ds)], confirm_starts=False)
    (result,) = report.results
    assert fake.stats.requests_by_route["datasources"] == 0  # no listing at all
    if resend:
        assert (result.status, result.attempts) == (SyncStatus.STARTED, 2)
        assert fake.stats.syncs_started[ds] == 1
    else:
        assert (result.status, result.error_code) == (SyncStatus.UNCONFIRMED, 7005)
        assert "confirm_starts=False" in (result.error_message or "")
        assert fake.stats.syncs_started[ds] == 0


async def test_timeout_after_send_is_retried_without_a_second_sync() -> None:
    async with workspace_fake(sync_duration=30.0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault(delay=3.0, then_process=True)])
        async with session_for(fake, timeout=0.5) as session:
            report = await session.sync_many([("1001", ds)])
    assert report.results[0].status is SyncStatus.STARTED
    assert fake.stats.syncs_started[ds] == 1


async def test_18073_on_the_first_attempt_is_already_running() -> None:
    async with workspace_fake() as fake:
        # in progress until finish_sync (sync_duration=0.0), not for 3 s
        ds = ds_id(fake.add_datasource("1001", running=True, sync_duration=0.0))
        async with session_for(fake) as session:
            report = await session.sync_many([("1001", ds)])
    assert report.results[0].status is SyncStatus.ALREADY_RUNNING


async def test_6045_pauses_and_retries_nothing_lost() -> None:
    async with workspace_fake() as fake:
        ids = add_plain(fake, 50)
        fake.script("sync", [Fault.error(6045)] * 3 + [Fault.rate_limited("0.1")])
        limits = Limits(
            requests_per_minute=600_000,
            metadata_per_minute=600_000,
            max_in_flight=4,
            rate_limit_pause=0.2,
        )
        async with session_for(fake, limits=limits) as session:
            report = await session.sync_many(("1001", d) for d in ids)
            assert session._exec.pacer.pauses >= 1
    assert report.counts[SyncStatus.STARTED] == 50
    assert sum(fake.stats.syncs_started.values()) == 50
    assert max(r.attempts for r in report.results) >= 2


async def test_6045_storm_gives_up_after_the_rate_limit_budget() -> None:
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault.error(6045)] * 10)
        limits = Limits(
            max_in_flight=1,
            rate_limit_pause=0.01,
            requests_per_minute=600_000,
            metadata_per_minute=600_000,
        )
        retry = RetryPolicy(attempts=3, rate_limit_attempts=3, wait=False)
        async with session_for(fake, limits=limits, retry=retry) as session:
            report = await session.sync_many([("1001", ds)])
    result = report.results[0]
    assert (result.status, result.error_code, result.attempts) == (SyncStatus.FAILED, 6045, 3)


async def test_deadline_gives_every_target_one_result() -> None:
    async with workspace_fake() as fake:
        ids = add_plain(fake, 200)
        slow = Limits(requests_per_minute=1200, metadata_per_minute=1200, max_in_flight=4)
        async with session_for(fake, limits=slow) as session:
            report = await session.sync_many([("1001", d) for d in ids], deadline=0.5)
    assert_one_result_each(report.results, 200)
    counts = report.counts
    assert counts[SyncStatus.CANCELLED] > 100
    assert counts[SyncStatus.STARTED] + counts[SyncStatus.CANCELLED] == 200
    started = sum(fake.stats.syncs_started.values())
    assert started == counts[SyncStatus.STARTED]


async def test_caller_cancellation_records_every_target() -> None:
    async with workspace_fake(latency=0.01) as fake:
        ids = add_plain(fake, 300)
        seen: list[SyncResult] = []
        async with session_for(fake) as session:
            with anyio.CancelScope() as scope:

                def on_result(result: SyncResult) -> None:
                    seen.append(result)
                    if len(seen) == 40:
                        scope.cancel()

                await session.sync_many([("1001", d) for d in ids], on_result=on_result)
            assert scope.cancelled_caught
            # the session still works afterwards (token cache, connector)
            await session.get_orgs()
    assert_one_result_each(seen, 300)
    statuses = Counter(r.status for r in seen)
    assert statuses[SyncStatus.STARTED] >= 40
    assert statuses[SyncStatus.CANCELLED] > 0
    started = {r.target.datasource_id for r in seen if r.status is SyncStatus.STARTED}
    # a result marked CANCELLED may have been in flight: the fake may have started it,
    # but every STARTED one really started
    assert started <= set(fake.stats.syncs_started)


async def test_lazy_input_is_pulled_not_materialised() -> None:
    # instant syncs: 3000 targets cycle over 20 datasources
    async with workspace_fake(sync_duration=0.0) as fake:
        ids = add_plain(fake, 20, total_sync_allowed=10**9)
        pulled = 0
        finished = 0
        most_pending = 0

        def targets() -> Iterator[tuple[str, str]]:
            nonlocal pulled, most_pending
            for n in range(3000):
                pulled += 1
                most_pending = max(most_pending, pulled - finished)
                yield ("1001", ids[n % len(ids)])

        def on_result(result: SyncResult) -> None:
            nonlocal finished
            finished += 1

        async with session_for(fake) as session:
            report = await session.sync_many(targets(), on_result=on_result)
            workers = 2 * session.limits.max_in_flight
    assert report.counts[SyncStatus.STARTED] == 3000
    assert most_pending <= workers + 1


async def test_async_iterable_targets() -> None:
    async with workspace_fake() as fake:
        ids = add_plain(fake, 30)

        async def targets() -> AsyncIterator[SyncTarget]:
            for d in ids:
                yield SyncTarget("1001", d)

        async with session_for(fake) as session:
            report = await session.sync_many(targets())
    assert report.counts[SyncStatus.STARTED] == 30


async def test_invalid_targets() -> None:
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource("1001"))
        async with session_for(fake) as session:
            with pytest.raises(ValueError, match="target 1"):
                await session.sync_many([("1001", ds), ("1001", "abc")])
            assert fake.stats.requests == 0
            lazy = iter([("1001", ds), ("x", "1"), 42])
            report = await session.sync_many(lazy)
    assert [r.status for r in report.results] == [
        SyncStatus.STARTED,
        SyncStatus.FAILED,
        SyncStatus.FAILED,
    ]
    assert "invalid target" in (report.results[1].error_message or "")


# 100 calls per 1 s window at the fake; the SDK is told the same, with a 25% margin that
# leaves ~0.3 s for the delay from turn to arrival to vary (a loaded machine stalls less).
SECOND_WINDOWS = Limits(
    requests_per_minute=6000,
    metadata_per_minute=6000,
    max_in_flight=8,
    window_seconds=1.0,
    safety_margin=0.25,
)


async def test_multi_org_runs_keep_separate_budgets() -> None:
    assert jitter_room(SECOND_WINDOWS) > 0.25
    async with FakeZoho(
        requests_per_minute=100, metadata_per_minute=100, window_seconds=1.0
    ) as fake:
        org_a = fake.add_org(is_default=True)
        org_b = fake.add_org()
        fake.add_workspace(org_a.org_id, "1001")
        fake.add_workspace(org_b.org_id, "2002")
        a = add_plain(fake, 150, "1001")
        b = add_plain(fake, 150, "2002")
        targets = [SyncTarget("1001", d, org_id=org_a.org_id) for d in a] + [
            SyncTarget("2002", d, org_id=org_b.org_id) for d in b
        ]
        async with session_for(fake, limits=SECOND_WINDOWS) as session:
            report = await session.sync_many(targets)
            assert set(session._exec.pacer._orgs) == {org_a.org_id, org_b.org_id}
    assert report.counts[SyncStatus.STARTED] == 300
    assert fake.stats.rejected_rate_limited == 0
    for org in (org_a.org_id, org_b.org_id):
        assert fake.stats.max_window_count(org) <= 100
        assert fake.stats.max_rolling(1.0, org) <= 100
    # both orgs ran side by side: 300 requests at 75/s per org took ~2 s, not ~4 s;
    # measured as overlap of the two orgs' arrival spans rather than wall time
    span_a = fake.stats.arrivals[org_a.org_id]
    span_b = fake.stats.arrivals[org_b.org_id]
    assert min(span_a) < max(span_b) and min(span_b) < max(span_a)


async def test_wait_reports_final_outcomes() -> None:
    async with workspace_fake(sync_duration=0.3) as fake:
        good = ds_id(fake.add_datasource("1001"))
        bad = ds_id(fake.add_datasource("1001", outcome="Failed"))
        other_ws = fake.add_workspace(str(fake.default_org_id), "1002")
        far = ds_id(fake.add_datasource(other_ws.workspace_id))
        async with session_for(fake) as session:
            report = await session.sync_many(
                [("1001", good), ("1001", bad), ("1002", far)],
                wait=True,
                poll_interval=0.1,
                wait_timeout=20,
            )
            polls = fake.stats.requests_by_route["datasources"]
    outcomes = [(r.status, r.outcome) for r in report.results]
    assert outcomes == [
        (SyncStatus.STARTED, "Success"),
        (SyncStatus.STARTED, "Failed"),
        (SyncStatus.STARTED, "Success"),
    ]
    assert all(r.completed_at is not None for r in report.results)
    # one poll per workspace per interval, never one per datasource
    assert polls <= 2 * 10


async def test_wait_timeout_still_gives_a_result() -> None:
    async with workspace_fake(sync_duration=60.0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        async with session_for(fake) as session:
            report = await session.sync_many(
                [("1001", ds)], wait=True, poll_interval=0.05, wait_timeout=0.3
            )
    (result,) = report.results
    assert result.status is SyncStatus.STARTED and result.outcome is None
    assert "timed out" in (result.error_message or "")


async def test_sync_workspaces_discovers_skips_and_expands() -> None:
    # instant syncs: each interval of a multi-interval datasource is started in turn
    async with workspace_fake(sync_duration=0.0) as fake:
        fake.add_workspace(str(fake.default_org_id), "1002")
        plain = ds_id(fake.add_datasource("1001"))
        fake.add_datasource("1001", kind="local_drive")
        fake.add_datasource("1001", kind="snapshot")
        multi = fake.add_datasource("1002", intervals=3)
        spent = ds_id(fake.add_datasource("1002", sync_used=5))
        partly = fake.add_datasource("1002", intervals=3, sync_used=4)
        async with session_for(fake) as session:
            report = await session.sync_workspaces(["1001", "1002", "999"])
            plan_before = fake.stats.sync_calls.total()
    rows = [
        (
            r.target.workspace_id,
            r.target.datasource_id,
            r.target.sync_interval_id,
            r.status,
            r.error_message,
        )
        for r in report.results
    ]
    assert (("1001", plain, None, SyncStatus.STARTED, None)) in rows
    skipped = [r for r in report.results if r.status is SyncStatus.SKIPPED]
    assert sorted(r.error_message or "" for r in skipped) == ["Local Drive", "Snapshot"]
    expanded = [r for r in report.results if r.target.datasource_id == multi.datasource_id]
    assert sorted(r.target.sync_interval_id or "" for r in expanded) == sorted(multi.interval_ids)
    assert all(r.status is SyncStatus.STARTED for r in expanded)
    spent_result = [r for r in report.results if r.target.datasource_id == spent]
    assert [r.status for r in spent_result] == [SyncStatus.QUOTA_EXHAUSTED]
    partial = Counter(r.status for r in report.results if r.target.datasource_id == ds_id(partly))
    assert partial == {SyncStatus.STARTED: 1, SyncStatus.QUOTA_EXHAUSTED: 2}
    missing = [r for r in report.results if r.target.workspace_id == "999"]
    assert [(r.status, r.error_code) for r in missing] == [(SyncStatus.FAILED, 7103)]
    assert fake.stats.sync_calls[spent] == 0
    assert plan_before == 1 + 3 + 1


async def test_plan_sync_sends_no_sync() -> None:
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource("1001", sync_used=3))
        fake.add_datasource("1001", kind="local_drive")
        async with session_for(fake) as session:
            plan = await session.plan_sync(["1001"])
            by_target = await session.plan_sync([SyncTarget("1001", ds)] * 3)
    assert fake.stats.sync_calls.total() == 0
    assert plan.counts == {"sync": 1, "skip": 1}
    assert plan.quota_spend == 1 and plan.to_sync[0].quota_left == 2
    assert [e.action for e in by_target.entries] == ["sync", "sync", "quota"]


async def test_iter_sync_yields_each_result_once_and_stops_early() -> None:
    async with workspace_fake() as fake:
        ids = add_plain(fake, 100)
        async with session_for(fake) as session:
            seen = [r async for r in session.iter_sync(("1001", d) for d in ids)]
            assert_one_result_each(seen, 100)
            partial: list[SyncResult] = []
            async with session.iter_sync(("1001", d) for d in ids) as results:
                async for result in results:
                    partial.append(result)
                    if len(partial) == 5:
                        break
            # the early exit stopped the run; the session keeps working
            await session.get_orgs()
    assert len(partial) == 5


async def test_single_calls_share_the_session_pacing() -> None:
    # unpaced, 150 concurrent calls would all land in the fake's first 1 s window of 100
    async with workspace_fake(
        requests_per_minute=100, metadata_per_minute=100, window_seconds=1.0
    ) as fake:
        ids = add_plain(fake, 150)
        async with session_for(fake, limits=SECOND_WINDOWS) as session:
            ws = session.workspace("1001")
            async with anyio.create_task_group() as tg:
                for d in ids:
                    tg.start_soon(ws.sync_data, d)
    assert fake.stats.rejected_rate_limited == 0
    assert fake.stats.max_window_count() <= 100
    assert fake.stats.max_rolling(1.0) <= 100


async def test_report_exports() -> None:
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource("1001"))
        async with session_for(fake) as session:
            report = await session.sync_many([("1001", ds), ("1001", "5")])
    import json

    doc = json.loads(report.to_json())
    assert doc["summary"]["counts"]["STARTED"] == 1 and doc["summary"]["total"] == 2
    rows = report.to_rows()
    assert rows[0]["status"] == "STARTED" and rows[1]["error_code"] == 18061
    assert list(rows[0])[:3] == ["index", "workspace_id", "datasource_id"]


async def test_an_error_in_on_result_propagates_as_itself() -> None:
    async with workspace_fake() as fake:
        ids = add_plain(fake, 20)

        def on_result(result: SyncResult) -> None:
            if result.index == 3:
                raise LookupError("boom in the caller's callback")

        async with session_for(fake) as session:
            with pytest.raises(LookupError, match="boom"):
                await session.sync_many([("1001", d) for d in ids], on_result=on_result)
            await session.get_orgs()  # the session is fine


async def test_leaving_iter_sync_by_an_exception_leaves_bounded_work() -> None:
    async with workspace_fake(latency=0.01) as fake:
        ids = add_plain(fake, 200)
        async with session_for(fake) as session:
            calls_at_break = 0
            with pytest.raises(KeyError):
                async for result in session.iter_sync(("1001", d) for d in ids):
                    if result.index >= 0:
                        calls_at_break = fake.stats.sync_calls.total()
                        raise KeyError("consumer bug")
            await anyio.wait_all_tasks_blocked()
            await session.get_orgs()
            # nobody reads the results: the workers block on handing them over, so at most
            # one more request per worker is made, not the remaining 190-odd
            workers = 2 * session.limits.max_in_flight
            assert fake.stats.sync_calls.total() <= calls_at_break + workers
            assert fake.stats.sync_calls.total() < 100


async def test_stop_event_ends_the_run_gracefully() -> None:
    async with workspace_fake() as fake:
        ids = add_plain(fake, 200)
        stop = anyio.Event()
        slow = Limits(requests_per_minute=1200, metadata_per_minute=1200, max_in_flight=4)

        def on_result(result: SyncResult) -> None:
            if result.index == 5:
                stop.set()

        async with session_for(fake, limits=slow) as session:
            report = await session.sync_many(
                [("1001", d) for d in ids], on_result=on_result, stop=stop
            )
    assert_one_result_each(report.results, 200)
    counts = report.counts
    started = counts[SyncStatus.STARTED]
    assert 6 <= started <= 6 + 8  # what was already waiting for its turn is not sent
    assert counts[SyncStatus.CANCELLED] == 200 - started
    assert sum(fake.stats.syncs_started.values()) == started
    assert "stopped" in (report.results[-1].error_message or "")


async def test_iter_sync_stop_still_yields_the_rest_as_cancelled() -> None:
    async with workspace_fake() as fake:
        ids = add_plain(fake, 100)
        slow = Limits(requests_per_minute=1200, metadata_per_minute=1200, max_in_flight=4)
        async with session_for(fake, limits=slow) as session:
            seen: list[SyncResult] = []
            async with session.iter_sync([("1001", d) for d in ids]) as results:
                async for result in results:
                    seen.append(result)
                    if len(seen) == 3:
                        results.stop()
    assert_one_result_each(seen, 100)
    assert Counter(r.status for r in seen)[SyncStatus.CANCELLED] >= 80


async def test_error_inside_the_session_block_is_not_wrapped() -> None:
    async with workspace_fake() as fake:
        with pytest.raises(LookupError):
            async with session_for(fake) as session:
                await session.get_orgs()
                raise LookupError("mine")


async def test_the_turn_is_taken_after_the_token_right_before_the_send() -> None:
    # A slow token fetch must not hold turns already taken: they would all go out
    # together when it ends. So every turn comes after the token is there.
    async with workspace_fake() as fake:
        ids = add_plain(fake, 20)
        fake.script("token", [Fault(delay=0.2)])
        async with session_for(fake) as session:
            pacer = session._exec.pacer
            tokens_at_turn: list[int] = []
            real_turn = pacer.turn

            async def turn(*args: Any, **kwargs: Any) -> bool:
                tokens_at_turn.append(fake.stats.token_requests)
                return await real_turn(*args, **kwargs)

            pacer.turn = turn  # type: ignore[method-assign]
            # single calls: no bulk run's token preflight, the first calls fetch it
            ws = session.workspace("1001")
            async with anyio.create_task_group() as tg:
                for d in ids:
                    tg.start_soon(ws.sync_data, d)
    assert sum(fake.stats.syncs_started.values()) == 20
    # 20 syncs and the workspace's one baseline listing (single calls settle too)
    assert tokens_at_turn == [1] * 21
