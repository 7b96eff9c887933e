"""The pacer on its own: per-org pauses, slowdown, the burst and the window bound."""

from __future__ import annotations

import math
import random

import anyio
import attrs
import pytest

from zoho_async import Limits
from zoho_async._coord_local import LocalCoordinator
from zoho_async._coordinator import RECOVERY_STEP
from zoho_async._errors import InvalidInputError
from zoho_async._pacing import Pacer, PaceView
from zoho_async._shared import SharedPacer
from zoho_async.testing import Fault

from .helpers import jitter_room, session_for, workspace_fake

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
    now[0] = 20.0  # 10 s after the pause: less than a window, so no recovery yet
    pacer.rate_limited("1", 10.0)
    assert pacer._orgs["1"].factor == 0.25
    assert pacer.pauses == 2
    assert pacer.org_states()["1"].rejections == 3


def test_the_default_pause_is_one_window() -> None:
    assert Limits().pause_seconds() == 60.0
    assert Limits(window_seconds=5.0).pause_seconds() == 5.0
    assert Limits(window_seconds=5.0, rate_limit_pause=0.5).pause_seconds() == 0.5
    with pytest.raises(InvalidInputError):
        Limits(rate_limit_pause=-1.0)


def _storm(pacer: Pacer, now: list[float], retry_after: float | None) -> float:
    """8 rejections 10 ms apart (the answers to calls in flight together); the last one's
    time. Each one stretches the pause; only the first slows the org."""
    start = now[0]
    for n in range(8):
        now[0] = start + n * 0.01
        pacer.rate_limited("1", retry_after)
    return now[0]


async def _greedy_turns(pacer: Pacer, now: list[float], start: float, window: float) -> int:
    """How many turns a caller that takes each as soon as it may gets in one window."""
    now[0] = start
    count = 0
    while True:
        budget = pacer._orgs["1"]
        now[0] += max(budget.wait(True, now[0]), 0.0)
        if now[0] >= start + window:
            return count
        # the budget read above may predate a recovery step: then this turn is a little
        # late, never early - the count can only come out low
        assert await pacer.turn("1", metadata=True) is False
        count += 1


async def test_the_rate_climbs_back_after_a_storm_within_five_windows() -> None:
    # Time scaled down: a 5 s window of 100 calls (1,200/min). After a storm, a greedy
    # caller gets at most 0.8 of the limit in the first window after the pause, and at
    # least 0.95 of it again 5 windows after the storm: each clean window gave a step
    # back. A fake clock: exact.
    window, limit = 5.0, 100
    limits = Limits(requests_per_minute=1200, metadata_per_minute=1200, window_seconds=window)
    now = [1000.0]
    pacer = Pacer(limits, clock=lambda: now[0])
    await pacer.turn("1", metadata=True)
    last = _storm(pacer, now, window)
    assert pacer.pauses == 1
    assert await _greedy_turns(pacer, now, last + window, window) <= 0.8 * limit
    assert await _greedy_turns(pacer, now, last + 5 * window, window) >= 0.95 * limit


async def test_pause_and_recovery_are_counted_in_windows() -> None:
    # The default pause is one window; the factor follows the coordinators' rule, a step
    # per clean window from the pause's end; the view shows all of it.
    window = 5.0
    limits = Limits(requests_per_minute=1200, metadata_per_minute=1200, window_seconds=window)
    now = [1000.0]
    pacer = Pacer(limits, clock=lambda: now[0])
    last = _storm(pacer, now, None)
    assert pacer.pauses == 1
    assert pacer.org_states() == {
        "1": PaceView(
            waiting=0, factor=0.8, paused_until=last + window, paused_for=window, rejections=8
        )
    }
    factors = []
    for k in range(1, 6):
        now[0] = last + k * window
        factors.append(pacer.org_states()["1"].factor)
    assert factors == pytest.approx([0.8 + RECOVERY_STEP * j for j in range(5)])
    assert factors[3] >= 0.95 and factors[4] == 1.0
    # a new storm once recovered slows from the full rate again, not from the old factor
    _storm(pacer, now, None)
    assert pacer.org_states()["1"].factor == pytest.approx(0.8)


