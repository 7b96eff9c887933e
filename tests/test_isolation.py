"""One session, many callers: what one caller's run does stays that caller's.

A service shares one ``AnalyticsSession`` between request handlers (tasks). An
``iter_sync`` run belongs to the iterator that started it, not to a task group of the
session's, so:

- a source that raises ends only its own run, and its consumer gets that very error from
  ``__anext__`` (not ``CancelledError``, not an exception group);
- the other handlers' runs and single calls go on;
- an app's lifespan (a task group) sees no exception, or, for a handler that lets the
  error escape, a flat group holding that error;
- a session entered in one task and left in another (an async fixture) works;
- leaving an ``async with`` block of ``iter_sync`` early leaves nothing running: the run's
  source is already closed when the block is left.

Progress is ordered with events, never timed; ``fail_after`` only bounds a broken build.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from zoho_async import AnalyticsSession, SyncResult, SyncStatus
from zoho_async.testing import FakeZoho

from .helpers import ds_id, session_for, workspace_fake

pytestmark = pytest.mark.anyio

WS = "1001"
BOUND = 30  # seconds; only a broken build gets near it


class SourceError(ValueError):
    """What a caller's own target source raises (not a ZohoError)."""


def _datasources(fake: FakeZoho, count: int) -> list[str]:
    return [
        ds_id(fake.add_datasource(WS, total_sync_allowed=10**6, sync_duration=0.0))
        for _ in range(count)
    ]


def _failing(ids: list[str], after: int) -> Iterator[tuple[str, str]]:
    """A generator that yields ``after`` targets, then fails as a caller's code might."""
    for datasource_id in ids[:after]:
        yield (WS, datasource_id)
    raise SourceError("the caller's source broke")


async def _held(ids: list[str], release: anyio.Event) -> AsyncIterator[tuple[str, str]]:
    """An async source that yields one target, then waits for ``release``."""
    yield (WS, ids[0])
    await release.wait()
    for datasource_id in ids[1:]:
        yield (WS, datasource_id)


async def _steady_handler(
    session: AnalyticsSession,
    ids: list[str],
    running: anyio.Event,
    release: anyio.Event,
) -> list[SyncResult]:
    """A handler whose run is under way (one result in) while another handler fails."""
    seen: list[SyncResult] = []
    async with session.iter_sync(_held(ids, release)) as results:
        async for result in results:
            seen.append(result)
            if len(seen) == 1:
                running.set()
    # and a single call after the other's failure: the session still serves this caller
    await session.workspace(WS).sync_data(ids[0])
    return seen


async def test_a_failing_source_in_one_handler_does_not_cancel_another() -> None:
    async with workspace_fake() as fake:
        ids = _datasources(fake, 12)
        steady: list[SyncResult] = []
        failures: list[BaseException] = []
        running, release = anyio.Event(), anyio.Event()
        with anyio.fail_after(BOUND):
            async with session_for(fake) as session:

                async def steady_handler() -> None:
                    steady.extend(await _steady_handler(session, ids[:6], running, release))

                async def failing_handler() -> None:
                    await running.wait()  # the other run is under way
                    try:
                        async for _ in session.iter_sync(_failing(ids[6:], after=3)):
                            pass
                    except BaseException as exc:  # asserting on what it is
                        failures.append(exc)
                    release.set()  # only now may the other run go on

                async with anyio.create_task_group() as handlers:
                    handlers.start_soon(steady_handler)
                    handlers.start_soon(failing_handler)
    (failure,) = failures
    assert type(failure) is SourceError  # itself: no CancelledError, no group
    assert str(failure) == "the caller's source broke"
    # the other caller's run delivered every one of its targets, all sent
    assert sorted(r.index for r in steady) == list(range(6))
    assert {r.status for r in steady} == {SyncStatus.STARTED}


@pytest.mark.parametrize("form", ["async for", "async with"])
@pytest.mark.parametrize("kind", ["generator", "async generator"])
async def test_the_consumer_gets_the_sources_own_error(form: str, kind: str) -> None:
    async with workspace_fake() as fake:
        ids = _datasources(fake, 3)

        async def async_failing() -> AsyncIterator[tuple[str, str]]:
            for target in _failing(ids, after=3):
                yield target

        def source() -> Iterator[tuple[str, str]] | AsyncIterator[tuple[str, str]]:
            return _failing(ids, after=3) if kind == "generator" else async_failing()

        seen: list[SyncResult] = []
        with anyio.fail_after(BOUND):
            async with session_for(fake) as session:
                with pytest.raises(SourceError, match="source broke") as info:
                    if form == "async for":
                        async for result in session.iter_sync(source()):
                            seen.append(result)
                    else:
                        async with session.iter_sync(source()) as results:
                            async for result in results:
                                seen.append(result)
                assert type(info.value) is SourceError
                # the iteration is over, and the session serves its next call
                await session.get_orgs()
        # each result the consumer got is one of the pulled targets, once
        assert len({r.index for r in seen}) == len(seen) <= 3


