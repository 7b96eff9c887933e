"""Cancellation delivers exactly once, ends promptly, and a dead credential ends the run.

- An ``on_result`` callback that is itself interrupted is never called again for the
  same target.
- Cancelling a run fed by an endless or stuck source returns: only pulled targets get
  results (the rest of a list or tuple comes back CANCELLED; a generator is not pulled on).
- A token refresh whose leader is cancelled still serves the tasks waiting for it.
- A revoked refresh token stops the run: nothing more is sent, the rest end FAILED with
  ``TokenRefreshError`` without waiting for pacing turns, and the CLI exits 3.

Everything is counted at the fake (requests, token requests), never on the clock.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from click.testing import CliRunner

from zoho_async import Limits, SyncResult, SyncStatus
from zoho_async._pacing import _OrgBudget
from zoho_async.cli import cli
from zoho_async.testing import FakeZoho, Fault

from .helpers import ds_id, session_for, workspace_fake

pytestmark = pytest.mark.anyio

N = 40
# Zoho's real budget: one metadata call a second, so a run that kept sending after the
# refresh token died would spend one pacing turn per remaining target.
PACED = Limits(requests_per_minute=60, metadata_per_minute=60, max_in_flight=8)


async def _datasources(fake: FakeZoho, n: int = N) -> list[str]:
    # instant syncs: the endless sources sync the same datasources again and again, and
    # must get STARTED each time, not 18073
    return [
        ds_id(fake.add_datasource("1001", total_sync_allowed=10**6, sync_duration=0.0))
        for _ in range(n)
    ]


def _endless(ids: list[str], pulled: list[int] | None = None) -> Iterator[tuple[str, str]]:
    """A plain generator that never ends: the run must never try to pull it dry.

    ``pulled`` (one counter) counts the items the run took from it."""
    for i in itertools.count():
        if pulled is not None:
            pulled[0] = i + 1
        yield ("1001", ids[i % len(ids)])


def _assert_pulled_once(results: list[SyncResult]) -> Counter[int]:
    """Each index at most once, and no gaps: every pulled target has its one result."""
    seen = Counter(r.index for r in results)
    assert all(count == 1 for count in seen.values()), seen.most_common(3)
    assert sorted(seen) == list(range(len(seen)))
    return seen


# -- 1. exactly one on_result, even when the callback is interrupted ---------------------


@pytest.mark.parametrize("cut", [1, 7, 20, 39, 40])
async def test_interrupted_async_on_result_is_not_called_again(cut: int) -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake)
        delivered: list[SyncResult] = []
        async with session_for(fake) as session:
            with anyio.fail_after(30), anyio.CancelScope() as scope:

                async def on_result(result: SyncResult) -> None:
                    delivered.append(result)
                    if len(delivered) == cut:
                        scope.cancel()
                    # every callback in progress when the run is cancelled is
                    # interrupted here, after it was entered
                    await anyio.lowlevel.checkpoint()

                await session.sync_many([("1001", d) for d in ids], on_result=on_result)
        # a list: every target once, the unsent ones as CANCELLED
        assert Counter(r.index for r in delivered) == Counter(range(N))
        started = sum(r.status is SyncStatus.STARTED for r in delivered)
        assert started <= fake.stats.syncs_started.total()


async def test_on_result_cancelled_while_blocked_is_not_called_again() -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake, 10)
        calls: Counter[int] = Counter()
        blocked = anyio.Event()
        async with session_for(fake) as session:
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:

                    async def on_result(result: SyncResult) -> None:
                        calls[result.index] += 1
                        if result.index == 3:
                            blocked.set()
                            await anyio.sleep_forever()  # a callback that never returns

                    async def run() -> None:
                        await session.sync_many([("1001", d) for d in ids], on_result=on_result)

                    tg.start_soon(run)
                    await blocked.wait()
                    tg.cancel_scope.cancel()
        assert calls == Counter(range(10))


# -- 2. cancelling a run fed by an endless or stuck source returns --------------------------


async def test_cancel_with_an_endless_generator_returns() -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake)
        delivered: list[SyncResult] = []
        pulled = [0]
        async with session_for(fake) as session:
            with anyio.fail_after(5), anyio.CancelScope() as scope:

                def on_result(result: SyncResult) -> None:
                    delivered.append(result)
                    if len(delivered) == 25:
                        scope.cancel()

                await session.sync_many(_endless(ids, pulled), on_result=on_result)
            await session.get_orgs()  # the session is still usable
        seen = _assert_pulled_once(delivered)
        # exactly what was pulled got a result: none lost, none invented
        assert len(seen) == pulled[0] >= 25


async def test_move_on_after_with_an_endless_generator_returns() -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake)
        delivered: list[SyncResult] = []
        pulled = [0]
        async with session_for(fake) as session:
            with anyio.fail_after(10):
                with anyio.move_on_after(0.2):
                    await session.sync_many(_endless(ids, pulled), on_result=delivered.append)
        assert len(_assert_pulled_once(delivered)) == pulled[0]


async def test_cancel_with_an_async_source_that_awaits_forever_returns() -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake, 3)
        parked = anyio.Event()

        async def stuck() -> AsyncIterator[tuple[str, str]]:
            for d in ids:
                yield ("1001", d)
            parked.set()
            await anyio.sleep_forever()  # a queue that never gets another item
            yield ("1001", ids[0])  # pragma: no cover

        delivered: list[SyncResult] = []
        async with session_for(fake) as session:
            with anyio.fail_after(5):
                async with anyio.create_task_group() as tg:

                    async def run() -> None:
                        await session.sync_many(stuck(), on_result=delivered.append)

                    tg.start_soon(run)
                    await parked.wait()
                    tg.cancel_scope.cancel()
        assert Counter(r.index for r in delivered) == Counter(range(3))


async def test_iter_sync_left_early_on_an_endless_generator_does_not_hang() -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake)
        with anyio.fail_after(5):
            async with session_for(fake) as session:
                got = 0
                async with session.iter_sync(_endless(ids)) as results:
                    async for _ in results:
                        got += 1
                        if got == 10:
                            break
                await session.get_orgs()  # the loop is free: the run's finaliser ended
        assert got == 10


async def test_cancel_reports_the_rest_of_a_list_as_cancelled() -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake)
        delivered: list[SyncResult] = []
        async with session_for(fake) as session:
            with anyio.CancelScope() as scope:

                def on_result(result: SyncResult) -> None:
                    delivered.append(result)
                    if len(delivered) == 5:
                        scope.cancel()

                await session.sync_many([("1001", d) for d in ids], on_result=on_result)
        assert Counter(r.index for r in delivered) == Counter(range(N))
        assert any(r.status is SyncStatus.CANCELLED for r in delivered)


# -- 3. a token refresh outlives its cancelled leader ----------------------------------------


async def _token_requests_reach(fake: FakeZoho, count: int) -> None:
    # the refresh is held at the fake by a scripted delay; wait until it has arrived
    while fake.stats.token_requests < count:
        await anyio.sleep(0.005)


async def test_cancelled_refresh_leader_still_serves_the_waiters() -> None:
    async with workspace_fake() as fake:
        fake.script("token", [Fault(delay=1.0)])  # slow, then the normal answer
        async with session_for(fake) as session:
            tokens: list[str] = []

            async def waiter() -> None:
                tokens.append(await session.get_access_token())

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    leader = anyio.CancelScope()

                    async def lead() -> None:
                        with leader:
                            await session.get_access_token()

                    tg.start_soon(lead)
                    await _token_requests_reach(fake, 1)
                    for _ in range(3):
                        tg.start_soon(waiter)
                    await anyio.wait_all_tasks_blocked()  # the waiters queue behind it
                    leader.cancel()
            await session.get_orgs()
        assert len(tokens) == 3 and len(set(tokens)) == 1
        assert fake.stats.token_requests == 1


async def test_cancelled_refresh_leader_alone_keeps_its_token() -> None:
    async with workspace_fake() as fake:
        fake.script("token", [Fault(delay=0.5)])
        async with session_for(fake) as session:
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(session.get_access_token)
                    await _token_requests_reach(fake, 1)
                    tg.cancel_scope.cancel()
                # the answer of the request already sent is kept, not thrown away
                await session.get_orgs()
        assert fake.stats.token_requests == 1


# -- 4. a revoked refresh token stops the run --------------------------------------------------


def _revoke(fake: FakeZoho) -> None:
    fake.revoke_refresh_token()
    fake.revoke_tokens()


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pacing turns taken, counted where the pacer hands them out: a turn taken only to
    find the token dead sends nothing, so the fake cannot see it."""
    counter = [0]
    take = _OrgBudget.take

    def counting_take(self: _OrgBudget, metadata: bool, now: float) -> None:
        counter[0] += 1
        take(self, metadata, now)

    monkeypatch.setattr(_OrgBudget, "take", counting_take)
    return counter


