"""The pacer on its own: per-org pauses, slowdown, the burst and the window bound."""

from __future__ import annotations

import math
import random

import anyio
import pytest

from zoho_async import Limits
from zoho_async._errors import InvalidInputError
from zoho_async._pacing import Pacer

from .helpers import jitter_room

pytestmark = pytest.mark.anyio


async def test_pause_applies_to_one_org_only() -> None:
    now = [100.0]
    pacer = Pacer(Limits(rate_limit_pause=60.0), clock=lambda: now[0])
    assert pacer.rate_limited("1", None) == 60.0
    assert pacer.paused_until("1") == 160.0
    assert pacer.paused_until("2") == 0.0
    # org 2 gets its turn at once while org 1 is paused
    with anyio.fail_after(1):
        await pacer.turn("2", metadata=True)


async def test_shared_budget_when_not_per_org() -> None:
    now = [0.0]
    pacer = Pacer(Limits(per_org=False), clock=lambda: now[0])
    pacer.rate_limited("1", 5.0)
    assert pacer.paused_until("2") == 5.0


async def test_repeated_rejections_slow_the_org_down_once_per_storm() -> None:
    now = [0.0]
    pacer = Pacer(Limits(slowdown=0.5), clock=lambda: now[0])
    pacer.rate_limited("1", 10.0)
    pacer.rate_limited("1", 10.0)  # same storm: no second slowdown
    assert pacer._orgs["1"].factor == 0.5
    now[0] = 20.0
    pacer.rate_limited("1", 10.0)
    assert pacer._orgs["1"].factor == 0.25
    assert pacer.pauses == 2


async def test_at_most_burst_calls_at_the_start() -> None:
    # 600/min with the 1% margin: one call per ~0.101 s, and a bucket of 3 so that a late
    # timer can be made up; never more than that at once (lower bounds only: a slow
    # machine can only make the turns later)
    limits = Limits(requests_per_minute=600, metadata_per_minute=600)
    assert limits.burst(True) == 3
    pacer = Pacer(limits)
    start = anyio.current_time()
    stamps = []
    for _ in range(8):
        await pacer.turn("1", metadata=True)
        stamps.append(anyio.current_time() - start)
    assert sum(1 for t in stamps if t < 0.05) <= 3
    assert stamps[-1] >= 5 * limits.interval(True) * 0.98


def test_burst_stays_inside_the_margin() -> None:
    # Turns at most one interval apart after the first `burst`: a span of W seconds holds
    # at most burst + floor(W / interval) of them, which must not exceed the window's
    # limit - for every rate, every window length whose limit is a whole number of calls,
    # whole multiples of it, and after slowdowns.
    for window in (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0):
        for rate in range(1, 6001):
            limit = rate * window / 60
            if limit != int(limit) or limit < 1:
                continue
            limits = Limits(
                requests_per_minute=rate, metadata_per_minute=rate, window_seconds=window
            )
            for factor in (1.0, 0.8, 0.64, 0.1):
                burst = limits.burst(True, factor)
                interval = limits.interval(True) / factor
                assert 1 <= burst <= 3
                for multiple in (1, 2, 3):
                    assert burst + math.floor(multiple * window / interval) <= multiple * limit
            # what the margin leaves over absorbs jitter, as the docstring says
            room = jitter_room(limits)
            assert room >= min(limits.interval(True), 0.01 * window) * 0.999
    assert Limits().burst(True) == 1  # Zoho's 60/min: no catch-up at all
    assert Limits(requests_per_minute=6000, metadata_per_minute=6000).burst(True) == 3
    fast_short = Limits(requests_per_minute=6000, metadata_per_minute=6000, window_seconds=1)
    assert fast_short.burst(True) == 1  # a 1 s window of 100: the margin is one call
    with pytest.raises(InvalidInputError):
        Limits(window_seconds=0)


def max_rolling(times: list[float], window: float) -> int:
    best, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


@pytest.mark.parametrize(
    ("rate", "metadata_rate", "window"),
    [(100, 60, 60.0), (6000, 6000, 60.0), (6000, 6000, 1.0), (3000, 1200, 5.0), (600, 600, 2.0)],
)
async def test_greedy_late_turns_never_overfill_a_window(
    rate: int, metadata_rate: int, window: float
) -> None:
    # A caller that takes every turn as soon as it may, woken late by up to 5 ms and now
    # and then stalled for up to 40 intervals (so the bucket fills and the burst is used),
    # with metadata and other calls mixed: no span of the window's length (or twice it)
    # ever holds more than the window's limit, of either kind. A fake clock: exact.
    limits = Limits(
        requests_per_minute=rate, metadata_per_minute=metadata_rate, window_seconds=window
    )
    now = [1000.0]
    pacer = Pacer(limits, clock=lambda: now[0])
    rng = random.Random(f"{rate}/{metadata_rate}/{window}")
    every: list[float] = []
    metadata_only: list[float] = []
    budget_interval = limits.interval(False)
    for _ in range(4000):
        metadata = rng.random() < 0.6
        budget = pacer._orgs.get("1")
        wait = budget.wait(metadata, now[0]) if budget is not None else 0.0
        if wait > 0:
            now[0] += wait + rng.uniform(1e-9, 0.005)  # never exactly on time: no float tie
        elif rng.random() < 0.02:
            now[0] += rng.uniform(0, 40 * budget_interval)
        assert await pacer.turn("1", metadata=metadata) is False  # never had to sleep
        every.append(now[0])
        if metadata:
            metadata_only.append(now[0])
    for multiple in (1, 2):
        span = multiple * window
        assert max_rolling(every, span) <= multiple * rate * window / 60
        assert max_rolling(metadata_only, span) <= multiple * metadata_rate * window / 60


async def test_a_metadata_turn_takes_both_budgets_at_once() -> None:
    # A metadata call waiting for its budget holds no overall turn meanwhile: the overall
    # count of a window only holds calls that really go out in it.
    limits = Limits(requests_per_minute=6000, metadata_per_minute=6)  # metadata: ~10 s apart
    pacer = Pacer(limits)
    await pacer.turn("1", metadata=True)
    budget = pacer._orgs["1"]
    overall_after_first = budget.overall.empty_at
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: pacer.turn("1", metadata=True))
        await anyio.wait_all_tasks_blocked()
        assert budget.overall.empty_at == overall_after_first  # nothing taken while waiting
        tg.cancel_scope.cancel()
    await pacer.turn("1", metadata=False)  # other calls are not held up by the waiter
    assert budget.overall.empty_at > overall_after_first
