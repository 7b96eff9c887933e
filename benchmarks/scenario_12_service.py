"""Scenario 12, service load: the README's aiohttp.web example under steady traffic.

(Issue 13 calls this "scenario 9"; that number was taken by issue 11's restarts.)

Three parts, each against FakeZoho in its own process:

1. **Latency the SDK adds.** No rate limit. One process alternates the SDK's
   ``sync_data`` with a bare aiohttp POST of the same request to the same fake, one at a
   time; the difference of their p50 and p99 is what the SDK adds (token, pacing
   bookkeeping, decoding, the single call's settle baseline).
2. **Load.** The example app (its own process, exactly as the README prints it) at scaled
   limits; a load generator here sends ``RATE`` calls a second, bounded in count and
   time, loopback only: 60% single syncs, 1% bulk-run starts (one workspace of 10), 30%
   progress reads, 9% health reads. Every answer that is not one the example documents
   (200/202 results, 503 BUSY, 502 with a ``ZohoError`` class name, 404 for an unknown
   run) counts as an error. The app's RSS is read at the start and the end.
3. **Recovery.** A bulk run keeps the org's metadata budget full (scaled window); the fake
   answers a storm of 6045s; the org's metadata calls per fixed window are read back from
   the fake and the first window after the storm at 0.95 of the limit or more is counted.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter

import aiohttp
import anyio

from benchmarks._shared import (
    JSON,
    ROOT,
    FakeProcess,
    Layout,
    Scenario,
    Target,
    _child_env,
    fmt,
    progress,
)

RATE = 200  # calls a second from the load generator
DOCUMENTED = {200, 202, 404, 502, 503}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _child(spec: JSON) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.service_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env(),
        cwd=str(ROOT.parent),
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec) + "\n")
    proc.stdin.flush()
    return proc


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure_latency(quick: bool) -> JSON:
    layout = Layout(workspaces=1, per_workspace=50, quota=1_000_000)
    server = {"requests_per_minute": None, "metadata_per_minute": None}
    with FakeProcess(server, layout) as fake:
        limits = {"requests_per_minute": 10_000_000, "metadata_per_minute": 10_000_000}
        proc = _child(
            {**fake.address, "mode": "latency", "limits": limits, "calls": 300 if quick else 2000}
        )
        assert proc.stdout is not None
        result: JSON = json.loads(proc.stdout.readline())
        _stop(proc)
    return result


async def _load(port: int, seconds: float, layout: Layout, seed: int) -> JSON:
    rng = random.Random(seed)
    base = f"http://127.0.0.1:{port}"
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    runs: list[str] = []
    latencies: list[float] = []
    total = int(RATE * seconds)

    async def one(http: aiohttp.ClientSession, kind: float) -> None:
        started = time.perf_counter()
        try:
            if kind < 0.60:
                ws, ds = next(layout.targets(1, rng.randrange(layout.datasources)))
                url, method, body = f"/workspaces/{ws}/datasources/{ds}/sync", "POST", None
            elif kind < 0.61:
                ws = layout.workspace_id(rng.randrange(layout.workspaces))
                url, method, body = "/runs", "POST", {"workspaces": [ws]}
            elif kind < 0.91 and runs:
                url, method, body = f"/runs/{rng.choice(runs)}", "GET", None
            else:
                url, method, body = "/health", "GET", None
            async with http.request(method, base + url, json=body) as response:
                data = await response.json(content_type=None)
                key = f"{method} {url.split('/')[1]} {response.status}"
                statuses[key] += 1
                if response.status not in DOCUMENTED:
                    errors[key] += 1
                elif response.status == 502 and not str(data.get("error", "")).endswith("Error"):
                    errors[f"{key} {data}"] += 1
                elif response.status == 202:
                    runs.append(data["run_id"])
        except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
            errors[type(exc).__name__] += 1
        latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=0)
    bounded = aiohttp.ClientTimeout(total=30)  # no call may hold the run open for long
    async with (
        aiohttp.ClientSession(connector=connector, timeout=bounded) as http,
        anyio.create_task_group() as tg,
    ):
        began = anyio.current_time()
        for i in range(total):
            # one call every 1/RATE s, on a fixed schedule (never bunched up)
            await anyio.sleep_until(began + i / RATE)
            tg.start_soon(one, http, rng.random())
    return {
        "calls": total,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def measure_load(quick: bool) -> JSON:
    seconds = 10.0 if quick else 60.0
    # sustainable: 60% syncs (120/s) + 1% runs of 10 (20/s) stay under 200 metadata/s
    layout = Layout(workspaces=20, per_workspace=10, quota=1_000_000)
    window = 5.0
    server = {
        "requests_per_minute": 24_000,
        "metadata_per_minute": 12_000,
        "window_seconds": window,
    }
    limits = {
        "requests_per_minute": 24_000,
        "metadata_per_minute": 12_000,
        "window_seconds": window,
        "max_in_flight": 32,
    }
    with FakeProcess(server, layout) as fake:
        proc = _child({**fake.address, "mode": "app", "limits": limits})
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        try:
            # a short warm-up, so the first RSS reading is of a running app
            anyio.run(_load, ready["port"], 5.0, layout, 1)
            rss_start = _rss_mb(ready["pid"])
            result = anyio.run(_load, ready["port"], seconds, layout, 2)
            rss_end = _rss_mb(ready["pid"])
        finally:
            _stop(proc)
        stats = fake.command("stats")
    result.update(rss_start=rss_start, rss_end=rss_end, seconds=seconds, fake=stats)
    return result


async def _storm(port: int, fake: FakeProcess, layout: Layout, windows: int) -> JSON:
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        every = [layout.workspace_id(w) for w in range(layout.workspaces)]
        async with http.post(base + "/runs", json={"workspaces": every}) as response:
            run = await response.json()
        begin = fake.command("windows")["window"]
        # one full window at the full pace first
        while fake.command("windows")["window"] < begin + 2:
            await anyio.sleep(0.1)
        storm = fake.command("storm", count=50)["window"]
        while fake.command("windows")["window"] < storm + windows + 1:
            await anyio.sleep(0.1)
        async with http.get(base + "/health") as response:
            health = await response.json()
        async with http.get(base + f"/runs/{run['run_id']}") as response:
            progress_ = await response.json()
    counts = fake.command("windows")
    return {"storm_window": storm, "counts": counts, "health": health, "run": progress_}


def measure_recovery(quick: bool) -> JSON:
    window = 2.0 if quick else 5.0
    per_minute = 1200
    limit = per_minute * window / 60
    windows = 8
    syncs = int(limit * (windows + 4) * 1.5)
    layout = Layout(workspaces=-(-syncs // 100), per_workspace=100, quota=1_000_000)
    server = {
        "requests_per_minute": 2 * per_minute,
        "metadata_per_minute": per_minute,
        "window_seconds": window,
    }
    limits = {
        "requests_per_minute": 2 * per_minute,
        "metadata_per_minute": per_minute,
        "window_seconds": window,
        "max_in_flight": 16,
    }
    with FakeProcess(server, layout) as fake:
        proc = _child({**fake.address, "mode": "app", "limits": limits})
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        try:
            result = anyio.run(_storm, ready["port"], fake, layout, windows)
        finally:
            _stop(proc)
    counts = {int(k): v for k, v in result["counts"]["metadata"].items()}
    storm = int(result["storm_window"])
    after = [counts.get(storm + k, 0) for k in range(1, windows + 1)]
    recovered = next((k for k, n in enumerate(after, start=1) if n >= 0.95 * limit), None)
    before = counts.get(storm - 1, 0)
    result.update(window=window, limit=limit, after=after, before=before, recovered_in=recovered)
    return result


def run(quick: bool) -> Scenario:
    progress("  scenario 12: latency the SDK adds")
    lat = measure_latency(quick)
    progress("  scenario 12: service load")
    load = measure_load(quick)
    progress("  scenario 12: recovery after a 6045 storm")
    rec = measure_recovery(quick)
    sdk, bare = lat["sdk"], lat["bare"]
    p50 = (_percentile(sdk, 0.5) - _percentile(bare, 0.5)) * 1000
    p99 = (_percentile(sdk, 0.99) - _percentile(bare, 0.99)) * 1000
    errors = sum(load["errors"].values())
    rss_start, rss_end = load["rss_start"], load["rss_end"]
    growth = (rss_end / rss_start - 1) * 100 if rss_start and rss_end else None
    scenario = Scenario(
        12,
        "Service load (the README's aiohttp.web example)",
        f"Latency: {len(sdk)} sequential Sync Data calls each way, no rate limit. Load: "
        f"{RATE} calls/s for {load['seconds']:g} s (after a 5 s warm-up) at scaled limits "
        f"(12,000 metadata calls a minute, 5 s window); mix 60% single syncs, 1% bulk-run "
        f"starts, 30% progress reads, 9% health. Recovery: a {rec['window']:g} s window at "
        f"{rec['limit']:g} metadata calls per window, a bulk run keeping it full, a window of "
        "6045s (every Sync Data refused until the window ends).",
        ["measure", "value"],
    )
    scenario.rows += [
        ["SDK sync_data p50 / p99 ms", f"{fmt(_percentile(sdk, .5) * 1000, 2)} / "
         f"{fmt(_percentile(sdk, .99) * 1000, 2)}"],
        ["bare aiohttp POST p50 / p99 ms", f"{fmt(_percentile(bare, .5) * 1000, 2)} / "
         f"{fmt(_percentile(bare, .99) * 1000, 2)}"],
        ["added by the SDK p50 / p99 ms", f"{fmt(p50, 2)} / {fmt(p99, 2)}"],
        ["SDK / bare at p99", fmt(_percentile(sdk, .99) / _percentile(bare, .99), 2)],
        ["load: calls, answers", f"{load['calls']:,}: {load['statuses']}"],
        ["load: undocumented errors", str(load["errors"] or 0)],
        ["load: answer p50 / p99 ms", f"{fmt(load['p50_ms'])} / {fmt(load['p99_ms'])}"],
        ["app RSS start / end MB", f"{fmt(rss_start)} / {fmt(rss_end)}"],
        ["metadata calls per window: before the storm, then after",
         f"{rec['before']} | {rec['after']} (limit {rec['limit']:g})"],
        ["rate factor at the end (snapshot)", str(rec["health"].get("orgs"))],
    ]  # fmt: skip
    scenario.targets += [
        Target("undocumented errors under load", float(errors), 0, "==", "errors"),
        Target("p99 latency added by the SDK", p99, 2.0, "<=", "ms"),
        Target(
            "app RSS growth over the load",
            None if growth is None else abs(growth),
            10.0,
            "<=",
            "%",
            note="start and end of the measured load, after a warm-up",
        ),
        Target(
            "windows to 0.95 of the limit after a 6045 storm",
            None if rec["recovered_in"] is None else float(rec["recovered_in"]),
            5.0,
            "<=",
            "windows",
        ),
    ]
    scenario.contenders = {"latency": {"p50_added_ms": p50, "p99_added_ms": p99},
                           "load": {k: v for k, v in load.items() if k != "fake"},
                           "recovery": {k: v for k, v in rec.items() if k != "counts"}}  # fmt: skip
    scenario.notes.append(
        f"median SDK {statistics.median(sdk) * 1000:.2f} ms vs bare "
        f"{statistics.median(bare) * 1000:.2f} ms; pid {os.getpid()} ran the load generator"
    )
    return scenario
