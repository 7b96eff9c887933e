"""The contenders, each run in a fresh process: ``python -m benchmarks.contenders`` reads a
JSON spec on stdin and prints one JSON result line on stdout.

Contenders (``spec["contender"]``):

- ``zoho_async``: ``AnalyticsSession.sync_many`` over lazily generated targets;
- ``bare_aiohttp``: the floor of this stack - one ``aiohttp.ClientSession``, the same
  number of concurrent workers, a token fetched before the clock starts, no pacing, no
  retries, no result objects;
- ``official_sequential``: the official-style client (:mod:`benchmarks.official_style`)
  in a plain loop, as Zoho's samples call it;
- ``official_pool``: the same client shared by a ``ThreadPoolExecutor`` as wide as our
  in-flight cap (what a user would try next).

Every result has the timed section's wall and CPU seconds, peak RSS before and after it,
the outcome counts and, when ``spec["profile"]`` is set, a cProfile summary of the timed
section (cProfile slows the run down: profiled figures are never the reported ones).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks._shared import JSON, Layout


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of this process's resident set.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Checkpoints:
    """Wall and CPU seconds at every ``every``-th finished sync (the time-per-1,000 curve).

    CPU time is recorded too because the machine is shared: wall time per block moves with
    the neighbours' load, CPU time per block only with our own work.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self.done = 0
        self.start = time.perf_counter()
        self.marks: list[tuple[int, float, float]] = []

    def tick(self) -> None:
        self.done += 1
        if self.every and self.done % self.every == 0:
            self.marks.append((self.done, time.perf_counter() - self.start, _cpu()))


# -- zoho-async -------------------------------------------------------------------------------


async def run_zoho_async(spec: JSON, checkpoints: Checkpoints) -> JSON:
    from zoho_async import AnalyticsSession, Limits, RetryPolicy, SyncResult

    layout = Layout.from_json(spec["layout"])
    count = int(spec["syncs"])
    rate = int(spec.get("per_minute") or 10**9)  # "no limit": far above anything reachable
    limits = Limits(
        requests_per_minute=rate,
        metadata_per_minute=rate,
        max_in_flight=int(spec["concurrency"]),
    )
    statuses: Counter[str] = Counter()
    # An UNCONFIRMED result must say why (its evidence): count the ones that do not.
    unconfirmed_without_reason = 0

    def on_result(result: SyncResult) -> None:
        nonlocal unconfirmed_without_reason
        statuses[result.status.value] += 1
        if result.status.value == "UNCONFIRMED" and not result.error_message:
            unconfirmed_without_reason += 1
        checkpoints.tick()

    async with AnalyticsSession(
        **spec["credentials"],
        org_id=spec["org_id"],
        api_url=spec["api_url"],
        accounts_url=spec["accounts_url"],
        limits=limits,
        retry=RetryPolicy(),
    ) as session:
        checkpoints.start = time.perf_counter()
        if spec.get("api") == "iter_sync":
            # results streamed, none kept: the lower bound of the SDK's memory
            async for result in session.iter_sync(layout.targets(count)):
                on_result(result)
            report_tokens, report_http = session.token_requests, session.http_requests
            attempts = None
        else:
            report = await session.sync_many(layout.targets(count), on_result=on_result)
            report_tokens, report_http = report.token_requests, report.http_requests
            attempts = sum(r.attempts for r in report.results)
            del report
        elapsed = time.perf_counter() - checkpoints.start
    return {
        "elapsed": elapsed,
        "statuses": dict(statuses),
        "token_requests": report_tokens,
        "http_requests": report_http,
        "attempts": attempts,
        "unconfirmed_without_reason": unconfirmed_without_reason,
    }


# -- bare aiohttp -------------------------------------------------------------------------------


async def run_bare_aiohttp(spec: JSON, checkpoints: Checkpoints) -> JSON:
    import aiohttp

    layout = Layout.from_json(spec["layout"])
    count = int(spec["syncs"])
    width = int(spec["concurrency"])
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=width)
    async with aiohttp.ClientSession(connector=connector) as http:
        # the token is fetched before the clock starts: this contender is the floor
        form = {"grant_type": "refresh_token", **spec["credentials"]}
        async with http.post(spec["accounts_url"] + "/oauth/v2/token", data=form) as resp:
            token = (await resp.json(content_type=None))["access_token"]
        headers = {
            "Authorization": f"Zoho-oauthtoken {token}",
            "ZANALYTICS-ORGID": spec["org_id"],
        }
        base = spec["api_url"] + "/restapi/v2/workspaces/"
        targets = layout.targets(count)

        async def worker() -> None:
            for ws, ds in targets:  # a shared iterator: each item is taken once
                async with http.post(
                    f"{base}{ws}/datasources/{ds}/sync", headers=headers
                ) as response:
                    await response.read()
                    statuses["started" if response.status == 204 else str(response.status)] += 1
                checkpoints.tick()

        checkpoints.start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(width)))
        elapsed = time.perf_counter() - checkpoints.start
    return {
        "elapsed": elapsed,
        "statuses": dict(statuses),
        "token_requests": 1,
        "http_requests": count + 1,
    }


# -- official style -----------------------------------------------------------------------------


def _official_client(spec: JSON) -> Any:
    from benchmarks.official_style import AnalyticsClient

    creds = spec["credentials"]
    return AnalyticsClient(
        creds["client_id"],
        creds["client_secret"],
        creds["refresh_token"],
        analytics_server_url=spec["api_url"],
        accounts_server_url=spec["accounts_url"],
    )


