"""What a bulk run receives: its session's parts, handed down explicitly, and its options.

The bulk engine never reaches into :class:`~zoho_async.AnalyticsSession`: the session
builds a :class:`BulkContext` (executor, default org, CONFIG placement, limits, counters)
and the public methods turn their keyword arguments into one validated
:class:`RunOptions`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs

from .._coordinator import Coordinator
from .._errors import InvalidInputError
from .._executor import Executor
from .._journal import Journal
from .._models import SyncConfig
from .._pacing import Limits
from .._protocol import ApiRequest, build_sync_request, datasources_request
from .._results import SyncTarget
from .._settle import Baselines
from .._validation import check_positive

__all__ = [
    "DEFAULT_WAIT",
    "BulkContext",
    "RunOptions",
    "RunTasks",
    "as_journal",
    "list_workspace",
    "new_baselines",
]

DEFAULT_WAIT = 3600.0  # seconds a wait=True run waits for outcomes when not told


class RunTasks:
    """The ``iter_sync`` runs of one session that have not ended yet.

    Each run is a task of its iterator's own (see ``_iterator``), in no task group. The
    session keeps them here only so that closing it ends them: a run cannot go on without
    the session's connector, and nothing should outlive the session.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, task: asyncio.Task[None]) -> None:
        """Track ``task`` until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end(self) -> None:
        """Cancel the runs still going and wait until they have ended (even when the
        caller is cancelled: each run's own clean-up is bounded)."""
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)


@attrs.frozen
class BulkContext:
    """A session's parts that a bulk run uses; built by the session when a run starts.

    ``access_token`` gets (or refreshes) the token; ``counters`` reads the session's
    (token requests, HTTP requests) so a report can say what the run cost. ``baselines``
    holds the listings read before the run's first sync of each workspace (discovery's
    own listing serves when the run discovered its targets); ``settle_delay`` is how long
    a lost answer is given before its listing is read (the request timeout). ``runs``
    tracks the session's ``iter_sync`` runs so that closing the session ends them; they
    belong to their iterators, never to a task group of the session's.
    """

    executor: Executor
    org_id: str | None
    config_in_query: bool
    limits: Limits
    access_token: Callable[[], Awaitable[str]]
    counters: Callable[[], tuple[int, int]]
    settle_delay: float = 30.0
    coordinator: Coordinator | None = None  # shared claims (and budgets) across runs
    namespace: str = ""  # which Zoho (data centre) the claims are about
    runs: RunTasks = attrs.field(factory=RunTasks)
    baselines: Baselines = attrs.field(
        default=attrs.Factory(lambda self: new_baselines(self.executor), takes_self=True)
    )

    def org(self, org_id: str | None) -> str | None:
        """A target's org, or the session's default."""
        return org_id or self.org_id

    def sync_request(self, target: SyncTarget, default: SyncConfig | None) -> ApiRequest:
        """The Sync Data request of ``target`` (raises ``InvalidInputError`` first)."""
        return build_sync_request(
            target.workspace_id,
            target.datasource_id,
            self.org(target.org_id),
            target.config or default,
            target.sync_interval_id,
            config_in_query=self.config_in_query,
        )


async def list_workspace(executor: Executor, org_id: str | None, workspace_id: str) -> Any:
    """One Get Datasources call: its data, or ``None`` when it failed."""
    call = await executor.call(datasources_request(workspace_id, org_id))
    if call.error is not None or call.cancelled:
        return None
    return call.data


def new_baselines(executor: Executor, max_age: float | None = None) -> Baselines:
    """A baseline store that lists workspaces through ``executor``."""

    async def poll(org_id: str | None, workspace_id: str) -> Any:
        return await list_workspace(executor, org_id, workspace_id)

    return Baselines(poll, clock=anyio.current_time, max_age=max_age)


def _check_config(_inst: object, _attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, SyncConfig):
        raise InvalidInputError("config must be a SyncConfig or None")


def _check_optional_positive(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        check_positive(value, attr.name)


def _check_positive(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    check_positive(value, attr.name)


def as_journal(value: Any) -> Journal | None:
    """``journal=``: a :class:`Journal`, or a path to open one on."""
    if value is None or isinstance(value, Journal):
        return value
    if isinstance(value, str | os.PathLike):
        if not os.fspath(value):
            raise InvalidInputError("journal: an empty path")
        return Journal(value)
    raise InvalidInputError(
        f"journal must be a Journal, a path, or None, not {type(value).__name__}"
    )


def _check_event(_inst: object, _attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, anyio.Event):
        raise InvalidInputError("stop must be an anyio.Event or None")


@attrs.frozen
class RunOptions:
    """The options of one bulk run, validated once when it is built.

    ``deadline``: seconds from the start after which nothing new is sent. ``wait``: poll
    for each started sync's outcome, at most ``wait_timeout`` seconds (an hour when
    ``None``), one listing per workspace per ``poll_interval``. ``stop``: an event that
    ends the run gracefully. ``claim_ttl``: with a shared coordinator, how long this run's
    claims last while it runs (default: the deadline, else an hour, plus 10 minutes); when
    it ends they are cut to ``claim_margin`` seconds, so a run that overlapped it still
    skips what it synced. ``confirm_starts``: list each workspace before its first sync
    so that an attempt that may have reached Zoho is settled from its counters instead of
    being sent again (``False`` saves that listing and reports such attempts UNCONFIRMED,
    or re-sends them under ``RetryPolicy(resend_unconfirmed=True)``: the risky choice).
    ``journal``: write the run ahead into this :class:`~zoho_async.Journal` and resume
    what it holds (see ``zoho_async._journal``).

    Example::

        RunOptions(wait=True, wait_timeout=600, poll_interval=15)
    """

    config: SyncConfig | None = attrs.field(default=None, validator=_check_config)
    wait: bool = attrs.field(default=False, converter=bool)
    wait_timeout: float | None = attrs.field(default=None, validator=_check_optional_positive)
    deadline: float | None = attrs.field(default=None, validator=_check_optional_positive)
    poll_interval: float = attrs.field(default=30.0, validator=_check_positive)
    stop: anyio.Event | None = attrs.field(default=None, validator=_check_event, eq=False)
    confirm_starts: bool = attrs.field(default=True, converter=bool)
    claim_ttl: float | None = attrs.field(default=None, validator=_check_optional_positive)
    claim_margin: float = attrs.field(default=600.0, validator=_check_positive)
    journal: Journal | None = attrs.field(default=None, converter=as_journal, eq=False)

    @property
    def claim_seconds(self) -> float:
        """How long a claim lasts while its run runs."""
        if self.claim_ttl is not None:
            return self.claim_ttl
        return (self.deadline if self.deadline is not None else 3600.0) + self.claim_margin

    @property
    def wait_seconds(self) -> float:
        """How long to wait for outcomes (``wait_timeout``, or the default hour)."""
        return DEFAULT_WAIT if self.wait_timeout is None else self.wait_timeout
