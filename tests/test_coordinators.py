"""The coordinator contract (``zoho_async._coordinator``), one suite for every coordinator.

Each contract test runs against ``LocalCoordinator``, ``SqliteCoordinator`` and
``RedisCoordinator`` (a real ``redis-server``, fixture ``redis_url``). Local and SQLite run
on a controllable clock, so their times are exact. Redis keeps time on the server's
clock, which no test can move: there the tests use short TTLs and poll with a deadline,
and every timing assertion allows exactly the real time that passed around the calls
(``Subject.tolerance``), so a slow machine can make them looser, never false.

After the contract: what only SQLite has (files, modes, secrets, errors, processes).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoho_async._auth import StoredToken, token_key
from zoho_async._coord_local import LocalCoordinator
from zoho_async._coord_sqlite import SqliteCoordinator
from zoho_async._coordinator import (
    MIN_FACTOR,
    RECOVERY_STEP,
    Claim,
    Coordinator,
    CoordinatorUnavailableError,
)
from zoho_async._errors import InvalidInputError

# Real time a polling loop may take before the test fails (Redis only; fake clocks jump).
DEADLINE = 20.0
# Redis's clock and this process's monotonic clock may drift apart a little (NTP slew)
# and Redis rounds to the millisecond.
REAL_SLACK = 0.005


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@attrs.define
class Subject:
    """A coordinator under test and the means to move (or wait out) its clock."""

    kind: str
    coord: Coordinator
    clock: FakeClock | None  # None: the coordinator's clock is real (Redis)
    prefix: str = attrs.field(factory=lambda: uuid.uuid4().hex[:12])

    @property
    def exact(self) -> bool:
        return self.clock is not None

    def key(self, name: str) -> str:
        """A key no other test uses (the Redis server is shared by the session)."""
        return f"{self.prefix}:{name}"

    def mark(self) -> float:
        """Now, on a clock that runs at the coordinator's rate (for bounds on elapsed time)."""
        return self.clock.now if self.clock is not None else time.monotonic()

    def tolerance(self, since: float) -> float:
        """How far the coordinator's clock may have moved since ``mark()`` was ``since``."""
        if self.clock is not None:
            return 1e-9 + 1e-12 * abs(self.clock.now)
        return time.monotonic() - since + REAL_SLACK

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the coordinator's clock."""
        if self.clock is not None:
            self.clock.now += seconds
        else:
            await anyio.sleep(seconds)

    async def eventually(self, probe: Callable[[], Awaitable[bool]], step: float) -> int:
        """Poll ``probe`` until it is true, moving the clock ``step`` seconds between tries
        (Redis: the real time passes, with a deadline). Returns the number of steps."""
        steps = 0
        deadline = time.monotonic() + DEADLINE
        while not await probe():
            assert time.monotonic() < deadline, "the condition never became true"
            if self.clock is not None:
                assert steps < 100_000
                self.clock.now += step
            else:
                await anyio.sleep(min(step, 0.02))
            steps += 1
        return steps


def _redis_coordinator(request: pytest.FixtureRequest) -> Coordinator:
    try:
        from zoho_async._coord_redis import RedisCoordinator  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pytest.skip("RedisCoordinator not merged yet")
    url = request.getfixturevalue("redis_url")
    coord: Coordinator = RedisCoordinator(url, prefix=f"zoho-async-test-{uuid.uuid4().hex}")
    return coord


@pytest.fixture(params=["local", "sqlite", "redis"])
async def coordinator(
    request: pytest.FixtureRequest, anyio_backend: str, tmp_path: Path
) -> AsyncIterator[Subject]:
    """Every coordinator, opened, with a clock the test can move where there is one."""
    fake = FakeClock()
    clock: FakeClock | None = fake
    coord: Coordinator
    if request.param == "local":
        coord = LocalCoordinator(clock=fake)
    elif request.param == "sqlite":
        coord = SqliteCoordinator(tmp_path / "shared" / "coord.db", clock=fake)
    else:
        coord = _redis_coordinator(request)
        clock = None
    await coord.open()
    try:
        yield Subject(request.param, coord, clock)
    finally:
        await coord.aclose()


def _claim(owner: str, host: str = "host-a", pid: int = 101) -> Claim:
    return Claim(owner=owner, host=host, pid=pid, started_at=1_700_000_000.5)


