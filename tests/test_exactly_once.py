"""Exactly-once sync starts: settling from Zoho's counters, intervals one at a time, waits
that end in every time zone. Against FakeZoho over loopback; the settle table directly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from zoho_async import (
    RetryPolicy,
    SyncStatus,
    SyncTarget,
    SyncUnconfirmedError,
)
from zoho_async._settle import DsState, Snapshot, Verdict, settle
from zoho_async.testing import Fault

from .helpers import ds_id, session_for, workspace_fake

pytestmark = pytest.mark.anyio


# -- the settle table, directly ----------------------------------------------------------


def _snap(**states: DsState) -> Snapshot:
    return Snapshot(0.0, states)


def _ds(used: int, text: str = "", status: str | None = "Success", allowed: int = 5) -> DsState:
    return DsState(sync_used=used, allowed=allowed, status=status, text=text)


def test_an_unmoved_counter_after_an_answer_proves_no_start() -> None:
    before, after = _snap(a=_ds(0, "x")), _snap(a=_ds(0, "x"))
    assert settle(before, after, "a", None, answered=True).verdict is Verdict.NOT_STARTED
    # a lost answer: Zoho may still act on it, so nothing is proven
    lost = settle(before, after, "a", None, answered=False)
    assert lost.verdict is Verdict.UNKNOWN and "lost" in lost.evidence


def test_a_moved_counter_and_time_prove_a_start() -> None:
    before = _snap(a=_ds(1, "03 August, 2024 03:39:16 PM IST"), b=_ds(1))
    after = _snap(a=_ds(2, "30 November, 2026 03:39:16 PM IST"), b=_ds(2))
    verdict = settle(before, after, "a", None, answered=False)
    assert verdict.verdict is Verdict.STARTED and "syncUsed 1->2" in verdict.evidence


def test_a_moved_counter_alone_proves_a_start_only_without_a_possible_sharer() -> None:
    alone = settle(_snap(a=_ds(0), b=_ds(3)), _snap(a=_ds(1), b=_ds(3)), "a", None, answered=True)
    assert alone.verdict is Verdict.STARTED and "still running" in alone.evidence
    # b had the same counter: it may share a's connection and have spent it
    shared = settle(_snap(a=_ds(0), b=_ds(0)), _snap(a=_ds(1), b=_ds(1)), "a", None, answered=True)
    assert shared.verdict is Verdict.UNKNOWN and shared.later


def test_our_own_earlier_starts_are_counted_out() -> None:
    before, after = _snap(a=_ds(0)), _snap(a=_ds(1))
    verdict = settle(before, after, "a", None, ours=1, answered=True)
    assert verdict.verdict is Verdict.NOT_STARTED


@pytest.mark.parametrize(
    ("before", "after"),
    [(None, _snap(a=_ds(0))), (_snap(a=_ds(0)), None), (_snap(a=_ds(2)), _snap(a=_ds(1)))],
)
def test_missing_or_odd_evidence_is_unknown(
    before: Snapshot | None, after: Snapshot | None
) -> None:
    assert settle(before, after, "a", None, answered=True).verdict is Verdict.UNKNOWN


def test_an_interval_is_read_from_its_own_fields() -> None:
    before = _snap(a=DsState(0, 5, "Success", "t0", {"i1": ("Success", "t0"), "i2": ("", "")}))
    after = _snap(a=DsState(1, 5, "Success", "t0", {"i1": ("Success", "t0"), "i2": ("Ok", "t1")}))
    assert settle(before, after, "a", "i2", answered=True).verdict is Verdict.STARTED
    shared_before = _snap(a=before.datasources["a"], b=_ds(0))
    shared_after = _snap(a=after.datasources["a"], b=_ds(1))
    # i1's own time did not move: with a possible sharer, nothing proves i1 started
    assert settle(shared_before, shared_after, "a", "i1", answered=True).later


# -- single calls -------------------------------------------------------------------------


async def test_sync_data_settles_a_lost_answer_from_the_listing() -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault(drop=True, then_process=True)])
        async with session_for(fake, timeout=0.5) as session:
            await session.workspace("1001").sync_data(ds)  # no error: it started
    assert fake.stats.syncs_started[ds] == 1
    assert fake.stats.sync_calls.total() == 1  # not sent again


async def test_sync_data_raises_unconfirmed_when_nothing_can_tell() -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault(drop=True)])  # dropped before Zoho did anything
        async with session_for(fake, timeout=0.5) as session:
            with pytest.raises(SyncUnconfirmedError) as info:
                await session.workspace("1001").sync_data(ds)
    assert "syncUsed 0->0" in info.value.evidence
    assert fake.stats.syncs_started[ds] == 0 and fake.stats.sync_calls.total() == 1


async def test_sync_data_resends_when_the_policy_allows_it() -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault(drop=True)])
        retry = RetryPolicy(attempts=3, wait=False, resend_unconfirmed=True)
        async with session_for(fake, timeout=0.5, retry=retry) as session:
            await session.workspace("1001").sync_data(ds)
    assert fake.stats.syncs_started[ds] == 1 and fake.stats.sync_calls.total() == 2


# -- intervals one at a time ----------------------------------------------------------------


@pytest.mark.parametrize("wait", [False, True])
async def test_intervals_of_one_datasource_never_meet_their_own_18073(wait: bool) -> None:
    async with workspace_fake(sync_duration=0.3) as fake:
        multi = ds_id(fake.add_datasource("1001", intervals=3))
        plain = [ds_id(fake.add_datasource("1001")) for _ in range(4)]
        async with session_for(fake) as session:
            report = await session.sync_workspaces(
                ["1001"], wait=wait, poll_interval=0.1, wait_timeout=30
            )
    statuses = Counter(r.status for r in report.results)
    assert statuses == {SyncStatus.STARTED: 7}, [r.error_message for r in report.results]
    assert fake.stats.syncs_started[multi] == 3
    assert all(fake.stats.syncs_started[d] == 1 for d in plain)
    assert fake.stats.sync_calls.total() == 7  # not one 18073
    if wait:
        assert {r.outcome for r in report.results} == {"Success"}


async def test_a_plain_target_list_gets_one_baseline_listing_per_workspace() -> None:
    async with workspace_fake(sync_duration=0.0) as fake:
        other = fake.add_workspace(str(fake.default_org_id), "1002")
        here = [ds_id(fake.add_datasource("1001")) for _ in range(5)]
        there = [ds_id(fake.add_datasource(other.workspace_id)) for _ in range(5)]
        targets = [SyncTarget("1001", d) for d in here] + [SyncTarget("1002", d) for d in there]
        async with session_for(fake) as session:
            report = await session.sync_many(targets)
            off = await session.sync_many(targets[:1], confirm_starts=False)
    assert report.ok and off.results[0].status is SyncStatus.STARTED
    assert fake.stats.requests_by_route["datasources"] == 2  # none for confirm_starts=False


# -- waits that end in every zone -------------------------------------------------------------

ZONES = [
    "IST",
    "IST@+01:00",
    "IST@+02:00",
    "CST@-06:00",
    "CST@+08:00",
    "CDT@-05:00",
    "PST",
    "PDT",
    "EST",
    "GMT",
    "BST@+01:00",
    "JST",
    "AEST",
    "SGT",
    "UTC",
]


@pytest.mark.parametrize("zone", ZONES)
async def test_a_multi_interval_wait_ends_with_outcomes_in_every_zone(zone: str) -> None:
    async with workspace_fake(sync_duration=0.3, time_zone=zone) as fake:
        added = fake.add_datasource("1001", intervals=2)
        multi = ds_id(added)
        plain = ds_id(fake.add_datasource("1001", outcome="Failed"))
        async with session_for(fake) as session:
            report = await session.sync_many(
                [SyncTarget("1001", multi, sync_interval_id=i) for i in added.interval_ids]
                + [SyncTarget("1001", plain)],
                wait=True,
                poll_interval=0.1,
                wait_timeout=60,
            )
    end = datetime.now(UTC) + timedelta(seconds=1)  # Zoho prints whole seconds
    outcomes = [(r.status, r.outcome) for r in report.results]
    assert outcomes == [
        (SyncStatus.STARTED, "Success"),
        (SyncStatus.STARTED, "Success"),
        (SyncStatus.STARTED, "Failed"),
    ], [r.error_message for r in report.results]
    # the wait ended on the listing, never on its timeout; a wait of seconds tells every
    # meaning of an abbreviation apart, so each completion time is read, and rightly
    for result in report.results:
        assert result.started_at is not None and result.completed_at is not None
        assert result.started_at.replace(microsecond=0) <= result.completed_at <= end
    assert fake.stats.syncs_started[multi] == 2 and fake.stats.sync_calls.total() == 3


async def test_a_stop_set_before_the_run_sends_nothing() -> None:
    import anyio

    async with workspace_fake(sync_duration=0.0) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(5)]
        stop = anyio.Event()
        stop.set()
        async with session_for(fake) as session:
            report = await session.sync_many([("1001", d) for d in ids], stop=stop)
    assert [r.status for r in report.results] == [SyncStatus.CANCELLED] * 5
    assert fake.stats.sync_calls.total() == 0
