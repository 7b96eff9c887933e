"""A seeded generator of realistic worlds for ``FakeZoho.populated``.

The same seed always gives the same orgs, workspaces, datasources and ids.
"""

from __future__ import annotations

import random
from typing import Protocol

from ._model import FakeDatasource, FakeOrg, FakeWorkspace

_SOURCES = (
    "MySQL",
    "PostgreSQL",
    "MS SQL Server",
    "Oracle",
    "Zoho CRM",
    "Salesforce CRM",
    "Google Sheets",
    "FTP",
)


class _Builder(Protocol):
    def add_org(
        self, org_id: str | None = None, name: str = "Org", is_default: bool = False
    ) -> FakeOrg: ...

    def add_workspace(
        self,
        org_id: str,
        workspace_id: str | None = None,
        name: str | None = None,
        owned: bool = True,
    ) -> FakeWorkspace: ...

    def add_datasource(
        self,
        workspace_id: str,
        datasource_id: str | None = None,
        *,
        name: str | None = None,
        source: str | None = None,
        intervals: int = 1,
        sync_used: int = 0,
        total_sync_allowed: int = 5,
        connection_id: str | None = None,
        forbidden: bool = False,
        kind: str = "connection",
        sync_duration: float | None = None,
        outcome: str = "Success",
        running: bool = False,
    ) -> FakeDatasource: ...


def populate(
    fake: _Builder,
    *,
    orgs: int,
    workspaces: int,
    datasources_per_workspace: int,
    seed: int,
    mix: bool,
) -> None:
    """Fill ``fake``. With ``mix`` a realistic spread; without, plain syncable datasources.

    The mix, per datasource: about 4% Local Drive and 2% Snapshot entries (no id), 2% live
    connections, 6% with several sync intervals, 3% already running, 3% with the quota
    spent, 4% sharing a connection (and its quota) with the previous datasource, exactly one
    forbidden (7301); the rest plain, with 0 to 2 of 5 manual syncs used.
    """
    rng = random.Random(f"populate-{seed}")
    total = orgs * workspaces * datasources_per_workspace
    forbid_at = total // 2 if mix and total else -1
    forbidden_done = False
    position = 0
    for org_number in range(orgs):
        org = fake.add_org(name=f"Org {org_number + 1}", is_default=org_number == 0)
        for ws_number in range(workspaces):
            # Every fourth workspace is shared with us rather than owned.
            workspace = fake.add_workspace(
                org.org_id,
                name=f"Workspace {org_number + 1}.{ws_number + 1}",
                owned=ws_number % 4 != 3,
            )
            previous: FakeDatasource | None = None
            for _ in range(datasources_per_workspace):
                if not mix:
                    fake.add_datasource(workspace.workspace_id, source="MySQL")
                    position += 1
                    continue
                roll = rng.random()
                source = rng.choice(_SOURCES)
                kind, intervals, running, forbidden = "connection", 1, False, False
                sync_used, allowed, connection_id = rng.randint(0, 2), 5, None
                if roll < 0.04:
                    kind, source = "local_drive", "Local Drive"
                elif roll < 0.06:
                    kind, source = "snapshot", "Snapshot"
                elif roll < 0.08:
                    kind, source = "live", "Amazon Redshift"
                elif roll < 0.14:
                    intervals = rng.randint(2, 3)
                elif roll < 0.17:
                    running, sync_used = True, 1
                elif roll < 0.20:
                    sync_used = allowed
                elif roll < 0.24 and previous is not None:
                    connection_id, source = previous.connection_id, previous.source
                elif position >= forbid_at and not forbidden_done:
                    forbidden = forbidden_done = True
                datasource = fake.add_datasource(
                    workspace.workspace_id,
                    source=source,
                    kind=kind,
                    intervals=intervals,
                    running=running,
                    forbidden=forbidden,
                    sync_used=sync_used,
                    total_sync_allowed=allowed,
                    connection_id=connection_id,
                )
                position += 1
                if datasource.syncable and len(datasource.intervals) == 1:
                    previous = datasource
