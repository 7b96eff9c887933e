"""One bulk run: workers pull targets, each target gets exactly one result.

Shape of a run::

    Source (lazy iterable / async iterable / discovery)
        -> N workers (pull one item at a time)
            -> Executor.call (pacing per org, in-flight cap, token, retries)
        -> emit(result)                 (sync_many: collect + on_result; iter_sync: stream)
        -> Waiter (wait=True only: polls Get Datasources once per workspace per interval)

No task is created per target. If the run is cancelled, what was in flight is reported
as CANCELLED (or with the result it already had), started syncs that were being waited on
as STARTED without an outcome, and the rest of a sized input (a list, a tuple) as
CANCELLED. Any other source is not pulled further: a generator may never end, so its
unpulled targets get no result.

Delivery rule: a result counts as delivered the moment its ``emit`` is entered. It leaves
the finaliser's books just before, so a callback interrupted by cancellation (or one that
raised) is never called again with the same target: every target is emitted at most once,
and the finaliser emits exactly those whose ``emit`` never began.

A refused refresh token (:class:`TokenRefreshError`) is fatal to the run: nothing more is
sent, calls waiting for a pacing turn are woken, and every target not yet sent ends FAILED
with that error (the rest of a sized input too; any other source is not pulled further).

With a journal (``zoho_async._journal``) the run opens it before anything else, settles
the intents a killed run left pending (one listing per workspace, after they are at
least the request timeout old), hands back journaled results of targets that are done,
writes each workspace's baseline and each attempt's intent ahead of the request, and
each result as it is emitted. A journal that cannot be written stops the run like a
lost shared store: nothing is sent that the journal cannot vouch for.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import attrs
from anyio.abc import TaskGroup

from .. import _telemetry
from .._coordinator import Claim, CoordinatorUnavailableError
from .._errors import (
    InvalidInputError,
    ProtocolError,
    TokenRefreshError,
    TransportError,
    ZohoError,
)
from .._executor import BeforeSend, CallResult, RunControl, Settle
from .._journal import Intent, Journal, Key, result_from_row, target_key
from .._protocol import datasources_request
from .._results import (
    InvalidTarget,
    PlannedTarget,
    SyncReport,
    SyncResult,
    SyncStatus,
    SyncTarget,
    result_from_call,
)
from .._settle import RECHECKS, Settlement, Snapshot, Verdict, settle, settler
from ._context import BulkContext, RunOptions
from ._source import Item, Rejected, Source, check_sequence
from ._waiter import Waiter

__all__ = ["Run", "sync_many"]

log = logging.getLogger("zoho_async")

Emit = Callable[[SyncResult], Awaitable[None]]
OnResult = Callable[[SyncResult], Awaitable[None] | None]


def _now() -> datetime:
    return datetime.now(UTC)


DsKey = tuple[str | None, str, str]  # (org_id, workspace_id, datasource_id)

# Results after which a target's claim is kept until the run ends: a sync may be running.
_KEEP_CLAIM = frozenset({SyncStatus.STARTED, SyncStatus.ALREADY_RUNNING, SyncStatus.UNCONFIRMED})


class _Chain:
    """The syncs of one datasource in a run, one at a time.

    Zoho runs one sync per datasource: sending its next interval while our previous sync
    still runs only earns an 18073 of our own making. So the next one is parked until the
    previous one's outcome is known (its answer, and for a started sync its end).
    """

    __slots__ = ("busy", "parked", "started", "watched")

    def __init__(self) -> None:
        self.busy = False
        self.parked: list[tuple[int, Item]] = []
        self.started: tuple[SyncResult, str | None] | None = None  # still running
        self.watched = False


class Run:
    """Workers, deadline, waiter, and the one-result-per-target bookkeeping of one run.

    ``emit`` receives each result once it is final; ``emit_final`` is used while the run
    is being cancelled and must not block (by default ``emit``).
    """

    def __init__(
        self,
        context: BulkContext,
        options: RunOptions,
        *,
        emit: Emit,
        emit_final: Emit | None = None,
    ) -> None:
        self.context = context
        self.options = options
        self._deliver = emit
        self._deliver_final = emit_final or emit
        self._journal = options.journal
        self._opened_journal = False
        self._journal_lost: OSError | None = None
        # pending intents of the journal, settled before dispatch: key -> (verdict, intent)
        self._resolved: dict[Key, tuple[Settlement, Intent]] = {}
        self._clock = time.monotonic
        self.started = self._clock()
        deadline = options.deadline
        self.control = RunControl(None if deadline is None else self.started + deadline)
        # index -> (item, result once known): what the finaliser must still report
        self._active: dict[int, tuple[Item, SyncResult | None]] = {}
        self._waiter = Waiter(
            poll=self._list,
            emit=self._emit,
            poll_interval=options.poll_interval,
            wait_timeout=options.wait_seconds,
            clock=self._clock,
            ended=self._sync_ended,
        )
        self._chains: dict[DsKey, _Chain] = {}
        self._task_group: TaskGroup | None = None
        self.workers = max(2 * context.limits.max_in_flight, 2)
        # The refresh token was refused: the run can send nothing more (see _fail_run).
        self._fatal: TokenRefreshError | None = None
        # The coordinator's store went away mid-run (see _lose_shared).
        self._shared_lost: CoordinatorUnavailableError | None = None
        # claims this run holds, by target index; who holds them
        self._claims: dict[int, str] = {}
        self._holder = Claim(
            owner=uuid.uuid4().hex,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=time.time(),
        )
        # cancel scopes of workers waiting on an async source, woken by a fatal error
        self._pulls: set[anyio.CancelScope] = set()

    async def _emit(self, result: SyncResult) -> None:
        _telemetry.sync_result(result.status.value)
        self._write_result(result)
        await self._deliver(result)

    async def _emit_final(self, result: SyncResult) -> None:
        _telemetry.sync_result(result.status.value)
        self._write_result(result)
        await self._deliver_final(result)

    def _write_result(self, result: SyncResult) -> None:
        if self._journal is None or self._journal_lost is not None:
            return
        try:
            self._journal.result(result)
        except OSError as exc:
            self._lose_journal(exc)

    def stop(self) -> None:
        """Stop gracefully: send nothing new, let requests on the wire finish, and report
        everything else as CANCELLED (started syncs still being waited on as STARTED)."""
        if not self.control.stopped:
            log.info("stopping: no new requests; in-flight ones finish")
        self.control.stop()
        self._waiter.stop()

    @_telemetry.traced_run
    async def run(self, targets: Iterable[Any] | AsyncIterable[Any]) -> None:
        """Run every target to its one result; raises only bugs, callback errors and
        cancellation (after reporting every target)."""
        source = Source(targets)
        if self.options.stop is not None and self.options.stop.is_set():
            self.stop()  # set before the run began: the watcher below would start too late
        self._open_journal()
        try:
            await self._preflight_token()
            await self._settle_interrupted()
        except BaseException:
            self._close_journal()
            raise
        try:
            async with anyio.create_task_group() as outer:
                if self.options.stop is not None:
                    outer.start_soon(self._watch_stop, self.options.stop)
                if self._journal is not None and self._journal.sync_every > 0:
                    outer.start_soon(self._flush_journal, self._journal)
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    for _ in range(self.workers):
                        tg.start_soon(self._worker, source)
                outer.cancel_scope.cancel()  # the watcher is done too
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._report_unfinished(source)
            single: BaseException = exc
            while isinstance(single, BaseExceptionGroup) and len(single.exceptions) == 1:
                single = single.exceptions[0]  # the run's task groups nest: unwrap them all
            if single is not exc:
                # one error (say, from an on_result callback): raise it, not a group
                raise single from None
            raise
        finally:
            await source.aclose()
            with anyio.CancelScope(shield=True):
                await self._shorten_claims()
            self._close_journal()

    async def _watch_stop(self, event: anyio.Event) -> None:
        await event.wait()
        self.stop()

    async def _preflight_token(self) -> None:
        """One token before dispatch: bad credentials or a dead accounts server give one
        clear error here instead of a thousand identical FAILED results. Transient
        failures (network, 5xx) are retried like any safe call."""
        policy = self.context.executor.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                await self.context.access_token()
                return
            except (TransportError, ProtocolError):
                if attempt == policy.attempts:
                    raise
                await anyio.sleep(policy.backoff(attempt))

    async def _list(self, org_id: str | None, workspace_id: str) -> Any:
        """One listing for the waiter: its data, or ``None`` when the call failed."""
        call = await self.context.executor.call(datasources_request(workspace_id, org_id))
        self._check_fatal(call)
        if call.error is not None or call.cancelled:
            return None
        return call.data

    def _check_fatal(self, call: CallResult) -> None:
        if isinstance(call.error, TokenRefreshError):
            self._fail_run(call.error)

    def _fail_run(self, error: TokenRefreshError) -> None:
        """The refresh token was refused: no call of this run can succeed any more.

        Wake every call waiting for a pacing turn or a backoff (they return without
        sending), stop the waiter's polls, and stop pulling a source that may not end.
        ``_process`` then turns "not sent" into FAILED with ``error``, not CANCELLED.
        """
        if self._fatal is not None:
            return
        self._fatal = error
        log.info("the refresh token was refused; stopping the run: %s", error)
        self.control.stop()
        self._waiter.stop()
        for scope in list(self._pulls):
            scope.cancel()

    def _failed_fatal(self, index: int, item: Item, started: datetime, attempts: int) -> SyncResult:
        assert self._fatal is not None
        return _not_sent(
            item.target, index, SyncStatus.FAILED, "not sent", self._fatal, started, attempts
        )

    async def _report_unfinished(self, source: Source) -> None:
        """After cancellation: every target not yet reported gets its one result."""
        now = _now()
        for index, (item, known) in sorted(self._active.items()):
            await self._safe_emit(known or _cancelled(index, item, now, "run cancelled"))
        self._active.clear()
        for result in self._waiter.drain():
            await self._safe_emit(result)
        for index, item in source.drain_sync():
            await self._safe_emit(_cancelled(index, item, now, "run cancelled"))

    async def _safe_emit(self, result: SyncResult) -> None:
        # the reader of an iter_sync stream may be gone; the result then has nowhere to go
        with contextlib.suppress(
            anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.WouldBlock
        ):
            await self._emit_final(result)

    async def _pull(self, source: Source) -> tuple[int, Item] | None:
        if self._fatal is not None and not source.finite:
            return None  # the run cannot send any more: do not pull an endless source on
        if not source.awaits:
            return await source.next()
        # an async source may wait for its next item for ever: a fatal error ends the wait
        with anyio.CancelScope() as scope:
            self._pulls.add(scope)
            try:
                return await source.next()
            finally:
                self._pulls.discard(scope)
        return None

    async def _worker(self, source: Source) -> None:
        while True:
            pulled = await self._pull(source)
            if pulled is None:
                return
            index, item = pulled
            replay = self._replay(index, item)
            if replay is not None:
                # done in an earlier run: its journaled result, nothing sent (or written)
                await self._deliver(replay)
                continue
            self._active[index] = (item, None)
            chain = self._chain_of(item)
            if chain is not None:
                if chain.busy:
                    # an earlier sync of this datasource is ours and not over yet
                    chain.parked.append((index, item))
                    self._watch(chain)
                    continue
                chain.busy = True
            await self._handle(index, item, chain)

    async def _handle(self, index: int, item: Item, chain: _Chain | None) -> None:
        with _telemetry.sync_outcome() as outcome:
            result = await self._process(index, item)
            outcome(result.status.value)  # on the span of its Sync Data call
        if self._claims:
            await self._settle_claim(result)
        self._active[index] = (item, result)
        if result.attempts == 0:
            # nothing was sent, so nothing yielded: let other tasks (and cancellation)
            # in, or a long run of presets/invalid targets would hog the loop
            await anyio.lowlevel.checkpoint()
        baseline = self._baseline_text(item)
        if chain is not None:
            if result.status is SyncStatus.STARTED:
                chain.started = (result, baseline)
            else:
                await self._release(chain)
        if self.options.wait and result.status in (
            SyncStatus.STARTED,
            SyncStatus.ALREADY_RUNNING,
        ):
            self._start_waiting(index, result, baseline, report=True)
            if chain is not None and chain.started is not None:
                chain.watched = True
            del self._active[index]
            return
        # The delivery rule (module docstring): off the finaliser's books first, then
        # emitted; no await in between, so the result is in exactly one of the two.
        del self._active[index]
        await self._emit(result)
        if chain is not None:
            self._watch(chain)

    def _chain_of(self, item: Item) -> _Chain | None:
        """The datasource's chain, for targets of a datasource synced per interval."""
        if isinstance(item, Rejected) or item.preset is not None:
            return None
        target = item.target
        interval = target.sync_interval_id or (
            target.config.sync_interval_id if target.config is not None else None
        )
        if target.datasource_id is None or interval is None:
            return None
        key = (self.context.org(target.org_id), target.workspace_id, target.datasource_id)
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = _Chain()
        return chain

    def _watch(self, chain: _Chain) -> None:
        """Poll for the end of the chain's running sync once something waits behind it."""
        if chain.started is None or chain.watched or not chain.parked:
            return
        chain.watched = True
        result, baseline = chain.started
        self._start_waiting(result.index, result, baseline, report=False)

    async def _sync_ended(self, result: SyncResult, finished: bool) -> None:
        """The waiter saw a sync end (or gave up on it): release the next interval."""
        target = result.target
        if target.workspace_id is None or target.datasource_id is None:
            return
        key = (self.context.org(target.org_id), target.workspace_id, target.datasource_id)
        chain = self._chains.get(key)
        if chain is None or chain.started is None or chain.started[0].index != result.index:
            return
        if finished:
            await self._release(chain)
            return
        # The wait gave up: sending the next interval now would only meet 18073.
        chain.started = None
        chain.watched = False
        parked, chain.parked = chain.parked, []
        chain.busy = False
        for index, item in parked:
            now = _now()
            self._active.pop(index, None)
            if self._fatal is not None:
                await self._emit(self._failed_fatal(index, item, now, 0))
                continue
            if self.control.stopped:
                await self._emit(_cancelled(index, item, now, self._why_not_sent()))
                continue
            await self._emit(
                SyncResult(
                    item.target,
                    index,
                    SyncStatus.SKIPPED,
                    error_message="not sent: an earlier interval of this datasource was still "
                    f"syncing ({result.error_message})",
                    started_at=now,
                    finished_at=now,
                )
            )

    async def _release(self, chain: _Chain) -> None:
        """The chain's sync is over: hand its next parked interval to a new task."""
        chain.started = None
        chain.watched = False
        if not chain.parked:
            chain.busy = False
            return
        index, item = chain.parked.pop(0)
        assert self._task_group is not None
        self._task_group.start_soon(self._handle, index, item, chain)

    def _baseline_text(self, item: Item) -> str | None:
        """The time text a wait compares with: discovery's, else the run's baseline."""
        if isinstance(item, Rejected):
            return None
        if isinstance(item, PlannedTarget) and item.baseline is not None:
            return item.baseline
        target = item.target
        resolved = self._resolved.get(target_key(target)) if target.datasource_id else None
        if (
            resolved is not None
            and resolved[0].verdict is Verdict.STARTED
            and resolved[1].baseline is not None
        ):
            # started by the interrupted run: its end shows against that run's baseline
            return resolved[1].baseline.text(target.datasource_id, target.sync_interval_id)
        snapshot = self.context.baselines.baseline(
            (self.context.org(target.org_id), target.workspace_id)
        )
        if snapshot is None or not self.options.confirm_starts:
            return None
        return snapshot.text(target.datasource_id, target.sync_interval_id)

    def _why_not_sent(self) -> str:
        if self._journal_lost is not None:
            return f"not sent: the journal cannot be written ({self._journal_lost})"
        if self.control.stopped:
            return "stopped before it was sent"
        return "deadline reached before it was sent"

    async def _process(self, index: int, item: Item) -> SyncResult:
        started = _now()
        if isinstance(item, Rejected):
            return SyncResult(
                item.target,
                index,
                SyncStatus.FAILED,
                error_message=item.reason,
                error_type="InvalidInputError",
                started_at=started,
                finished_at=started,
            )
        target = item.target
        if item.preset is not None:
            return SyncResult(
                target,
                index,
                item.preset,
                error_code=item.error_code,
                error_message=item.reason,
                http_status=item.http_status,
                error_type=item.error_type,
                started_at=started,
                finished_at=started,
            )
        interrupted = self._interrupted(index, target, started)
        if interrupted is not None:
            # decided by the journal, whatever else happens now: a CANCELLED line would
            # hide a sync the interrupted run started
            return interrupted
        if self._fatal is not None:
            return self._failed_fatal(index, item, started, 0)
        if self._shared_lost is not None:
            return self._cancelled_shared(index, item, started, 0)
        if self.control.over():
            return _cancelled(index, item, started, self._why_not_sent())
        if target.datasource_id is None:
            return SyncResult(
                target,
                index,
                SyncStatus.SKIPPED,
                error_message="no datasource id",
                started_at=started,
                finished_at=started,
            )
        try:
            request = self.context.sync_request(target, self.options.config)
        except InvalidInputError as exc:
            return SyncResult(
                target,
                index,
                SyncStatus.FAILED,
                error_message=str(exc),
                error_type=type(exc).__name__,
                started_at=started,
                finished_at=_now(),
            )
        claimed = await self._claim(index, target, started)
        if claimed is not None:
            return claimed
        key = (self.context.org(target.org_id), target.workspace_id)
        baseline = None
        if self.options.confirm_starts:
            baseline = await self.context.baselines.before_send(key)
        call = await self.context.executor.call(
            request,
            control=self.control,
            settle=self._settler(key, target),
            before_send=self._intent_hook(key, baseline, target, index),
        )
        if call.ok or call.ours_in_progress:
            self.context.baselines.note_started(key, target.datasource_id)
        self._check_fatal(call)
        if isinstance(call.error, CoordinatorUnavailableError):
            self._lose_shared(call.error)
        if self._shared_lost is not None and call.cancelled:
            return self._cancelled_shared(index, item, started, call.attempts)
        if self._fatal is not None and call.cancelled:
            # Woken by the fatal error from its pacing turn or a backoff: not sent again,
            # and never will be. (An attempt that may have reached Zoho is settled before
            # any retry, so a cancelled call's last error never hides a started sync.)
            return self._failed_fatal(index, item, started, call.attempts)
        return result_from_call(
            target,
            index,
            call,
            started_at=started,
            finished_at=_now(),
            why_cancelled=self._why_not_sent(),
            stopped=self.control.stopped,
        )

    # -- the journal --------------------------------------------------------------------

    def _open_journal(self) -> None:
        journal = self._journal
        if journal is None:
            return
        if not journal.is_open:
            journal.open()  # JournalInUseError before any request
            self._opened_journal = True
        # the run's claims carry the journal's run id: a resume knows its own claims
        self._holder = attrs.evolve(self._holder, owner=journal.run_id)

    def _close_journal(self) -> None:
        if self._journal is not None and self._opened_journal:
            self._opened_journal = False
            self._journal.close()

    async def _flush_journal(self, journal: Journal) -> None:
        """Put what the run wrote on disk every ``sync_every`` seconds (batched fsync)."""
        while self._journal_lost is None:
            await anyio.sleep(journal.sync_every)
            try:
                await journal.flush()
            except OSError as exc:
                self._lose_journal(exc)

    def _lose_journal(self, error: OSError) -> None:
        """The journal cannot be written: stop sending (an unrecorded send could be sent
        again after a crash); requests on the wire finish, the rest end CANCELLED."""
        if self._journal_lost is not None:
            return
        self._journal_lost = error
        log.error("the journal cannot be written; stopping the run: %s", error)
        self.control.stop()
        for scope in list(self._pulls):
            scope.cancel()

    def _replay(self, index: int, item: Item) -> SyncResult | None:
        """A target done in the journal: its journaled result, under this run's index."""
        if self._journal is None or isinstance(item, Rejected):
            return None
        target = item.target
        if target.datasource_id is None:
            return None
        key = target_key(target)
        if not self._journal.is_done(key):
            return None
        return result_from_row(target, index, self._journal.state.results[key])

    def _intent_hook(
        self,
        key: tuple[str | None, str],
        baseline: Snapshot | None,
        target: SyncTarget,
        index: int,
    ) -> BeforeSend | None:
        journal = self._journal
        if journal is None:
            return None

        async def before_send(attempt: int) -> bool:
            if self._journal_lost is not None:
                return False
            try:
                if self.options.confirm_starts:
                    journal.baseline(key, baseline)
                await journal.intent(target, key[0], index, attempt)
            except OSError as exc:
                self._lose_journal(exc)
                return False
            return True

        return before_send

    async def _settle_interrupted(self) -> None:
        """Settle the intents a killed run left without a result (see the module doc).

        Each is at least the request timeout old before its workspace is listed: a
        request of the killed run is then over, one way or the other. An intent whose
        workspace cannot be listed now stays pending: its target ends UNCONFIRMED in this
        run's report, and is not written, so the next resume settles it.
        """
        journal = self._journal
        if journal is None:
            return
        pending = [
            intent for key, intent in journal.state.pending.items() if journal.is_unsettled(key)
        ]
        if not pending:
            return
        quiet = self.context.settle_delay
        youngest = max(intent.at for intent in pending)
        wait = (youngest + timedelta(seconds=quiet) - _now()).total_seconds()
        if wait > 0:
            log.info(
                "resuming %d interrupted attempt(s): waiting %.1f s for their requests to end",
                len(pending),
                min(wait, quiet),
            )
            with self.control.waiting() as scope:
                await anyio.sleep(min(wait, quiet))
            if scope.cancel_called:
                return
        groups: dict[tuple[str | None, str], list[Intent]] = {}
        for intent in pending:
            if intent.baseline is None:
                why = "no baseline listing was journaled before it (confirm_starts=False?)"
                self._resolve(intent, Settlement(Verdict.UNKNOWN, why))
            else:
                org = self.context.org(intent.org_id)
                groups.setdefault((org, intent.key[0]), []).append(intent)
        for (org, workspace_id), intents in groups.items():
            await self._settle_workspace(org, workspace_id, intents)

    async def _settle_workspace(
        self, org: str | None, workspace_id: str, intents: list[Intent]
    ) -> None:
        """One listing settles every pending intent of the workspace; one whose sync, if
        it started, is still running (and whose counter other datasources may have moved)
        is listed again until its end tells, like an ambiguous attempt within a run
        (``RECHECKS`` more listings at most)."""
        recheck = min(max(self.context.settle_delay, 1.0), 10.0)
        rechecks = RECHECKS
        while intents:
            if self.control.over():
                return  # stopped: what is left stays pending
            sent_at = anyio.current_time()
            data = await self._list(org, workspace_id)
            if data is None:
                return  # stays pending (see _settle_interrupted)
            self.context.baselines.put((org, workspace_id), data, sent_at)
            fresh = Snapshot.from_data(data, sent_at)
            later: list[tuple[Intent, Settlement]] = []
            for intent in intents:
                verdict = self._verdict(intent, fresh)
                if verdict.later and rechecks > 0:
                    later.append((intent, verdict))
                else:
                    self._resolve(intent, verdict)
            if not later:
                return
            rechecks -= 1
            with self.control.waiting() as scope:
                await anyio.sleep(recheck)
            if scope.cancel_called:
                for intent, verdict in later:
                    self._resolve(intent, verdict)  # UNCONFIRMED: it may have started
                return
            intents = [intent for intent, _ in later]

    @staticmethod
    def _verdict(intent: Intent, fresh: Snapshot | None) -> Settlement:
        _, datasource_id, interval = intent.key
        assert datasource_id is not None
        if intent.doubtful:
            return Settlement(
                Verdict.UNKNOWN,
                "an earlier attempt on this datasource is UNCONFIRMED, so its counters cannot tell",
            )
        return settle(
            intent.baseline,
            fresh,
            datasource_id,
            interval,
            ours=intent.ours,
            answered=True,  # the request has been over for a timeout
        )

    def _resolve(self, intent: Intent, verdict: Settlement) -> None:
        assert self._journal is not None
        log.debug("interrupted attempt %s: %s", intent.key, verdict.evidence)
        self._resolved[intent.key] = (verdict, intent)
        self._journal.settled(intent.key)

    def _interrupted(self, index: int, target: SyncTarget, started: datetime) -> SyncResult | None:
        """The result of a target a killed run may have sent, when the journal decides it
        (STARTED or UNCONFIRMED); None when it is sent as usual."""
        if self._journal is None or target.datasource_id is None:
            return None
        key = target_key(target)
        resolved = self._resolved.get(key)
        if resolved is None:
            if not self._journal.is_unsettled(key):
                return None
            return SyncResult(
                target,
                index,
                SyncStatus.UNCONFIRMED,
                error_message="an interrupted run may have sent it, and it could not be "
                "settled now (its workspace could not be listed): not sent; resume again",
                error_type="SyncUnconfirmedError",
                started_at=started,
                finished_at=_now(),
            )
        verdict, intent = resolved
        if verdict.verdict is Verdict.NOT_STARTED:
            return None
        if verdict.verdict is Verdict.STARTED:
            return SyncResult(
                target,
                index,
                SyncStatus.STARTED,
                error_message="sent by an interrupted run; confirmed from Get Datasources: "
                + verdict.evidence,
                attempts=intent.attempt,
                started_at=intent.at,
                finished_at=_now(),
            )
        return SyncResult(
            target,
            index,
            SyncStatus.UNCONFIRMED,
            error_message=f"an interrupted run may have sent it: {verdict.evidence}",
            error_type="SyncUnconfirmedError",
            attempts=intent.attempt,
            started_at=intent.at,
            finished_at=_now(),
        )

    # -- claims (a coordinator shared with other runs) -------------------------------------

    def _claim_key(self, target: SyncTarget) -> str:
        interval = target.sync_interval_id or (
            target.config.sync_interval_id if target.config is not None else None
        )
        org = self.context.org(target.org_id) or ""
        return (
            f"claim:{self.context.namespace}:{org}:{target.workspace_id}:"
            f"{target.datasource_id}:{interval or ''}"
        )

    async def _claim(self, index: int, target: SyncTarget, started: datetime) -> SyncResult | None:
        """Claim the target for this run; its result when another run holds it (CLAIMED)
        or the shared store is gone (CANCELLED), else None: go ahead and send."""
        coordinator = self.context.coordinator
        if coordinator is None:
            return None
        key = self._claim_key(target)
        try:
            other = await coordinator.claim(key, self._holder, self.options.claim_seconds)
            if (
                other is not None
                and self._journal is not None
                and other.owner in self._journal.state.runs
            ):
                # held by an earlier run of this journal: that run is over (this one
                # holds the journal's lock) and, the journal says, did not start it
                await coordinator.release(key, other.owner)
                other = await coordinator.claim(key, self._holder, self.options.claim_seconds)
        except CoordinatorUnavailableError as exc:
            self._lose_shared(exc)
            return self._cancelled_shared(index, target, started, 0)
        if other is None:
            self._claims[index] = key
            return None
        since = datetime.fromtimestamp(other.started_at, UTC).isoformat(timespec="seconds")
        return SyncResult(
            target,
            index,
            SyncStatus.CLAIMED,
            error_message=f"claimed by {other.describe()}, started {since}; not sent",
            started_at=started,
            finished_at=_now(),
        )

    async def _settle_claim(self, result: SyncResult) -> None:
        """A target that did not start a sync gives its claim back at once (a retry by
        any run may send it); a started one keeps it until the run ends."""
        key = self._claims.get(result.index)
        if key is None or result.status in _KEEP_CLAIM:
            return
        del self._claims[result.index]
        coordinator = self.context.coordinator
        assert coordinator is not None
        with contextlib.suppress(CoordinatorUnavailableError):
            await coordinator.release(key, self._holder.owner)

    async def _shorten_claims(self) -> None:
        """At the end of the run, its claims last ``claim_margin`` more seconds: a run that
        overlapped this one still skips what this one synced; a later one does not."""
        coordinator = self.context.coordinator
        if coordinator is None or not self._claims or self._shared_lost is not None:
            return
        # Bounded: this runs shielded, even on Ctrl-C. Claims not shortened in time simply
        # last their full TTL.
        with anyio.move_on_after(5), contextlib.suppress(CoordinatorUnavailableError):
            for key in self._claims.values():
                await coordinator.claim(key, self._holder, self.options.claim_margin)

    def _lose_shared(self, error: CoordinatorUnavailableError) -> None:
        """The shared store is gone mid-run: stop sending (never fall back to per-process
        budgets); requests on the wire finish, the rest end CANCELLED."""
        if self._shared_lost is not None:
            return
        self._shared_lost = error
        log.warning("shared state unavailable; stopping the run: %s", error)
        self.control.stop()
        for scope in list(self._pulls):
            scope.cancel()

    def _cancelled_shared(
        self, index: int, item: Item | SyncTarget, started: datetime, attempts: int
    ) -> SyncResult:
        assert self._shared_lost is not None
        target = item if isinstance(item, SyncTarget) else item.target
        why = "shared state unavailable"
        return _not_sent(
            target, index, SyncStatus.CANCELLED, why, self._shared_lost, started, attempts
        )

    def _settler(self, key: tuple[str | None, str], target: Any) -> Settle:
        """How an ambiguous attempt of ``target`` is settled (see ``_settle``)."""
        if not self.options.confirm_starts:

            async def unchecked(_error: ZohoError, _answered: bool) -> Settlement:
                return Settlement(Verdict.UNKNOWN, "not checked (confirm_starts=False)")

            return unchecked
        interval = target.sync_interval_id or (
            target.config.sync_interval_id if target.config is not None else None
        )
        return settler(
            self.context.baselines,
            key,
            target.datasource_id,
            interval,
            delay=self.context.settle_delay,
            waiting=self.control.waiting,
        )

    def _start_waiting(
        self, index: int, result: SyncResult, baseline: str | None, *, report: bool
    ) -> None:
        target = result.target
        assert target.workspace_id is not None  # only sent targets are waited on
        key = (self.context.org(target.org_id), target.workspace_id)
        if self._waiter.add(key, index, result, baseline, report=report):
            assert self._task_group is not None
            self._task_group.start_soon(self._waiter.poll, key)


