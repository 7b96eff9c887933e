"""The fake's world: its records, the registry that holds them, and a seeded generator.

- Records (:class:`FakeOrg`, :class:`FakeWorkspace`, :class:`FakeDatasource`, :class:`Quota`,
  :class:`SyncInterval`, :class:`FakeTable`): plain mutable records. The fake changes them
  only under its lock, so a test thread may read them after the fact (``run_in_thread``)
  without racing the server loop.
- :class:`World`: the registry of orgs, workspaces and datasources, with the builders that
  fill it. Ids are generated from a seeded ``random.Random`` so a given seed always yields
  the same world; they are digit strings longer than 32 bits, like Zoho's.
- :func:`populate`: the seeded generator of realistic worlds for ``FakeZoho.populated``. The
  same seed always gives the same orgs, workspaces, datasources and ids.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Literal, Protocol, cast

import attrs

# -- records ----------------------------------------------------------------------------

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


# -- registry ---------------------------------------------------------------------------

_DEFAULT_SOURCE = {
    "connection": "MySQL",
    "local_drive": "Local Drive",
    "snapshot": "Snapshot",
    "live": "Amazon Redshift",
}
_SCHEDULES = ("Every 15 Minutes", "Every Hour", "Every 3 Hours", "Daily", "Weekly")


class World:
    """Everything the analytics endpoints answer about. Guarded by ``lock``."""

    def __init__(
        self,
        *,
        seed: int,
        clock: Callable[[], float],
        default_sync_duration: float,
        lock: threading.RLock,
    ) -> None:
        self.lock = lock
        self.clock = clock
        self.default_sync_duration = default_sync_duration
        self.orgs: dict[str, FakeOrg] = {}
        self.workspaces: dict[str, FakeWorkspace] = {}
        # Keyed by workspace id, in insertion order: that is the listing order.
        self.datasources: dict[str, list[FakeDatasource]] = {}
        self.quotas: dict[str, Quota] = {}
        self._rng = random.Random(seed)
        self._used_ids: set[str] = set()

    # -- ids -----------------------------------------------------------------------------

    def new_id(self, low: int = 10**16, high: int = 10**19) -> str:
        """A fresh digit string, unique within this world (17 to 19 digits by default)."""
        while True:
            candidate = str(self._rng.randrange(low, high))
            if candidate not in self._used_ids:
                self._used_ids.add(candidate)
                return candidate

    def _claim(self, given: str) -> str:
        if given in self._used_ids:
            raise ValueError(f"id {given!r} is already in use")
        self._used_ids.add(given)
        return given

    # -- builders --------------------------------------------------------------------------

    def add_org(self, org_id: str | None, name: str, is_default: bool) -> FakeOrg:
        with self.lock:
            oid = self._claim(org_id) if org_id else self.new_id(10**10, 10**11)
            org = FakeOrg(
                org_id=oid,
                name=name,
                is_default=is_default or not self.orgs,
                created_by_zuid=self.new_id(10**9, 10**10),
            )
            if is_default:
                for other in self.orgs.values():
                    other.is_default = False
            self.orgs[oid] = org
            return org

    def add_workspace(
        self, org_id: str, workspace_id: str | None, name: str | None, owned: bool
    ) -> FakeWorkspace:
        with self.lock:
            if org_id not in self.orgs:
                raise KeyError(f"no org {org_id!r}; add it with add_org() first")
            wid = self._claim(workspace_id) if workspace_id else self.new_id()
            number = sum(1 for ws in self.workspaces.values() if ws.org_id == org_id) + 1
            workspace = FakeWorkspace(
                workspace_id=wid,
                org_id=org_id,
                name=name or f"Workspace {number}",
                owned=owned,
                # Somewhere in 2023, in epoch milliseconds, deterministic for the seed.
                created_time_ms=self._rng.randrange(1_672_531_200_000, 1_704_067_200_000),
                is_default=number == 1,
            )
            self.workspaces[wid] = workspace
            self.datasources[wid] = []
            return workspace

    def add_datasource(
        self,
        workspace_id: str,
        datasource_id: str | None,
        *,
        name: str | None,
        source: str | None,
        intervals: int,
        sync_used: int,
        total_sync_allowed: int,
        connection_id: str | None,
        forbidden: bool,
        kind: str,
        sync_duration: float | None,
        outcome: str,
        running: bool,
    ) -> FakeDatasource:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
        if intervals < 1:
            raise ValueError("intervals must be at least 1")
        if sync_duration is not None and sync_duration < 0:
            raise ValueError("sync_duration must be 0 (instant) or more seconds")
        with self.lock:
            workspace = self.workspaces.get(workspace_id)
            if workspace is None:
                raise KeyError(f"no workspace {workspace_id!r}; add it with add_workspace()")
            has_id = kind in ("connection", "live")
            if datasource_id is not None and not has_id:
                raise ValueError(f"{kind} datasources have no id in Zoho's listing")
            if has_id:
                dsid: str | None = self._claim(datasource_id) if datasource_id else self.new_id()
            else:
                dsid = None
            quota = self._quota(connection_id, sync_used, total_sync_allowed)
            schedule = _SCHEDULES[self._rng.randrange(len(_SCHEDULES))]
            number = len(self.datasources[workspace_id]) + 1
            resolved_source = source or _DEFAULT_SOURCE[kind]
            display = name or f"{resolved_source} {number}"
            tables = [
                FakeTable(self.new_id(), f"{display} Table {i + 1}", f"table_{i + 1}")
                for i in range(1 + self._rng.randrange(2))
            ]
            datasource = FakeDatasource(
                datasource_id=dsid,
                workspace_id=workspace_id,
                org_id=workspace.org_id,
                name=display,
                source=resolved_source,
                kind=cast(Kind, kind),
                quota=quota,
                intervals=[SyncInterval(self.new_id(), schedule) for _ in range(intervals)],
                tables=tables,
                forbidden=forbidden,
                sync_duration=sync_duration,
                outcome=outcome,
                schedule=schedule,
            )
            if running:
                duration = self.duration_of(datasource)
                datasource.running = True
                datasource.running_until = self.clock() + duration if duration > 0 else None
            self.datasources[workspace_id].append(datasource)
            return datasource

    def _quota(self, connection_id: str | None, used: int, allowed: int) -> Quota:
        # The first datasource naming a connection defines its quota; later ones share it.
        if connection_id is not None and connection_id in self.quotas:
            return self.quotas[connection_id]
        cid = connection_id or self.new_id()
        quota = Quota(cid, used, allowed)
        self.quotas[cid] = quota
        return quota

    # -- lookups -----------------------------------------------------------------------------

    def duration_of(self, datasource: FakeDatasource) -> float:
        if datasource.sync_duration is not None:
            return datasource.sync_duration
        return self.default_sync_duration

    def find_datasource(self, datasource_id: str) -> FakeDatasource:
        with self.lock:
            for entries in self.datasources.values():
                for datasource in entries:
                    if datasource.datasource_id == datasource_id:
                        return datasource
        raise KeyError(f"no datasource {datasource_id!r}")

    def in_workspace(self, workspace_id: str, datasource_id: str) -> FakeDatasource | None:
        for datasource in self.datasources.get(workspace_id, []):
            if datasource.datasource_id == datasource_id:
                return datasource
        return None


# -- generator --------------------------------------------------------------------------

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
