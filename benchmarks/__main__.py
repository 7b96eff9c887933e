"""``python -m benchmarks [--quick] [--only 1,3]``: run the scenarios, write the reports.

Full size writes ``benchmarks/results.json`` and ``benchmarks/RESULTS.md``; ``--quick`` (the
CI smoke size: proves the benchmarks still run, asserts nothing about speed) writes
``results-quick.json`` and ``RESULTS-quick.md`` instead, so it never overwrites a full run.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import (
    scenario_1_latency,
    scenario_2_overhead,
    scenario_3_limit,
    scenario_4_scale,
    scenario_5_tokens,
    scenario_6_faults,
    scenario_7_workers,
    scenario_8_overlap,
    scenario_9_restarts,
    scenario_10_crash,
    scenario_11_discovery,
    scenario_12_service,
)
from benchmarks._shared import Scenario, Stopwatch, machine, progress, show_number, write_reports

ALL = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced sizes (CI smoke)")
    parser.add_argument(
        "--only",
        default=",".join(map(str, ALL)),
        help="comma-separated scenario numbers, e.g. 2,6 (default: all)",
    )
    args = parser.parse_args(argv)
    try:
        args.only = sorted({int(x) for x in args.only.split(",") if x.strip()})
    except ValueError:
        parser.error("--only takes scenario numbers such as 1,3")
    if not args.only or not set(args.only) <= set(ALL):
        parser.error(f"--only takes numbers among {ALL}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    quick: bool = args.quick
    info = machine()
    clock = Stopwatch()
    scenarios: list[Scenario] = []
    overhead: Scenario | None = None
    for number in args.only:
        progress(f"scenario {number} ({'quick' if quick else 'full'}) at {clock():.0f}s")
        if number == 1:
            scenarios.append(scenario_1_latency.run(quick))
        elif number == 2:
            overhead = scenario_2_overhead.run(quick)
            scenarios.append(overhead)
        elif number == 3:
            scenarios.append(scenario_3_limit.run(quick))
        elif number == 4:
            scenarios.append(scenario_4_scale.run(quick))
        elif number == 5:
            scenarios.append(scenario_5_tokens.run(quick))
        elif number == 6:
            baseline = overhead.contenders["zoho_async"]["best"] if overhead else None
            scenarios.append(scenario_6_faults.run(quick, baseline))
        elif number == 7:
            scenarios.append(scenario_7_workers.run(quick))
        elif number == 8:
            scenarios.append(scenario_8_overlap.run(quick))
        elif number == 9:
            scenarios.append(scenario_9_restarts.run(quick))
        elif number == 10:
            scenarios.append(scenario_10_crash.run(quick))
        elif number == 11:
            scenarios.append(scenario_11_discovery.run(quick))
        elif number == 12:
            scenarios.append(scenario_12_service.run(quick))
    json_path, md_path = write_reports(scenarios, info, quick=quick, elapsed=clock())
    met = sum(t.met for s in scenarios for t in s.targets)
    total = sum(len(s.targets) for s in scenarios)
    print(f"{met} of {total} targets met in {clock():.0f}s; wrote {json_path} and {md_path}")
    for s in scenarios:
        for t in s.targets:
            value = show_number(t.value)
            print(
                f"  {s.number}. {t.name}: {value} {t.unit} (goal {t.op} {t.goal:g}) "
                f"{'met' if t.met else 'MISSED'}"
            )
    # A benchmark run is a measurement, not a test: missed targets do not fail it.
    return 0


if __name__ == "__main__":
    sys.exit(main())
