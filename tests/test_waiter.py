"""The waiter's matcher, fed canned Get Datasources listings: no server, no clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from zoho_async import InvalidTarget, SyncResult, SyncStatus, SyncTarget
from zoho_async._bulk._waiter import Pending, match_listing
from zoho_async._zohotime import zone_offsets
from zoho_async.testing._wire import zoho_time

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


# -- time zones: the matcher never depends on them; completed_at is read between the
# -- trigger and the moment the end was seen


ZONES = ["IST", "CST", "CDT", "PST", "PDT", "EST", "GMT", "BST", "JST", "AEST", "SGT", "UTC"]


def _printed(moment: datetime, offset_hours: float, zone: str) -> str:
    """``moment`` as Zoho prints it in ``zone`` (the fake's own formatter)."""
    minutes = round(abs(offset_hours) * 60)
    sign = "-" if offset_hours < 0 else "+"
    return zoho_time(moment, f"{zone}@{sign}{minutes // 60:02d}:{minutes % 60:02d}")


# every meaning of each abbreviation a Zoho account might print
MEANINGS = [
    ("IST", 5.5),
    ("IST", 1),
    ("IST", 2),
    ("CST", -6),
    ("CST", 8),
    ("CDT", -5),
    ("PST", -8),
    ("PDT", -7),
    ("EST", -5),
    ("GMT", 0),
    ("BST", 1),
    ("BST", 6),
    ("JST", 9),
    ("AEST", 10),
    ("SGT", 8),
    ("UTC", 0),
]


@pytest.mark.parametrize(("zone", "offset"), MEANINGS)
def test_a_wait_ends_in_every_zone_and_completed_at_is_never_wrong(
    zone: str, offset: float
) -> None:
    from datetime import timedelta

    finish = TRIGGER + timedelta(seconds=3)
    seen = finish + timedelta(seconds=30)  # the poll that saw it
    baseline = _printed(TRIGGER - timedelta(days=1), offset, zone)
    group = {0: _pending(baseline=baseline)}
    assert not match_listing(group, _listing(_entry(DS, "In Progress", baseline)), seen)
    printed = _printed(finish, offset, zone)
    done = match_listing(group, _listing(_entry(DS, "Success", printed)), seen)
    assert [r.outcome for r in done] == ["Success"]
    # an ambiguous abbreviation is resolved by the window trigger..seen: exactly right
    assert done[0].completed_at == finish.replace(microsecond=0)


@pytest.mark.parametrize(("zone", "offset"), MEANINGS)
def test_an_ambiguous_zone_is_unset_rather_than_guessed_over_a_long_wait(
    zone: str, offset: float
) -> None:
    from datetime import timedelta

    finish = (TRIGGER + timedelta(hours=5)).replace(microsecond=0)
    group = {0: _pending(baseline="")}
    printed = _printed(finish, offset, zone)
    done = match_listing(
        group, _listing(_entry(DS, "Success", printed)), finish + timedelta(hours=6)
    )
    assert [r.outcome for r in done] == ["Success"]  # the wait still ends
    when = done[0].completed_at
    assert when == finish or (when is None and len(zone_offsets(zone)) > 1)


@pytest.mark.parametrize("zone", ZONES)
def test_the_same_text_as_the_baseline_is_not_a_new_sync(zone: str) -> None:
    baseline = _printed(TRIGGER, 0, zone)
    group = {0: _pending(baseline=baseline)}
    assert not match_listing(group, _listing(_entry(DS, "Success", baseline)))
    assert list(group) == [0]


def test_without_a_baseline_a_final_status_after_running_ends_the_wait() -> None:
    group = {0: _pending(baseline=None)}
    text = "30 November, 2026 09:00:03 AM CST"  # ambiguous, and no baseline
    assert not match_listing(group, _listing(_entry(DS, "Running", "")))
    assert [r.outcome for r in match_listing(group, _listing(_entry(DS, "Failed", text)))] == [
        "Failed"
    ]


LOCALE_CHECK = """
import json, locale, sys, time
locale.setlocale(locale.LC_ALL, "")
from zoho_async import parse_zoho_time
month = time.strftime("%B", time.gmtime(0))
texts = json.loads(sys.argv[1])
print(json.dumps([month, [str(parse_zoho_time(t)) for t in texts]]))
"""


def test_times_read_the_same_under_a_non_english_lc_time(tmp_path: Any) -> None:
    import json
    import os
    import shutil
    import subprocess
    import sys
    from datetime import timedelta

    from zoho_async import parse_zoho_time

    localedef = shutil.which("localedef")
    if localedef is None or not os.path.exists("/usr/share/i18n/locales/de_DE"):
        pytest.skip("no localedef or de_DE locale source to build a German locale from")
    subprocess.run(
        [localedef, "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
        check=True,
        capture_output=True,
    )
    texts = [_printed(TRIGGER + timedelta(days=40 * m), 9, "JST") for m in range(12)]
    texts += [_printed(TRIGGER, offset, zone) for zone, offset in MEANINGS]
    env = dict(os.environ, LOCPATH=str(tmp_path), LC_ALL="de_DE.UTF-8")
    out = subprocess.run(
        [sys.executable, "-c", LOCALE_CHECK, json.dumps(texts)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    month, parsed = json.loads(out)
    assert month == "Januar"  # the child really ran under a German LC_TIME
    assert parsed == [str(parse_zoho_time(t)) for t in texts]
    assert all(p != "None" for p in parsed[:12])  # every English month name is read
