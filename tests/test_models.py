"""Models from wire JSON, SyncConfig encoding, validation, data centres, retry decisions."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from zoho_async import (
    ConfigTooLongError,
    Datasource,
    InsecureURLError,
    InvalidIdError,
    InvalidInputError,
    Limits,
    MissingCredentialsError,
    Org,
    RetryPolicy,
    SyncConfig,
    SyncTarget,
    UnknownDataCentreError,
    WorkspaceInfo,
    parse_zoho_time,
)
from zoho_async._errors import (
    ApiError,
    AuthError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SyncInProgressError,
    TokenRefreshError,
    TransportError,
)
from zoho_async._regions import DATA_CENTRES, resolve_endpoints
from zoho_async._retry import Decision, classify
from zoho_async._validation import check_id


def test_parse_zoho_time() -> None:
    when = parse_zoho_time("03 August, 2024 03:39:16 PM JST")
    assert when == datetime(2024, 8, 3, 15, 39, 16, tzinfo=timezone(timedelta(hours=9)))
    # IST is India, Ireland or Israel: unset unless a window tells which
    assert parse_zoho_time("03 August, 2024 03:39:16 PM IST") is None
    india = datetime(2024, 8, 3, 15, 39, 16, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    window = (india - timedelta(seconds=20), india + timedelta(minutes=1))
    assert parse_zoho_time("03 August, 2024 03:39:16 PM IST", between=window) == india
    assert parse_zoho_time("03 August, 2024 12:00:00 AM PDT") == datetime(
        2024, 8, 3, 0, 0, tzinfo=timezone(timedelta(hours=-7))
    )
    assert parse_zoho_time("03 August, 2024 03:39:16 PM XYZ") is None
    assert parse_zoho_time("yesterday") is None
    assert parse_zoho_time(None) is None
    assert parse_zoho_time("31 February, 2024 03:39:16 PM IST") is None


def test_datasource_from_api_single_interval() -> None:
    raw = {
        "datasourceName": "Sales DB",
        "datasourceId": "1767024000004595194",
        "source": "MySQL",
        "lastDataSyncStatus": "Success",
        "lastDataSyncTime": "03 August, 2024 03:39:16 PM SGT",
        "schedule": "Daily",
        "syncUsed": "2",
        "totalSyncAllowed": "5",
        "syncIntervalId": "1767024000004595201",
        "mystery": "kept",
    }
    ds = Datasource.from_api(raw, workspace_id="1")
    assert ds.datasource_id == "1767024000004595194" and ds.syncable
    assert (ds.sync_used, ds.total_sync_allowed, ds.quota_left) == (2, 5, 3)
    assert ds.last_sync_time is not None and ds.last_sync_time.tzinfo is not None
    assert ds.last_sync_time_raw == raw["lastDataSyncTime"]
    assert ds.interval_ids == ("1767024000004595201",)
    assert ds.raw["mystery"] == "kept"


def test_datasource_multi_interval_local_drive_and_live() -> None:
    multi = Datasource.from_api(
        {
            "datasourceId": "5",
            "syncUsed": "5",
            "totalSyncAllowed": "5",
            "syncIntervals": [
                {"syncIntervalId": "11", "syncUsed": "1"},
                {"syncIntervalId": "12"},
                {"bad": 1},
                "x",
            ],
        }
    )
    assert multi.interval_ids == ("11", "12") and multi.quota_exhausted
    local = Datasource.from_api({"datasourceName": "upload.csv", "source": "Local Drive"})
    assert not local.syncable and local.skip_reason == "Local Drive"
    snap = Datasource.from_api({"datasourceName": "s", "source": "Snapshot"})
    assert snap.skip_reason == "Snapshot"
    live = Datasource.from_api(
        {
            "datasourceId": "7",
            "lastDesignSyncStatus": "Success",
            "lastDesignSyncTime": "03 August, 2024 03:39:16 PM UTC",
        }
    )
    assert live.last_sync_status == "Success" and live.last_sync_time is not None
    empty = Datasource.from_api({})
    assert empty.datasource_id is None and empty.sync_used is None and empty.quota_left is None


def test_org_and_workspace_from_api() -> None:
    org = Org.from_api(
        {"orgId": "55", "orgName": "Acme", "isDefault": True, "numberOfworkspaces": "3"}
    )
    assert (org.org_id, org.name, org.is_default, org.workspace_count) == ("55", "Acme", True, 3)
    ws = WorkspaceInfo.from_api(
        {"workspaceId": "351", "workspaceName": "W", "orgId": "55", "createdTime": "1700000000000"},
        owned=False,
    )
    assert ws.owned is False and ws.created_time is not None and ws.org_id == "55"
    with pytest.raises(ProtocolError):
        Org.from_api({"orgName": "no id"})


def test_sync_config_encoding() -> None:
    assert SyncConfig().encode() is None
    cfg = SyncConfig(user_name="u", password="p4ss", sync_interval_id="123")
    assert cfg.to_json_dict() == {"userName": "u", "password": "p4ss", "syncIntervalId": "123"}
    assert "p4ss" not in repr(cfg) and "p4ss" not in str(cfg)
    assert SyncConfig(sync_interval_id="9", interval_key="both").to_json_dict() == {
        "syncIntervalId": "9",
        "scheduleId": "9",
    }
    assert SyncConfig(sync_interval_id="9", interval_key="scheduleId").to_json_dict() == {
        "scheduleId": "9"
    }
    with pytest.raises(InvalidInputError):
        SyncConfig(interval_key="nope")
    with pytest.raises(InvalidIdError):
        SyncConfig(sync_interval_id="12a")


def test_config_length_is_checked_locally() -> None:
    with pytest.raises(ConfigTooLongError):
        SyncConfig(password="x" * 1001)
    big = SyncConfig(user_name="u" * 1000, password="p" * 1000)
    assert big.encode() is not None  # 2,000-odd chars: fine
    # escaping makes the JSON longer than the raw text: the check is on the JSON
    quoted = SyncConfig(user_name='"' * 1000, password='"' * 1000)
    with pytest.raises(ConfigTooLongError, match="3000"):
        quoted.encode()


@pytest.mark.parametrize("bad", ["", "12a", " 12", "\uff11\uff12", "-1", None, 1.5, True, [1]])
def test_ids_must_be_digit_strings(bad: object) -> None:
    with pytest.raises(InvalidIdError):
        check_id(bad, "workspace_id")


def test_targets_validate_ids() -> None:
    assert SyncTarget(1, "2").workspace_id == "1"
    with pytest.raises(InvalidIdError):
        SyncTarget("ws", "2")
    with pytest.raises(InvalidInputError):
        SyncTarget("1", "2", config="not a config")


def test_data_centres() -> None:
    assert set(DATA_CENTRES) == {"us", "eu", "in", "au", "cn", "jp", "sa", "ca"}
    assert resolve_endpoints("ca").api_url == "https://analyticsapi.zohocloud.ca"
    assert resolve_endpoints("EU").accounts_url == "https://accounts.zoho.eu"
    with pytest.raises(UnknownDataCentreError, match="us, eu, in"):
        resolve_endpoints("mars")
    both = resolve_endpoints("eu", "http://127.0.0.1:8000/", "http://localhost:9000")
    assert both.api_url == "http://127.0.0.1:8000" and both.accounts_url == "http://localhost:9000"
    with pytest.raises(InsecureURLError):
        resolve_endpoints("us", "http://analyticsapi.zoho.com", None)
    with pytest.raises(InvalidInputError):
        resolve_endpoints("us", "ftp://x", None)


def test_missing_credentials_are_rejected() -> None:
    from zoho_async import AnalyticsSession

    with pytest.raises(MissingCredentialsError):
        AnalyticsSession("", "secret", "refresh")
    with pytest.raises(InvalidIdError):
        AnalyticsSession("id", "secret", "refresh", org_id="acme")
    with pytest.raises(InvalidInputError):
        AnalyticsSession("id", "secret", "refresh", timeout=-1)


def test_limits_validation_and_interval() -> None:
    limits = Limits(requests_per_minute=100, metadata_per_minute=60, safety_margin=0.0)
    assert limits.interval(True) == pytest.approx(1.0)
    assert limits.interval(False) == pytest.approx(0.6)
    for bad in ({"requests_per_minute": 0}, {"max_in_flight": -1}, {"safety_margin": 0.9}):
        with pytest.raises(InvalidInputError):
            Limits(**bad)


def test_retry_policy_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base=1.0, cap=8.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    jittered = RetryPolicy(base=1.0, cap=8.0, jitter=1.0)
    rng = random.Random(1)
    waits = [jittered.backoff(3, rng) for _ in range(200)]
    assert all(0 <= w <= 4.0 for w in waits) and len(set(waits)) > 100
    assert RetryPolicy.testing().backoff(5) == 0.0
    assert RetryPolicy(retry_after_cap=10).retry_after(500) == 10
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base=-1)


def test_retry_decisions() -> None:
    assert classify(TransportError("x", sent=False)) is Decision.SAFE
    assert classify(TransportError("x", sent=True)) is Decision.AMBIGUOUS
    assert classify(ServerError(7005)) is Decision.AMBIGUOUS
    assert classify(ServerError(0, http_status=502)) is Decision.AMBIGUOUS
    assert classify(ProtocolError("bad")) is Decision.AMBIGUOUS
    assert classify(RateLimitedError(6045)) is Decision.RATE_LIMITED
    assert classify(AuthError(8535)) is Decision.REFRESH
    assert classify(AuthError(8518)) is Decision.NO
    assert classify(TokenRefreshError("no")) is Decision.NO
    for code in (7301, 7103, 18061, 8182, 8183, 8507, 19000048):
        from zoho_async._errors import error_for_code

        assert classify(error_for_code(code)(code)) is Decision.NO
    assert classify(SyncInProgressError(18073)) is Decision.NO
    assert classify(ApiError(424242)) is Decision.NO
