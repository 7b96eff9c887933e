"""What the fake puts on the wire: envelopes, error codes, timestamps, listed entries.

Zoho's failure and success envelopes, the error table, Zoho's timestamp format, and the JSON
shapes of orgs, workspaces and datasource entries as Zoho lists them.

Pure data and functions, no I/O, so the analytics logic can build answers without aiohttp.

Datasource entries hold strings only (Zoho sends numbers as strings there), and their shape
varies by source family, which is why clients must test for presence of each key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs

from ._world import FakeDatasource, FakeOrg, FakeWorkspace

# -- envelopes, errors, times -----------------------------------------------------------

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

# code -> (HTTP status, summary constant, message). The HTTP statuses follow zoho-api.md;
# the summary constants and messages are the fake's own wording (Zoho localises messages,
# so clients must branch on the code only).
ERRORS: dict[int, tuple[int, str, str]] = {
    6045: (400, "API_LIMIT_EXCEEDED", "API request limit per minute exceeded. Try again later."),
    7005: (500, "INTERNAL_SERVER_ERROR", "Internal server error."),
    7103: (404, "WORKSPACE_NOT_FOUND", "Workspace not found."),
    7301: (403, "PERMISSION_DENIED", "You do not have permission to sync this datasource."),
    7387: (400, "ORG_MISMATCH", "The workspace does not belong to the given organization."),
    # 7404 is the fake's own code for an unknown URL: no source documents Zoho's.
    7404: (404, "URL_NOT_FOUND", "The requested URL does not exist."),
    8083: (400, "ORGID_MISSING", "The ZANALYTICS-ORGID header is missing."),
    8182: (403, "SYNC_INTERVAL_REQUIRED", "This datasource has several sync intervals; name one."),
    8183: (400, "INVALID_SYNC_INTERVAL", "The sync interval does not belong to this datasource."),
    8504: (400, "INVALID_CONFIG", "CONFIG is not a valid JSON object."),
    8507: (400, "CONFIG_TOO_LONG", "CONFIG exceeds the allowed length."),
    8535: (401, "INVALID_OAUTHTOKEN", "Invalid OAuth access token."),
    18061: (404, "DATASOURCE_NOT_FOUND", "Datasource not found in this workspace."),
    18073: (400, "SYNC_IN_PROGRESS", "A sync of this datasource is already in progress."),
    19000048: (400, "SYNC_LIMIT_EXCEEDED", "Manual sync limit for this connection is exhausted."),
}

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Abbreviations accepted for ``time_zone``; Zoho prints the abbreviation, not the offset.
# Any abbreviation with an explicit offset is accepted too: "CST@+08:00" (Shanghai),
# "IST@+01:00" (Ireland), "BST@+01:00" - the same letters Zoho prints for other places.
TIME_ZONES: dict[str, dt.timedelta] = {
    "IST": dt.timedelta(hours=5, minutes=30),
    "UTC": dt.timedelta(0),
    "GMT": dt.timedelta(0),
    "PST": dt.timedelta(hours=-8),
    "PDT": dt.timedelta(hours=-7),
    "EST": dt.timedelta(hours=-5),
    "EDT": dt.timedelta(hours=-4),
    "CET": dt.timedelta(hours=1),
    "CEST": dt.timedelta(hours=2),
    "SGT": dt.timedelta(hours=8),
    "JST": dt.timedelta(hours=9),
    "AEST": dt.timedelta(hours=10),
}


@attrs.frozen
class Reply:
    """An answer before it becomes an HTTP response. ``payload`` None means an empty body."""

    status: int
    payload: dict[str, Any] | None = None
    headers: dict[str, str] = attrs.field(factory=dict)


def success(summary: str, data: dict[str, Any]) -> Reply:
    return Reply(200, {"status": "success", "summary": summary, "data": data})


def failure_payload(code: int, message: str | None = None) -> dict[str, Any]:
    """Zoho's failure envelope for ``code`` (summary and message from :data:`ERRORS`)."""
    _, summary, default_message = ERRORS.get(code, (400, "ERROR", "Error."))
    return {
        "status": "failure",
        "summary": summary,
        "data": {"errorCode": code, "errorMessage": message or default_message},
    }


def failure(code: int, *, http_status: int | None = None, message: str | None = None) -> Reply:
    """The failure answer for ``code``, with the HTTP status from :data:`ERRORS`."""
    default_status = ERRORS.get(code, (400,))[0]
    return Reply(http_status or default_status, failure_payload(code, message))


def zone_spec(zone: str) -> tuple[str, dt.timedelta]:
    """(printed abbreviation, UTC offset) of a ``time_zone`` setting; ValueError if bad.

    Example::

        >>> zone_spec("CST@-06:00")
        ('CST', datetime.timedelta(days=-1, seconds=64800))
    """
    if zone in TIME_ZONES:
        return zone, TIME_ZONES[zone]
    name, at, offset = zone.partition("@")
    sign, hours, colon, minutes = offset[:1], offset[1:3], offset[3:4], offset[4:]
    if (
        not at
        or not (name.isalpha() and name.isupper() and 1 <= len(name) <= 5)
        or sign not in "+-"
        or not (hours.isdigit() and minutes.isdigit() and colon == ":" and len(offset) == 6)
        or int(hours) > 14
        or int(minutes) > 59
    ):
        raise ValueError(
            f"time_zone must be one of {sorted(TIME_ZONES)} or like 'CST@-06:00', got {zone!r}"
        )
    delta = dt.timedelta(hours=int(hours), minutes=int(minutes))
    return name, -delta if sign == "-" else delta


