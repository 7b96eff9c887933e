"""One bulk sync from the command line: discover, dispatch, record, summarise.

``sync`` and ``demo`` both end up in :func:`run_sync`, so the demo exercises exactly the
code a real run uses.

Ctrl-C, in order: the first stops dispatching (the SDK's ``stop`` event: calls waiting
for their turn are not sent) and allows ``grace`` seconds for requests in flight; a second
Ctrl-C, or the end of the grace period, cancels the run, and the SDK reports whatever was still in
flight. Every target that never got a result is then recorded as CANCELLED, so the results
file has one line per target, and the exit code is 130.

SIGTERM (``timeout``, cron, CI, ``docker stop``) is handled exactly like Ctrl-C, a second
one included, and exits 143 (128 + 15), as a shell reports a process it killed.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import attrs
from anyio.abc import TaskGroup

from zoho_async import (
    AnalyticsSession,
    Journal,
    PlannedTarget,
    SyncReport,
    SyncResult,
    SyncStatus,
)

from ._config import REDACTOR, ConnectionSettings
from ._discover import discover, resolve_orgs
from ._output import ResultStream, console_for, stdout_console, stdout_guard
from ._progress import ProgressDisplay, make_progress
from ._summary import Expected, exit_code, print_summary
from ._targets import Key, TargetSpec

__all__ = ["SyncOptions", "run_sync"]


@attrs.frozen
class SyncOptions:
    """What ``sync`` was asked to do (already validated)."""

    spec: TargetSpec
    skip: frozenset[Key] = frozenset()
    wait: bool = False
    wait_timeout: float | None = None
    deadline: float | None = None
    poll_interval: float = 30.0
    output: str | None = None
    # the results file, opened (and locked) while the options were read; the SDK writes it
    journal: Journal | None = attrs.field(default=None, eq=False)
    fmt: str = "table"
    quiet: bool = False
    progress_interval: float = 10.0
    grace: float = 3.0
    # the results file was created by this run (not appended to): removed again when the
    # run fails before it recorded anything, so a failed start leaves no empty file behind
    fresh_output: bool = False
    # results that are not ok but that the caller planned (the demo's forbidden datasource)
    expected: Expected = attrs.field(default=lambda _result: False, eq=False)


class _Feed(Iterator[PlannedTarget]):
    """The targets handed to the SDK, one at a time; ``stop()`` ends the feed early."""

    def __init__(self, items: list[PlannedTarget]) -> None:
        self._items = items
        self.handed = 0
        self.stopped = False

    def __next__(self) -> PlannedTarget:
        if self.stopped or self.handed >= len(self._items):
            raise StopIteration
        item = self._items[self.handed]
        self.handed += 1
        return item

    def __len__(self) -> int:
        # Sized, so the SDK knows the feed ends: after a refused refresh token it reports
        # the rest as FAILED with that error, instead of leaving them to record_missing.
        return 0 if self.stopped else len(self._items) - self.handed

    def stop(self) -> None:
        self.stopped = True


class _Sink:
    """Where each result goes the moment it is final: memory, file, stdout, progress."""

    def __init__(self, options: SyncOptions, progress: ProgressDisplay) -> None:
        self.results: dict[int, SyncResult] = {}
        self.progress = progress
        self.journal = options.journal
        self.stream = ResultStream(options.fmt, sys.stdout)

    def add(self, result: SyncResult) -> None:
        # called by the SDK's workers: it must not raise, or the run would be torn down.
        # The results file is the SDK's journal: the run writes it before this is called.
        self.results[result.index] = result
        self.stream.write(result)
        self.progress.advance(result)

    def add_missing(self, result: SyncResult) -> None:
        """A result the run never reported (interrupted first): this writes it."""
        self.add(result)
        if self.journal is not None:
            try:
                self.journal.record(result)
            except OSError as exc:
                self.progress.note(f"Error: cannot write {self.journal.path} ({exc})")
                self.journal = None

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


class _BulkRun:
    def __init__(
        self, settings: ConnectionSettings, options: SyncOptions, sink: _Sink, note: Note
    ) -> None:
        self.settings = settings
        self.options = options
        self.sink = sink
        self.note = note
        self.items: list[PlannedTarget] = []
        self.feed: _Feed | None = None
        self.stop: anyio.Event | None = None  # the SDK's graceful stop, made in the loop
        self.scope: anyio.CancelScope | None = None  # made inside the event loop
        self.interrupted = False
        self.terminated = False  # the (first) interruption was SIGTERM, not Ctrl-C
        self.interrupts = 0
        self.http_requests = 0
        self.token_requests = 0
        self.started = time.monotonic()
        self._tg: TaskGroup | None = None

    async def main(self) -> None:
        error: Exception | None = None
        self.scope = anyio.CancelScope()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._watch_signals)
            tg.start_soon(self.sink.progress.tick)
            try:
                with self.scope:
                    await self._work()
            except Exception as exc:  # re-raised below, outside the task group's wrapping
                error = exc
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _work(self) -> None:
        async with self.settings.session() as session:
            try:
                REDACTOR.add(await session.get_access_token())  # fail fast on credentials
                await self._discover(session)
                await self._dispatch(session)
            finally:
                self.http_requests = session.http_requests
                self.token_requests = session.token_requests

    async def _discover(self, session: AnalyticsSession) -> None:
        spec = await resolve_orgs(session, self.options.spec)
        progress = self.sink.progress
        if spec.workspaces:
            progress.begin("Listing workspaces", len(spec.workspaces))
        skipped = await discover(
            session,
            spec,
            skip=self.options.skip,
            found=self.items,
            on_workspace=progress.advance,
        )
        if skipped:
            self.note(f"Resuming: {skipped} targets already started in a previous run")
        journal = self.options.journal
        pending = len(journal.state.pending) if journal is not None else 0
        if pending:
            self.note(
                f"Resuming: {pending} request{'s' if pending != 1 else ''} of the interrupted "
                "run may have been sent; settling them from Get Datasources before sending "
                f"anything (after they are {self.settings.timeout:g} s old, the --timeout)"
            )

    async def _dispatch(self, session: AnalyticsSession) -> None:
        options = self.options
        self.feed = _Feed(self.items)
        self.stop = anyio.Event()
        self.sink.progress.begin("Syncing", len(self.items))
        deadline = options.deadline
        if deadline is not None:
            # the deadline covers the whole command, listing included
            deadline = max(deadline - (time.monotonic() - self.started), 0.001)
        await session.sync_many(
            self.feed,
            wait=options.wait,
            wait_timeout=options.wait_timeout,
            deadline=deadline,
            poll_interval=options.poll_interval,
            on_result=self.sink.add,
            stop=self.stop,
            journal=options.journal,
        )

    # -- Ctrl-C and SIGTERM ------------------------------------------------------------

    async def _watch_signals(self) -> None:
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    if not self.interrupted and signum == signal.SIGTERM:
                        self.terminated = True
                    self._interrupt()
        except (NotImplementedError, ValueError, RuntimeError):
            # no signal handling here (Windows, a thread): Ctrl-C arrives as
            # KeyboardInterrupt and run_sync records what is missing
            return

    def _interrupt(self) -> None:
        self.interrupted = True
        self.interrupts += 1
        what = "Terminated (SIGTERM)" if self.terminated else "Interrupted"
        if self.feed is None or self.interrupts > 1 or self.options.grace <= 0:
            self.note(f"{what}: stopping now")
            self._cancel()
            return
        # The SDK's stop: nothing queued in the pacer is sent any more, requests on the
        # wire finish, and every other target comes back CANCELLED from sync_many itself.
        self.feed.stop()
        if self.stop is not None:
            self.stop.set()
        again = "SIGTERM" if self.terminated else "Ctrl-C"
        self.note(
            f"{what}: no more syncs will be sent; waiting up to {self.options.grace:g} s "
            f"for requests in flight ({again} again to stop now)"
        )
        assert self._tg is not None
        self._tg.start_soon(self._grace_timer)

    async def _grace_timer(self) -> None:
        await anyio.sleep(self.options.grace)
        self._cancel()

    def _cancel(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    # -- the end ---------------------------------------------------------------------

    def record_missing(self) -> None:
        """One result per target: CANCELLED for every target that never got one."""
        now = datetime.now(UTC)
        for index, item in enumerate(self.items):
            if index not in self.sink.results:
                self.sink.add_missing(
                    SyncResult(
                        item.target,
                        index,
                        SyncStatus.CANCELLED,
                        error_message="run interrupted before it was sent",
                        started_at=now,
                        finished_at=now,
                    )
                )


class Note:
    """Messages for the user on stderr (through the progress display, so a live bar is
    not torn), silenced by ``--quiet``."""

    def __init__(self, progress: ProgressDisplay) -> None:
        self.progress = progress

    def __call__(self, text: str) -> None:
        self.progress.note(text)


def run_sync(settings: ConnectionSettings, options: SyncOptions) -> int:
    """Run one bulk sync and print its results; returns the exit code.

    Raises ``InvalidInputError`` (exit 2), ``TokenError``/``AuthError`` (exit 3) and other
    ``ZohoError`` s that stop the run before any target is dispatched.
    """
    progress = make_progress(sys.stderr, quiet=options.quiet, interval=options.progress_interval)
    sink = _Sink(options, progress)
    run = _BulkRun(settings, options, sink, Note(progress))
    failed = True
    try:
        try:
            anyio.run(run.main)
        except KeyboardInterrupt:
            run.interrupted = True
        run.record_missing()
        failed = False
    finally:
        progress.close()
        sink.close()
        if failed and options.fresh_output and options.output:
            _remove_if_unused(options.output)
    results = [sink.results[i] for i in sorted(sink.results)]
    duration = time.monotonic() - run.started
    _print_results(options, results, duration, run)
    return exit_code(
        results,
        wait=options.wait,
        interrupted=run.interrupted,
        terminated=run.terminated,
        expected=options.expected,
    )


def _remove_if_unused(path: str) -> None:
    """Delete a results file that holds nothing but the journal's ``run`` lines.

    Anything else (an intent, a baseline, a result, a line that does not parse) may be
    what a ``--resume`` needs, so the file is then kept.
    """
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
        for line in lines:
            row = json.loads(line) if line.strip() else {"kind": "run"}
            if not isinstance(row, dict) or row.get("kind") != "run":
                return
        file.unlink()
    except (OSError, ValueError):
        return  # best effort: a file we cannot read or parse is left as it is


def _print_results(
    options: SyncOptions, results: list[SyncResult], duration: float, run: _BulkRun
) -> None:
    with stdout_guard():
        _print_report(options, results, duration, run)


def _print_report(
    options: SyncOptions, results: list[SyncResult], duration: float, run: _BulkRun
) -> None:

    if options.fmt == "json":
        report = SyncReport(
            tuple(results),
            duration=duration,
            token_requests=run.token_requests,
            http_requests=run.http_requests,
        )
        sys.stdout.write(REDACTOR(report.to_json(indent=2, ensure_ascii=False)) + "\n")
        sys.stdout.flush()
    if options.quiet:
        # --quiet prints errors only, on stderr: whatever the format, stdout keeps only
        # what the format promises
        console = console_for(sys.stderr)
    elif options.fmt == "table":
        console = stdout_console()
    else:
        console = console_for(sys.stderr)
    print_summary(
        console,
        results,
        wait=options.wait,
        duration=duration,
        http_requests=run.http_requests,
        token_requests=run.token_requests,
        output=options.output,
        interrupted=run.interrupted,
        terminated=run.terminated,
        expected=options.expected,
        errors_only=options.quiet,
    )