# -- the contract ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_is_a_coordinator(coordinator: Subject) -> None:
    assert isinstance(coordinator.coord, Coordinator)


@pytest.mark.anyio
async def test_token_put_get_and_drop_only_if_same(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("token")
    expires = time.time() + 3600  # StoredToken times are wall time
    assert await coord.get_token(key) is None
    await coord.put_token(key, StoredToken("access-1", expires))
    assert await coord.get_token(key) == StoredToken("access-1", expires)
    await coord.put_token(key, StoredToken("access-2", expires + 1))  # replaces
    assert await coord.get_token(key) == StoredToken("access-2", expires + 1)
    await coord.drop_token(key, "access-1")  # Zoho refused an older token: keep the new one
    assert await coord.get_token(key) == StoredToken("access-2", expires + 1)
    assert await coord.get_token(coordinator.key("other")) is None
    await coord.drop_token(key, "access-2")
    assert await coord.get_token(key) is None


@pytest.mark.anyio
async def test_lease_has_one_holder_and_same_holder_re_leases(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("lease")
    assert await coord.lease(key, "a", 30.0)
    assert not await coord.lease(key, "b", 30.0)
    assert await coord.lease(key, "a", 30.0)  # the holder again: extended
    assert await coord.lease(coordinator.key("other"), "b", 30.0)  # another key is free
    await coord.unlease(key, "b")  # not b's: nothing changes
    assert not await coord.lease(key, "b", 30.0)
    await coord.unlease(key, "a")
    assert await coord.lease(key, "b", 30.0)
    assert not await coord.lease(key, "a", 30.0)


@pytest.mark.anyio
async def test_lease_expires_after_ttl(coordinator: Subject) -> None:
    coord, key, ttl = coordinator.coord, coordinator.key("lease"), 0.25
    start = coordinator.mark()
    assert await coord.lease(key, "a", ttl)
    refused = not await coord.lease(key, "b", ttl)
    if coordinator.mark() - start < ttl - REAL_SLACK:  # always on a fake clock
        assert refused
    await coordinator.eventually(lambda: coord.lease(key, "b", ttl), step=ttl)
    # b got it no earlier than a's lease ran out
    assert coordinator.mark() - start >= ttl - REAL_SLACK
    if coordinator.exact:
        assert coordinator.mark() - start == pytest.approx(ttl)


@pytest.mark.anyio
async def test_re_lease_extends_from_now(coordinator: Subject) -> None:
    coord, key, ttl = coordinator.coord, coordinator.key("lease"), 0.5
    assert await coord.lease(key, "a", ttl)
    await coordinator.advance(ttl / 2)
    renewed = coordinator.mark()
    assert await coord.lease(key, "a", ttl)  # lives ttl from now, past the first lease
    refused = not await coord.lease(key, "b", ttl)
    if coordinator.mark() - renewed < ttl - REAL_SLACK:  # always on a fake clock
        assert refused
    await coordinator.eventually(lambda: coord.lease(key, "b", ttl), step=ttl / 2)
    assert coordinator.mark() - renewed >= ttl - REAL_SLACK
    if coordinator.exact:
        assert coordinator.mark() - renewed == ttl


@pytest.mark.anyio
async def test_token_requests_limit_per_rolling_window(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("budget")
    start = coordinator.mark()
    for _ in range(3):
        assert await coord.take_token_request(key, 3, 600.0) == 0.0
        await coordinator.advance(1.0 if coordinator.exact else 0.0)
    wait = await coord.take_token_request(key, 3, 600.0)
    # the first one leaves the window 600 s after it was taken
    elapsed = 3.0 if coordinator.exact else 0.0
    assert wait == pytest.approx(600.0 - elapsed, abs=coordinator.tolerance(start))
    assert 0.0 < wait <= 600.0
    # a refusal counts nothing: asking again gets the same answer
    again = await coord.take_token_request(key, 3, 600.0)
    assert again == pytest.approx(wait, abs=coordinator.tolerance(start))
    assert await coord.take_token_request(coordinator.key("other"), 3, 600.0) == 0.0
    if coordinator.exact:
        await coordinator.advance(wait)
        assert await coord.take_token_request(key, 3, 600.0) == 0.0
        # the second and third are still in the window, with the new one
        assert await coord.take_token_request(key, 3, 600.0) == pytest.approx(1.0)


@pytest.mark.anyio
async def test_token_requests_window_rolls(coordinator: Subject) -> None:
    coord, key, window = coordinator.coord, coordinator.key("budget"), 0.25
    start = coordinator.mark()
    assert await coord.take_token_request(key, 2, window) == 0.0
    assert await coord.take_token_request(key, 2, window) == 0.0
    wait = await coord.take_token_request(key, 2, window)
    if coordinator.mark() - start < window - REAL_SLACK:  # always on a fake clock
        assert 0.0 < wait <= window
    steps = await coordinator.eventually(
        lambda: _granted(coord.take_token_request(key, 2, window)), step=window / 2
    )
    assert coordinator.mark() - start >= window - REAL_SLACK
    if coordinator.exact:
        assert steps == 2


async def _granted(taken: Awaitable[float]) -> bool:
    return await taken == 0.0


@pytest.mark.anyio
async def test_block_token_requests(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("budget")
    start = coordinator.mark()
    await coord.block_token_requests(key, 30.0)
    wait = await coord.take_token_request(key, 10, 600.0)
    assert wait == pytest.approx(30.0, abs=coordinator.tolerance(start))
    await coord.block_token_requests(key, 5.0)  # a shorter block leaves the longer one
    wait = await coord.take_token_request(key, 10, 600.0)
    assert wait == pytest.approx(30.0, abs=coordinator.tolerance(start))
    assert await coord.take_token_request(coordinator.key("other"), 10, 600.0) == 0.0
    if coordinator.exact:
        await coordinator.advance(30.0)
        assert await coord.take_token_request(key, 10, 600.0) == 0.0


def _expected_turns(interval: float, burst: int, n: int, offset: float = 0.0) -> list[float]:
    """Waits of ``n`` back-to-back reservations on a fresh key: ``burst`` at once, then one
    per ``interval``."""
    return [offset + max(0.0, (k - burst + 1) * interval) for k in range(n)]


@pytest.mark.anyio
async def test_reservations_allow_the_burst_then_space_by_interval(
    coordinator: Subject,
) -> None:
    coord = coordinator.coord
    start = coordinator.mark()
    for burst in (1, 3):
        key = coordinator.key(f"pace-{burst}")
        waits = [await coord.reserve(key, 10.0, burst) for _ in range(7)]
        tol = coordinator.tolerance(start)
        assert waits == pytest.approx(_expected_turns(10.0, burst, 7), abs=tol)
    if coordinator.exact:
        # a key left alone drains: the whole burst is available again
        key = coordinator.key("pace-3")
        await coordinator.advance(60.0 + 3 * 10.0)
        assert [await coord.reserve(key, 10.0, 3) for _ in range(4)] == [0, 0, 0, 10.0]
        # time passing counts: half an interval later, half the wait
        await coordinator.advance(5.0)
        assert await coord.reserve(key, 10.0, 3) == pytest.approx(15.0)


@pytest.mark.anyio
async def test_pause_pushes_reservations_behind_it_and_lowers_the_factor(
    coordinator: Subject,
) -> None:
    coord, key = coordinator.coord, coordinator.key("pace")
    start = coordinator.mark()
    assert await coord.reserve(key, 10.0, 3) == 0.0
    assert await coord.pause(key, 30.0, slowdown=0.5) == pytest.approx(
        30.0, abs=coordinator.tolerance(start)
    )
    state = await coord.pace_state(key)
    assert state.factor == pytest.approx(0.5)
    assert state.paused_for == pytest.approx(30.0, abs=coordinator.tolerance(start))
    # every turn comes after the pause - the burst too - then one per 10 / 0.5 s
    waits = [await coord.reserve(key, 10.0, 3) for _ in range(5)]
    assert waits == pytest.approx([30.0, 30.0, 30.0, 50.0, 70.0], abs=coordinator.tolerance(start))
    # a shorter pause leaves the longer one in place
    assert await coord.pause(key, 5.0) == pytest.approx(30.0, abs=coordinator.tolerance(start))
    # the pause is the key's alone
    assert await coord.reserve(coordinator.key("other"), 10.0, 3) == 0.0
    assert (await coord.pace_state(coordinator.key("other"))).factor == 1.0


@pytest.mark.anyio
async def test_factor_never_drops_below_min_factor(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("pace")
    start = coordinator.mark()
    factors = []
    for _ in range(30):
        await coord.pause(key, 60.0, slowdown=0.5)
        factors.append((await coord.pace_state(key)).factor)
    assert factors[0] == pytest.approx(0.5)
    assert factors[1] == pytest.approx(0.25)  # each pause slows the current factor
    assert factors[-1] == pytest.approx(MIN_FACTOR)
    assert min(factors) >= MIN_FACTOR - 1e-12
    # at the floor a turn comes one per interval / MIN_FACTOR
    waits = [await coord.reserve(key, 1.0, 1) for _ in range(2)]
    tol = coordinator.tolerance(start)
    assert waits == pytest.approx([60.0, 60.0 + 1.0 / MIN_FACTOR], abs=tol)


def _allowed_factors(low: float, high: float, window: float, base: float) -> list[float]:
    """The factors recovery may show when between ``low`` and ``high`` seconds passed since
    the pause ended."""
    first = math.floor(max(low, 0.0) / window)
    last = math.floor(max(high, 0.0) / window)
    return [min(1.0, base + RECOVERY_STEP * k) for k in range(first, last + 1)]


@pytest.mark.anyio
async def test_factor_recovers_by_one_step_per_window(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("pace")
    # binary fractions, so that the fake clock's sums are exact at the window edges
    pause, window = 0.0625, 0.25
    before = coordinator.mark()
    await coord.pause(key, pause, slowdown=0.5)
    after = coordinator.mark()
    seen: list[float] = []
    # fake clocks step a quarter of a window at a time, so each level shows 4 times
    step = window / 4

    async def recovered() -> bool:
        low = coordinator.mark()
        state = await coord.pace_state(key, recovery_window=window)
        high = coordinator.mark()
        if state.paused_for > 0.0:
            assert state.factor == pytest.approx(0.5)
        else:
            # seconds since the pause ended, as far as this process can tell
            lo, hi = low - after - pause - REAL_SLACK, high - before - pause + REAL_SLACK
            if coordinator.exact:
                lo = hi = low - before - pause
            allowed = _allowed_factors(lo, hi, window, 0.5)
            assert any(state.factor == pytest.approx(f) for f in allowed), (state, allowed)
            seen.append(state.factor)
        return state.factor == pytest.approx(1.0)

    await coordinator.eventually(recovered, step=step)
    assert seen == sorted(seen)  # it only climbs
    assert seen[-1] == pytest.approx(1.0)
    if coordinator.exact:
        # 10 steps of 0.05 from 0.5, each after a whole window without a pause
        levels = sorted({round(f, 6) for f in seen})
        assert levels == [round(0.5 + RECOVERY_STEP * k, 6) for k in range(11)]
        assert coordinator.mark() - before == pytest.approx(pause + 10 * window)
    # recovered, a key paces at its full rate again
    start = coordinator.mark()
    waits = [await coord.reserve(key, 10.0, 1, recovery_window=window) for _ in range(3)]
    assert waits == pytest.approx([0.0, 10.0, 20.0], abs=coordinator.tolerance(start))


@pytest.mark.anyio
async def test_reservations_use_the_recovered_factor(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("pace")
    if not coordinator.exact:
        pytest.skip("needs a clock the test moves")
    await coord.pause(key, 10.0, slowdown=0.5)
    await coordinator.advance(10.0 + 60.0 * 2 + 1.0)  # two windows after the pause
    assert (await coord.pace_state(key)).factor == pytest.approx(0.6)
    assert (await coord.pace_state(key, recovery_window=30.0)).factor == pytest.approx(0.7)
    waits = [await coord.reserve(key, 6.0, 1) for _ in range(2)]
    assert waits == pytest.approx([0.0, 10.0])  # 6 / 0.6
    # a new pause slows the factor it has reached
    await coord.pause(key, 10.0, slowdown=0.5)
    assert (await coord.pace_state(key)).factor == pytest.approx(0.3)


@pytest.mark.anyio
async def test_pause_reckons_with_the_last_reservations_window(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("pace")
    if not coordinator.exact:
        pytest.skip("needs a clock the test moves")
    await coord.pause(key, 10.0, slowdown=0.5)
    await coordinator.advance(10.0 + 121.0)  # 4 windows of 30 s, 2 of 60 s
    await coord.reserve(key, 1.0, 1, recovery_window=30.0)
    await coord.pause(key, 10.0, slowdown=0.5)  # from 0.7, not 0.6
    assert (await coord.pace_state(key, recovery_window=30.0)).factor == pytest.approx(0.35)


@pytest.mark.anyio
async def test_claims_are_exclusive(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("claim")
    first, second = _claim("a" * 32), _claim("b" * 32, host="host-b", pid=202)
    assert await coord.claim(key, first, 30.0) is None
    assert await coord.claim(key, second, 30.0) == first  # the holder, for the message
    assert await coord.claim(key, first, 30.0) is None  # the holder again
    assert await coord.claim(coordinator.key("other"), second, 30.0) is None
    await coord.release(key, second.owner)  # not b's: nothing changes
    assert await coord.claim(key, second, 30.0) == first
    await coord.release(key, first.owner)
    assert await coord.claim(key, second, 30.0) is None
    assert await coord.claim(key, first, 30.0) == second


@pytest.mark.anyio
async def test_claims_expire_after_ttl(coordinator: Subject) -> None:
    coord, key, ttl = coordinator.coord, coordinator.key("claim"), 0.25
    first, second = _claim("a" * 32), _claim("b" * 32)
    start = coordinator.mark()
    assert await coord.claim(key, first, ttl) is None
    refused = await coord.claim(key, second, ttl)
    if coordinator.mark() - start < ttl - REAL_SLACK:  # always on a fake clock
        assert refused == first

    async def claimed() -> bool:
        return await coord.claim(key, second, ttl) is None

    await coordinator.eventually(claimed, step=ttl / 2)
    assert coordinator.mark() - start >= ttl - REAL_SLACK
    if coordinator.exact:
        assert coordinator.mark() - start == pytest.approx(ttl)


@pytest.mark.anyio
async def test_re_claim_by_the_holder_extends(coordinator: Subject) -> None:
    coord, key, ttl = coordinator.coord, coordinator.key("claim"), 0.5
    first, second = _claim("a" * 32), _claim("b" * 32)
    assert await coord.claim(key, first, ttl) is None
    await coordinator.advance(ttl / 2)
    renewed = coordinator.mark()
    assert await coord.claim(key, first, ttl) is None  # lives ttl from now
    refused = await coord.claim(key, second, ttl)
    if coordinator.mark() - renewed < ttl - REAL_SLACK:  # always on a fake clock
        assert refused == first

    async def claimed() -> bool:
        return await coord.claim(key, second, ttl) is None

    await coordinator.eventually(claimed, step=ttl / 2)
    assert coordinator.mark() - renewed >= ttl - REAL_SLACK
    if coordinator.exact:
        assert coordinator.mark() - renewed == ttl


@pytest.mark.anyio
async def test_concurrent_reservations_are_atomic(coordinator: Subject) -> None:
    coord, key = coordinator.coord, coordinator.key("pace")
    start = coordinator.mark()
    waits: list[float] = []

    async def reserve() -> None:
        waits.append(await coord.reserve(key, 10.0, 2))

    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(reserve)
    assert sorted(waits) == pytest.approx(
        _expected_turns(10.0, 2, 40), abs=coordinator.tolerance(start)
    )


# -- local and SQLite: what the protocol leaves to them -------------------------------------


@pytest.fixture(params=["local", "sqlite"])
async def on_host(
    request: pytest.FixtureRequest, anyio_backend: str, tmp_path: Path
) -> AsyncIterator[tuple[Coordinator, FakeClock]]:
    clock = FakeClock()
    coord: Coordinator
    if request.param == "local":
        coord = LocalCoordinator(clock=clock)
    else:
        coord = SqliteCoordinator(tmp_path / "coord.db", clock=clock)
    await coord.open()
    try:
        yield coord, clock
    finally:
        await coord.aclose()


@pytest.mark.anyio
async def test_bad_arguments_are_refused(on_host: tuple[Coordinator, FakeClock]) -> None:
    coord, key = on_host[0], "x"
    with pytest.raises(InvalidInputError):
        await coord.lease(key, "a", 0.0)
    with pytest.raises(InvalidInputError):
        await coord.reserve(key, 0.0, 1)
    with pytest.raises(InvalidInputError):
        await coord.claim(key, _claim("a"), -1.0)


@pytest.mark.anyio
async def test_expired_token_is_not_returned(on_host: tuple[Coordinator, FakeClock]) -> None:
    coord, clock = on_host
    await coord.put_token("k", StoredToken("access", clock.now + 100.0))
    clock.now += 99.0
    assert await coord.get_token("k") == StoredToken("access", clock.now + 1.0)
    clock.now += 1.0
    assert await coord.get_token("k") is None


@pytest.mark.anyio
async def test_reprs_hold_no_token(on_host: tuple[Coordinator, FakeClock]) -> None:
    coord, clock = on_host
    await coord.put_token("k", StoredToken("secret-access-token", clock.now + 100.0))
    assert "secret-access-token" not in repr(coord)
    assert "secret-access-token" not in repr(await coord.get_token("k"))


@pytest.mark.anyio
async def test_async_with(tmp_path: Path) -> None:
    async with LocalCoordinator() as local:
        assert await local.lease("k", "a", 1.0)
    async with SqliteCoordinator(tmp_path / "c.db") as shared:
        assert await shared.lease("k", "a", 3600.0)
    # closed, then used again: it reopens (and is closed again)
    assert not await shared.lease("k", "b", 3600.0)
    await shared.aclose()


@attrs.frozen
class _Op:
    """One call of the model test; each call uses the fields it needs."""

    name: str
    key: str  # "a" or "b"
    who: str  # a holder, an owner, an access token
    seconds: float  # a ttl, a window, an interval, a pause, a clock step
    count: int  # a limit, a burst
    other: float  # a recovery window, a slowdown


_ops = st.builds(
    _Op,
    name=st.sampled_from(
        [
            "advance",
            "put",
            "get",
            "drop",
            "lease",
            "unlease",
            "take",
            "block",
            "reserve",
            "pause",
            "state",
            "claim",
            "release",
        ]
    ),
    key=st.sampled_from(["a", "b"]),
    who=st.sampled_from(["x", "y"]),
    seconds=st.sampled_from([0.25, 0.5, 1.0, 5.0, 30.0, 61.0]),
    count=st.integers(1, 3),
    other=st.sampled_from([0.5, 0.8, 1.0, 30.0]),
)


async def _apply(coord: Coordinator, clock: FakeClock, op: _Op) -> object:
    key, who, seconds = op.key, op.who, op.seconds
    match op.name:
        case "advance":
            clock.now += seconds
        case "put":
            await coord.put_token(key, StoredToken(who, clock.now + seconds))
        case "get":
            return await coord.get_token(key)
        case "drop":
            await coord.drop_token(key, who)
        case "lease":
            return await coord.lease(key, who, seconds)
        case "unlease":
            await coord.unlease(key, who)
        case "take":
            return await coord.take_token_request(key, op.count, seconds)
        case "block":
            await coord.block_token_requests(key, seconds)
        case "reserve":
            return await coord.reserve(key, seconds, op.count, recovery_window=op.other * 60)
        case "pause":
            return await coord.pause(key, seconds, slowdown=min(op.other, 1.0))
        case "state":
            return await coord.pace_state(key, recovery_window=op.other * 60)
        case "claim":
            return await coord.claim(key, _claim(who), seconds)
        case "release":
            await coord.release(key, who)
    return None


@settings(max_examples=100)
@given(ops=st.lists(_ops, max_size=40))
def test_sqlite_behaves_exactly_as_local(ops: list[_Op]) -> None:
    """The same calls at the same (fake) times get the same answers from both: the SQL
    round-trips (infinities, upserts, the ordering of request times) lose nothing."""

    async def run() -> None:
        local_clock, sqlite_clock = FakeClock(), FakeClock()
        local = LocalCoordinator(clock=local_clock)
        with tempfile.TemporaryDirectory() as tmp:
            async with SqliteCoordinator(Path(tmp) / "c.db", clock=sqlite_clock) as shared:
                for op in ops:
                    expected = await _apply(local, local_clock, op)
                    assert await _apply(shared, sqlite_clock, op) == expected, op

    anyio.run(run)


# -- SQLite only ------------------------------------------------------------------------------


def _sqlite_rows(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


@pytest.mark.anyio
@pytest.mark.parametrize("umask", [0o022, 0o277])  # common (0644/0755), and too tight
async def test_sqlite_file_and_directory_modes(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "new" / "coord.db"
    old = os.umask(umask)
    try:
        async with SqliteCoordinator(path) as coord:
            await coord.put_token("k", StoredToken("access", time.time() + 60))
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            for extra in ("-wal", "-shm"):  # SQLite's own files take the database's mode
                sidecar = path.with_name(path.name + extra)
                assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, extra
    finally:
        os.umask(old)


@pytest.mark.anyio
async def test_sqlite_tightens_an_open_file_of_ours(tmp_path: Path) -> None:
    path = tmp_path / "coord.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    async with SqliteCoordinator(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.anyio
async def test_sqlite_file_holds_no_refresh_token_or_client_secret(tmp_path: Path) -> None:
    refresh, secret, client_id = "1000.refresh-SECRET-token", "client-SECRET-xyz", "1000.CID"
    key = token_key("https://accounts.zoho.com", client_id, refresh)  # what callers pass
    path = tmp_path / "coord.db"
    async with SqliteCoordinator(path) as coord:
        await coord.put_token(key, StoredToken("the-access-token", time.time() + 3600))
        assert await coord.lease(key, "holder", 30.0)
        assert await coord.take_token_request(key, 10, 600.0) == 0.0
        await coord.reserve(key, 1.0, 1)
        assert await coord.claim(key, _claim("run"), 30.0) is None
        files = [p for p in tmp_path.iterdir() if p.name.startswith("coord.db")]
        data = b"".join(p.read_bytes() for p in files)
    data += path.read_bytes()  # after the checkpoint on close too
    assert b"the-access-token" in data  # the search does look at what is stored
    for secret_text in (refresh, secret):
        assert secret_text.encode() not in data


@pytest.mark.anyio
async def test_sqlite_prunes_expired_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "coord.db"
    async with SqliteCoordinator(path, clock=clock) as coord:
        for i in range(5):
            await coord.put_token(f"t{i}", StoredToken("a", clock.now + 10.0))
            assert await coord.lease(f"l{i}", "a", 10.0)
            assert await coord.claim(f"c{i}", _claim("a"), 10.0) is None
            await coord.block_token_requests(f"b{i}", 10.0)
        assert _sqlite_rows(path, "claims") == 5
        clock.now += 61.0  # past every TTL and the prune interval
        assert await coord.claim("fresh", _claim("a"), 10.0) is None
        for table, left in (("tokens", 0), ("leases", 0), ("claims", 1), ("token_blocks", 0)):
            assert _sqlite_rows(path, table) == left, table


@pytest.mark.anyio
async def test_sqlite_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    coord = SqliteCoordinator(blocker / "coord.db")
    with pytest.raises(CoordinatorUnavailableError, match="a-file"):
        await coord.open()
    await coord.aclose()


@pytest.mark.anyio
async def test_sqlite_path_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "coord.db").mkdir()
    async with contextlib.AsyncExitStack() as stack:
        coord = SqliteCoordinator(tmp_path / "coord.db")
        stack.push_async_callback(coord.aclose)
        with pytest.raises(CoordinatorUnavailableError, match=r"coord\.db"):
            await coord.open()


@pytest.mark.anyio
async def test_sqlite_broken_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "coord.db"
    path.write_bytes(b"this is not a SQLite database at all, " * 100)
    coord = SqliteCoordinator(path)
    with pytest.raises(CoordinatorUnavailableError, match=r"coord\.db"):
        await coord.open()
    with pytest.raises(CoordinatorUnavailableError):  # every call, not only open
        await coord.reserve("k", 1.0, 1)
    await coord.aclose()


@pytest.mark.anyio
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes")
async def test_sqlite_read_only_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "coord.db"
    async with SqliteCoordinator(path):
        pass
    path.chmod(0o400)
    coord = SqliteCoordinator(path)
    with pytest.raises(CoordinatorUnavailableError, match=r"coord\.db"):
        await coord.open()
    await coord.aclose()


@pytest.mark.anyio
async def test_sqlite_lock_held_past_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "coord.db"
    async with SqliteCoordinator(path, busy_timeout=0.1) as coord:
        # another process stuck inside a write transaction
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(CoordinatorUnavailableError, match="locked"):
                await coord.reserve("k", 1.0, 1)
            other.execute("ROLLBACK")
        assert await coord.reserve("k", 1.0, 1) == 0.0  # usable again once it is free


def _fresh_file_held_by_a_writer(path: Path) -> sqlite3.Connection:
    """A new (rollback-journal) file whose write lock another process holds.

    This is the moment several processes opening a new file at once meet: SQLite answers
    the WAL switch with an immediate SQLITE_BUSY, without waiting the busy timeout.
    """
    path.touch()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE theirs (x)")
    return other


@pytest.mark.anyio
async def test_sqlite_open_waits_for_a_writer_on_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoho_async import _coord_sqlite

    path = tmp_path / "coord.db"
    other = _fresh_file_held_by_a_writer(path)
    refused = anyio.Event()
    is_busy = _coord_sqlite._is_busy

    def noting(exc: sqlite3.OperationalError) -> bool:
        # called from the coordinator's worker thread when SQLite says busy
        anyio.from_thread.run_sync(refused.set)
        return is_busy(exc)

    monkeypatch.setattr(_coord_sqlite, "_is_busy", noting)
    async with anyio.create_task_group() as tg:
        coord = SqliteCoordinator(path, busy_timeout=60.0)
        tg.start_soon(coord.open)
        await refused.wait()  # the open met the held lock at least once...
        other.execute("COMMIT")  # ...and goes on once it is free
    other.close()
    assert await coord.reserve("k", 1.0, 1) == 0.0
    await coord.aclose()


@pytest.mark.anyio
async def test_sqlite_open_gives_up_on_a_new_file_after_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "coord.db"
    with contextlib.closing(_fresh_file_held_by_a_writer(path)):
        coord = SqliteCoordinator(path, busy_timeout=0.2)
        with pytest.raises(CoordinatorUnavailableError, match="locked"):
            await coord.open()
        await coord.aclose()


_WORKER = textwrap.dedent(
    """
    import json, random, sys, time
    import anyio
    from zoho_async._coord_sqlite import SqliteCoordinator
    from zoho_async._coordinator import Claim

    path, ident, turns, interval, burst = sys.argv[1:6]
    turns, interval, burst = int(turns), float(interval), int(burst)
    last = [0.0]

    def clock():
        # the coordinator reads its clock once per transaction, under the write lock
        last[0] = time.time()
        return last[0]

    async def main():
        keys = [f"claim-{i}" for i in range(100)]
        random.Random(ident).shuffle(keys)
        me = Claim(owner=ident, host="h", pid=0, started_at=0.0)
        granted, won = [], []
        async with SqliteCoordinator(path, clock=clock, busy_timeout=60.0) as coord:
            print("ready", flush=True)
            sys.stdin.readline()  # go: every worker starts together
            for i in range(max(turns, len(keys))):
                if i < turns:
                    wait = await coord.reserve("pace", interval, burst)
                    granted.append(last[0] + wait)
                if i < len(keys) and await coord.claim(keys[i], me, 3600.0) is None:
                    won.append(keys[i])
        print(json.dumps({"granted": granted, "won": won}), flush=True)

    anyio.run(main)
    """
)


@pytest.mark.slow
def test_sqlite_across_processes(tmp_path: Path) -> None:
    """4 processes reserve turns of one key and claim the same 100 keys, all at once."""
    path, turns, interval, burst = tmp_path / "coord.db", 50, 5.0, 3
    # the interval is long so that turns run far ahead of the clock: then every turn
    # after the burst is exactly one interval after the one before, however the workers
    # interleave (nobody sleeps the waits; only the bookkeeping is tested)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                str(path),
                f"w{i}",
                *map(str, (turns, interval, burst)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", (line, proc.stderr.read() if proc.stderr else "")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            results.append(json.loads(out.splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    won = [key for result in results for key in result["won"]]
    assert sorted(won) == sorted(f"claim-{i}" for i in range(100))  # each exactly once
    granted = sorted(t for result in results for t in result["granted"])
    assert len(granted) == 4 * turns
    gaps = [b - a for a, b in zip(granted[burst:], granted[burst + 1 :], strict=False)]
    assert min(gaps) >= interval * 0.99, min(gaps)
    # and no more turns than the rate allows: the last is (n - burst) intervals on
    assert granted[-1] - granted[burst] == pytest.approx((len(granted) - 1 - burst) * interval)
