"""Scenario 11, discovery of large workspaces: Get Datasources of 400, 2,000 and 5,000
datasources.

zoho-async's ``get_datasources`` against a bare aiohttp GET + ``json.loads`` of the same URL,
both against the same fake process (one per workspace size), zero latency, no rate limit.
Reported per size: time and client CPU per listing, the ratio, failures (target 0: an
answer read short used to fail every listing of ~100 KB or more) and the bytes of a
listing.

Both contenders live in this module, like scenario 5's: ``python -m
benchmarks.scenario_11_discovery`` reads a JSON spec on stdin and prints one JSON line. As
in scenario 2 the two alternate over several rounds, each in a fresh process, and each
keeps its best round; every round is in ``results.json``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from collections import Counter

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

SERVER = {"requests_per_minute": None, "metadata_per_minute": None}
CONTENDERS = ("bare_aiohttp", "zoho_async")
LABELS = {"zoho_async": "zoho-async get_datasources", "bare_aiohttp": "bare GET + json.loads"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _workspace(spec: JSON) -> tuple[str, int]:
    layout = Layout.from_json(spec["layout"])
    return layout.workspace_id(0), layout.per_workspace


async def _zoho_async(spec: JSON) -> JSON:
    from zoho_async import AnalyticsSession, Limits, RetryPolicy, ZohoError

    workspace_id, expected = _workspace(spec)
    failures: Counter[str] = Counter()
    times: list[float] = []
    limits = Limits(requests_per_minute=10**9, metadata_per_minute=10**9, max_in_flight=1)
    async with AnalyticsSession(
        **spec["credentials"],
        org_id=spec["org_id"],
        api_url=spec["api_url"],
        accounts_url=spec["accounts_url"],
        limits=limits,
        retry=RetryPolicy(),
    ) as session:
        # one listing before the clock: token and connection, as the bare contender has
        await session.get_datasources(workspace_id)
        cpu0 = _cpu()
        for _ in range(int(spec["listings"])):
            start = time.perf_counter()
            try:
                listing = await session.get_datasources(workspace_id)
            except ZohoError as exc:
                failures[type(exc).__name__] += 1
            else:
                if len(listing) != expected:
                    failures[f"{len(listing)} entries"] += 1
            times.append(time.perf_counter() - start)
        cpu = _cpu() - cpu0
        # retries would hide failures from the count above: report them too
        requests = session.http_requests - session.token_requests - 1
    return {"times": times, "cpu": cpu, "failures": dict(failures), "requests": requests}


async def _bare_aiohttp(spec: JSON) -> JSON:
    import aiohttp

    workspace_id, expected = _workspace(spec)
    failures: Counter[str] = Counter()
    times: list[float] = []
    sizes: set[int] = set()
    async with aiohttp.ClientSession() as http:
        form = {"grant_type": "refresh_token", **spec["credentials"]}
        async with http.post(spec["accounts_url"] + "/oauth/v2/token", data=form) as resp:
            token = (await resp.json(content_type=None))["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}", "ZANALYTICS-ORGID": spec["org_id"]}
        url = f"{spec['api_url']}/restapi/v2/workspaces/{workspace_id}/datasources"

        async def listing() -> int:
            async with http.get(url, headers=headers) as response:
                body = await response.read()
                sizes.add(len(body))
                if response.status != 200:
                    failures[f"HTTP {response.status}"] += 1
                    return 0
            return len(json.loads(body)["data"]["dataSources"])

        await listing()  # the connection, before the clock
        cpu0 = _cpu()
        for _ in range(int(spec["listings"])):
            start = time.perf_counter()
            try:
                count = await listing()
            except (aiohttp.ClientError, ValueError, KeyError) as exc:
                failures[type(exc).__name__] += 1
            else:
                if count != expected:
                    failures[f"{count} entries"] += 1
            times.append(time.perf_counter() - start)
        cpu = _cpu() - cpu0
    return {
        "times": times,
        "cpu": cpu,
        "failures": dict(failures),
        "requests": len(times),
        "bytes": max(sizes),
    }


def child() -> None:
    spec: JSON = json.loads(sys.stdin.read())
    # import both stacks before measuring, whichever contender this is
    import aiohttp  # noqa: F401

    import zoho_async  # noqa: F401

    runner = _zoho_async if spec["contender"] == "zoho_async" else _bare_aiohttp
    result = asyncio.run(runner(spec))
    times = result["times"]
    result.update(
        contender=spec["contender"],
        listings=len(times),
        median=statistics.median(times),
        best=min(times),
        total=sum(times),
    )
    print(json.dumps(result))


def run(quick: bool) -> Scenario:
    sizes = (100, 400, 1000) if quick else (400, 2000, 5000)
    listings = 5 if quick else 30
    rounds = 1 if quick else 3
    every: dict[int, dict[str, list[JSON]]] = {}
    for size in sizes:
        every[size] = {name: [] for name in CONTENDERS}
        with FakeProcess(SERVER, Layout(workspaces=1, per_workspace=size)) as fake:
            for round_number in range(rounds):
                for name in CONTENDERS:
                    progress(
                        f"  scenario 11: {size:,} datasources, {name} round {round_number + 1} "
                        f"({listings} listings)"
                    )
                    fake.command("reset")
                    result = run_contender(
                        {**fake.address, "contender": name, "listings": listings},
                        module="benchmarks.scenario_11_discovery",
                    )
                    result["fake"] = fake.command("stats")
                    result.pop("times", None)
                    every[size][name].append(result)

    def best(size: int, name: str) -> JSON:
        return min(every[size][name], key=lambda r: float(r["median"]))

    def cpu_per(result: JSON) -> float:
        return float(result["cpu"]) / int(result["listings"])

    def failures(result: JSON) -> int:
        return sum(int(n) for n in result["failures"].values())

    scenario = Scenario(
        11,
        "Discovery of large workspaces",
        f"Get Datasources of one workspace of {', '.join(f'{s:,}' for s in sizes)} "
        "datasources; FakeZoho in its own process (one per size, both contenders against "
        f"it), zero latency, no rate limit. {listings} sequential listings per round after "
        "one untimed (token and connection); best round of "
        f"{rounds} alternating, each contender in a fresh process. 'time' is the median "
        "listing of the round; CPU is the client process's over the timed listings, "
        "the steadier figure on a shared machine. zoho-async returns typed `Datasource` "
        "objects (dates parsed); the bare contender stops at `json.loads`.",
        [
            "datasources",
            "KB a listing",
            "zoho-async ms/listing",
            "bare ms/listing",
            "bare / zoho-async (speed)",
            "zoho-async CPU ms/listing",
            "bare CPU ms/listing",
            "bare / zoho-async (CPU)",
            "fake CPU ms/listing",
            "failures (zoho-async / bare)",
        ],
    )
    for size in sizes:
        ours, bare = best(size, "zoho_async"), best(size, "bare_aiohttp")
        listed = int(ours["listings"])
        scenario.rows.append(
            [
                f"{size:,}",
                fmt(bare["bytes"] / 1024),
                fmt(1000 * ours["median"], 2),
                fmt(1000 * bare["median"], 2),
                f"{bare['median'] / ours['median']:.2f}",
                fmt(1000 * cpu_per(ours), 2),
                fmt(1000 * cpu_per(bare), 2),
                f"{cpu_per(bare) / cpu_per(ours):.2f}",
                fmt(1000 * ours["fake"]["server_cpu_seconds"] / listed, 2),
                f"{failures(ours)} / {failures(bare)}",
            ]
        )
        scenario.contenders[f"{size}_datasources"] = {
            "bytes_per_listing": bare["bytes"],
            "ratio_bare_over_ours": bare["median"] / ours["median"],
            "cpu_ratio_bare_over_ours": cpu_per(bare) / cpu_per(ours),
            "best": {name: best(size, name) for name in CONTENDERS},
            "rounds": every[size],
        }
    all_ours = [r for size in sizes for r in every[size]["zoho_async"]]
    scenario.targets = [
        Target(
            f"failed listings, zoho-async, all sizes ({len(all_ours) * listings:,} listings)",
            float(sum(failures(r) for r in all_ours)),
            0,
            "==",
        ),
        Target(
            "retried requests, zoho-async (a listing that needed one failed first)",
            float(sum(int(r["requests"]) - int(r["listings"]) for r in all_ours)),
            0,
            "==",
        ),
    ]
    largest = sizes[-1]
    per_entry = every[largest]["bare_aiohttp"][0]["bytes"] / largest
    scenario.notes.append(
        f"About {per_entry:,.0f} bytes a datasource: the transport's 32 MiB cap on an answer "
        f"holds about {32 * 1024 * 1024 / per_entry:,.0f} datasources in one workspace."
    )
    return scenario


if __name__ == "__main__":
    child()
