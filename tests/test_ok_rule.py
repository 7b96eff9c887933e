"""One definition of "ok": results, reports, ``raise_for_failures()`` and the CLI's exit
code all follow ``zoho_async.is_ok`` (the table in the README's "What counts as ok")."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from zoho_async import BulkSyncError, SyncReport, SyncResult, SyncStatus, SyncTarget, is_ok
from zoho_async.cli._progress import PlainProgress
from zoho_async.cli._summary import exit_code, print_summary

from .helpers import ds_id, session_for, workspace_fake

S = SyncStatus

# (status, outcome, waited) -> ok?  The README's table, row by row.
TABLE = [
    (S.STARTED, None, False, True),
    (S.ALREADY_RUNNING, None, False, True),
    (S.STARTED, "Success", True, True),
    (S.ALREADY_RUNNING, "Success", True, True),
    (S.STARTED, "Failed", True, False),
    (S.STARTED, "Error", True, False),
    (S.ALREADY_RUNNING, "Failed", True, False),
    (S.STARTED, None, True, False),  # the wait timed out or was stopped: outcome unknown
    (S.ALREADY_RUNNING, None, True, False),
    (S.QUOTA_EXHAUSTED, None, False, True),
    (S.SKIPPED, None, False, True),
    (S.FAILED, None, False, False),
    (S.CANCELLED, None, False, False),
    (S.UNCONFIRMED, None, False, False),
]


def result(
    status: SyncStatus,
    outcome: str | None = None,
    *,
    waited: bool = False,
    index: int = 0,
    error_message: str | None = None,
) -> SyncResult:
    return SyncResult(
        SyncTarget("1", str(100 + index)),
        index,
        status,
        outcome=outcome,
        waited=waited,
        error_message=error_message,
    )


@pytest.mark.parametrize(("status", "outcome", "waited", "expected"), TABLE)
def test_every_surface_applies_the_same_rule(
    status: SyncStatus, outcome: str | None, waited: bool, expected: bool
) -> None:
    one = result(status, outcome, waited=waited)
    assert is_ok(status, outcome, waited=waited) is expected
    assert one.ok is expected
    report = SyncReport((one,))
    assert report.ok is expected
    assert report.not_ok == (() if expected else (one,))
    assert (exit_code([one], wait=waited, interrupted=False) == 0) is expected
    if expected:
        report.raise_for_failures()
    else:
        with pytest.raises(BulkSyncError) as caught:
            report.raise_for_failures()
        assert caught.value.failed == (one,)


def test_status_ok_is_the_status_part_of_the_rule() -> None:
    assert {s for s in SyncStatus if not s.ok} == {S.FAILED, S.CANCELLED, S.UNCONFIRMED}
    assert {s for s in SyncStatus if s.syncing} == {S.STARTED, S.ALREADY_RUNNING}


@pytest.mark.parametrize("word", ["Success", "success", " SUCCESS ", "Completed", "Succeeded"])
def test_success_words(word: str) -> None:
    assert is_ok(S.STARTED, word, waited=True)


@pytest.mark.parametrize(
    "word", ["Failed", "Error", "Partial Success", "Not Applicable", "Aborted", ""]
)
def test_anything_else_that_is_final_is_a_failed_outcome(word: str) -> None:
    assert not is_ok(S.STARTED, word, waited=True)
    assert not is_ok(S.ALREADY_RUNNING, word)  # an outcome counts even without waited


def test_49_of_50_cancelled_is_not_ok_and_raises_listing_them() -> None:
    results = (result(S.STARTED), *(result(S.CANCELLED, index=i) for i in range(1, 50)))
    report = SyncReport(results)
    assert not report.ok
    assert report.failed == ()  # the FAILED status alone; not_ok is every failure
    assert len(report.not_ok) == 49
    with pytest.raises(BulkSyncError, match=r"49 of 50 targets not ok \(CANCELLED x49\)") as e:
        report.raise_for_failures()
    assert e.value.failed == results[1:]
    assert exit_code(list(results), wait=False, interrupted=False) == 1
    assert '"ok": false' in report.to_json()


_results = st.builds(
    result,
    st.sampled_from(list(SyncStatus)),
    st.one_of(st.none(), st.sampled_from(["Success", "Failed", "Error", "Running"])),
    waited=st.booleans(),
)


@given(st.lists(_results, max_size=12))
def test_report_ok_iff_cli_exits_0_iff_nothing_raised(results: list[SyncResult]) -> None:
    report = SyncReport(tuple(results))
    code = exit_code(results, wait=True, interrupted=False)
    assert report.ok is all(r.ok for r in results)
    assert report.ok is (code == 0)
    if report.ok:
        report.raise_for_failures()
    else:
        with pytest.raises(BulkSyncError) as caught:
            report.raise_for_failures()
        assert caught.value.failed == tuple(r for r in results if not r.ok)


def test_cli_shows_unconfirmed_in_progress_and_in_the_failures_table() -> None:
    why = "sent once; the listing showed syncUsed 2 -> 2 and the same last sync time"
    results = [result(S.STARTED), result(S.UNCONFIRMED, index=1, error_message=why)]
    stream = io.StringIO()
    progress = PlainProgress(stream, interval=60)
    progress.begin("Syncing", 2)
    for one in results:
        progress.advance(one)
    assert "1 started, 1 unconfirmed" in progress.line()
    out = io.StringIO()
    print_summary(
        Console(file=out, width=200),
        results,
        wait=False,
        duration=1.0,
        http_requests=2,
        token_requests=1,
        output=None,
        interrupted=False,
    )
    text = out.getvalue()
    assert "Failures (1)" in text
    failures = text[text.index("Failures (1)") :]
    assert "UNCONFIRMED" in failures and why in failures
    assert exit_code(results, wait=False, interrupted=False) == 1


# -- against the fake ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_failed_outcome_makes_the_report_not_ok() -> None:
    # instant syncs (sync_duration=0): the outcome is in the first listing after the
    # trigger; discovered targets carry the listing's baseline to recognise it by
    async with workspace_fake(sync_duration=0.0) as fake:
        good = ds_id(fake.add_datasource("1001"))
        bad = ds_id(fake.add_datasource("1001", outcome="Failed"))
        async with session_for(fake) as session:
            planned = [p async for p in session.discover(["1001"])]
            report = await session.sync_many(
                planned, wait=True, poll_interval=0.05, wait_timeout=30
            )
    assert [(r.target.datasource_id, r.status, r.outcome, r.waited) for r in report.results] == [
        (good, S.STARTED, "Success", True),
        (bad, S.STARTED, "Failed", True),
    ]
    assert not report.ok
    assert report.failed == ()
    with pytest.raises(BulkSyncError, match="1 of 2 targets not ok") as caught:
        report.raise_for_failures()
    assert [r.target.datasource_id for r in caught.value.failed] == [bad]


@pytest.mark.anyio
async def test_a_wait_that_times_out_is_not_ok_but_not_waiting_is() -> None:
    # a sync that runs far longer than the wait
    async with workspace_fake(sync_duration=600.0) as fake:
        ds = ds_id(fake.add_datasource("1001", sync_used=0))
        other = ds_id(fake.add_datasource("1001"))
        async with session_for(fake) as session:
            waited = await session.sync_many(
                [SyncTarget("1001", ds)], wait=True, poll_interval=0.05, wait_timeout=0.3
            )
            plain = await session.sync_many([SyncTarget("1001", other)])
    (timed_out,) = waited.results
    assert (timed_out.status, timed_out.outcome, timed_out.waited) == (S.STARTED, None, True)
    assert timed_out.error_message  # why there is no outcome
    assert not waited.ok
    assert plain.ok and not plain.results[0].waited


@pytest.mark.anyio
async def test_a_run_cut_by_its_deadline_is_not_ok() -> None:
    async with workspace_fake() as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(5)]
        fake.set_latency(0.5)  # every answer comes after the deadline
        async with session_for(fake) as session:
            report = await session.sync_many([SyncTarget("1001", d) for d in ids], deadline=0.2)
    # before the one rule, report.ok was True here (only FAILED counted)
    cancelled = report.counts[S.CANCELLED]
    assert cancelled >= 1
    assert not report.ok
    with pytest.raises(BulkSyncError, match=rf"CANCELLED x{cancelled}"):
        report.raise_for_failures()