async def test_an_app_lifespan_sees_no_exception_from_a_handled_source_error() -> None:
    async with workspace_fake() as fake:
        ids = _datasources(fake, 8)
        handled: list[BaseException] = []
        served: list[int] = []
        with anyio.fail_after(BOUND):
            # the app: its lifespan is a task group; the session lives inside it and each
            # request is a task of the lifespan that handles its own errors (say, a 500)
            async with anyio.create_task_group() as lifespan:
                async with session_for(fake) as session:

                    async def request(n: int) -> None:
                        try:
                            if n == 0:
                                async for _ in session.iter_sync(_failing(ids, after=2)):
                                    pass
                            else:
                                await session.workspace(WS).sync_data(ids[n])
                            served.append(n)
                        except SourceError as exc:
                            handled.append(exc)

                    async with anyio.create_task_group() as requests:
                        for n in range(len(ids)):
                            requests.start_soon(request, n)
                lifespan.cancel_scope.cancel()  # the app shuts down cleanly
    assert [type(e) for e in handled] == [SourceError]
    assert sorted(served) == list(range(1, len(ids)))


async def test_an_unhandled_source_error_reaches_the_lifespan_in_a_flat_group() -> None:
    async with workspace_fake() as fake:
        ids = _datasources(fake, 4)
        with anyio.fail_after(BOUND):
            async with session_for(fake) as session:

                async def request() -> None:
                    async for _ in session.iter_sync(_failing(ids, after=2)):
                        pass

                with pytest.raises(BaseExceptionGroup) as info:
                    async with anyio.create_task_group() as lifespan:
                        lifespan.start_soon(request)
                        await anyio.sleep_forever()  # the app serves until a task fails
        # one group, the lifespan's own, holding the source's error itself
        assert [type(e) for e in info.value.exceptions] == [SourceError]


async def test_a_session_entered_in_one_task_and_left_in_another() -> None:
    # what an async fixture does when its set-up and teardown run in different tasks
    async with workspace_fake() as fake:
        ids = _datasources(fake, 5)
        session = session_for(fake)
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as setup:
                setup.start_soon(session.__aenter__)
            seen = [r async for r in session.iter_sync((WS, d) for d in ids)]
            async with session.iter_sync((WS, d) for d in ids) as results:
                async for _ in results:
                    break  # left early, in this task
            async with anyio.create_task_group() as teardown:
                teardown.start_soon(session.__aexit__, None, None, None)
        assert session.closed
        assert sorted(r.index for r in seen) == list(range(5))


async def test_leaving_an_iter_sync_block_early_leaves_the_run_ended() -> None:
    async with workspace_fake() as fake:
        ids = _datasources(fake, 4)
        closed = anyio.Event()

        async def endless() -> AsyncIterator[tuple[str, str]]:
            try:
                while True:
                    for datasource_id in ids:
                        yield (WS, datasource_id)
            finally:
                closed.set()

        with anyio.fail_after(BOUND):
            async with session_for(fake) as session:
                got = 0
                async with session.iter_sync(endless()) as results:
                    async for _ in results:
                        got += 1
                        if got == 10:
                            break
                # no await in between: the run ended before the block was left
                assert closed.is_set()
                await session.get_orgs()
        assert got == 10


async def test_cancelling_one_consumer_leaves_another_run_alone() -> None:
    async with workspace_fake() as fake:
        ids = _datasources(fake, 10)
        steady: list[SyncResult] = []
        running, release = anyio.Event(), anyio.Event()
        cancelled_seen: list[int] = []
        with anyio.fail_after(BOUND):
            async with session_for(fake) as session:

                async def steady_handler() -> None:
                    steady.extend(await _steady_handler(session, ids[:5], running, release))

                async def cancelled_handler() -> None:
                    await running.wait()
                    with anyio.CancelScope() as scope:
                        async for result in session.iter_sync((WS, d) for d in ids[5:]):
                            cancelled_seen.append(result.index)
                            scope.cancel()
                    release.set()

                async with anyio.create_task_group() as handlers:
                    handlers.start_soon(steady_handler)
                    handlers.start_soon(cancelled_handler)
    assert len(cancelled_seen) == 1
    assert sorted(r.index for r in steady) == list(range(5))
    assert {r.status for r in steady} == {SyncStatus.STARTED}


async def test_a_plain_loop_left_by_break_stops_its_run() -> None:
    async with workspace_fake() as fake:
        ids = _datasources(fake, 4)
        closed = anyio.Event()

        async def endless() -> AsyncIterator[tuple[str, str]]:
            try:
                while True:
                    for datasource_id in ids:
                        yield (WS, datasource_id)
            finally:
                closed.set()

        with anyio.fail_after(BOUND):
            async with session_for(fake) as session:
                async for result in session.iter_sync(endless()):
                    if result.index == 5:
                        break
                # the dropped iterator stops its run; the endless source is closed
                await closed.wait()
                await session.get_orgs()


async def test_iter_sync_needs_only_an_open_session() -> None:
    # no `async with`: a service may open the session in its start-up and close it later
    async with workspace_fake() as fake:
        ids = _datasources(fake, 3)
        session = session_for(fake)
        await session.open()
        try:
            with anyio.fail_after(BOUND):
                seen = [r async for r in session.iter_sync((WS, d) for d in ids)]
        finally:
            await session.close()
        assert sorted(r.index for r in seen) == list(range(3))


async def test_closing_the_session_ends_a_run_still_held() -> None:
    # the iterator is neither exhausted nor closed when its session closes: the run ends
    # with the session, and the consumer is told so rather than seeing a short loop
    async with workspace_fake() as fake:
        ids = _datasources(fake, 20)
        with anyio.fail_after(BOUND):
            async with session_for(fake) as session:
                results = session.iter_sync((WS, d) for d in ids)
                await results.__anext__()
            with pytest.raises(RuntimeError, match="session was closed"):
                async for _ in results:
                    pass
