"""Before a run: fill in missing org ids, list the named workspaces, drop finished targets.

Workspaces are listed up front (one Get Datasources call each, the same calls a lazy run
would make) so the progress display knows the total and can show an ETA, and so a
``--resume`` can skip discovered targets that already started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

import attrs

from zoho_async import AnalyticsSession, PlannedTarget

from ._targets import Key, TargetSpec, target_key

__all__ = ["discover", "resolve_orgs"]

log = logging.getLogger("zoho_async")


async def resolve_orgs(session: AnalyticsSession, spec: TargetSpec) -> TargetSpec:
    """Give each workspace without an org id the org it belongs to.

    Needed only when no ``--org-id`` / ``ZOHO_ORG_ID`` is set: one "all workspaces" call
    (which needs no org header) maps every workspace the user can see to its org.
    """
    if session.org_id is not None:
        return spec
    orgless = {ws for org, ws in spec.workspaces if org is None}
    orgless |= {t.workspace_id for t in spec.targets if t.org_id is None}
    if not orgless:
        return spec
    known = {w.workspace_id: w.org_id for w in await session.get_workspaces()}
    for ws in sorted(orgless - known.keys()):
        log.warning("workspace %s is not in your workspace list; pass --org-id", ws)
    return TargetSpec(
        tuple((org or known.get(ws), ws) for org, ws in spec.workspaces),
        tuple(
            t if t.org_id else attrs.evolve(t, org_id=known.get(t.workspace_id))
            for t in spec.targets
        ),
    )


async def discover(
    session: AnalyticsSession,
    spec: TargetSpec,
    *,
    skip: Collection[Key],
    found: list[PlannedTarget],
    on_workspace: Callable[[], None],
) -> int:
    """Append what to sync to ``found``: explicit targets, then each workspace's
    datasources. Targets whose key is in ``skip`` are left out; returns how many.

    ``found`` is filled in place so that, if the listing is interrupted, the caller still
    knows (and reports) every target discovered so far.
    """
    skipped = 0
    for target in spec.targets:
        if target_key(target) in skip:
            skipped += 1
        else:
            found.append(PlannedTarget(target))
    for org_id, workspace_id in spec.workspaces:
        # a bare id when the org is unknown: the session's org (if any) then applies
        entry: str | tuple[str, str] = (org_id, workspace_id) if org_id else workspace_id
        async for item in session.discover([entry]):
            if item.target.datasource_id is not None and target_key(item.target) in skip:
                skipped += 1
            else:
                found.append(item)
        on_workspace()
    return skipped
