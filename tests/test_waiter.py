"""The waiter's matcher, fed canned Get Datasources listings: no server, no clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zoho_async import InvalidTarget, SyncResult, SyncStatus, SyncTarget
from zoho_async._bulk._waiter import Pending, match_listing

TRIGGER = datetime(2026, 11, 30, 9, 0, 0, 400_000, tzinfo=UTC)
WS, DS, DS2 = "1001", "2001", "2002"


def _pending(ds: str = DS, interval: str | None = None, baseline: str | None = None) -> Pending:
    target = SyncTarget(WS, ds, "55", sync_interval_id=interval)
    result = SyncResult(target, 0, SyncStatus.STARTED, started_at=TRIGGER)
    return Pending(result, TRIGGER, expires=1e9, baseline=baseline)


def _listing(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"dataSources": list(entries)}


def _entry(ds: str, status: str, when: str, **extra: Any) -> dict[str, Any]:
    return {
        "datasourceId": ds,
        "datasourceName": f"ds {ds}",
        "lastDataSyncStatus": status,
        "lastDataSyncTime": when,
        **extra,
    }


def test_a_final_status_after_the_trigger_finishes_the_wait() -> None:
    group = {0: _pending()}
    done = match_listing(
        group, _listing(_entry(DS, "Success", "30 November, 2026 09:00:05 AM UTC"))
    )
    assert [r.outcome for r in done] == ["Success"]
    assert done[0].completed_at == datetime(2026, 11, 30, 9, 0, 5, tzinfo=UTC)
    assert group == {}


def test_a_status_in_progress_or_an_older_time_keeps_waiting() -> None:
    group = {0: _pending()}
    assert not match_listing(group, _listing(_entry(DS, "In Progress", "")))
    older = _entry(DS, "Success", "30 November, 2026 08:59:00 AM UTC")
    assert not match_listing(group, _listing(older))
    assert list(group) == [0]


def test_the_same_second_as_the_trigger_counts_as_after_it() -> None:
    # Zoho prints whole seconds; the trigger had 0.4 s more
    group = {0: _pending()}
    same = _entry(DS, "Failed", "30 November, 2026 09:00:00 AM UTC")
    assert [r.outcome for r in match_listing(group, _listing(same))] == ["Failed"]


def test_an_interval_target_reads_its_own_interval() -> None:
    group = {0: _pending(interval="31")}
    entry = _entry(
        DS,
        "Success",
        "30 November, 2026 09:10:00 AM UTC",
        syncIntervals=[
            {
                "syncIntervalId": "30",
                "lastDataSyncStatus": "Success",
                "lastDataSyncTime": "30 November, 2026 09:10:00 AM UTC",
            },
            {"syncIntervalId": "31", "lastDataSyncStatus": "In Progress", "lastDataSyncTime": ""},
        ],
    )
    assert not match_listing(group, _listing(entry))
    entry["syncIntervals"][1].update(
        lastDataSyncStatus="Success", lastDataSyncTime="30 November, 2026 09:11:00 AM UTC"
    )
    assert [r.outcome for r in match_listing(group, _listing(entry))] == ["Success"]


def test_an_unreadable_time_is_compared_with_the_baseline_text() -> None:
    group = {0: _pending(baseline="yesterday-ish")}
    assert not match_listing(group, _listing(_entry(DS, "Success", "yesterday-ish")))
    assert match_listing(group, _listing(_entry(DS, "Success", "today-ish")))


def test_only_the_listed_datasources_are_touched_and_odd_listings_are_ignored() -> None:
    group = {0: _pending(DS), 1: _pending(DS2)}
    done = match_listing(
        group, _listing(_entry(DS2, "Success", "30 November, 2026 09:01:00 AM UTC"))
    )
    assert [r.target.datasource_id for r in done] == [DS2]
    assert list(group) == [0]
    odd: Any
    for odd in (None, [], {"dataSources": "x"}, {"dataSources": [1, None, {}]}):
        assert match_listing(group, odd) == []
    assert list(group) == [0]


def test_an_invalid_item_has_its_own_representation() -> None:
    bad = InvalidTarget.from_item(("ws!", None, "x", "y", "z"))
    assert bad.workspace_id == "ws!" and bad.datasource_id is None
    assert bad.raw.startswith("('ws!'")
    assert set(bad.to_dict()) == set(SyncTarget("1", "2").to_dict())
