"""Scenario 9, restarts: 4 processes, each restarted 12 times, share one access token.

Four loops run side by side; each starts a fresh process 12 times in a row, so 48
processes start within about a minute. Each one opens an ``AnalyticsSession`` with the
shared coordinator (a SQLite file, or a real ``redis-server``), gets the access token,
makes one call (Get Organizations), closes and exits. The fake keeps Zoho's real token
limit: 10 token requests per 10 minutes per refresh token.

Targets, per store: 1 token request at the fake in all, and no process refused (every
one of the 48 got its token and made its call). For contrast the same 48 starts run with
no shared store (``local``: today's per-process behaviour, against a fake of its own):
each process mints its own token until Zoho's limit refuses the rest.

At full size every start is a fresh interpreter (``python -m
benchmarks.scenario_9_restarts``: a JSON spec on stdin, its JSON result on stdout), as a
restarted service is. The quick size forks each start from a ``forkserver`` that has
imported the packages already: still a new process every time, with nothing of the
previous one's session, but without 48 interpreters importing aiohttp on a 2-core machine
(~0.7 s of CPU each). What is counted does not depend on how the process began.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import anyio

from benchmarks._shared import (
    JSON,
    FakeProcess,
    Layout,
    Scenario,
    Target,
    fmt,
    progress,
    run_contender,
)
from benchmarks._stores import Stores, child_session, coordinator, stores

PROCESSES = 4
RESTARTS = 12


async def start(spec: JSON) -> JSON:
    """One process start: session, token, one call, close; what happened."""
    from zoho_async import Limits, ZohoError

    store = spec["store"]
    shared = coordinator(store) if store != "local" else None
    # Limits far above the fake's: the one call of each start never waits for a turn.
    limits = Limits(requests_per_minute=6000, metadata_per_minute=6000)
    outcome = "ok"
    tokens = 0
    try:
        async with child_session(spec, limits, shared) as session:
            try:
                await session.get_access_token()
                await session.get_orgs()
            except ZohoError as exc:
                outcome = type(exc).__name__
            tokens = session.token_requests
    finally:
        if shared is not None:
            await shared.aclose()
    return {"outcome": outcome, "token_requests": tokens}


def child() -> None:
    spec: JSON = json.loads(sys.stdin.read())
    print(json.dumps(anyio.run(start, spec)))


def forked(spec: JSON) -> JSON:
    """One start in a process forked from the forkserver (quick size)."""
    result: JSON = anyio.run(start, spec)
    return result


def _loop(spec: JSON) -> list[JSON]:
    """One of the four processes, restarted ``RESTARTS`` times (one after another)."""
    return [
        run_contender(spec, module="benchmarks.scenario_9_restarts", timeout=120)
        for _ in range(RESTARTS)
    ]


def _forked_starts(spec: JSON) -> list[JSON]:
    context = multiprocessing.get_context("forkserver")
    # Imported once in the forkserver; every start is still a process of its own.
    preload = ["aiohttp", "zoho_async", "benchmarks.scenario_9_restarts"]
    if importlib.util.find_spec("redis") is not None:
        preload.append("redis.asyncio")
    context.set_forkserver_preload(preload)
    # max_tasks_per_child=1: a new process for every start, PROCESSES at a time
    with ProcessPoolExecutor(PROCESSES, mp_context=context, max_tasks_per_child=1) as pool:
        return list(pool.map(forked, [spec] * (PROCESSES * RESTARTS)))


def _restarts(store: str, quick: bool) -> JSON:
    # Zoho's token limit (FakeZoho's default): 10 per 10 minutes per refresh token.
    with FakeProcess({"requests_per_minute": None, "metadata_per_minute": None}, Layout(1)) as fake:
        fake.command("reset")
        spec = {**fake.address, "store": store, "contender": "restart", "syncs": 0}
        began = time.monotonic()
        if quick:
            starts = _forked_starts(spec)
        else:
            with ThreadPoolExecutor(max_workers=PROCESSES) as pool:
                loops = list(pool.map(lambda _: _loop(spec), range(PROCESSES)))
            starts = [r for loop in loops for r in loop]
        span = time.monotonic() - began
        stats = fake.command("stats")
    outcomes: dict[str, int] = {}
    for r in starts:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    return {
        "starts": len(starts),
        "span": span,
        "token_requests": stats["token_requests"],
        "token_requests_by_processes": sum(r["token_requests"] for r in starts),
        "refused": sum(1 for r in starts if r["outcome"] != "ok"),
        "outcomes": outcomes,
        "api_requests": stats["requests"],
    }


def _store_run(stores_: Stores, kind: str, quick: bool) -> JSON:
    progress(f"  scenario 9: {kind}, {PROCESSES} processes x {RESTARTS} starts")
    return _restarts(stores_.fresh(kind) if kind != "local" else "local", quick)


def run(quick: bool) -> Scenario:
    how = (
        "forked from a forkserver that imported the packages, at the quick size"
        if quick
        else "a fresh interpreter"
    )
    scenario = Scenario(
        9,
        "Restarts",
        f"{PROCESSES} loops side by side, each starting a fresh process {RESTARTS} times in "
        f"a row (each start {how}); each start opens an AnalyticsSession with the shared "
        "store, gets the access token, makes one call (Get Organizations) and exits. The "
        "fake keeps Zoho's token limit (10 per 10 minutes). `local` (no shared store, "
        "today's per-process behaviour) runs the same starts against a fake of its own, for "
        "contrast. A fresh fake and a fresh store for each.",
        [
            "store",
            "process starts",
            "span s",
            "token requests at the fake",
            "refused starts",
            "outcomes",
        ],
    )
    with stores() as (stores_, missing):
        kinds = [*stores_.available(), "local"]
        # one store at a time: 4 interpreters starting at once already fill both cores
        measured = {kind: _store_run(stores_, kind, quick) for kind in kinds}
    if missing:
        scenario.notes.append(f"Redis not measured: {missing}.")
    for kind, m in measured.items():
        scenario.rows.append(
            [
                kind,
                f"{m['starts']:,}",
                fmt(m["span"], 1),
                str(m["token_requests"]),
                str(m["refused"]),
                ", ".join(f"{k} {v:,}" for k, v in sorted(m["outcomes"].items())),
            ]
        )
        scenario.contenders[kind] = m
        if kind == "local":
            continue
        scenario.targets += [
            Target(
                f"{kind}: token requests at the fake, all starts",
                float(m["token_requests"]),
                1,
                "==",
            ),
            Target(f"{kind}: starts refused", float(m["refused"]), 0, "=="),
        ]
    scenario.notes.append(
        "The span depends on how fast this machine starts a process (and, at full size, "
        "Python and its imports); every figure counted here is independent of it. The "
        "fake counts refused token requests too: `local`'s are one per start."
    )
    return scenario


if __name__ == "__main__":
    child()
