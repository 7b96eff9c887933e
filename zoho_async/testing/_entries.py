"""JSON shapes of orgs, workspaces and datasource entries, as Zoho lists them.

Datasource entries hold strings only (Zoho sends numbers as strings there), and their shape
varies by source family, which is why clients must test for presence of each key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._model import FakeDatasource, FakeOrg, FakeWorkspace

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
