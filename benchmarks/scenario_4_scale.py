"""Scenario 4, scale: 100,000 lazily generated targets, zero latency.

Targets: peak RSS of the client process <= 150 MB, and a flat cost per sync - the time per
1,000 syncs around 10k, 50k and 100k stays the same (linear total cost). The targets come
from a generator (never a list), cycling over 1,000 datasources whose quota is raised to
cover the run. ``sync_many`` keeps one result per target for its report, so its memory
grows with the run by design; ``iter_sync``, which streams results, is measured too as the
SDK's floor.
"""

from __future__ import annotations

from benchmarks._shared import JSON, FakeProcess, Layout, Scenario, Target, fmt, measured, progress

IN_FLIGHT = 16
SERVER = {"requests_per_minute": None, "metadata_per_minute": None}
BLOCK = 5  # checkpoints (of 1,000 syncs each) averaged around each point


def per_thousand(marks: list[list[float]], at: int, every: int, column: int) -> float | None:
    """Mean seconds (``column`` 1: wall, 2: CPU) per 1,000 syncs over the ``BLOCK`` blocks
    ending at ``at``; the first block (connection set-up, first token) is never counted."""
    times = {int(mark[0]): float(mark[column]) for mark in marks}
    span = min(BLOCK, at // every - 1)
    start = at - span * every
    if span < 1 or at not in times or start not in times:
        return None
    return (times[at] - times[start]) / (span * every / 1000)


def run(quick: bool) -> Scenario:
    syncs = 10_000 if quick else 100_000
    every = 200 if quick else 1000
    points = [syncs // 10, syncs // 2, syncs]
    # 1,000 datasources reused; their quota covers both runs (sync_many, then iter_sync)
    layout = Layout(workspaces=10, per_workspace=100, quota=2 * syncs // 1000 + 10)
    runs: dict[str, JSON] = {}
    with FakeProcess(SERVER, layout) as fake:
        for name, api in (("sync_many", "sync_many"), ("iter_sync", "iter_sync")):
            progress(f"  scenario 4: zoho_async {api} ({syncs:,} lazy targets)")
            result, stats = measured(
                fake,
                {
                    "contender": "zoho_async",
                    "api": api,
                    "syncs": syncs,
                    "concurrency": IN_FLIGHT,
                    "checkpoint_every": every,
                },
            )
            result["fake"] = stats
            runs[name] = result
    scenario = Scenario(
        4,
        "Scale",
        f"FakeZoho in its own process, zero latency, no rate limit; {syncs:,} targets from a "
        f"generator, cycling over {layout.datasources:,} datasources; in-flight cap "
        f"{IN_FLIGHT}. Time per 1,000 syncs is the mean over the {BLOCK} blocks of "
        f"{every:,} syncs ending at each point (the first block, with connection set-up and "
        "the first token, is never counted).",
        [
            "API",
            "seconds",
            "syncs/s",
            "peak RSS MB",
            "RSS before the run MB",
            *[f"wall / CPU s per 1,000 at {p // 1000}k" for p in points],
            "CPU last / first",
            "outcomes",
        ],
    )
    flat: dict[str, float | None] = {}
    for name, result in runs.items():
        wall = [per_thousand(result["checkpoints"], p, every, 1) for p in points]
        cpu = [per_thousand(result["checkpoints"], p, every, 2) for p in points]
        first, last = cpu[0], cpu[-1]
        flat[name] = last / first if first and last else None
        scenario.rows.append(
            [
                name,
                fmt(result["elapsed"], 2),
                fmt(result["syncs"] / result["elapsed"]),
                fmt(result["rss_peak_mb"]),
                fmt(result["rss_before_mb"]),
                *[f"{fmt(w, 3)} / {fmt(c, 3)}" for w, c in zip(wall, cpu, strict=True)],
                fmt(flat[name], 2),
                ", ".join(f"{k} {v:,}" for k, v in sorted(result["statuses"].items())),
            ]
        )
        keys = [str(p) for p in points]
        scenario.contenders[f"zoho_async.{name}"] = {
            "seconds": result["elapsed"],
            "syncs_per_second": result["syncs"] / result["elapsed"],
            "peak_rss_mb": result["rss_peak_mb"],
            "rss_before_mb": result["rss_before_mb"],
            "wall_seconds_per_1000": dict(zip(keys, wall, strict=True)),
            "cpu_seconds_per_1000": dict(zip(keys, cpu, strict=True)),
            "checkpoints": result["checkpoints"],
            "statuses": result["statuses"],
            "fake_server_cpu_seconds": result["fake"]["server_cpu_seconds"],
        }
    many = runs["sync_many"]
    scenario.targets = [
        Target("peak RSS, sync_many", float(many["rss_peak_mb"]), 150, "<=", "MB"),
        Target(
            "CPU per 1,000 syncs, at the end / at the start, sync_many",
            flat["sync_many"],
            1.2,
            "<=",
            "x",
            note="flat = linear total cost; 1.0 is perfectly flat. Judged on the client's "
            "CPU time because wall time on this shared machine moves with the neighbours",
        ),
    ]
    scenario.notes.append(
        f"iter_sync peaked at {runs['iter_sync']['rss_peak_mb']:.0f} MB: the difference to "
        "sync_many is the report's one result per target."
    )
    return scenario