async def test_every_caller_waiting_in_the_pacer_waits_out_a_pause() -> None:
    # Callers queued in the pacer (one asleep on the bucket with a wait computed before
    # the pause, the others in line): none gets a turn inside a pause that begins while
    # they wait. Each turn is stamped the instant it is taken (no await in between).
    limits = Limits(requests_per_minute=600, metadata_per_minute=600, window_seconds=10.0)
    pacer = Pacer(limits)
    turns: list[float] = []
    pause_at: list[float] = []

    async def caller() -> None:
        await pacer.turn("1", metadata=True)
        turns.append(anyio.current_time())
        if len(turns) == 3:
            pacer.rate_limited("1", 0.5)
            pause_at.append(anyio.current_time())

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(caller)
            await anyio.wait_all_tasks_blocked()
            assert pacer.org_states()["1"].waiting >= 6
    until = pacer.paused_until("1")
    assert until == pytest.approx(pause_at[0] + 0.5)
    after = [t for t in turns if t > pause_at[0]]
    assert len(after) == 5
    assert all(t >= until for t in after), [t - until for t in turns]
    assert pacer.org_states()["1"].waiting == 0


async def test_a_pause_that_begins_between_the_turn_and_the_send_holds() -> None:
    # Call A is answered 6045 (Retry-After: 2) 1.5 s after it went out. Call B's turn
    # comes before that, 1.01 s after A's (60/min), when the token (it lives 1 s at the
    # fake) has run out: the accounts server takes 1.5 s to mint a new one, and the 6045
    # arrives meanwhile. B's turn is void; it goes out after the pause, not inside it.
    limits = Limits(requests_per_minute=60, metadata_per_minute=60, max_in_flight=2)
    async with workspace_fake(token_lifetime=1.0) as fake:
        fake.script("token", [Fault(), Fault(delay=1.5)])
        fake.script("workspaces", [attrs.evolve(Fault.rate_limited(retry_after="2"), delay=1.5)])
        async with session_for(fake, limits=limits) as session:
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.get_workspaces)
                tg.start_soon(session.get_workspaces)
            pacer = session._exec.pacer
            until = pacer.paused_until(None)
    assert pacer.pauses == 1
    _a_first, *later = sorted(fake.stats.arrivals[""])
    assert len(later) == 2  # B, and A again after the pause
    assert all(t >= until for t in later), [t - until for t in later]


@pytest.mark.parametrize("shared", [False, True], ids=["pacer", "shared-pacer"])
async def test_a_storm_at_the_fake_slows_once_and_the_rate_comes_back(shared: bool) -> None:
    # Eight calls in flight together are all answered 6045: one pause, one slowdown, eight
    # rejections - then, 0.25 s windows later, the factor is back at 1.0. The same for the
    # coordinator's pacer (its view mirrors what the coordinator set).
    window = 0.25
    limits = Limits(
        requests_per_minute=60_000,
        metadata_per_minute=60_000,
        max_in_flight=8,
        window_seconds=window,
    )
    async with workspace_fake() as fake:
        # answered late, so that all eight are on the wire before the first answer
        rejected = attrs.evolve(Fault.rate_limited(retry_after="1"), delay=0.2)
        fake.script("workspaces", [rejected] * 8)
        coordinator = LocalCoordinator() if shared else None
        async with session_for(fake, limits=limits, coordinator=coordinator) as session:
            pacer = session._exec.pacer
            assert isinstance(pacer, SharedPacer) is shared
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(session.get_workspaces)
                with anyio.fail_after(30):
                    while sum(v.rejections for v in pacer.org_states().values()) < 8:
                        await anyio.sleep(0.01)
                [(key, view)] = pacer.org_states().items()
                assert view.factor == pytest.approx(0.8)
                assert view.paused_for > 0
            assert pacer.pauses == 1  # one storm, one slowdown
            # every call went through after the pause; wait (bounded) for the recovery
            with anyio.fail_after(30):
                while pacer.org_states()[key].factor < 1.0:
                    await anyio.sleep(window / 2)
            view = pacer.org_states()[key]
            assert view == PaceView(
                waiting=0, factor=1.0, paused_until=view.paused_until, paused_for=0.0, rejections=8
            )
    assert fake.stats.requests_by_route["workspaces"] == 16


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
