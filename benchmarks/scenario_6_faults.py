"""Scenario 6, faults: 5% of sync calls answer 7005 or lose the connection.

Same size and fake as scenario 2 (zero latency, no rate limit, 20,000 distinct
datasources), and the fake is scripted so that about 5% of sync calls fail, in four equal
kinds: 7005 before the sync started, 7005 after it started, a dropped connection before, a
dropped connection after. ("After" is the dangerous case: a blind retry would start a second
sync and spend quota.)

The same faults run twice, side by side, each against a fake of its own:

- syncs that stay in progress for 10 minutes: a retry that follows an "after" fault meets
  18073 (already running), which proves the first attempt started the sync;
- syncs that finish in 0.5 s, as real ones often do: by the time a retry arrives the first
  sync may be over, and the fake would start a second one. Only settling the ambiguous
  attempt before re-sending (issue 10) prevents that.

Targets, per run: no datasource is synced twice at the fake (the fake's most syncs started
per datasource is at most 1), and every target ends STARTED or UNCONFIRMED (a start that
could not be proven either way is reported, with its evidence, instead of being sent
again: after a dropped connection before processing, nothing at Zoho can tell). The
slowdown against scenario 2's zoho-async run is reported (the default RetryPolicy backs
off 0.25 s on average before the first retry; settling waits for a listing).
"""

from __future__ import annotations

import attrs

from benchmarks._shared import JSON, FakeProcess, Layout, Scenario, Target, fmt, measured, progress

IN_FLIGHT = 16  # as in scenario 2
FAULT_RATE = 0.05
SYNC_DURATION = 600.0  # long syncs: in progress far longer than any retry takes
SHORT_SYNC_DURATION = 0.5  # short syncs: over before some retries arrive


@attrs.frozen
class Run:
    """One pass of the same faults against a fake whose syncs last ``sync_duration``."""

    key: str  # the contender's key in results.json
    label: str  # how the report names the run
    sync_duration: float


RUNS = (
    Run("zoho_async", "10-minute syncs", SYNC_DURATION),
    Run("zoho_async_short_syncs", f"{SHORT_SYNC_DURATION:g} s syncs", SHORT_SYNC_DURATION),
)


def _one_run(run: Run, syncs: int) -> tuple[JSON, JSON, int]:
    """(contender result, fake stats, faults scripted) for ``run``, on a fresh fake."""
    layout = Layout.for_syncs(syncs, quota=5, sync_duration=run.sync_duration)
    server = {"requests_per_minute": None, "metadata_per_minute": None}
    progress(f"  scenario 6: {FAULT_RATE:.0%} faults, {run.label} ({syncs:,} syncs)")
    with FakeProcess(server, layout) as fake:
        fake.command("reset")
        # more scripted answers than first attempts, so retries meet faults at the same rate;
        # the same seed in every run, so each run meets the same faults in the same order
        scripted = fake.command("script", count=int(syncs * 1.1), rate=FAULT_RATE, seed=6)
        # measured() resets the counters, not the script
        result, stats = measured(
            fake, {"contender": "zoho_async", "syncs": syncs, "concurrency": IN_FLIGHT}
        )
    return result, stats, int(scripted["faults"])