# One turn for the call whose 8535 finds the refresh token dead, and two more of margin
# for a slow machine. Before the fix every call queued for a turn (max_in_flight = 8 of
# them, one a second) waited for it only to fail without sending.
TURNS_AFTER_REVOCATION = 3


async def test_revoked_refresh_token_stops_a_paced_run(turns: list[int]) -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake, 20)
        delivered: list[SyncResult] = []
        sent_at_revocation: list[int] = []
        turns_at_revocation: list[int] = []

        def on_result(result: SyncResult) -> None:
            delivered.append(result)
            if len(delivered) == 2:
                sent_at_revocation.append(fake.stats.sync_calls.total())
                turns_at_revocation.append(turns[0])
                _revoke(fake)

        async with session_for(fake, limits=PACED) as session:
            with anyio.fail_after(60):
                report = await session.sync_many([("1001", d) for d in ids], on_result=on_result)
        assert [r.index for r in report.results] == list(range(20))
        kinds = Counter((r.status, r.error_type) for r in report.results)
        assert set(kinds) <= {(SyncStatus.STARTED, None), (SyncStatus.FAILED, "TokenRefreshError")}
        assert kinds[(SyncStatus.FAILED, "TokenRefreshError")] >= 20 - sent_at_revocation[0] - 4
        # After the revocation: the requests in flight (at most max_in_flight), and the
        # one whose 8535 led to the failed refresh. Sending on would cost a turn each.
        assert fake.stats.sync_calls.total() <= sent_at_revocation[0] + PACED.max_in_flight + 1
        assert fake.stats.token_requests == 2  # the first token, one failed refresh
        assert Counter(r.index for r in delivered) == Counter(range(20))
        assert turns[0] - turns_at_revocation[0] <= TURNS_AFTER_REVOCATION


