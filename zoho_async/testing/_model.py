"""The fake's world: orgs, workspaces, datasources, connection quotas, sync intervals.

Plain mutable records. They are changed only under the fake's lock, so a test thread may
read them after the fact (``run_in_thread``) without racing the server loop.
"""

from __future__ import annotations

from typing import Literal

import attrs

Kind = Literal["connection", "local_drive", "snapshot", "live"]
KINDS: frozenset[str] = frozenset({"connection", "local_drive", "snapshot", "live"})


@attrs.define(eq=False)
class FakeOrg:
    """An organisation. Example: ``fake.add_org(name="Acme").org_id``."""

    org_id: str
    name: str
    is_default: bool = False
    description: str = ""
    created_by: str = "admin@example.com"
    created_by_zuid: str = "0"
    plan_name: str = "Enterprise"
    role: str = "Account Admin"
    api_units_allocated: int = 100_000


@attrs.define(eq=False)
class FakeWorkspace:
    """A workspace in one org. Example: ``fake.add_workspace(org.org_id).workspace_id``."""

    workspace_id: str
    org_id: str
    name: str
    owned: bool = True
    created_time_ms: int = 0
    created_by: str = "admin@example.com"
    is_default: bool = False
    description: str = ""


@attrs.define(eq=False)
class Quota:
    """The manual-sync quota of one connection, shared by every datasource using it."""

    connection_id: str
    used: int
    allowed: int


@attrs.define(eq=False)
class SyncInterval:
    """One sync interval (schedule) of a datasource."""

    interval_id: str
    schedule: str = "Daily"
    last_status: str = ""
    last_time: str = ""


@attrs.define(eq=False)
class FakeTable:
    """A table fed by a datasource (``tableDetails[]``)."""

    view_id: str
    view_name: str
    source_name: str
    last_sync_time: str = ""
    sync_status: str = ""


@attrs.define(eq=False)
class FakeDatasource:
    """A datasource entry.

    ``datasource_id`` is None for Local Drive and Snapshot entries, which Zoho lists without
    an id (they cannot be synced). ``running`` with ``running_until`` None means "in progress
    until ``fake.finish_sync``".

    Example::

        ds = fake.add_datasource(ws.workspace_id, intervals=2)
        ds.interval_ids   # ['...', '...']
    """

    datasource_id: str | None
    workspace_id: str
    org_id: str
    name: str
    source: str
    kind: Kind
    quota: Quota
    intervals: list[SyncInterval]
    tables: list[FakeTable]
    forbidden: bool = False
    sync_duration: float | None = None
    outcome: str = "Success"
    schedule: str = "Daily"
    last_status: str = ""
    last_time: str = ""
    running: bool = False
    running_until: float | None = None
    running_interval: str | None = None

    @property
    def interval_ids(self) -> list[str]:
        return [interval.interval_id for interval in self.intervals]

    @property
    def connection_id(self) -> str:
        return self.quota.connection_id

    @property
    def sync_used(self) -> int:
        return self.quota.used

    @property
    def total_sync_allowed(self) -> int:
        return self.quota.allowed

    @property
    def syncable(self) -> bool:
        return self.kind == "connection" and self.datasource_id is not None