def run_official_sequential(spec: JSON, checkpoints: Checkpoints) -> JSON:
    from benchmarks.official_style import ServerError

    layout = Layout.from_json(spec["layout"])
    client = _official_client(spec)
    statuses: Counter[str] = Counter()
    checkpoints.start = time.perf_counter()
    for ws, ds in layout.targets(int(spec["syncs"])):
        try:
            client.get_workspace_instance(spec["org_id"], ws).sync_data(ds)
            statuses["started"] += 1
        except ServerError as exc:
            statuses[f"error {exc.error_code}"] += 1
        checkpoints.tick()
    return {
        "elapsed": time.perf_counter() - checkpoints.start,
        "statuses": dict(statuses),
        "token_requests": client.token_requests,
    }


def run_official_pool(spec: JSON, checkpoints: Checkpoints) -> JSON:
    from benchmarks.official_style import ServerError

    layout = Layout.from_json(spec["layout"])
    client = _official_client(spec)  # one client shared by every thread, as a user would
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def one(target: tuple[str, str]) -> None:
        ws, ds = target
        try:
            client.get_workspace_instance(spec["org_id"], ws).sync_data(ds)
            outcome = "started"
        except ServerError as exc:
            outcome = f"error {exc.error_code}"
        except Exception as exc:  # the official client lets transport errors escape
            outcome = type(exc).__name__
        with lock:
            statuses[outcome] += 1
            checkpoints.tick()

    checkpoints.start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=int(spec["concurrency"])) as pool:
        # map() submits every target up front; fine at this size and what users write
        for _ in pool.map(one, layout.targets(int(spec["syncs"]))):
            pass
    return {
        "elapsed": time.perf_counter() - checkpoints.start,
        "statuses": dict(statuses),
        "token_requests": client.token_requests,
    }


RUNNERS: dict[str, Callable[[JSON, Checkpoints], Any]] = {
    "zoho_async": run_zoho_async,
    "bare_aiohttp": run_bare_aiohttp,
    "official_sequential": run_official_sequential,
    "official_pool": run_official_pool,
}


def run(spec: JSON) -> JSON:
    """Run the contender named in ``spec``, measuring only its timed section."""
    runner = RUNNERS[spec["contender"]]
    checkpoints = Checkpoints(int(spec.get("checkpoint_every") or 0))
    # Import everything the contender needs before the clock starts.
    import aiohttp  # noqa: F401

    import zoho_async  # noqa: F401

    rss_before = _peak_rss_mb()
    profiler = cProfile.Profile() if spec.get("profile") else None
    cpu0, wall0 = _cpu(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    if asyncio.iscoroutinefunction(runner):
        outcome = asyncio.run(runner(spec, checkpoints))
    else:
        outcome = runner(spec, checkpoints)
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    result: JSON = {
        "contender": spec["contender"],
        "syncs": int(spec["syncs"]),
        "wall": wall,
        "cpu": cpu,
        "rss_before_mb": rss_before,
        "rss_peak_mb": _peak_rss_mb(),
        "checkpoints": checkpoints.marks,
        **outcome,
    }
    if profiler is not None:
        result["profile"] = profile_summary(profiler, int(spec.get("profile_lines", 20)))
    return result


_PACKAGES = (
    "zoho_async",
    "benchmarks",
    "anyio",
    "aiohttp",
    "yarl",
    "multidict",
    "attr",
    "asyncio",
    "selectors",
    "requests",
    "urllib3",
    "http",
    "socket",
    "json",
    "logging",
)


def _package(filename: str, function: str) -> str:
    if filename == "~":  # a builtin: attribute it by name
        return "builtins (" + function.split(" of ")[-1].strip("<>'") + ")"
    for name in _PACKAGES:
        if f"/{name}/" in filename or f"/{name}." in filename or filename.startswith("<" + name):
            return name
    if filename.startswith("<attrs generated"):
        return "attr"
    return "other"


def profile_summary(profiler: cProfile.Profile, lines: int) -> str:
    """Own time by package (where the time goes), then the busiest functions of our own
    stack (zoho_async, anyio) and of everything, by own time."""
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    raw = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = {}
    rows: list[tuple[float, float, int, str, str]] = []
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in raw.items():
        package = _package(filename, function)
        by_package[package] = by_package.get(package, 0.0) + own
        short = f"{filename.rsplit('/', 1)[-1]}:{line}({function})"
        rows.append((own, cumulative, calls, package, short))
    total = sum(by_package.values()) or 1.0
    out = [f"cProfile, own time by package (total {total:.2f} s, inflated by profiling):"]
    for package, own in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        out.append(f"  {100 * own / total:5.1f}%  {package}")
    rows.sort(reverse=True)
    ours = [r for r in rows if r[3] in ("zoho_async", "anyio")]
    for title, chosen in (("zoho_async / anyio", ours), ("everything", rows)):
        out.append(f"busiest functions, {title} (own s, cumulative s, calls):")
        for own, cumulative, calls, _package_name, short in chosen[:lines]:
            out.append(f"  {own:7.3f} {cumulative:8.3f} {calls:8d}  {short}")
    return "\n".join(out)


def main() -> None:
    spec: JSON = json.loads(sys.stdin.read())
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main()
