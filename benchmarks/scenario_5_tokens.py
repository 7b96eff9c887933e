"""Scenario 5, token storm: 1,000 concurrent first calls, then tokens revoked mid-run.

Targets: the 1,000 first calls of a fresh session cause exactly 1 token request, and
revoking every token in the middle of a bulk run causes exactly 1 more.

This counts requests, it does not time anything, so the fake serves from the same process
as the client (one fresh child process for the whole scenario). The fake keeps Zoho's real
token limit (10 per 10 minutes) for zoho-async. For contrast the official-style client
shared by a thread pool does the same; its fake's token limit is lifted so that the storm
can be counted instead of failing the run.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import anyio

from benchmarks._shared import JSON, Layout, Scenario, Target, progress, run_contender
from benchmarks.fake_server import build

LATENCY = 0.05  # long enough that every first call arrives while the first token is fetched
POOL_WIDTH = 64  # as in scenario 1


async def sdk_storm(first: int, rest: int) -> JSON:
    from zoho_async import AnalyticsSession, Limits, SyncResult, ZohoError

    layout = Layout.for_syncs(first + rest, quota=10)
    fake = build(
        {"requests_per_minute": None, "metadata_per_minute": None, "latency": LATENCY}, layout
    )
    failures: Counter[str] = Counter()
    async with fake:
        limits = Limits(requests_per_minute=10**9, metadata_per_minute=10**9, max_in_flight=first)
        async with AnalyticsSession(
            **fake.credentials,
            org_id=fake.default_org_id,
            api_url=fake.api_url,
            accounts_url=fake.accounts_url,
            limits=limits,
        ) as session:

            async def first_call(ws: str, ds: str) -> None:
                try:
                    await session.sync_data(ws, ds)
                except ZohoError as exc:
                    failures[type(exc).__name__] += 1

            # every first call starts before any of them has a token
            async with anyio.create_task_group() as tg:
                for ws, ds in layout.targets(first):
                    tg.start_soon(first_call, ws, ds)
            after_first = fake.stats.token_requests
            started_first = fake.stats.syncs_started.total()

            done = 0
            revoked_at: int | None = None

            def on_result(result: SyncResult) -> None:
                nonlocal done, revoked_at
                done += 1
                if done == rest // 2:
                    fake.revoke_tokens()  # every token issued so far: 8535 from now on
                    revoked_at = done

            # same session, same cap: up to `first` requests carry the revoked token at once
            report = await session.sync_many(layout.targets(rest, start=first), on_result=on_result)
            statuses = Counter(r.status.value for r in report.results)
    return {
        "first_calls": first,
        "first_failures": dict(failures),
        "first_started": started_first,
        "token_requests_first": after_first,
        "bulk": rest,
        "revoked_after": revoked_at,
        "token_requests_after_revoke": fake.stats.token_requests - after_first,
        "bulk_statuses": dict(statuses),
        "bulk_token_requests_reported": report.token_requests,
    }


def official_storm(first: int, rest: int) -> JSON:
    from benchmarks.official_style import AnalyticsClient
    from zoho_async.testing import FakeZoho

    layout = Layout.for_syncs(first + rest, quota=10)
    fake = build(
        {
            "requests_per_minute": None,
            "metadata_per_minute": None,
            "latency": LATENCY,
            "token_limit": 1_000_000,
        },
        layout,
    )
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    with FakeZoho.run_in_thread(fake) as running:
        client = AnalyticsClient(
            running.client_id,
            running.client_secret,
            running.refresh_token,
            analytics_server_url=running.api_url,
            accounts_server_url=running.accounts_url,
        )
        org = running.default_org_id or ""
        marks: dict[str, int] = {}

        def one(target: tuple[str, str]) -> None:
            ws, ds = target
            try:
                client.get_workspace_instance(org, ws).sync_data(ds)
                outcome = "started"
            except Exception as exc:
                outcome = type(exc).__name__
            with lock:
                outcomes[outcome] += 1
                total = sum(outcomes.values())
                if total == first:
                    marks["first"] = running.stats.token_requests
                if total == first + rest // 2:
                    running.revoke_tokens()
                    marks["revoked"] = running.stats.token_requests

        with ThreadPoolExecutor(max_workers=POOL_WIDTH) as pool:
            list(pool.map(one, layout.targets(first + rest)))
        total_tokens = running.stats.token_requests
    return {
        "pool_width": POOL_WIDTH,
        "token_requests_first": marks.get("first"),
        "token_requests_after_revoke": total_tokens - marks.get("revoked", total_tokens),
        "token_requests_total": total_tokens,
        "outcomes": dict(outcomes),
    }


def child() -> None:
    spec: JSON = json.loads(sys.stdin.read())
    first, rest = int(spec["first"]), int(spec["rest"])
    ours = anyio.run(sdk_storm, first, rest)
    theirs = official_storm(first, rest)
    print(json.dumps({"zoho_async": ours, "official_pool": theirs}))


def run(quick: bool) -> Scenario:
    first = 200 if quick else 1000
    rest = 400 if quick else 2000
    progress(f"  scenario 5: {first:,} concurrent first calls, then {rest:,} with a revocation")
    result = run_contender({"first": first, "rest": rest}, module="benchmarks.scenario_5_tokens")
    ours, theirs = result["zoho_async"], result["official_pool"]
    scenario = Scenario(
        5,
        "Token storm",
        f"FakeZoho in the client's process, {int(LATENCY * 1000)} ms latency. Phase 1: "
        f"{first:,} concurrent `sync_data` calls on a fresh session (in-flight cap {first:,}, "
        f"so all of them are in flight at once). Phase 2: `sync_many` over {rest:,} more "
        "targets; after half of them, every access token is revoked at the fake. The "
        f"official-style client, shared by a {POOL_WIDTH}-thread pool, does the same "
        f"{first + rest:,} syncs with the same revocation.",
        [
            "contender",
            "token requests for the first calls",
            "token requests after the revocation",
            "outcomes",
        ],
    )
    scenario.rows.append(
        [
            "zoho-async",
            str(ours["token_requests_first"]),
            str(ours["token_requests_after_revoke"]),
            f"first calls: {ours['first_started']:,} started"
            + (f", failures {ours['first_failures']}" if ours["first_failures"] else "")
            + "; bulk: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(ours["bulk_statuses"].items())),
        ]
    )
    scenario.rows.append(
        [
            f"official-style, thread pool x{POOL_WIDTH}",
            str(theirs["token_requests_first"]),
            str(theirs["token_requests_after_revoke"]),
            ", ".join(f"{k} {v:,}" for k, v in sorted(theirs["outcomes"].items())),
        ]
    )
    scenario.contenders = {"zoho_async": ours, "official_pool": theirs}
    scenario.targets = [
        Target("token requests for the first calls", float(ours["token_requests_first"]), 1, "=="),
        Target(
            "token requests after the mid-run revocation",
            float(ours["token_requests_after_revoke"]),
            1,
            "==",
        ),
        Target(
            "every target started",
            float(ours["first_started"] + ours["bulk_statuses"].get("STARTED", 0)),
            float(first + rest),
            "==",
        ),
    ]
    return scenario


if __name__ == "__main__":
    child()
