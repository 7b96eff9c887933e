"""The analytics endpoints and the life of a sync. No HTTP here.

:class:`AnalyticsApi` turns a parsed request (:class:`Call`) into a :class:`Reply`. The order
of checks for Sync Data mirrors what a client can observe from Zoho: who you are, which org,
which workspace, which datasource, is CONFIG sane, may you, which interval, is one already
running, is there quota left. Only then does a sync start.

A sync is started, in progress for a while, then finished. Completion is computed lazily:
whoever reads a datasource first calls :func:`settle_sync`, which finishes a sync whose time
is up. No background task, so nothing can outlive the server.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._wire import Reply, datasource_entry, failure, org_entry, success, workspace_entry
from ._world import FakeDatasource, World

# -- the life of a sync -----------------------------------------------------------------

Stamp = Callable[[float], str]  # clock reading -> Zoho timestamp string


def settle_sync(datasource: FakeDatasource, now: float, stamp: Stamp) -> None:
    """Finish the datasource's sync if its duration has passed by ``now``."""
    until = datasource.running_until
    if datasource.running and until is not None and now >= until:
        complete_sync(datasource, stamp(until))


def start_sync(
    datasource: FakeDatasource,
    interval_id: str | None,
    now: float,
    duration: float,
    stamp: Stamp,
) -> None:
    """Start a sync: spend one unit of the connection's quota, then run for ``duration``."""
    datasource.quota.used += 1
    datasource.running = True
    datasource.running_interval = interval_id
    if duration > 0:
        datasource.running_until = now + duration
    else:
        complete_sync(datasource, stamp(now))


def complete_sync(datasource: FakeDatasource, when: str) -> None:
    """Record the outcome on the datasource, its interval and its tables."""
    datasource.running = False
    datasource.running_until = None
    datasource.last_status = datasource.outcome
    datasource.last_time = when
    # A single-interval datasource is synced through its only interval even when the
    # caller named none.
    target = datasource.running_interval
    if target is None and len(datasource.intervals) == 1:
        target = datasource.intervals[0].interval_id
    for interval in datasource.intervals:
        if interval.interval_id == target:
            interval.last_status = datasource.outcome
            interval.last_time = when
    for table in datasource.tables:
        table.sync_status = datasource.outcome
        table.last_sync_time = when
    datasource.running_interval = None


# -- endpoints --------------------------------------------------------------------------

MAX_CONFIG_CHARS = 3000
INTERVAL_KEYS = ("syncIntervalId", "scheduleId")  # Zoho documents both spellings


@attrs.frozen
class Call:
    """One analytics request, reduced to what the endpoints need."""

    route: str
    args: Mapping[str, str]
    org_id: str | None
    config_raw: str | None
    now: float


def parse_config(raw: str | None) -> tuple[dict[str, Any] | None, int | None]:
    """Decode CONFIG: (the object or None, the error code or None)."""
    if raw is None:
        return None, None
    if len(raw) > MAX_CONFIG_CHARS:
        return None, 8507
    try:
        value = json.loads(raw)
    except ValueError:
        return None, 8504
    if not isinstance(value, dict):
        return None, 8504
    return value, None