async def test_revoked_refresh_token_stops_pulling_an_endless_source() -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake, 10)
        delivered: list[SyncResult] = []
        pulled = [0]

        def on_result(result: SyncResult) -> None:
            delivered.append(result)
            if len(delivered) == 3:
                _revoke(fake)

        async with session_for(fake) as session:
            with anyio.fail_after(30):
                report = await session.sync_many(_endless(ids, pulled), on_result=on_result)
        assert len(_assert_pulled_once(list(report.results))) == pulled[0]
        kinds = Counter((r.status, r.error_type) for r in report.results)
        assert set(kinds) <= {(SyncStatus.STARTED, None), (SyncStatus.FAILED, "TokenRefreshError")}
        assert kinds[(SyncStatus.FAILED, "TokenRefreshError")] >= 1
        assert fake.stats.token_requests == 2


async def test_revoked_refresh_token_fails_the_rest_of_iter_sync(turns: list[int]) -> None:
    async with workspace_fake() as fake:
        ids = await _datasources(fake, 20)
        got: list[SyncResult] = []
        turns_at_revocation = 0
        async with session_for(fake, limits=PACED) as session:
            with anyio.fail_after(60):
                async for result in session.iter_sync([("1001", d) for d in ids]):
                    got.append(result)
                    if len(got) == 2:
                        turns_at_revocation = turns[0]
                        _revoke(fake)
        assert turns[0] - turns_at_revocation <= TURNS_AFTER_REVOCATION
        assert sorted(r.index for r in got) == list(range(20))
        assert {r.error_type for r in got if r.status is not SyncStatus.STARTED} == {
            "TokenRefreshError"
        }
        assert fake.stats.sync_calls.total() <= 20 - 10


PACED_ARGS = ["sync", "1001", "--rate", "60", "--metadata-rate", "60", "--max-in-flight", "8"]


def test_cli_exits_3_when_the_refresh_token_is_revoked_mid_run(
    tmp_path: Path, turns: list[int]
) -> None:
    built = FakeZoho(requests_per_minute=None, metadata_per_minute=None)
    org = built.add_org(is_default=True)
    built.add_workspace(org.org_id, "1001")
    n = 20
    for _ in range(n):
        built.add_datasource("1001", total_sync_allowed=10**6, sync_duration=0.0)
    with FakeZoho.run_in_thread(built) as fake:
        env = {
            "ZOHO_CLIENT_ID": fake.client_id,
            "ZOHO_CLIENT_SECRET": fake.client_secret,
            "ZOHO_REFRESH_TOKEN": fake.refresh_token,
            "ZOHO_ORG_ID": fake.default_org_id,
            "ZOHO_API_URL": fake.api_url,
            "ZOHO_ACCOUNTS_URL": fake.accounts_url,
            "ZOHO_TOKEN_CACHE": None,
            "ZOHO_DATA_CENTER": None,
        }
        done = threading.Event()
        sent_at_revocation: list[int] = []
        turns_at_revocation: list[int] = []

        def revoke_after_two_syncs() -> None:
            # The run is paced at one sync a second, so it is still going when the
            # second sync arrives; the assertions do not depend on exactly when.
            while not done.wait(0.005):
                if fake.stats.sync_calls.total() >= 2:
                    sent_at_revocation.append(fake.stats.sync_calls.total())
                    turns_at_revocation.append(turns[0])
                    _revoke(fake)
                    return

        watcher = threading.Thread(target=revoke_after_two_syncs, daemon=True)
        watcher.start()
        out = tmp_path / "results.jsonl"
        try:
            result = CliRunner().invoke(
                cli,
                [*PACED_ARGS, "--no-token-cache", "-f", "jsonl", "-o", str(out)],
                env=env,
                catch_exceptions=False,
            )
        finally:
            done.set()
            watcher.join()
        assert result.exit_code == 3, result.output
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        rows = [r for r in rows if "kind" not in r]  # results only, not the journal's lines
        assert sorted(r["index"] for r in rows) == list(range(n))
        assert {(r["status"], r["error_type"]) for r in rows} <= {
            ("STARTED", None),
            ("FAILED", "TokenRefreshError"),
        }
        assert sent_at_revocation
        assert fake.stats.sync_calls.total() <= sent_at_revocation[0] + 8 + 1
        assert turns[0] - turns_at_revocation[0] <= TURNS_AFTER_REVOCATION
