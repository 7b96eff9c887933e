"""Scenario 6, faults: 5% of sync calls answer 7005 or lose the connection.

Same size and fake as scenario 2 (zero latency, no rate limit, 20,000 distinct
datasources), except that a started sync stays in progress for 10 minutes - as a real one
would - and the fake is scripted so that about 5% of sync calls fail, in four equal kinds:
7005 before the sync started, 7005 after it started, a dropped connection before, a dropped
connection after. ("After" is the dangerous case: a blind retry would start a second sync
and spend quota.)

Targets: every target ends STARTED, and no datasource is synced twice at the fake. The
slowdown against scenario 2's zoho-async run is reported (the default RetryPolicy backs
off 0.25 s on average before the first retry).
"""

from __future__ import annotations

from benchmarks._shared import JSON, FakeProcess, Layout, Scenario, Target, fmt, measured, progress

IN_FLIGHT = 16  # as in scenario 2
FAULT_RATE = 0.05
SYNC_DURATION = 600.0


def run(quick: bool, baseline: JSON | None = None) -> Scenario:
    syncs = 2000 if quick else 20000
    layout = Layout.for_syncs(syncs, quota=5, sync_duration=SYNC_DURATION)
    server = {"requests_per_minute": None, "metadata_per_minute": None}
    progress(f"  scenario 6: zoho_async with {FAULT_RATE:.0%} faults ({syncs:,} syncs)")
    with FakeProcess(server, layout) as fake:
        fake.command("reset")
        # more scripted answers than first attempts, so retries meet faults at the same rate
        scripted = fake.command("script", count=int(syncs * 1.1), rate=FAULT_RATE, seed=6)
        # measured() resets the counters, not the script
        result, stats = measured(
            fake, {"contender": "zoho_async", "syncs": syncs, "concurrency": IN_FLIGHT}
        )
    rate = syncs / float(result["elapsed"])
    started = int(result["statuses"].get("STARTED", 0))
    faulted = stats["sync_calls"] - syncs  # every extra sync call was a retry after a fault
    scenario = Scenario(
        6,
        "Faults",
        f"FakeZoho in its own process, zero latency, no rate limit, syncs stay in progress "
        f"{SYNC_DURATION / 60:g} minutes; {syncs:,} syncs of distinct datasources, in-flight "
        f"cap {IN_FLIGHT}; {scripted['faults']:,} faults scripted over the first "
        f"{int(syncs * 1.1):,} sync calls ({FAULT_RATE:.0%}: 7005 or a dropped connection, "
        "each before or after the sync started).",
        [
            "contender",
            "seconds",
            "syncs/s",
            "slowdown vs scenario 2",
            "sync calls at the fake",
            "syncs started at the fake",
            "datasources synced twice",
            "outcomes",
        ],
    )
    slowdown = None
    if baseline is not None:
        slowdown = float(baseline["syncs_per_second"]) / rate
    scenario.rows.append(
        [
            "zoho-async sync_many",
            fmt(result["elapsed"], 2),
            fmt(rate),
            "-" if slowdown is None else f"{slowdown:.2f}x",
            f"{stats['sync_calls']:,}",
            f"{stats['syncs_started']:,}",
            f"{stats['datasources_synced_twice']:,}",
            ", ".join(f"{k} {v:,}" for k, v in sorted(result["statuses"].items())),
        ]
    )
    scenario.contenders["zoho_async"] = {
        "seconds": result["elapsed"],
        "syncs_per_second": rate,
        "slowdown_vs_scenario_2": slowdown,
        "sync_calls": stats["sync_calls"],
        "syncs_started": stats["syncs_started"],
        "retries": faulted,
        "attempts": result.get("attempts"),
        "datasources_synced_twice": stats["datasources_synced_twice"],
        "statuses": result["statuses"],
    }
    scenario.targets = [
        Target("targets ended STARTED", float(started), float(syncs), "=="),
        Target("datasources synced twice", float(stats["datasources_synced_twice"]), 0, "=="),
    ]
    scenario.notes.append(
        f"{faulted:,} retries were sent ({stats['sync_calls']:,} sync calls for {syncs:,} "
        f"targets) and the fake started {stats['syncs_started']:,} syncs: a retry after a "
        "fault that came after the sync had started met 18073 (already running) and was "
        "counted as our own sync, not sent again."
    )
    if slowdown is not None:
        scenario.notes.append(
            f"Slowdown vs scenario 2 (same fake, no faults): {slowdown:.2f}x "
            f"({rate:,.0f} vs {float(baseline['syncs_per_second']):,.0f} syncs/s)"  # type: ignore[index]
        )
    return scenario
