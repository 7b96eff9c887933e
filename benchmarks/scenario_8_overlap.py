"""Scenario 8, overlapping runs: two ``zoho-async sync`` commands over shared workspaces.

Three workspaces; run A syncs workspaces 1 and 2, run B (started 1 s after A) syncs 2 and
3, both with ``--shared`` pointing at the same store (a SQLite file, or a real
``redis-server``). The fake's syncs take 5 s. Without shared claims the second run's
call for a datasource the first run already started meets 18073 while that sync runs,
and starts it a second time once it has finished (the issue measured, for two such runs,
100 datasources synced twice, 39% more calls and 16 rejections).

Targets, per store: 0 datasources synced twice (the fake's starts per datasource), sync
calls of both runs at most 1.05x those of one run over the union of the workspaces (run
first, against its own fake), 0 rejections (6045), and both runs exit 0 (a CLAIMED target
is not a failure). The CLAIMED counts of each run are reported.

Both commands are told the fake's limit (``--rate``/``--metadata-rate`` = the fake's
per-minute limits) and share one pace through the store. Full size: 3 workspaces of 100
datasources; quick: 3 of 50. The two stores run side by side, each against its own fakes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks._shared import (
    JSON,
    ORG_ID,
    ROOT,
    FakeProcess,
    Layout,
    Scenario,
    Target,
    _child_env,
    fmt,
    progress,
)
from benchmarks._stores import Stores, stores

SYNC_SECONDS = 5.0  # how long the fake's syncs run
RATE = 1200  # calls a minute, overall and metadata, at the fake and in both commands
STAGGER = 1.0  # run B starts this long after run A
CALLS_GOAL = 1.05


def _command(fake: FakeProcess, store: str, workspaces: list[int], output: Path) -> list[str]:
    args = [sys.executable, "-m", "zoho_async", "sync", "-q", "--no-token-cache"]
    args += ["--shared", store, "--rate", str(RATE), "--metadata-rate", str(RATE)]
    args += ["-o", str(output)]
    for w in workspaces:
        args += ["-w", Layout.workspace_id(w)]
    return args


def _env(fake: FakeProcess) -> dict[str, str]:
    creds = fake.address["credentials"]
    env = _child_env()
    # Credentials go in the environment, as the CLI's help recommends (not in argv).
    env.update(
        {
            "ZOHO_CLIENT_ID": creds["client_id"],
            "ZOHO_CLIENT_SECRET": creds["client_secret"],
            "ZOHO_REFRESH_TOKEN": creds["refresh_token"],
            "ZOHO_ORG_ID": ORG_ID,
            "ZOHO_API_URL": fake.address["api_url"],
            "ZOHO_ACCOUNTS_URL": fake.address["accounts_url"],
        }
    )
    for name in ("ZOHO_SHARED", "ZOHO_TOKEN_CACHE"):
        env.pop(name, None)
    return env


def _statuses(path: Path) -> dict[str, int]:
    counts: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if "status" in row:  # a result (the journal's own lines have a "kind")
                counts[row["status"]] += 1
    return dict(counts)


def _runs(fake: FakeProcess, store: str, plan: list[list[int]], workdir: Path) -> JSON:
    """Start one command per entry of ``plan`` (``STAGGER`` s apart); wait for all."""
    fake.command("reset")
    procs: list[tuple[subprocess.Popen[str], Path, Path]] = []
    began = time.monotonic()
    try:
        for i, workspaces in enumerate(plan):
            if i:
                # the scenario's definition: B starts a second after A, not a race guard
                time.sleep(STAGGER)
            output = workdir / f"run-{os.getpid()}-{time.monotonic_ns()}.jsonl"
            errors = output.with_suffix(".err")
            with errors.open("w") as err:
                proc = subprocess.Popen(
                    _command(fake, store, workspaces, output),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    text=True,
                    env=_env(fake),
                    cwd=str(ROOT.parent),
                )
            procs.append((proc, output, errors))
        runs = []
        for proc, output, errors in procs:
            code = proc.wait(timeout=600)
            runs.append(
                {
                    "exit_code": code,
                    "statuses": _statuses(output),
                    "stderr": errors.read_text()[-2000:] if code else "",
                }
            )
        wall = time.monotonic() - began
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stats = fake.command("stats")
    return {"runs": runs, "wall": wall, "stats": stats}


def _outcomes(runs: list[JSON]) -> str:
    """Statuses per run for a table cell ("A: ...; B: ..."; a "|" would split the cell)."""
    shown = [", ".join(f"{k} {v:,}" for k, v in sorted(r["statuses"].items())) for r in runs]
    if len(shown) == 1:
        return shown[0]
    return "; ".join(f"{name}: {text}" for name, text in zip("AB", shown, strict=False))


def _layout(per_workspace: int) -> Layout:
    return Layout(workspaces=3, per_workspace=per_workspace, sync_duration=SYNC_SECONDS)


def _server() -> JSON:
    return {"requests_per_minute": RATE, "metadata_per_minute": RATE}


def _store_runs(stores_: Stores, kind: str, per_workspace: int, workdir: Path) -> JSON:
    progress(f"  scenario 8: {kind}, one run over the union")
    with FakeProcess(_server(), _layout(per_workspace)) as fake:
        single = _runs(fake, stores_.fresh(kind), [[0, 1, 2]], workdir)
    progress(f"  scenario 8: {kind}, two overlapping runs")
    with FakeProcess(_server(), _layout(per_workspace)) as fake:
        pair = _runs(fake, stores_.fresh(kind), [[0, 1], [1, 2]], workdir)
    return {"single": single, "pair": pair}


def run(quick: bool) -> Scenario:
    per_workspace = 50 if quick else 100
    union = 3 * per_workspace
    scenario = Scenario(
        8,
        "Overlapping runs",
        f"3 workspaces of {per_workspace} datasources; fake syncs take {SYNC_SECONDS:g} s. Run "
        f"A: `zoho-async sync -w 1 -w 2`; run B, {STAGGER:g} s later: `-w 2 -w 3`; both with "
        f"`--shared` on the same store and `--rate {RATE} --metadata-rate {RATE}` (the fake's "
        "limits). Before them, one run over all three workspaces against its own fake (the "
        "baseline for sync calls). The SQLite and Redis runs go side by side, each against "
        "its own fakes, with a fresh store for every run.",
        [
            "store",
            "runs",
            "sync calls",
            "/ one run over the union",
            "datasources started",
            "synced twice",
            "rejected (6045)",
            "wall s",
            "exit codes",
            "outcomes (per run)",
        ],
    )
    with (
        tempfile.TemporaryDirectory(prefix="zoho-bench-overlap-") as tmp,
        stores() as (stores_, missing),
    ):
        kinds = stores_.available()
        workdir = Path(tmp)
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            runs = pool.map(lambda k: _store_runs(stores_, k, per_workspace, workdir), kinds)
            measured = dict(zip(kinds, runs, strict=True))
    if missing:
        scenario.notes.append(f"Redis not measured: {missing}.")
    for kind, both in measured.items():
        single, pair = both["single"], both["pair"]
        base_calls = single["stats"]["sync_calls"]
        for label, m in (("one run, union", single), ("A + B overlapping", pair)):
            s = m["stats"]
            scenario.rows.append(
                [
                    kind,
                    label,
                    f"{s['sync_calls']:,}",
                    f"{s['sync_calls'] / base_calls:.3f}" if base_calls else "-",
                    f"{s['datasources_started']:,}",
                    f"{s['datasources_synced_twice']:,}",
                    f"{s['rejected_rate_limited']:,}",
                    fmt(m["wall"], 1),
                    ", ".join(str(r["exit_code"]) for r in m["runs"]),
                    _outcomes(m["runs"]),
                ]
            )
        scenario.contenders[kind] = both
        stats = pair["stats"]
        claimed = [r["statuses"].get("CLAIMED", 0) for r in pair["runs"]]
        scenario.targets += [
            Target(
                f"{kind}: datasources synced twice",
                float(stats["datasources_synced_twice"]),
                0,
                "==",
            ),
            Target(
                f"{kind}: sync calls of A + B / one run over the union",
                round(stats["sync_calls"] / base_calls, 3) if base_calls else None,
                CALLS_GOAL,
                "<=",
            ),
            Target(f"{kind}: rejections (6045)", float(stats["rejected_rate_limited"]), 0, "=="),
            Target(
                f"{kind}: runs that exited non-zero",
                float(sum(1 for r in pair["runs"] if r["exit_code"] != 0)),
                0,
                "==",
            ),
        ]
        scenario.notes.append(
            f"{kind}: CLAIMED - run A {claimed[0]:,}, run B {claimed[1]:,} "
            f"(union {union:,} datasources; workspace 2 is in both runs)."
        )
        for r in pair["runs"] + single["runs"]:
            if r["exit_code"]:
                scenario.notes.append(f"{kind}: a run exited {r['exit_code']}: {r['stderr']}")
    return scenario
