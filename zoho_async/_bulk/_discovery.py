"""Discovery and planning: turn workspaces into targets, and say what a run would do.

Each workspace costs one Get Datasources call. A listing becomes one
:class:`PlannedTarget` per datasource and sync interval: entries without an id are
SKIPPED, exhausted quotas QUOTA_EXHAUSTED (no sync call), and a workspace that cannot be
listed one FAILED (or CANCELLED) item.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import anyio
import attrs

from .._errors import InvalidInputError, ZohoError
from .._executor import Executor
from .._models import Datasource, WorkspaceInfo
from .._protocol import datasources_request, entries
from .._results import (
    InvalidTarget,
    PlanEntry,
    PlannedTarget,
    SyncPlan,
    SyncStatus,
    SyncTarget,
    coerce_target,
    error_code,
    error_message,
    error_type,
)
from .._validation import check_id, check_optional_id
from ._context import BulkContext

__all__ = [
    "WORKSPACE_REF_KINDS",
    "discover",
    "expand",
    "normalise_workspaces",
    "plan_sync",
    "workspace_pair",
]


@runtime_checkable
class WorkspaceLike(Protocol):
    """A workspace object: ``WorkspaceInfo``, or the session's ``Workspace`` handle (which
    lives above this layer, so it is recognised by its shape)."""

    @property
    def workspace_id(self) -> str: ...

    @property
    def org_id(self) -> str | None: ...


WorkspaceRef = str | int | WorkspaceInfo | WorkspaceLike | Mapping[str, Any] | tuple[str, str]
Pair = tuple[str | None, str]  # (org_id, workspace_id)

# Named in every error about a workspace reference, so the fix is in the message.
WORKSPACE_REF_KINDS = (
    "a workspace id, WorkspaceInfo(workspace_id, org_id=...), session.workspace(workspace_id, "
    "org_id), or {'workspace_id': ..., 'org_id': ...}"
)
_AMBIGUOUS = (
    "a bare 2-tuple is ambiguous here: it could be (org_id, workspace_id) or "
    "(workspace_id, datasource_id). For a datasource use SyncTarget(workspace_id, "
    "datasource_id) or {'workspace_id': ..., 'datasource_id': ...}; for a workspace use "
    + WORKSPACE_REF_KINDS
)


def _is_target(item: object) -> bool:
    return isinstance(item, SyncTarget | PlannedTarget | InvalidTarget)


def _mapping_pair(default_org: str | None, entry: Mapping[Any, Any]) -> Pair:
    # datasource_id: None is allowed: it means "the whole workspace", as in targets files
    unknown = set(entry) - {"workspace_id", "org_id", "datasource_id"}
    if unknown:
        raise InvalidInputError(
            f"a workspace reference takes the keys workspace_id and org_id, got "
            f"{sorted(map(str, unknown))}; targets (with datasource_id) go to sync_many"
        )
    return (
        check_optional_id(entry.get("org_id"), "org_id") or default_org,
        check_id(entry.get("workspace_id"), "workspace_id"),
    )


def workspace_pair(default_org: str | None, entry: object, *, pairs: bool) -> Pair | None:
    """The (org_id, workspace_id) of a workspace reference, or ``None`` for anything else.

    Workspace references: an id (``str`` or ``int``; the session's org), a
    ``WorkspaceInfo``, a ``Workspace`` handle, or a mapping with ``workspace_id`` (and
    optionally ``org_id``). ``pairs`` says whether a bare ``(org_id, workspace_id)``
    2-tuple is read as a workspace too (only where nothing else could be meant).
    """
    if _is_target(entry):
        return None
    if isinstance(entry, str | int) and not isinstance(entry, bool):
        return (default_org, check_id(entry, "workspace_id"))
    if isinstance(entry, WorkspaceInfo | WorkspaceLike):
        return (
            check_optional_id(entry.org_id, "org_id") or default_org,
            check_id(entry.workspace_id, "workspace_id"),
        )
    if isinstance(entry, Mapping):
        return _mapping_pair(default_org, entry) if entry.get("datasource_id") is None else None
    if pairs and isinstance(entry, tuple) and len(entry) == 2:
        return (
            check_optional_id(entry[0], "org_id") or default_org,
            check_id(entry[1], "workspace_id"),
        )
    return None


def normalise_workspaces(default_org: str | None, workspaces: Iterable[WorkspaceRef]) -> list[Pair]:
    """(org_id, workspace_id) pairs, validated before any request.

    Accepts every kind :func:`workspace_pair` reads, and ``(org_id, workspace_id)``
    2-tuples (unambiguous here: everything given is a workspace). A target is refused with
    an :class:`InvalidInputError` that says where targets go.
    """
    if isinstance(workspaces, str | int) and not isinstance(workspaces, bool):
        workspaces = [workspaces]
    out: list[Pair] = []
    for entry in workspaces:
        pair = workspace_pair(default_org, entry, pairs=True)
        if pair is None:
            raise InvalidInputError(
                f"not a workspace reference: {_shown(entry)}; use {WORKSPACE_REF_KINDS} or an "
                "(org_id, workspace_id) tuple (give datasource targets to sync_many)"
            )
        out.append(pair)
    return out


def _shown(entry: object) -> str:
    text = repr(entry)
    return text if len(text) <= 80 else text[:77] + "..."


def _plan_target(item: object) -> SyncTarget:
    """A target given to plan_sync: what ``sync_many`` takes (SyncTarget, PlannedTarget,
    a mapping with datasource_id, a 3- or 4-tuple), except a bare 2-tuple, refused as
    ambiguous."""
    if isinstance(item, PlannedTarget):
        return item.target
    if isinstance(item, tuple | list) and len(item) == 2:
        raise InvalidInputError(f"plan_sync got {_shown(item)}: {_AMBIGUOUS}")
    return coerce_target(item)


def expand(
    org_id: str | None, workspace_id: str, datasources: list[Datasource]
) -> Iterator[PlannedTarget]:
    """Turn Get Datasources entries into planned targets (skips, quotas, intervals)."""
    for ds in datasources:
        if ds.datasource_id is None:
            target = SyncTarget(workspace_id, None, org_id, name=ds.name)
            yield PlannedTarget(target, preset=SyncStatus.SKIPPED, reason=ds.skip_reason)
            continue
        intervals = ds.intervals
        choices: list[tuple[str | None, str | None]] = (
            [(i.sync_interval_id, i.last_sync_time_raw or "") for i in intervals]
            if len(intervals) > 1
            else [(None, ds.last_sync_time_raw or "")]
        )
        left = ds.quota_left
        for n, (interval_id, baseline) in enumerate(choices):
            target = SyncTarget(
                workspace_id, ds.datasource_id, org_id, sync_interval_id=interval_id, name=ds.name
            )
            if left is not None and n >= left:
                yield PlannedTarget(
                    target,
                    preset=SyncStatus.QUOTA_EXHAUSTED,
                    reason=f"manual-sync quota used: {ds.sync_used} of "
                    f"{ds.total_sync_allowed} (from Get Datasources)",
                )
            else:
                yield PlannedTarget(target, baseline=baseline)


@attrs.frozen
class _Listing:
    """One workspace's datasources, or why they could not be read."""

    datasources: list[Datasource] | None = None
    error: ZohoError | None = None
    http_status: int | None = None
    data: Any = None


async def _list(executor: Executor, org_id: str | None, workspace_id: str) -> _Listing:
    call = await executor.call(datasources_request(workspace_id, org_id))
    if call.error is not None or call.cancelled:
        return _Listing(error=call.error, http_status=call.http_status)
    try:
        found = entries(call.data, "dataSources")
    except ZohoError as exc:
        return _Listing(error=exc, http_status=call.http_status)
    return _Listing(
        [Datasource.from_api(e, workspace_id=workspace_id) for e in found], data=call.data
    )


def discover(context: BulkContext, pairs: list[Pair]) -> AsyncIterator[PlannedTarget]:
    """List each workspace in turn and yield what to sync (lazily: one listing at a time)."""

    async def generate() -> AsyncIterator[PlannedTarget]:
        for org_id, workspace_id in pairs:
            sent_at = anyio.current_time()
            listing = await _list(context.executor, org_id, workspace_id)
            if listing.data is not None:
                # the run that syncs these targets settles against this very listing
                context.baselines.put((org_id, workspace_id), listing.data, sent_at)
            if listing.datasources is not None:
                for item in expand(org_id, workspace_id, listing.datasources):
                    yield item
                continue
            error = listing.error
            reason = "listing the workspace failed: " + (
                error_message(error) if error is not None else "deadline reached"
            )
            yield PlannedTarget(
                SyncTarget(workspace_id, None, org_id),
                preset=SyncStatus.FAILED if error is not None else SyncStatus.CANCELLED,
                reason=reason,
                error_code=error_code(error),
                error_type=error_type(error),
                http_status=listing.http_status,
            )

    return generate()


async def plan_sync(
    context: BulkContext, targets_or_workspaces: Iterable[Any] | AsyncIterable[Any]
) -> SyncPlan:
    """See :meth:`AnalyticsSession.plan_sync`."""
    items: list[Any]
    if isinstance(targets_or_workspaces, AsyncIterable):
        items = [x async for x in targets_or_workspaces]
    elif isinstance(targets_or_workspaces, str):
        items = [targets_or_workspaces]
    else:
        items = list(targets_or_workspaces)
    # Validate every item before the first listing, as sync_workspaces does.
    pairs: list[Pair] = []
    targets: list[SyncTarget] = []
    for item in items:
        pair = workspace_pair(context.org_id, item, pairs=False)
        if pair is not None:
            pairs.append(pair)
        else:
            targets.append(_plan_target(item))
    plan: list[PlanEntry] = []
    listed: dict[Pair, _Listing] = {}

    async def listing(org_id: str | None, workspace_id: str) -> _Listing:
        key = (org_id, workspace_id)
        if key not in listed:
            listed[key] = await _list(context.executor, org_id, workspace_id)
        return listed[key]

    for org_id, workspace_id in pairs:
        found = await listing(org_id, workspace_id)
        if found.datasources is None:
            plan.append(
                PlanEntry(SyncTarget(workspace_id, None, org_id), "error", reason=_why(found.error))
            )
            continue
        by_id = {d.datasource_id: d for d in found.datasources}
        for item in expand(org_id, workspace_id, found.datasources):
            ds = by_id.get(item.target.datasource_id)
            action = {
                None: "sync",
                SyncStatus.SKIPPED: "skip",
                SyncStatus.QUOTA_EXHAUSTED: "quota",
            }[item.preset]
            plan.append(
                PlanEntry(
                    item.target,
                    action,
                    reason=item.reason,
                    quota_left=ds.quota_left if ds else None,
                    last_sync_status=ds.last_sync_status if ds else None,
                )
            )
    planned: dict[str, int] = {}
    for target in targets:
        found = await listing(context.org(target.org_id), target.workspace_id)
        if found.datasources is None:
            plan.append(PlanEntry(target, "error", reason=_why(found.error)))
            continue
        match = next(
            (d for d in found.datasources if d.datasource_id == target.datasource_id), None
        )
        if match is None:
            plan.append(PlanEntry(target, "skip", reason="not in this workspace's datasources"))
            continue
        used = planned.get(target.datasource_id or "", 0)
        left = match.quota_left
        if left is not None and used >= left:
            plan.append(
                PlanEntry(
                    target,
                    "quota",
                    reason="manual-sync quota used",
                    quota_left=left,
                    last_sync_status=match.last_sync_status,
                )
            )
            continue
        planned[target.datasource_id or ""] = used + 1
        plan.append(
            PlanEntry(target, "sync", quota_left=left, last_sync_status=match.last_sync_status)
        )
    return SyncPlan(tuple(plan))


def _why(error: ZohoError | None) -> str:
    return error_message(error) if error is not None else "deadline reached"
