"""``iter_sync``: a run whose results stream to the consumer as they become final."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._results import SyncResult
from ._context import BulkContext, RunOptions
from ._run import Run
from ._source import check_sequence

__all__ = ["SyncIterator"]


@attrs.define(eq=False)
class _Outcome:
    """How the run ended, shared by the iterator and its task.

    The task holds this, never the iterator itself: an iterator that nobody can read from
    any more must be collectable, so that ``__del__`` can stop its run.
    """

    error: Exception | None = None
    finished: bool = False  # run() returned: every target has had its result


async def _drive(
    run: Run,
    targets: Iterable[Any] | AsyncIterable[Any],
    send: MemoryObjectSendStream[SyncResult],
    outcome: _Outcome,
) -> None:
    """The body of a run's task: every error is kept for the consumer, none escapes.

    Nothing but the run's own cancellation (or a KeyboardInterrupt) leaves this task, so
    a failing source or a bug ends this one run and reaches its consumer as itself.
    """
    async with send:
        try:
            await run.run(targets)
        except Exception as exc:
            outcome.error = exc
        else:
            outcome.finished = True


class SyncIterator(AsyncIterator[SyncResult]):
    """What :meth:`AnalyticsSession.iter_sync` returns: results as they become final.

    The run is the iterator's own: it starts with the first ``__anext__`` as a task of
    its own, which belongs to no task group of the session's or the caller's, so nothing
    it does can cancel other work on the session, nor the consumer. An error that ends
    the run (a source that raises, a refused refresh token) comes out of ``__anext__`` as
    itself, after the results delivered before it. ``async with`` (or ``aclose()``)
    stops the run deterministically: when the block is left, the run has ended (its
    source closed, its journal and claims settled). Leaving a plain ``async for`` early
    (``break``, an exception in the loop) stops the run once the iterator is dropped.
    Closing the session ends a run still going; its consumer then gets ``RuntimeError``.

    Example::

        async with session.iter_sync(targets) as results:
            async for result in results:
                print(result.status.value)
    """

    def __init__(
        self,
        context: BulkContext,
        targets: Iterable[Any] | AsyncIterable[Any],
        options: RunOptions,
    ) -> None:
        check_sequence(targets)
        self._context = context
        self._targets = targets
        self._options = options
        self._receive: MemoryObjectReceiveStream[SyncResult] | None = None
        self._task: asyncio.Task[None] | None = None
        self._outcome = _Outcome()
        self._run: Run | None = None
        self._stop_requested = False
        self._closed = False

    def __aiter__(self) -> SyncIterator:
        return self

    def __del__(self) -> None:
        # `async for` does not close an iterator it leaves by `break` or an exception:
        # stop the run once nobody can read from it any more. This may run on any thread
        # (the cyclic collector), so the cancellation is handed to the task's own loop.
        task, receive = getattr(self, "_task", None), getattr(self, "_receive", None)
        with contextlib.suppress(RuntimeError):  # that loop is closed: nothing is left
            if task is not None and not task.done():
                task.get_loop().call_soon_threadsafe(task.cancel)
        if receive is not None:
            with contextlib.suppress(RuntimeError):
                receive.close()

    def _start(self) -> MemoryObjectReceiveStream[SyncResult]:
        send: MemoryObjectSendStream[SyncResult]
        # no buffer: a result counts as delivered only once the consumer has it
        send, receive = anyio.create_memory_object_stream[SyncResult](0)

        async def send_now(result: SyncResult) -> None:
            send.send_nowait(result)

        run = Run(self._context, self._options, emit=send.send, emit_final=send_now)
        self._run = run
        if self._stop_requested:
            run.stop()
        # A task of its own, not a child of the consumer's scope: an error of the run is
        # handed over through the stream, never by cancelling whoever happens to share
        # a task group with it (asyncio is the only loop aiohttp runs on).
        task = asyncio.get_running_loop().create_task(
            _drive(run, self._targets, send, self._outcome), name="zoho_async.iter_sync"
        )
        # a task cancelled before its first step runs no code: close its end of the
        # stream anyway (idempotent), so the consumer is never left waiting on it
        task.add_done_callback(lambda _: send.close())
        self._context.runs.add(task)
        self._task = task
        self._receive = receive
        return receive

    async def __anext__(self) -> SyncResult:
        if self._closed:
            raise StopAsyncIteration
        receive = self._receive or self._start()
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            await self.aclose()
            outcome = self._outcome
            if outcome.error is not None:
                raise outcome.error from None
            if not outcome.finished:
                # cancelled by someone else (its session closing, the loop stopping): the
                # targets not yet delivered have no result, so this is no normal end
                raise RuntimeError(
                    "this iter_sync run was cancelled before it ended: its session was closed"
                ) from None
            raise StopAsyncIteration from None
        except BaseException:
            await self.aclose()
            raise

    def stop(self) -> None:
        """Stop gracefully: nothing new is sent, requests on the wire finish, and the
        remaining targets still come out of the loop (as CANCELLED) before it ends."""
        self._stop_requested = True
        if self._run is not None:
            self._run.stop()

    async def aclose(self) -> None:
        """Stop now: cancel the run (in-flight requests too), wait until it has ended,
        and end the iteration. Idempotent."""
        self._closed = True
        task = self._task
        if task is not None:
            task.cancel()
        if self._receive is not None:
            self._receive.close()
        if task is not None:
            # Shielded: even a cancelled consumer leaves only once the run has closed its
            # source and settled its journal and claims (bounded; see Run.run). The task
            # itself is awaited: one cancelled before its first step runs no code at all.
            with anyio.CancelScope(shield=True):
                await asyncio.wait([task])

    async def __aenter__(self) -> SyncIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
