"""The registry of orgs, workspaces and datasources, with the builders that fill it.

Ids are generated from a seeded ``random.Random`` so a given seed always yields the same
world; they are digit strings longer than 32 bits, like Zoho's.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import cast

from ._model import (
    KINDS,
    FakeDatasource,
    FakeOrg,
    FakeTable,
    FakeWorkspace,
    Kind,
    Quota,
    SyncInterval,
)

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
