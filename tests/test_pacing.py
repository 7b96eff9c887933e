"""The pacer on its own: per-org pauses, slowdown, no burst at the start."""

from __future__ import annotations

import itertools

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
    # 600/min = one call per 0.1 s (plus the 1% margin): 4 turns need ~0.3 s, not 0
    pacer = Pacer(Limits(requests_per_minute=600, metadata_per_minute=600))
    stamps = []
    for _ in range(4):
        await pacer.turn("1", metadata=True)
        stamps.append(anyio.current_time())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.09 for gap in gaps)
