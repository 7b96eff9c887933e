"""Cancellation at random points and sustained load: nothing lost, nothing leaked."""

from __future__ import annotations

import asyncio
import gc
import os
from collections import Counter
from collections.abc import Iterator

import anyio
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoho_async import Limits, SyncResult, SyncStatus
from zoho_async.testing import FakeZoho

from .helpers import ds_id, session_for

N = 1000


async def _world(latency: float = 0.0, jitter: float = 0.0) -> tuple[FakeZoho, list[str]]:
    # instant syncs: the runs cycle over these 40 datasources, syncing each again and again
    fake = FakeZoho(
        requests_per_minute=None,
        metadata_per_minute=None,
        latency=latency,
        latency_jitter=jitter,
        sync_duration=0.0,
    )
    await fake.start()
    org = fake.add_org(is_default=True)
    fake.add_workspace(org.org_id, "1001")
    ids = [ds_id(fake.add_datasource("1001", total_sync_allowed=10**9)) for _ in range(40)]
    return fake, ids


def _targets(ids: list[str], n: int) -> Iterator[tuple[str, str]]:
    return (("1001", ids[i % len(ids)]) for i in range(n))


async def _cancel_sync_many_after(cut: int, use_iter: bool) -> None:
    fake, ids = await _world(latency=0.001)
    tasks_before = len(asyncio.all_tasks())
    try:
        seen: list[SyncResult] = []
        async with session_for(fake) as session:
            with anyio.CancelScope() as scope:
                if use_iter:
                    async for result in session.iter_sync(_targets(ids, N)):
                        seen.append(result)
                        if len(seen) >= cut:
                            scope.cancel()
                else:

                    def on_result(result: SyncResult) -> None:
                        seen.append(result)
                        if len(seen) >= cut:
                            scope.cancel()

                    # a list: the rest of a sized input is reported, a generator's is not
                    await session.sync_many(list(_targets(ids, N)), on_result=on_result)
            # still usable: the token cache and the connector survived
            await session.get_orgs()
            token_requests = session.token_requests
        indexes = Counter(r.index for r in seen)
        assert not indexes or max(indexes.values()) == 1  # never a duplicate
        if not use_iter and cut <= N:
            # sync_many reports every target, the unfinished ones as CANCELLED
            assert sorted(indexes) == list(range(N))
        started = sum(1 for r in seen if r.status is SyncStatus.STARTED)
        assert started <= fake.stats.syncs_started.total()
        assert token_requests == 1
    finally:
        await fake.stop()
    gc.collect()
    assert len(asyncio.all_tasks()) == tasks_before  # no task left behind


@pytest.mark.anyio
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=1, max_value=N), use_iter=st.booleans())
async def test_cancel_at_random_points(cut: int, use_iter: bool) -> None:
    await _cancel_sync_many_after(cut, use_iter)


def _open_fds() -> int:
    return int(psutil.Process(os.getpid()).num_fds())


@pytest.mark.anyio
@pytest.mark.slow
async def test_10000_targets_64_in_flight_memory_and_fds_stay_flat() -> None:
    fake, ids = await _world(latency=0.002, jitter=0.004)
    process = psutil.Process(os.getpid())
    limits = Limits(requests_per_minute=10**7, metadata_per_minute=10**7, max_in_flight=64)
    try:
        async with session_for(fake, limits=limits) as session:
            # warm up: the connection pool and the token
            await session.sync_many(_targets(ids, 500))
            gc.collect()
            fds_before, rss_before = _open_fds(), process.memory_info().rss
            samples: list[int] = []

            def on_result(result: SyncResult) -> None:
                if result.index % 1000 == 0:
                    samples.append(process.memory_info().rss)

            async for _ in session.iter_sync(_targets(ids, 10_000)):
                pass
            report = await session.sync_many(_targets(ids, 2000), on_result=on_result)
            gc.collect()
            fds_after, rss_after = _open_fds(), process.memory_info().rss
        assert report.counts[SyncStatus.STARTED] == 2000
        assert fake.stats.peak_in_flight <= 64
        # the connector keeps at most max_in_flight + 2 connections (two ends each on loopback)
        assert fds_after - fds_before <= 2 * (64 + 2)
        # 10,000 streamed results must not pile up: allow 20 MB of noise
        assert rss_after - rss_before < 20 * 1024 * 1024
    finally:
        await fake.stop()