class AnalyticsApi:
    def __init__(
        self,
        world: World,
        stamp: Callable[[float], str],
        units_used: Counter[str],
        started: Counter[str],
    ) -> None:
        self.world = world
        self.stamp = stamp
        self.units_used = units_used
        self.started = started  # the stats counter of syncs started

    def handle(self, call: Call) -> Reply:
        handler = getattr(self, f"_{call.route}", None)
        if handler is None:
            return failure(7404)
        reply: Reply = handler(call)
        if call.org_id and reply.status < 400:
            self.units_used[call.org_id] += 1
        return reply

    # -- discovery ---------------------------------------------------------------------------

    def _orgs(self, call: Call) -> Reply:
        world = self.world
        orgs = [
            org_entry(org, index, sum(ws.org_id == oid for ws in world.workspaces.values()))
            for index, (oid, org) in enumerate(world.orgs.items())
        ]
        return success("Get organizations", {"orgs": orgs})

    def _workspaces(self, call: Call) -> Reply:
        spaces = self.world.workspaces.values()
        owned = [workspace_entry(ws) for ws in spaces if ws.owned]
        shared = [workspace_entry(ws) for ws in spaces if not ws.owned]
        which = call.args.get("which")
        if which == "owned":
            return success("Get owned workspaces", {"workspaces": owned})
        if which == "shared":
            return success("Get shared workspaces", {"workspaces": shared})
        return success("Get all workspaces", {"ownedWorkspaces": owned, "sharedWorkspaces": shared})

    def _workspace(self, call: Call) -> Reply:
        workspace = self.world.workspaces.get(call.args["ws"])
        if workspace is None:
            return failure(7103)
        if call.org_id and call.org_id != workspace.org_id:
            return failure(7387)
        return success("Get workspace details", {"workspaces": workspace_entry(workspace)})

    def _datasources(self, call: Call) -> Reply:
        problem = self._check_workspace(call)
        if problem is not None:
            return problem
        entries = []
        for datasource in self.world.datasources[call.args["ws"]]:
            settle_sync(datasource, call.now, self.stamp)
            entries.append(datasource_entry(datasource, call.now, self.stamp))
        return success("Get datasources", {"dataSources": entries})

    def _resources(self, call: Call) -> Reply:
        if not call.org_id:
            return failure(8083)
        org = self.world.orgs.get(call.org_id)
        if org is None:
            return failure(7103, message="Organization not found.")
        used = self.units_used[org.org_id] + 1  # this request costs a unit too
        usage = {
            "allocated": str(org.api_units_allocated),
            "used": str(used),
            "remaining": str(max(0, org.api_units_allocated - used)),
            "remarks": "",
        }
        details = [{"resourceName": "API Units", "resourceUsage": usage}]
        return success("Get resource details", {"resourceDetails": details})

    # -- sync ------------------------------------------------------------------------------

    def _sync(self, call: Call) -> Reply:
        problem = self._check_workspace(call)
        if problem is not None:
            return problem
        datasource = self.world.in_workspace(call.args["ws"], call.args["ds"])
        if datasource is None:
            return failure(18061)
        config, config_error = parse_config(call.config_raw)
        if config_error is not None:
            return failure(config_error)
        if datasource.forbidden:
            return failure(7301)
        if not datasource.syncable:
            return failure(18061, http_status=400, message="This datasource cannot be synced.")
        interval_id, problem = self._pick_interval(datasource, config or {})
        if problem is not None:
            return problem
        settle_sync(datasource, call.now, self.stamp)
        if datasource.running:
            return failure(18073)
        if datasource.quota.used >= datasource.quota.allowed:
            return failure(19000048)
        start_sync(
            datasource, interval_id, call.now, self.world.duration_of(datasource), self.stamp
        )
        assert datasource.datasource_id is not None  # syncable implies an id
        self.started[datasource.datasource_id] += 1
        return Reply(204)

    def _pick_interval(
        self, datasource: FakeDatasource, config: Mapping[str, Any]
    ) -> tuple[str | None, Reply | None]:
        named = next((config[key] for key in INTERVAL_KEYS if key in config), None)
        if named is None:
            if len(datasource.intervals) > 1:
                return None, failure(8182)
            return None, None
        if str(named) not in datasource.interval_ids:
            return None, failure(8183)
        return str(named), None

    def _check_workspace(self, call: Call) -> Reply | None:
        if not call.org_id:
            return failure(8083)
        workspace = self.world.workspaces.get(call.args["ws"])
        if workspace is None:
            return failure(7103)
        if workspace.org_id != call.org_id:
            return failure(7387)
        return None
