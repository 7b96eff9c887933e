"""The results file as a journal: reading it, its lock, writing ahead, and resuming.

The journal's reader and its snapshot lines are tested directly; runs go against FakeZoho
over loopback. A killed run is staged by writing exactly what one leaves behind: intent
lines without results (after a request that did or did not reach the fake). Real SIGKILLs
are in ``test_journal_kill.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from zoho_async import (
    InvalidInputError,
    Journal,
    JournalInUseError,
    RetryPolicy,
    SyncStatus,
    SyncTarget,
)
from zoho_async._journal import (
    _intent_line,
    _snapshot_from_row,
    _snapshot_row,
    _utc_now,
    read_journal,
)
from zoho_async._protocol import datasources_request
from zoho_async._settle import DsState, Snapshot
from zoho_async.cli import cli
from zoho_async.testing import FakeZoho, Fault

from .helpers import CLI_FAST, cli_env, ds_id, session_for, workspace_fake

WS = "1001"


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _results(path: Path) -> list[dict[str, Any]]:
    return [row for row in _rows(path) if "kind" not in row]


def _kinds(path: Path) -> list[str]:
    return [row.get("kind", "result") for row in _rows(path)]


def _collect() -> tuple[list[str], Callable[[str], None]]:
    seen: list[str] = []
    return seen, seen.append


# -- reading, directly -------------------------------------------------------------------


def _intent(ds: str, *, at: str = "2026-01-01T00:00:00+00:00", ws: str = WS) -> dict[str, Any]:
    return {
        "kind": "intent",
        "workspace_id": ws,
        "datasource_id": ds,
        "org_id": "9",
        "sync_interval_id": None,
        "attempt": 2,
        "index": 0,
        "at": at,
    }


def _result(ds: str, status: str, ws: str = WS) -> dict[str, Any]:
    return {"workspace_id": ws, "datasource_id": ds, "index": 0, "status": status}


def _baseline(**used: int) -> dict[str, Any]:
    return {
        "kind": "baseline",
        "workspace_id": WS,
        "org_id": "9",
        "datasources": {
            ds: {"syncUsed": n, "totalSyncAllowed": 5, "lastDataSyncTime": "", "intervals": {}}
            for ds, n in used.items()
        },
    }


def _jsonl(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def test_intents_without_a_result_are_pending_and_count_what_started_since() -> None:
    data = _jsonl(
        {"kind": "run", "pid": 1},
        _baseline(a=0, b=0, c=0),
        _intent("a"),
        _result("a", "STARTED"),
        _intent("b"),
        _intent("c"),
        _result("c", "FAILED"),
        _intent("c"),  # retried later, then killed
        {"kind": "a-later-version", "x": 1},  # ignored, not an error
    )
    state, intact = read_journal(data, "j")
    assert intact == len(data)
    assert set(state.pending) == {(WS, "b", None), (WS, "c", None)}
    assert state.done() == {(WS, "a", None)}
    pending = state.pending[(WS, "b", None)]
    assert pending.attempt == 2 and pending.at == datetime(2026, 1, 1, tzinfo=UTC)
    assert pending.baseline is not None and pending.baseline.datasources["b"].sync_used == 0
    assert state.owner == {"kind": "run", "pid": 1}


def test_starts_and_doubts_after_a_baseline_belong_to_each_later_intent() -> None:
    two_intervals = [dict(_intent("a"), sync_interval_id=i) for i in ("1", "2")]
    data = _jsonl(
        _baseline(a=0),
        two_intervals[0],
        dict(_result("a", "STARTED"), sync_interval_id="1"),
        two_intervals[1],
    )
    (pending,) = read_journal(data, "j")[0].pending.values()
    assert pending.ours == 1 and not pending.doubtful  # interval 1 spent one of them
    data = _jsonl(
        _baseline(a=0),
        dict(_result("a", "UNCONFIRMED"), sync_interval_id="1"),
        two_intervals[1],
    )
    (pending,) = read_journal(data, "j")[0].pending.values()
    assert pending.doubtful


_ids = st.text(alphabet="0123456789", min_size=1, max_size=20)


@given(
    index=st.integers(min_value=0, max_value=10**9),
    org=st.none() | _ids,
    workspace=_ids,
    datasource=_ids,
    interval=st.none() | _ids,
    attempt=st.integers(min_value=1, max_value=50),
)
def test_a_hand_formatted_intent_line_is_the_json_of_its_row(
    index: int, org: str | None, workspace: str, datasource: str, interval: str | None, attempt: int
) -> None:
    # the journal formats intent lines by hand for speed: they must be what json.dumps writes
    line = _intent_line(index, org, workspace, datasource, interval, attempt)
    assert line is not None and line.endswith("\n")
    row = json.loads(line)
    expected = {
        "kind": "intent",
        "index": index,
        "org_id": org,
        "workspace_id": workspace,
        "datasource_id": datasource,
        "sync_interval_id": interval,
        "attempt": attempt,
        "at": row["at"],
    }
    assert line == json.dumps(expected, separators=(",", ":")) + "\n"
    at = datetime.fromisoformat(row["at"])
    assert at.tzinfo is not None and at.utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize("odd", ['1"2', "12\n", "\u0661\u0662", ""])
def test_an_intent_field_that_is_not_plain_digits_takes_the_json_path(odd: str) -> None:
    assert _intent_line(0, None, odd, "1", None, 1) is None
    assert _intent_line(0, None, "1", odd, None, 1) is None
    assert _intent_line(0, odd, "1", "1", None, 1) is None
    assert _intent_line(0, None, "1", "1", odd, 1) is None


def test_the_journals_clock_reads_as_datetimes_isoformat() -> None:
    before = datetime.now(UTC)
    text = _utc_now()
    after = datetime.now(UTC)
    assert len(text) == len(before.isoformat(timespec="milliseconds"))
    assert (
        before.replace(microsecond=before.microsecond // 1000 * 1000)
        <= datetime.fromisoformat(text)
        <= after
    )


def test_a_torn_last_line_is_left_out_with_a_warning() -> None:
    whole = _jsonl(_result("a", "STARTED"))
    data = whole + b'{"workspace_id": "1001", "datas'
    seen, warn = _collect()
    state, intact = read_journal(data, "j", warn)
    assert intact == len(whole)
    assert state.done() == {(WS, "a", None)}
    assert len(seen) == 1 and "j line 2: ignoring an incomplete last line" in seen[0]


def test_a_fragment_glued_to_a_line_by_older_versions_is_read_past() -> None:
    glued = b'{"workspace_id": "1001", "datas' + _jsonl(_result("b", "STARTED"))
    seen, warn = _collect()
    state, _ = read_journal(_jsonl(_result("a", "FAILED")) + glued, "j", warn)
    assert state.done() == {(WS, "b", None)}
    assert "line 2" in seen[0] and "torn" in seen[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json at all\n" + _jsonl(_result("a", "STARTED")), "line 1: not valid JSON"),
        (b"[1, 2]\n", "line 1: expected a JSON object"),
        (_jsonl({"workspace_id": WS}), "line 1: not a results line"),
        (_jsonl(dict(_intent("a"), at="yesterday")), "line 1: an intent without a valid time"),
        (b'{"a": "\xff"}\n', "line 1 is not UTF-8"),
    ],
)
def test_a_broken_line_is_an_error_naming_it(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read_journal(data, "j")


_text = st.text(st.characters(codec="utf-8"), max_size=12)
_states = st.builds(
    DsState,
    sync_used=st.none() | st.integers(0, 10**6),
    allowed=st.none() | st.integers(0, 10**6),
    status=st.none() | _text,
    text=_text,
    intervals=st.dictionaries(
        st.from_regex(r"[0-9]{1,6}", fullmatch=True), st.tuples(st.none() | _text, _text)
    ),
)


@given(st.dictionaries(st.from_regex(r"[0-9]{1,8}", fullmatch=True), _states, max_size=5))
def test_a_journaled_baseline_reads_back_as_it_was_listed(states: dict[str, DsState]) -> None:
    row = json.loads(json.dumps({"datasources": _snapshot_row(Snapshot(0.0, states))}))
    back = _snapshot_from_row(row)
    assert back is not None and dict(back.datasources) == states


# -- the file: lock, torn lines, fresh starts --------------------------------------------


def test_one_run_at_a_time_and_the_lock_ends_with_the_run(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path):
        with pytest.raises(JournalInUseError, match=rf"in use by another run \(pid {os.getpid()}"):
            Journal(path).open()
        # a fresh start must not wipe a file another run is writing
        with pytest.raises(JournalInUseError):
            Journal(path, fresh=True).open()
        assert _kinds(path) == ["run"]
    with Journal(path, fresh=True):
        pass
    assert _kinds(path) == ["run"]  # started over


def test_opening_cuts_a_torn_last_line_so_the_next_line_starts_clean(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(_jsonl(_result("a", "STARTED")) + b'{"kind": "intent", "works')
    seen, warn = _collect()
    with Journal(path, warn=warn) as journal:
        assert journal.state.done() == {(WS, "a", None)}
    assert seen and "incomplete last line" in seen[0]
    assert _kinds(path) == ["result", "run"]  # every line whole


def test_a_missing_or_unwritable_journal_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"cannot read .*nope\.jsonl"):
        Journal(tmp_path / "nope.jsonl", create=False).open()
    with pytest.raises(InvalidInputError, match="cannot read"):
        Journal(tmp_path).open()  # a directory
    if Path("/dev/full").exists():
        with pytest.raises(InvalidInputError, match="cannot write /dev/full"):
            Journal("/dev/full").open()


@pytest.mark.anyio
async def test_an_unwritable_journal_stops_the_run_before_any_request(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource(WS))
        async with session_for(fake) as session:
            with pytest.raises(InvalidInputError, match="cannot write"):
                await session.sync_many([(WS, ds)], journal="/dev/full")
        assert fake.stats.sync_calls[ds] == 0


# -- runs that write it ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_run_writes_its_baseline_and_each_intent_ahead_of_the_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(4)]
        async with session_for(fake) as session:
            report = await session.sync_many([(WS, d) for d in ids], journal=path)
    assert report.counts[SyncStatus.STARTED] == 4
    rows = _rows(path)
    assert rows[0]["kind"] == "run" and rows[1]["kind"] == "baseline"
    assert set(rows[1]["datasources"]) == set(ids)
    for ds in ids:
        lines = [i for i, row in enumerate(rows) if row.get("datasource_id") == ds]
        kinds = [rows[i].get("kind", "result") for i in lines]
        assert kinds == ["intent", "result"], kinds  # the intent first, then the result
    assert sorted(r["datasource_id"] for r in _results(path)) == sorted(ids)
    assert all(fake.stats.sync_calls[d] == 1 for d in ids)


@pytest.mark.anyio
async def test_running_the_same_journal_again_sends_nothing_already_done(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(3)]
        fake.script("sync", [Fault.error(7301, http_status=403)])  # the first one fails
        async with session_for(fake) as session:
            first = await session.sync_many([(WS, d) for d in ids], journal=path)
            seen: list[SyncStatus] = []
            again = await session.sync_many(
                [SyncTarget(WS, d) for d in ids],
                journal=Journal(path),
                on_result=lambda r: seen.append(r.status),
            )
        assert sorted(r.status.value for r in first.results) == ["FAILED", "STARTED", "STARTED"]
        # done ones come back as they were journaled; the failed one is sent again
        assert [r.status for r in again.results] == [SyncStatus.STARTED] * 3
        assert len(seen) == 3
        assert sum(fake.stats.sync_calls.values()) == 4
    results = _results(path)
    assert len(results) == 4  # the replayed results are not written twice
    assert _kinds(path).count("run") == 2


async def _stage_a_kill(
    fake: FakeZoho, path: Path, ids: list[str], *, sent: list[str], unsent: list[str]
) -> None:
    """The journal a run killed mid-request leaves: a baseline, then intents for ``sent``
    (their requests reached the fake) and ``unsent`` (they never left), no results."""
    org = fake.default_org_id
    async with session_for(fake) as session:
        listing = await session._exec.call(datasources_request(WS, org))
        with Journal(path) as journal:
            journal.baseline((org, WS), Snapshot.from_data(listing.data, 0.0))
            for ds in sent + unsent:
                await journal.intent(SyncTarget(WS, ds), org, 0, 1)
        for ds in sent:
            await session.sync_data(WS, ds)
    assert set(sent + unsent) <= set(ids)


@pytest.mark.anyio
async def test_resume_settles_a_killed_runs_intents_from_one_listing(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(4)]
        await _stage_a_kill(fake, path, ids, sent=[ids[0]], unsent=[ids[1]])
        fake.stats.reset()
        async with session_for(fake, timeout=0.5) as session:
            report = await session.sync_many([(WS, d) for d in ids], journal=path)
        by_ds = {r.target.datasource_id: r for r in report.results}
        # sent before the kill: STARTED from the listing's counters, not sent again
        assert by_ds[ids[0]].status is SyncStatus.STARTED
        assert "interrupted run" in (by_ds[ids[0]].error_message or "")
        assert fake.stats.sync_calls[ids[0]] == 0
        # never sent: sent now, once; the others as usual
        assert [fake.stats.sync_calls[d] for d in ids[1:]] == [1, 1, 1]
        assert all(r.status is SyncStatus.STARTED for r in report.results)
        # the settling listing is also the run's baseline: one listing in all
        assert fake.stats.requests_by_route["datasources"] == 1
    state = Journal.read(path)
    assert not state.pending and state.done() == {(WS, d, None) for d in ids}


@pytest.mark.anyio
async def test_an_intent_the_journal_cannot_settle_is_unconfirmed_and_not_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ds = ds_id(fake.add_datasource(WS))
        # an intent with no baseline before it (a run with confirm_starts=False)
        path.write_bytes(_jsonl(dict(_intent(ds), org_id=fake.default_org_id)))
        async with session_for(fake) as session:
            report = await session.sync_many([(WS, ds)], journal=path)
        (result,) = report.results
        assert result.status is SyncStatus.UNCONFIRMED
        assert "no baseline" in (result.error_message or "")
        assert fake.stats.sync_calls[ds] == 0
    assert Journal.read(path).done() == {(WS, ds, None)}  # recorded: never re-sent


@pytest.mark.anyio
async def test_a_failed_settling_listing_leaves_the_intent_pending_for_the_next_resume(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(2)]
        await _stage_a_kill(fake, path, ids, sent=[ids[0]], unsent=[])
        fake.script("datasources", [Fault.error(7005, http_status=500)] * 2)
        async with session_for(fake, timeout=0.5, retry=RetryPolicy.testing(2)) as session:
            report = await session.sync_many([(WS, ids[0])], journal=path)
        (result,) = report.results
        assert result.status is SyncStatus.UNCONFIRMED
        assert "could not be settled" in (result.error_message or "")
        assert (WS, ids[0], None) in Journal.read(path).pending  # not written: still pending
        async with session_for(fake, timeout=0.5) as session:
            report = await session.sync_many([(WS, ids[0])], journal=path)
        assert report.results[0].status is SyncStatus.STARTED
        assert fake.stats.syncs_started[ids[0]] == 1


@pytest.mark.anyio
async def test_a_cancelled_resume_never_overwrites_a_done_or_pending_target(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(3)]
        await _stage_a_kill(fake, path, ids, sent=[ids[0]], unsent=[])
        with Journal(path) as journal:
            journal.result(_started(ids[1]))
        stop = anyio.Event()
        stop.set()  # stopped before it starts: everything not done is CANCELLED
        async with session_for(fake, timeout=0.5) as session:
            report = await session.sync_many([(WS, d) for d in ids], journal=path, stop=stop)
        statuses = {r.target.datasource_id: r.status for r in report.results}
        assert statuses[ids[1]] is SyncStatus.STARTED  # the journaled result
        assert statuses[ids[2]] is SyncStatus.CANCELLED
        assert sum(fake.stats.sync_calls.values()) == 1  # only the staged send
    state = Journal.read(path)
    assert (WS, ids[0], None) in state.pending  # still to settle
    assert state.results[(WS, ids[1], None)]["status"] == "STARTED"


def _started(ds: str) -> Any:
    from zoho_async import SyncResult

    return SyncResult(SyncTarget(WS, ds), 0, SyncStatus.STARTED)


@pytest.mark.anyio
async def test_iter_sync_and_sync_workspaces_take_a_journal(tmp_path: Path) -> None:
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(3)]
        async with session_for(fake) as session:
            first = tmp_path / "iter.jsonl"
            async for _ in session.iter_sync([(WS, ids[0])], journal=first):
                pass
            assert [r["datasource_id"] for r in _results(first)] == [ids[0]]
            second = tmp_path / "ws.jsonl"
            report = await session.sync_workspaces([WS], journal=second)
            assert report.counts[SyncStatus.STARTED] == 3
            again = await session.sync_workspaces([WS], journal=second)
            assert again.counts[SyncStatus.STARTED] == 3  # replayed from the journal
        assert [fake.stats.sync_calls[d] for d in ids] == [2, 1, 1]
    assert len(_results(second)) == 3


@pytest.mark.anyio
async def test_a_resumed_start_is_waited_for_against_the_killed_runs_baseline(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(2)]
        await _stage_a_kill(fake, path, ids, sent=[ids[0]], unsent=[])
        async with session_for(fake, timeout=0.5) as session:
            report = await session.sync_many(
                [(WS, ids[0])], journal=path, wait=True, poll_interval=0.1, wait_timeout=30
            )
        (result,) = report.results
        assert result.status is SyncStatus.STARTED and result.outcome == "Success"
        assert fake.stats.sync_calls[ids[0]] == 1


# -- the CLI -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cli_refuses_a_journal_another_run_holds(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    async with workspace_fake(sync_duration=0) as fake:
        ds = ds_id(fake.add_datasource(WS))
        env = cli_env(fake, tmp_path)
        fake.stats.reset()
        with Journal(out):
            for args in (["-o", str(out)], ["--resume", str(out)]):

                def invoke(args: list[str] = args) -> Result:
                    return CliRunner().invoke(
                        cli, ["sync", WS, ds, *args, *CLI_FAST], env=env, catch_exceptions=False
                    )

                result = await anyio.to_thread.run_sync(invoke)
                assert result.exit_code == 2, result.output
                assert "in use by another run" in result.stderr
        assert fake.stats.requests == 0 and fake.stats.token_requests == 0
        assert _kinds(out) == ["run"]  # the holder's file untouched


@pytest.mark.anyio
async def test_cli_resume_with_another_output_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    out.write_text("")
    async with workspace_fake(sync_duration=0) as fake:
        env = cli_env(fake, tmp_path)
        result = await anyio.to_thread.run_sync(
            lambda: CliRunner().invoke(
                cli,
                ["sync", WS, "--resume", str(out), "-o", str(tmp_path / "other.jsonl")],
                env=env,
                catch_exceptions=False,
            )
        )
        assert result.exit_code == 2
        assert "drop --output" in result.stderr


def test_a_results_file_is_still_a_targets_file(tmp_path: Path) -> None:
    from zoho_async.cli._targets import read_targets

    path = tmp_path / "r.jsonl"
    path.write_bytes(_jsonl({"kind": "run"}, _baseline(a=0), _intent("5"), _result("5", "FAILED")))
    spec = read_targets(str(path))
    assert spec.workspaces == ()  # the baseline line is no "whole workspace" row
    assert [t.datasource_id for t in spec.targets] == ["5"]


_FULL_DISK = """
import json, resource, signal, sys
import anyio
sys.path.insert(0, sys.argv[2])
from tests.helpers import ds_id, session_for, workspace_fake

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG

