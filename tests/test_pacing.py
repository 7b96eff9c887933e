"""The pacer on its own: per-org pauses, slowdown, no burst at the start."""

from __future__ import annotations

import math

import anyio
import pytest

from zoho_async import Limits
from zoho_async._pacing import Pacer

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


async def test_no_burst_at_the_start() -> None:
    # 600/min with the 1% margin: one call per ~0.101 s, and a bucket of 3 so that a late
    # timer can be made up; never more than that at once
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
    # calls at most one interval apart after the first `burst`: a 60 s window holds at
    # most (burst - 1) + floor(60 / interval) + 1 calls, which must not exceed the rate
    for rate in (1, 10, 60, 100, 250, 600, 3000, 6000):
        limits = Limits(requests_per_minute=rate, metadata_per_minute=rate)
        in_window = limits.burst(True) + math.floor(60 / limits.interval(True))
        assert in_window <= rate
    assert Limits().burst(True) == 1  # Zoho's 60/min: no catch-up at all
