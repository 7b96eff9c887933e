"""The bulk engine: runs of many syncs, each target one result.

Rooms: ``_context`` (what a run receives: :class:`BulkContext`, :class:`RunOptions`),
``_source`` (lazy pull of targets), ``_run`` (workers and the one-result bookkeeping),
``_waiter`` (``wait=True``: polling and the pure matcher), ``_iterator`` (``iter_sync``),
``_discovery`` (workspaces to targets, and dry-run plans). Nothing here imports the
session: it receives what it needs.
"""

from ._context import BulkContext, RunOptions, new_baselines
from ._discovery import discover, normalise_workspaces, plan_sync
from ._iterator import SyncIterator
from ._run import sync_many

__all__ = [
    "BulkContext",
    "RunOptions",
    "SyncIterator",
    "discover",
    "new_baselines",
    "normalise_workspaces",
    "plan_sync",
    "sync_many",
]
