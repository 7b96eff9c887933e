"""``zoho-async orgs``, ``workspaces`` and ``datasources``: fetch, flatten into rows, print."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import click

from zoho_async import AnalyticsSession, Datasource, Org, WorkspaceInfo, check_id

from ._app import (
    CREDENTIALS_HELP,
    connection_options,
    errors_to_exit_codes,
    output_options,
    settings_from,
)
from ._config import REDACTOR, ConnectionSettings, setup_logging
from ._discover import resolve_orgs
from ._output import FORMATS, Column, print_rows
from ._targets import TargetSpec

__all__ = [
    "datasources",
    "list_datasources",
    "list_orgs",
    "list_workspaces",
    "orgs",
    "workspaces",
]

ORG_COLUMNS: tuple[Column, ...] = (
    ("org_id", "org id"),
    ("name", "name"),
    ("plan", "plan"),
    ("role", "role"),
    ("workspace_count", "workspaces"),
    ("is_default", "default"),
)
WORKSPACE_COLUMNS: tuple[Column, ...] = (
    ("workspace_id", "workspace id"),
    ("name", "name"),
    ("org_id", "org id"),
    ("owned", "owned"),
    ("created_time", "created"),
    ("is_default", "default"),
)
DATASOURCE_COLUMNS: tuple[Column, ...] = (
    ("name", "name"),
    ("datasource_id", "id"),
    ("source", "source"),
    ("schedule", "schedule"),
    ("last_sync_status", "last sync"),
    ("last_sync_time", "last sync time"),
    ("syncs", "syncs used/allowed"),
    ("intervals", "intervals"),
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def org_row(org: Org) -> dict[str, Any]:
    return {
        "org_id": org.org_id,
        "name": org.name,
        "plan": org.plan,
        "role": org.role,
        "workspace_count": org.workspace_count,
        "is_default": org.is_default,
    }


def workspace_row(ws: WorkspaceInfo) -> dict[str, Any]:
    return {
        "workspace_id": ws.workspace_id,
        "name": ws.name,
        "org_id": ws.org_id,
        "owned": ws.owned,
        "created_time": _iso(ws.created_time),
        "is_default": ws.is_default,
    }


def datasource_row(ds: Datasource) -> dict[str, Any]:
    used = "?" if ds.sync_used is None else ds.sync_used
    allowed = "?" if ds.total_sync_allowed is None else ds.total_sync_allowed
    return {
        "name": ds.name,
        "datasource_id": ds.datasource_id,
        "workspace_id": ds.workspace_id,
        "source": ds.source,
        "schedule": ds.schedule,
        "last_sync_status": ds.last_sync_status or None,
        # Zoho's own text ("03 August, 2024 03:39:16 PM IST"): what the user sees in Zoho
        "last_sync_time": ds.last_sync_time_raw or None,
        "sync_used": ds.sync_used,
        "total_sync_allowed": ds.total_sync_allowed,
        "syncs": f"{used}/{allowed}",
        "intervals": list(ds.interval_ids),
        "syncable": ds.syncable,
    }


async def _with_session(
    settings: ConnectionSettings, work: Callable[[AnalyticsSession], Awaitable[Any]]
) -> Any:
    async with settings.session() as session:
        REDACTOR.add(await session.get_access_token())
        return await work(session)


def list_orgs(settings: ConnectionSettings, fmt: str) -> None:
    async def work(session: AnalyticsSession) -> list[Org]:
        return await session.get_orgs()

    found: list[Org] = anyio.run(_with_session, settings, work)
    print_rows([org_row(o) for o in found], ORG_COLUMNS, fmt, title="Organisations")


def list_workspaces(settings: ConnectionSettings, fmt: str, kind: str) -> None:
    async def work(session: AnalyticsSession) -> list[WorkspaceInfo]:
        return await session.get_workspaces(kind)

    found: list[WorkspaceInfo] = anyio.run(_with_session, settings, work)
    print_rows([workspace_row(w) for w in found], WORKSPACE_COLUMNS, fmt, title="Workspaces")


def list_datasources(settings: ConnectionSettings, fmt: str, workspace_id: str) -> None:
    async def work(session: AnalyticsSession) -> list[Datasource]:
        spec = await resolve_orgs(session, TargetSpec(((None, workspace_id),)))
        org_id, ws = spec.workspaces[0]
        return await session.get_datasources(ws, org_id=org_id)

    found: list[Datasource] = anyio.run(_with_session, settings, work)
    columns = DATASOURCE_COLUMNS
    print_rows(
        [datasource_row(d) for d in found],
        columns,
        fmt,
        title=f"Datasources of workspace {workspace_id}",
    )


# -- the commands ---------------------------------------------------------------------


@click.command(epilog=CREDENTIALS_HELP)
@output_options(FORMATS)
@connection_options
def orgs(fmt: str, quiet: bool, verbose: int, **kwargs: Any) -> None:
    """List your organisations."""
    setup_logging(verbose, quiet)
    with errors_to_exit_codes():
        list_orgs(settings_from(kwargs), fmt)


@click.command(epilog=CREDENTIALS_HELP)
@click.option(
    "--kind", type=click.Choice(["all", "owned", "shared"]), default="all", show_default=True,
    help="Which workspaces: yours, those shared with you, or both.",
)  # fmt: skip
@output_options(FORMATS)
@connection_options
def workspaces(fmt: str, quiet: bool, verbose: int, kind: str, **kwargs: Any) -> None:
    """List your workspaces (owned and shared)."""
    setup_logging(verbose, quiet)
    with errors_to_exit_codes():
        list_workspaces(settings_from(kwargs), fmt, kind)


@click.command(epilog=CREDENTIALS_HELP)
@click.argument("workspace_id")
@output_options(FORMATS)
@connection_options
def datasources(fmt: str, quiet: bool, verbose: int, workspace_id: str, **kwargs: Any) -> None:
    """List a workspace's datasources: schedule, last sync, quota used, intervals."""
    setup_logging(verbose, quiet)
    with errors_to_exit_codes():
        list_datasources(settings_from(kwargs), fmt, check_id(workspace_id, "WORKSPACE_ID"))