async def main():
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(40)]
        # the journal may grow to 6 KB: the run line, a baseline and some intents fit
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))
        async with session_for(fake) as session:
            report = await session.sync_many([("1001", d) for d in ids], journal=sys.argv[1])
        print(json.dumps({
            "statuses": [r.status.value for r in report.results],
            "messages": [r.error_message for r in report.results],
            "sent": sum(fake.stats.sync_calls.values()),
        }))

anyio.run(main)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_journal_that_cannot_be_written_stops_sending(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "j.jsonl"
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(path), root],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["statuses"]) == 40  # every target has its one result
    assert "CANCELLED" in out["statuses"]
    assert any("journal cannot be written" in (m or "") for m in out["messages"])
    # nothing was sent that the journal does not show an intent for
    intents = [row for row in _rows_lenient(path) if row.get("kind") == "intent"]
    assert out["sent"] <= len(intents)
    assert out["statuses"].count("STARTED") == out["sent"]


def _rows_lenient(path: Path) -> list[dict[str, Any]]:
    """The whole lines of a file whose last line the full disk may have torn."""
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


@pytest.mark.anyio
async def test_a_resume_takes_over_the_claims_of_its_own_killed_run(tmp_path: Path) -> None:
    from zoho_async import Claim, SqliteCoordinator

    path = tmp_path / "j.jsonl"
    async with (
        workspace_fake(sync_duration=0) as fake,
        SqliteCoordinator(tmp_path / "shared.db") as shared,
    ):
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(2)]
        await _stage_a_kill(fake, path, ids, sent=[], unsent=[ids[0]])
        killed = Journal.read(path).owner
        assert killed is not None
        async with session_for(fake, coordinator=shared, timeout=0.5) as session:
            org, namespace = fake.default_org_id, session.namespace
            # the killed run had claimed both; another live run holds the second one
            for ds, owner in ((ids[0], killed["run"]), (ids[1], "someone-else")):
                holder = Claim(owner=owner, host="h", pid=1, started_at=0.0)
                key = f"claim:{namespace}:{org}:{WS}:{ds}:"
                assert await shared.claim(key, holder, 3600.0) is None
            report = await session.sync_many([(WS, d) for d in ids], journal=path)
        statuses = {r.target.datasource_id: r.status for r in report.results}
        assert statuses == {ids[0]: SyncStatus.STARTED, ids[1]: SyncStatus.CLAIMED}
        assert fake.stats.sync_calls[ids[0]] == 1 and fake.stats.sync_calls[ids[1]] == 0
