"""Serve a FakeZoho from this process, controlled by JSON lines on stdin (one answer each).

Run by :class:`benchmarks._shared.FakeProcess`; not meant to be started by hand. The first
line is ``{"server": {...FakeZoho kwargs}, "layout": {...}}``; the answer carries the URLs
and credentials. Then commands:

- ``reset``: zero the fake's counters and mark the CPU clock (before each contender);
- ``stats``: counters of the run since the last reset, plus this process's CPU seconds;
- ``revoke``: invalidate every access token;
- ``script``: queue sync faults (``count``, ``rate``, ``seed``; see :func:`fault_mix`);
- ``storm``: Sync Data answers 6045 until the window ends (at most ``count`` times);
- ``windows``: metadata calls per fixed window of the org, and the window index now;
- ``stop``: stop serving and exit.

The server runs on a background thread (``FakeZoho.run_in_thread``); the main thread only
reads commands, so it costs the server nothing while a contender runs.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import threading
from typing import Any

from benchmarks._shared import JSON, ORG_ID, Layout
from zoho_async.testing import FakeZoho, Fault


def build(server: JSON, layout: Layout) -> FakeZoho:
    """A fake with one org and the layout's datasources (ids as the layout computes them)."""
    fake = FakeZoho(**server)
    org = fake.add_org(ORG_ID, name="Bench org", is_default=True)
    for w in range(layout.workspaces):
        ws = fake.add_workspace(org.org_id, layout.workspace_id(w), name=f"Bench {w}")
        for d in range(layout.per_workspace):
            fake.add_datasource(
                ws.workspace_id,
                layout.datasource_id(w, d),
                source="MySQL",
                total_sync_allowed=layout.quota,
                sync_duration=layout.sync_duration,
            )
    return fake


def fault_mix(count: int, rate: float, seed: int) -> list[Fault]:
    """``count`` answers for the sync route, a fraction ``rate`` of them faults.

    The faults are, in equal parts: 7005 before the sync started, 7005 after it started
    (``then_process``: the server did the work, the answer says it failed), a dropped
    connection before, and a dropped connection after. The rest are plain ``Fault()``
    entries, which the fake answers normally.
    """
    rng = random.Random(seed)
    kinds = (
        Fault.error(7005, http_status=500),
        Fault(status=500, json=Fault.error(7005).json, then_process=True),
        Fault(drop=True),
        Fault(drop=True, then_process=True),
    )
    normal = Fault()
    out: list[Fault] = []
    for _ in range(count):
        out.append(kinds[rng.randrange(len(kinds))] if rng.random() < rate else normal)
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stats(fake: FakeZoho, cpu_mark: float, window: float) -> JSON:
    s = fake.stats
    started = s.syncs_started
    arrivals = sorted(t for times in s.arrivals.values() for t in times)
    in_first_window = 0
    if arrivals:
        first = arrivals[0]
        in_first_window = sum(1 for t in arrivals if t < first + window)
    return {
        "token_requests": s.token_requests,
        "requests": s.requests,
        "requests_by_route": dict(s.requests_by_route),
        "sync_calls": s.sync_calls.total(),
        "syncs_started": started.total(),
        "datasources_started": len(started),
        "max_syncs_per_datasource": max(started.values(), default=0),
        "datasources_synced_twice": sum(1 for n in started.values() if n > 1),
        "rejected_rate_limited": s.rejected_rate_limited,
        "max_window_count": s.max_window_count(),
        "max_metadata_window_count": s.max_metadata_window_count(),
        "max_rolling_window": s.max_rolling(window),
        "arrivals_in_first_full_window": in_first_window,
        "arrival_span": arrivals[-1] - arrivals[0] if arrivals else 0.0,
        "peak_in_flight": s.peak_in_flight,
        "server_cpu_seconds": _cpu() - cpu_mark,
    }


def main() -> None:
    setup: Any = json.loads(sys.stdin.readline())
    layout = Layout.from_json(setup["layout"])
    server: JSON = setup["server"]
    window = float(server.get("window_seconds", 60.0))
    out = sys.stdout

    def answer(message: JSON) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    fake = build(server, layout)
    with FakeZoho.run_in_thread(fake) as running:
        answer(
            {
                "api_url": running.api_url,
                "accounts_url": running.accounts_url,
                "credentials": running.credentials,
            }
        )
        cpu_mark = _cpu()
        for line in sys.stdin:
            message: Any = json.loads(line)
            command = message.get("command")
            if command == "stop":
                break
            if command == "reset":
                running.reset_stats()
                cpu_mark = _cpu()
                answer({"ok": True})
            elif command == "stats":
                answer(stats(running, cpu_mark, window))
            elif command == "revoke":
                running.revoke_tokens()
                answer({"ok": True})
            elif command == "storm":
                # a 6045 storm as Zoho has one: every Sync Data request is refused until
                # the current window ends (at most `count` of them)
                running.script("sync", [Fault.rate_limited()] * int(message["count"]))
                timer = threading.Timer(running.window_left(), running.clear_script)
                timer.daemon = True
                timer.start()
                answer({"ok": True, "window": running.window_index()})
            elif command == "windows":
                counts: dict[int, int] = dict(running.stats.metadata_window_counts.get(ORG_ID, {}))
                answer(
                    {
                        "metadata": {str(k): v for k, v in counts.items()},
                        "window": running.window_index(),
                        "rejected": running.stats.rejected_rate_limited,
                    }
                )
            elif command == "script":
                faults = fault_mix(int(message["count"]), float(message["rate"]), message["seed"])
                running.script("sync", faults)
                answer({"ok": True, "faults": sum(f != Fault() for f in faults)})
            else:
                answer({"error": f"unknown command {command!r}"})


if __name__ == "__main__":
    main()
