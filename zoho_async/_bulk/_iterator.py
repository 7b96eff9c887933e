"""``iter_sync``: a run whose results stream to the consumer as they become final."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import ZohoError
from .._results import SyncResult
from ._context import BulkContext, RunOptions
from ._run import Run
from ._source import check_sequence

__all__ = ["SyncIterator"]


class SyncIterator(AsyncIterator[SyncResult]):
    """What :meth:`AnalyticsSession.iter_sync` returns: results as they become final.

    The run lives in the session's task group; leaving the loop early (``break``) or
    cancelling the consumer cancels the run. Use ``async with`` (or ``aclose()``) to stop
    it deterministically.

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
        self._scope: anyio.CancelScope | None = None
        self._error: ZohoError | None = None
        self._run: Run | None = None
        self._stop_requested = False
        self._closed = False

    def __aiter__(self) -> SyncIterator:
        return self

    def __del__(self) -> None:
        # `async for` does not close an iterator it leaves by an exception: stop the run
        # once nobody can read from it any more.
        scope, receive = getattr(self, "_scope", None), getattr(self, "_receive", None)
        with contextlib.suppress(RuntimeError):  # no event loop left at interpreter exit
            if scope is not None:
                scope.cancel()
            if receive is not None:
                receive.close()

    async def _start(self) -> MemoryObjectReceiveStream[SyncResult]:
        send: MemoryObjectSendStream[SyncResult]
        # no buffer: a result counts as delivered only once the consumer has it
        send, receive = anyio.create_memory_object_stream[SyncResult](0)
        scope = anyio.CancelScope()
        self._scope, self._receive = scope, receive

        async def send_now(result: SyncResult) -> None:
            send.send_nowait(result)

        run = Run(self._context, self._options, emit=send.send, emit_final=send_now)
        self._run = run
        if self._stop_requested:
            run.stop()

        async def drive() -> None:
            with scope:
                async with send:
                    try:
                        await run.run(self._targets)
                    except ZohoError as exc:
                        # hand it to the consumer; it must not crash the session's tasks
                        self._error = exc

        self._context.background().start_soon(drive)
        return receive

    async def __anext__(self) -> SyncResult:
        if self._closed:
            raise StopAsyncIteration
        receive = self._receive or await self._start()
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            await self.aclose()
            if self._error is not None:
                raise self._error from None
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
        """Stop now: cancel the run (in-flight requests too) and end the iteration."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        if self._receive is not None:
            await self._receive.aclose()

    async def __aenter__(self) -> SyncIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