def run(quick: bool, baseline: JSON | None = None) -> Scenario:
    syncs = 2000 if quick else 20000
    measured_runs = [(r, *_one_run(r, syncs)) for r in RUNS]
    faults = measured_runs[0][3]
    scenario = Scenario(
        6,
        "Faults",
        f"FakeZoho in its own process, zero latency, no rate limit; {syncs:,} syncs of "
        f"distinct datasources, in-flight cap {IN_FLIGHT}; {faults:,} faults scripted over the "
        f"first {int(syncs * 1.1):,} sync calls ({FAULT_RATE:.0%}: 7005 or a dropped "
        "connection, each before or after the sync started). The same faults run twice, "
        "each against its own fake: syncs that stay in progress "
        f"{SYNC_DURATION / 60:g} minutes, and syncs that finish in {SHORT_SYNC_DURATION:g} s.",
        [
            "run",
            "seconds",
            "syncs/s",
            "slowdown vs scenario 2",
            "sync calls at the fake",
            "Get Datasources calls",
            "syncs started at the fake",
            "max syncs started per datasource",
            "datasources synced more than once",
            "STARTED",
            "UNCONFIRMED",
            "outcomes",
        ],
    )
    for spec, result, stats, _ in measured_runs:
        statuses: dict[str, int] = result["statuses"]
        started = int(statuses.get("STARTED", 0))
        unconfirmed = int(statuses.get("UNCONFIRMED", 0))
        rate = syncs / float(result["elapsed"])
        slowdown = None
        if baseline is not None:
            slowdown = float(baseline["syncs_per_second"]) / rate
        listings = int(stats["requests_by_route"].get("datasources", 0))
        most = int(stats["max_syncs_per_datasource"])
        scenario.rows.append(
            [
                f"zoho-async sync_many, {spec.label}",
                fmt(result["elapsed"], 2),
                fmt(rate),
                "-" if slowdown is None else f"{slowdown:.2f}x",
                f"{stats['sync_calls']:,}",
                f"{listings:,}",
                f"{stats['syncs_started']:,}",
                f"{most:,}",
                f"{stats['datasources_synced_twice']:,}",
                f"{started:,}",
                f"{unconfirmed:,}",
                ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())),
            ]
        )
        scenario.contenders[spec.key] = {
            "sync_duration": spec.sync_duration,
            "seconds": result["elapsed"],
            "syncs_per_second": rate,
            "slowdown_vs_scenario_2": slowdown,
            "sync_calls": stats["sync_calls"],
            "datasource_listings": listings,
            "syncs_started": stats["syncs_started"],
            "max_syncs_per_datasource": most,
            "retries": stats["sync_calls"] - syncs,  # every extra sync call followed a fault
            "attempts": result.get("attempts"),
            "datasources_synced_twice": stats["datasources_synced_twice"],
            "statuses": statuses,
            "unconfirmed_without_reason": result.get("unconfirmed_without_reason"),
        }
        scenario.targets.append(
            Target(f"max syncs started per datasource ({spec.label})", float(most), 1, "<=")
        )
        without_reason = int(result.get("unconfirmed_without_reason") or 0)
        scenario.targets.append(
            Target(
                f"targets ended STARTED or UNCONFIRMED ({spec.label})",
                float(started + unconfirmed - without_reason),
                float(syncs),
                "==",
                note=f"{unconfirmed:,} UNCONFIRMED, {without_reason:,} of them without a reason",
            )
        )
        scenario.notes.append(
            f"{spec.label}: {stats['sync_calls'] - syncs:,} retries were sent "
            f"({stats['sync_calls']:,} sync calls for {syncs:,} targets, {listings:,} Get "
            f"Datasources calls) and the fake started {stats['syncs_started']:,} syncs, at "
            f"most {most} per datasource; {stats['datasources_synced_twice']:,} datasources "
            f"were synced more than once. Outcomes: {started:,} STARTED, {unconfirmed:,} "
            f"UNCONFIRMED, {syncs - started - unconfirmed:,} other."
        )
        if slowdown is not None:
            scenario.notes.append(
                f"{spec.label}: slowdown vs scenario 2 (same fake, no faults): {slowdown:.2f}x "
                f"({rate:,.0f} vs {float(baseline['syncs_per_second']):,.0f} syncs/s)"  # type: ignore[index]
            )
    scenario.notes.append(
        "Every fault is settled from Get Datasources before anything is re-sent: a "
        "listing that shows no start re-sends, one that shows the start ends STARTED, "
        "and the rest end UNCONFIRMED: a connection dropped before Zoho acted leaves no "
        "trace, and with 10-minute syncs a counter that moved while the sync time did not "
        "cannot be told from a datasource sharing the connection (the fake's datasources "
        "all start at 0 of 5). A blind re-send would start a second sync whenever the "
        "first is already over, which 'datasources synced more than once' counts."
    )
    return scenario
