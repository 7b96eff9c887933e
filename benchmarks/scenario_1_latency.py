"""Scenario 1, latency-bound: 100 ms per answer, no rate limit, 2,000 syncs.

zoho-async against the official-style client called sequentially (as Zoho's samples do)
and from a thread pool as wide as our in-flight cap. Targets: >= 50x the sequential
client; >= 1x the thread pool with less memory and exactly one token request.

The sequential client does about 9 syncs a second here, so all 2,000 would take almost
four minutes to learn one number (its rate, which does not depend on the count); it runs
over the first ``SEQUENTIAL_SAMPLE`` targets instead, and the report says so.
"""

from __future__ import annotations

from benchmarks._shared import FakeProcess, Layout, Scenario, Target, fmt, measured, progress

LATENCY = 0.1
IN_FLIGHT = 64  # our in-flight cap, and the thread pool's width


def run(quick: bool) -> Scenario:
    syncs = 200 if quick else 2000
    sample = 20 if quick else 300
    layout = Layout.for_syncs(syncs, quota=100)
    # The official client's token storm would be throttled by Zoho's real limit (10 per
    # 10 minutes) and the pool would fail; lift the limit so it finishes, and count.
    server = {
        "latency": LATENCY,
        "requests_per_minute": None,
        "metadata_per_minute": None,
        "token_limit": 1_000_000,
    }
    runs = {}
    with FakeProcess(server, layout) as fake:
        for name, count in (
            ("zoho_async", syncs),
            ("official_pool", syncs),
            ("official_sequential", sample),
        ):
            progress(f"  scenario 1: {name} ({count} syncs)")
            result, stats = measured(
                fake, {"contender": name, "syncs": count, "concurrency": IN_FLIGHT}
            )
            runs[name] = (result, stats)

    def rate(name: str) -> float:
        result = runs[name][0]
        return float(result["syncs"]) / float(result["elapsed"])

    ours, pool, seq = runs["zoho_async"], runs["official_pool"], runs["official_sequential"]
    scenario = Scenario(
        1,
        "Latency-bound",
        f"FakeZoho in its own process, {int(LATENCY * 1000)} ms latency on every answer, no "
        f"rate limit; {syncs:,} syncs of distinct datasources. In-flight cap and thread-pool "
        f"width {IN_FLIGHT}. The sequential client runs the first {sample} targets (its rate "
        "does not depend on the count). Each contender runs in a fresh process; RSS is that "
        "process's peak.",
        [
            "contender",
            "syncs",
            "seconds",
            "syncs/s",
            "vs official sequential",
            "token requests (at the fake)",
            "peak RSS MB",
            "client CPU ms/sync",
            "outcomes",
        ],
    )
    for label, name in (
        ("zoho-async sync_many", "zoho_async"),
        (f"official-style, thread pool x{IN_FLIGHT}", "official_pool"),
        ("official-style, sequential", "official_sequential"),
    ):
        result, stats = runs[name]
        scenario.rows.append(
            [
                label,
                f"{result['syncs']:,}",
                fmt(result["elapsed"], 2),
                fmt(rate(name)),
                f"{rate(name) / rate('official_sequential'):.1f}x",
                str(stats["token_requests"]),
                fmt(result["rss_peak_mb"]),
                fmt(1000 * result["cpu"] / result["syncs"], 2),
                ", ".join(f"{k} {v:,}" for k, v in sorted(result["statuses"].items())),
            ]
        )
        scenario.contenders[name] = {
            "syncs": result["syncs"],
            "seconds": result["elapsed"],
            "syncs_per_second": rate(name),
            "token_requests": stats["token_requests"],
            "peak_rss_mb": result["rss_peak_mb"],
            "rss_before_mb": result["rss_before_mb"],
            "cpu_seconds": result["cpu"],
            "statuses": result["statuses"],
            "fake_peak_in_flight": stats["peak_in_flight"],
        }
    scenario.targets = [
        Target(
            "throughput vs official-style sequential",
            rate("zoho_async") / rate("official_sequential"),
            50,
            ">=",
            "x",
        ),
        Target(
            "throughput vs official-style thread pool",
            rate("zoho_async") / rate("official_pool"),
            1,
            ">=",
            "x",
        ),
        Target(
            "peak RSS vs the thread pool",
            ours[0]["rss_peak_mb"] / pool[0]["rss_peak_mb"],
            1,
            "<=",
            "x",
            note=f"{ours[0]['rss_peak_mb']:.0f} MB vs {pool[0]['rss_peak_mb']:.0f} MB; both "
            f"processes import the same modules (baseline {ours[0]['rss_before_mb']:.0f} MB)",
        ),
        Target(
            "token requests, zoho-async",
            float(ours[1]["token_requests"]),
            1,
            "==",
            note=f"the thread pool sent {pool[1]['token_requests']} and the sequential client "
            f"{seq[1]['token_requests']}",
        ),
    ]
    storm = pool[1]["token_requests"]
    if storm > 10:
        scenario.notes.append(
            f"The thread pool's {storm} token requests exceed Zoho's 10 per 10 minutes: "
            "against Zoho, token creation would be blocked and most of its syncs would fail."
        )
    return scenario