def _not_sent(
    target: SyncTarget | InvalidTarget,
    index: int,
    status: SyncStatus,
    why: str,
    error: ZohoError,
    started: datetime,
    attempts: int,
) -> SyncResult:
    """A target the run will not send because of ``error`` (a run-wide failure)."""
    return SyncResult(
        target,
        index,
        status,
        error_message=f"{why}: {error}",
        error_type=type(error).__name__,
        attempts=attempts,
        started_at=started,
        finished_at=_now(),
    )


def _cancelled(index: int, item: Item, now: datetime, why: str) -> SyncResult:
    return SyncResult(
        item.target,
        index,
        SyncStatus.CANCELLED,
        error_message=why,
        started_at=now,
        finished_at=now,
    )


async def sync_many(
    context: BulkContext,
    targets: Iterable[Any] | AsyncIterable[Any],
    options: RunOptions,
    on_result: OnResult | None = None,
) -> SyncReport:
    """Run every target and collect the report (see ``AnalyticsSession.sync_many``)."""
    results: dict[int, SyncResult] = {}

    async def emit(result: SyncResult) -> None:
        results[result.index] = result
        if on_result is not None:
            outcome = on_result(result)
            if inspect.isawaitable(outcome):
                await outcome

    check_sequence(targets)
    tokens_before, http_before = context.counters()
    run = Run(context, options, emit=emit)
    started_at = _now()
    await run.run(targets)
    tokens_after, http_after = context.counters()
    return SyncReport(
        tuple(results[i] for i in sorted(results)),
        duration=time.monotonic() - run.started,
        token_requests=tokens_after - tokens_before,
        http_requests=http_after - http_before,
        started_at=started_at,
    )
