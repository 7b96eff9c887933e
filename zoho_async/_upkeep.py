"""A session's own task group, for upkeep that no caller waits for (a token refresh).

Why the group has a host task of its own instead of being entered in ``open()``: a task
group entered there would sit in the opener's task for the session's whole life, so an
error in it would cancel the opener (a web app's lifespan, say), and a ``close()`` from
another task (a fixture's teardown, a cleanup hook) could not exit it. So ``open()``
starts one task that holds the group, and ``close()`` cancels the group and waits for that
task to end: nothing started here outlives the session, and nothing started here can
raise into, or cancel, a caller's task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup

__all__ = ["Upkeep"]

log = logging.getLogger("zoho_async")


class Upkeep:
    """A task group owned by one session: started in ``open()``, ended in ``close()``.

    Jobs are fire-and-forget for whoever starts them, but not stray: they run in this
    group, an exception from one is logged and stays here (the other jobs go on), and
    ``close()`` cancels them and returns only once they are gone.
    """

    def __init__(self) -> None:
        self._group: TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None
        self._stop: anyio.Event | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._group is not None else "new"
        return f"Upkeep({state})"

    async def open(self) -> None:
        """Start the host task and wait until its group takes jobs. Idempotent."""
        if self._host is not None or self._closed:
            return
        ready = anyio.Event()
        self._stop = anyio.Event()
        self._host = asyncio.get_running_loop().create_task(
            self._hold(ready, self._stop), name="zoho-async upkeep"
        )
        await ready.wait()

    async def _hold(self, ready: anyio.Event, stop: anyio.Event) -> None:
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                ready.set()
                await stop.wait()
                group.cancel_scope.cancel()
        finally:
            self._group = None
            ready.set()  # never leave open() waiting, even if the group could not start

    def start_soon(self, job: Callable[[], Awaitable[None]], name: str) -> bool:
        """Run ``job()`` in the group; ``False`` (nothing started) once closed or not open."""
        group = self._group
        if group is None or self._closed:
            return False
        group.start_soon(self._guard, job, name, name=f"zoho-async {name}")
        return True

    @staticmethod
    async def _guard(job: Callable[[], Awaitable[None]], name: str) -> None:
        try:
            await job()
        except Exception:
            # An escaping error would cancel the group's other jobs; a job is expected to
            # handle its own failures, so this is a bug, logged and kept here.
            log.exception("background %s failed unexpectedly", name)

    async def close(self) -> None:
        """Cancel every job and wait for the host task to end (even when cancelled)."""
        self._closed = True
        host, self._host = self._host, None
        if host is None:
            return
        group = self._group
        if group is not None:
            group.cancel_scope.cancel()
        assert self._stop is not None
        self._stop.set()
        with anyio.CancelScope(shield=True):
            # asyncio.wait, not `await host`: it neither raises the host's outcome into the
            # closer nor cancels the host if the closer is cancelled.
            await asyncio.wait({host})
        if not host.cancelled() and host.exception() is not None:
            log.error("the session's upkeep ended with an error", exc_info=host.exception())