def zoho_time(moment: dt.datetime, zone: str) -> str:
    """Format like Zoho does: ``"03 August, 2024 03:39:16 PM IST"``.

    Month names are spelled out here rather than with ``%B`` so the locale cannot change them.

    Example::

        >>> zoho_time(dt.datetime(2024, 8, 3, 10, 9, 16, tzinfo=dt.UTC), "IST")
        '03 August, 2024 03:39:16 PM IST'
    """
    abbreviation, offset = zone_spec(zone)
    local = moment.astimezone(dt.timezone(offset))
    hour12 = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return (
        f"{local.day:02d} {_MONTHS[local.month - 1]}, {local.year} "
        f"{hour12:02d}:{local.minute:02d}:{local.second:02d} {half} {abbreviation}"
    )


# -- listed entries ---------------------------------------------------------------------

_PERIODS = {
    "Every 15 Minutes": 900.0,
    "Every Hour": 3600.0,
    "Every 3 Hours": 10800.0,
    "Daily": 86400.0,
    "Weekly": 604800.0,
}
_BRIDGED = {"MySQL", "PostgreSQL", "MS SQL Server", "Oracle", "MariaDB"}


def org_entry(org: FakeOrg, index: int, workspace_count: int) -> dict[str, Any]:
    # Zoho has been seen spelling the count both ways; alternate so clients accept both.
    count_key = "numberOfWorkspaces" if index % 2 == 0 else "numberOfworkspaces"
    return {
        "orgId": org.org_id,
        "orgName": org.name,
        "orgDesc": org.description,
        "createdBy": org.created_by,
        "createdByZuId": org.created_by_zuid,
        "planName": org.plan_name,
        "isDefault": org.is_default,
        count_key: str(workspace_count),
        "role": org.role,
    }


def workspace_entry(workspace: FakeWorkspace) -> dict[str, Any]:
    return {
        "workspaceId": workspace.workspace_id,
        "workspaceName": workspace.name,
        "workspaceDesc": workspace.description,
        "orgId": workspace.org_id,
        "createdTime": str(workspace.created_time_ms),
        "createdBy": workspace.created_by,
        "isDefault": workspace.is_default,
    }


def datasource_entry(
    datasource: FakeDatasource, now: float, stamp: Callable[[float], str]
) -> dict[str, Any]:
    """One element of ``data.dataSources[]``. ``stamp`` turns a clock reading into text."""
    bridged = datasource.source in _BRIDGED
    entry: dict[str, Any] = {"datasourceName": datasource.name}
    if datasource.datasource_id is not None:
        entry["datasourceId"] = datasource.datasource_id
    entry["source"] = datasource.source
    entry["fileType"] = "CSV" if datasource.kind == "local_drive" else ""
    entry["authType"] = "Basic" if bridged else ("" if datasource.kind != "connection" else "OAuth")
    entry["databridgeName"] = "Databridge-1" if bridged else ""
    entry["databridgeStatus"] = "Running" if bridged else ""
    tables = [
        {
            "viewName": table.view_name,
            "viewId": table.view_id,
            "sourceName": table.source_name,
            "lastSyncTime": table.last_sync_time,
            "syncStatus": table.sync_status,
        }
        for table in datasource.tables
    ]
    if datasource.kind == "live":
        # Live-connect sources report design syncs instead of data syncs.
        entry["lastDesignSyncStatus"] = datasource.last_status or "Success"
        entry["lastDesignSyncTime"] = datasource.last_time
        entry["tableDetails"] = tables
        return entry
    if datasource.kind in ("local_drive", "snapshot"):
        entry["lastDataSyncStatus"] = "Not Applicable"
        entry["lastDataSyncTime"] = ""
        entry["schedule"] = ""
        entry["nextScheduleTime"] = ""
        entry["tableDetails"] = tables
        return entry
    next_time = stamp(now + _PERIODS.get(datasource.schedule, 86400.0))
    entry["lastDataSyncStatus"] = datasource.last_status
    entry["lastDataSyncTime"] = datasource.last_time
    entry["nextScheduleTime"] = next_time
    entry["schedule"] = datasource.schedule
    entry["syncUsed"] = str(datasource.quota.used)
    entry["totalSyncAllowed"] = str(datasource.quota.allowed)
    if len(datasource.intervals) == 1:
        entry["syncIntervalId"] = datasource.intervals[0].interval_id
    else:
        entry["syncIntervals"] = [
            {
                "syncIntervalId": interval.interval_id,
                "lastDataSyncStatus": interval.last_status,
                "lastDataSyncTime": interval.last_time,
                "schedule": interval.schedule,
                "nextScheduleTime": next_time,
                # The quota belongs to the connection, so every interval reports its count.
                "syncUsed": str(datasource.quota.used),
            }
            for interval in datasource.intervals
        ]
    entry["tableDetails"] = tables
    return entry
