"""Serving a :class:`FakeZoho` from a background thread, for synchronous test code."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._fake import FakeZoho


@contextlib.contextmanager
def serve_in_thread(fake: FakeZoho) -> Iterator[FakeZoho]:
    """Start ``fake`` on a new thread's event loop; stop it and join the thread on exit."""
    ready = threading.Event()
    errors: list[BaseException] = []
    handles: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            await fake.start()
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)
            ready.set()
            return
        handles.append((asyncio.get_running_loop(), stop))
        ready.set()
        try:
            await stop.wait()
        finally:
            await fake.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="FakeZoho", daemon=True)
    thread.start()
    ready.wait()
    if errors:
        thread.join()
        raise errors[0]
    loop, stop = handles[0]
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
