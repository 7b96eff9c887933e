"""``sync --dry-run``: what a run would sync and the quota it would spend. Sends no sync.

The plan lists each workspace once (Get Datasources), like a real run, and reads the
manual-sync quota Zoho reports there.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import anyio

from zoho_async import SyncPlan, SyncTarget, WorkspaceInfo

from ._config import ConnectionSettings
from ._discover import resolve_orgs
from ._output import console_for, print_rows, stdout_console
from ._summary import EXIT_FAILED, EXIT_OK
from ._targets import Key, TargetSpec

__all__ = ["PLAN_COLUMNS", "run_plan"]

PLAN_COLUMNS = (
    ("workspace_id", "workspace"),
    ("datasource_id", "datasource"),
    ("name", "name"),
    ("sync_interval_id", "interval"),
    ("action", "action"),
    ("reason", "reason"),
    ("quota_left", "quota left"),
    ("last_sync_status", "last sync"),
)


async def _plan(settings: ConnectionSettings, spec: TargetSpec) -> SyncPlan:
    async with settings.session() as session:
        spec = await resolve_orgs(session, spec)
        items: list[WorkspaceInfo | SyncTarget] = [
            WorkspaceInfo(ws, org_id=org) for org, ws in spec.workspaces
        ]
        items.extend(spec.targets)
        return await session.plan_sync(items)


def _summary(rows: list[dict[str, Any]], workspaces: int, metadata_rate: int) -> dict[str, Any]:
    counts = {a: sum(1 for r in rows if r["action"] == a) for a in ("sync", "skip", "quota")}
    errors = sum(1 for r in rows if r["action"] == "error")
    calls = counts["sync"] + workspaces
    return {
        "syncs": counts["sync"],
        "quota_spend": counts["sync"],
        "skipped": counts["skip"],
        "quota_exhausted": counts["quota"],
        "errors": errors,
        "api_calls": calls,
        "minutes_at_rate": math.ceil(calls / metadata_rate) if calls else 0,
    }


def _summary_line(s: dict[str, Any], metadata_rate: int) -> str:
    return (
        f"Dry run, nothing sent: would send {s['syncs']} syncs, spending {s['quota_spend']} "
        f"manual syncs of the daily quota; {s['skipped']} skipped, {s['quota_exhausted']} "
        f"out of quota, {s['errors']} errors. About {s['api_calls']} API calls: "
        f"{s['minutes_at_rate']} min at {metadata_rate} metadata calls a minute."
    )


def run_plan(
    settings: ConnectionSettings,
    spec: TargetSpec,
    *,
    skip: frozenset[Key],
    fmt: str,
    quiet: bool,
    metadata_rate: int,
) -> int:
    """Print the plan; exit 1 when a workspace could not be listed, else 0."""
    plan = anyio.run(_plan, settings, spec)
    rows = [
        row
        for row in plan.rows()
        if (row["workspace_id"], row["datasource_id"], row["sync_interval_id"]) not in skip
    ]
    summary = _summary(rows, len(spec.workspaces), metadata_rate)
    line = _summary_line(summary, metadata_rate)
    if fmt == "json":
        doc = {"summary": summary, "entries": rows}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        print_rows(rows, PLAN_COLUMNS, fmt, title="Dry run")
    if fmt == "table":
        stdout_console().print(line, soft_wrap=True)
    elif not quiet:
        console_for(sys.stderr).print(line, soft_wrap=True)
    return EXIT_FAILED if summary["errors"] else EXIT_OK
