"""Scenario 10, crash and resume: ``zoho-async sync -o FILE`` killed with SIGKILL at random
points, then ``--resume FILE`` until a run ends by itself.

1,000 targets (10 workspaces of 100 datasources; quick: 150, 3 of 50), syncs of 0.5 s at
the fake, 10 kills (quick: 4) at points a seeded ``random.Random`` picks: most after a
random number of new result lines in the journal (plus up to 50 ms), some during start-up.
The CLI runs as a cron job would run it: credentials in the environment, a token cache
(hence the SQLite shared store beside it), ``--timeout 5`` (resume waits until each
pending intent is at least a timeout old before it lists).

Counted at the fake and in the journal:

- double starts: datasources the fake started more than once (goal 0);
- lost targets: targets whose last result line is not final (STARTED, ALREADY_RUNNING or
  UNCONFIRMED), or that have none (goal 0);
- extra calls per resume: the crash run's analytics calls (listings, Sync Data, ...) beyond
  one uninterrupted run's, per resume, in units of one listing per workspace (goal <= 1);
- journal overhead: the same uninterrupted run with ``-o FILE`` (the journal) and without,
  both in each round, back to back; the median of the rounds' throughput ratios, where
  throughput = Sync Data calls / the span of all arrivals at the fake, so interpreter
  start-up is not in it (goal: journal / none >= 0.95).

The fake enforces no per-minute limit and the CLI is told 100,000 a minute (as the tests'
``CLI_FAST``), so the runs are bound by CPU, not pacing, and the journal's cost shows.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import attrs

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

SYNC_SECONDS = 0.5
TIMEOUT = 5.0  # --timeout of every run: how old a pending intent must be before resume lists
RATE = 100_000  # --rate and --metadata-rate: far above what a run reaches
SEED = 10
STARTUP_SHARE = 0.2  # share of kills that land during start-up (before any result)
STARTUP_KILL = 1.0  # a start-up kill lands within this many seconds of the spawn
RUN_LIMIT = 600.0  # a run longer than this is stuck
DONE = frozenset({"STARTED", "ALREADY_RUNNING", "UNCONFIRMED"})  # final: --resume skips them
OVERHEAD_GOAL = 0.95
EXTRA_GOAL = 1.0


@attrs.frozen
class Size:
    workspaces: int
    per_workspace: int
    kills: int
    rounds: int  # uninterrupted rounds per mode for the overhead

    @property
    def targets(self) -> int:
        return self.workspaces * self.per_workspace


FULL = Size(workspaces=10, per_workspace=100, kills=10, rounds=11)
QUICK = Size(workspaces=3, per_workspace=50, kills=4, rounds=3)


def _layout(size: Size) -> Layout:
    # a quota above every run of the scenario: the overhead rounds reuse one fake
    return Layout(
        workspaces=size.workspaces,
        per_workspace=size.per_workspace,
        quota=2 * size.rounds + 5,
        sync_duration=SYNC_SECONDS,
    )


# -- the command --------------------------------------------------------------------------


def _env(fake: FakeProcess, cache: Path) -> dict[str, str]:
    creds = fake.address["credentials"]
    env = _child_env()
    for name in [k for k in env if k.startswith("ZOHO_")]:
        del env[name]
    # Credentials in the environment, as the CLI's help recommends; a token cache of the
    # run's own, and with it the default SQLite shared store beside it.
    env.update(
        {
            "ZOHO_CLIENT_ID": creds["client_id"],
            "ZOHO_CLIENT_SECRET": creds["client_secret"],
            "ZOHO_REFRESH_TOKEN": creds["refresh_token"],
            "ZOHO_ORG_ID": ORG_ID,
            "ZOHO_API_URL": fake.address["api_url"],
            "ZOHO_ACCOUNTS_URL": fake.address["accounts_url"],
            "ZOHO_TOKEN_CACHE": str(cache / "tokens.json"),
        }
    )
    return env


def _command(targets: Path, journal: Path | None, resume: bool) -> list[str]:
    args = [sys.executable, "-m", "zoho_async", "sync", "-t", str(targets), "-q", "-f", "jsonl"]
    args += ["--rate", str(RATE), "--metadata-rate", str(RATE), "--timeout", f"{TIMEOUT:g}"]
    if journal is not None:
        args += ["--resume" if resume else "-o", str(journal)]
    return args


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=str(ROOT.parent),
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- watching the journal ------------------------------------------------------------------


class Tail:
    """Counts the result lines of a growing journal, reading only what was appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.results = 0

    def poll(self) -> int:
        try:
            with self.path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # a resume cut a torn last line: read it again
                    self.offset, self.partial = 0, b""
                    self.results = 0
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.results
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        self.results += sum(1 for line in lines if _is_result(line))
        return self.results


def _is_result(line: bytes) -> bool:
    try:
        row = json.loads(line)
    except ValueError:
        return False
    return isinstance(row, dict) and "status" in row and "kind" not in row


def _schedule(rng: random.Random, size: Size) -> list[tuple[int, float]]:
    """Kill points: (result lines to wait for, then seconds); (0, s): s after the spawn.
    The line counts add up, on average, to about 3/8 of the targets, so every kill lands
    before the end of the work even with what is in flight at each one."""
    most = max(2, int(1.5 * size.targets / (size.kills + 2)))
    points = []
    for _ in range(size.kills):
        if rng.random() < STARTUP_SHARE:
            points.append((0, rng.uniform(0, STARTUP_KILL)))
        else:
            points.append((rng.randint(1, most), rng.uniform(0, 0.05)))
    return points


def _kill_at(proc: subprocess.Popen[bytes], tail: Tail, lines: int, extra: float) -> bool:
    """SIGKILL ``proc`` at its point; False when it ended by itself first."""
    goal = tail.poll() + lines
    while proc.poll() is None and tail.poll() < goal:
        time.sleep(0.005)
    until = time.monotonic() + extra
    while proc.poll() is None and time.monotonic() < until:
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=RUN_LIMIT)
    return True


def _read_journal(path: Path) -> JSON:
    """Final statuses, lost targets and lines that do not parse."""
    last: dict[tuple[str, str], str] = {}
    broken = 0
    kinds: Counter[str] = Counter()
    data = path.read_bytes() if path.exists() else b""
    for line in data.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            broken += 1
            continue
        if "kind" in row:
            kinds[str(row["kind"])] += 1
        elif "status" in row:
            last[(str(row["workspace_id"]), str(row["datasource_id"]))] = str(row["status"])
    return {"last": last, "broken_lines": broken, "kinds": dict(kinds), "bytes": len(data)}


# -- the runs --------------------------------------------------------------------------------


def _clean(fake: FakeProcess, targets: Path, workdir: Path, journal: bool, n: int) -> JSON:
    """One uninterrupted run (a fresh token cache and store: the last run's claims would
    make every target CLAIMED)."""
    fake.command("reset")
    tag = f"clean-{'journal' if journal else 'none'}-{n}"
    path = workdir / f"{tag}.jsonl" if journal else None
    log = workdir / f"{tag}.err"
    cpu = _children_cpu()
    began = time.monotonic()
    proc = _spawn(_command(targets, path, resume=False), _env(fake, workdir / tag), log)
    code = proc.wait(timeout=RUN_LIMIT)
    wall = time.monotonic() - began
    stats = fake.command("stats")
    span = stats["arrival_span"]
    return {
        "journal": journal,
        "exit_code": code,
        "stderr": log.read_text()[-2000:] if code else "",
        "wall": wall,
        "client_cpu": _children_cpu() - cpu,
        "syncs_per_second": stats["sync_calls"] / span if span > 0 else None,
        "stats": stats,
        "journal_bytes": path.stat().st_size if path is not None and path.exists() else 0,
    }


def _crash(fake: FakeProcess, size: Size, targets: Path, workdir: Path) -> JSON:
    """The first run and its resumes, killed at the schedule's points, then resumed until a
    run exits by itself (at most 3 such runs)."""
    fake.command("reset")
    journal = workdir / "crash.jsonl"
    log = workdir / "crash.err"
    env = _env(fake, workdir / "crash")
    tail = Tail(journal)
    kills = runs = 0
    ended_early: list[int] = []
    began = time.monotonic()
    for lines, extra in _schedule(random.Random(SEED), size):
        proc = _spawn(_command(targets, journal, resume=journal.exists()), env, log)
        runs += 1
        try:
            if _kill_at(proc, tail, lines, extra):
                kills += 1
                continue
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        ended_early.append(proc.returncode)
        break
    codes: list[int] = []
    while not codes or (codes[-1] != 0 and len(codes) < 3):
        proc = _spawn(_command(targets, journal, resume=journal.exists()), env, log)
        runs += 1
        codes.append(proc.wait(timeout=RUN_LIMIT))
    wall = time.monotonic() - began
    stats = fake.command("stats")
    read = _read_journal(journal)
    last: dict[tuple[str, str], str] = read.pop("last")
    wanted = set(_layout(size).targets(size.targets))
    lost = sum(1 for t in wanted if last.get(t) not in DONE)
    return {
        "kills": kills,
        "runs": runs,
        "ended_before_kill_point": ended_early,
        "final_exit_codes": codes,
        "wall": wall,
        "stats": stats,
        "lost": lost,
        "final_statuses": dict(Counter(last.get(t, "none") for t in wanted)),
        **read,
        "stderr": log.read_text()[-2000:] if codes[-1] else "",
    }


def run(quick: bool) -> Scenario:
    size = QUICK if quick else FULL
    layout = _layout(size)
    scenario = Scenario(
        10,
        "Crash and resume",
        f"{size.targets:,} targets ({size.workspaces} workspaces of {size.per_workspace} "
        f"datasources), syncs of {SYNC_SECONDS:g} s at the fake. `zoho-async sync -t FILE -o "
        f"JOURNAL` killed with SIGKILL {size.kills} times at seeded random points (most after "
        "a random number of new result lines, some during start-up), each time resumed with "
        "`--resume JOURNAL`, until a run exits by itself. Credentials in the environment, a "
        f"token cache (so the default SQLite shared store), `--timeout {TIMEOUT:g}`. Limits: "
        f"the fake enforces none, the CLI is told `--rate {RATE} --metadata-rate {RATE}`, 8 "
        "requests in flight (the default): bound by CPU, not pacing. Overhead: the same "
        f"uninterrupted run with `-o JOURNAL` and without, {size.rounds} rounds of both back to "
        "back (order alternating), median of the rounds' ratios; throughput is Sync Data calls "
        "/ the span of all arrivals at the fake (no interpreter start-up in it). The fake runs "
        "in its own process.",
        [
            "run",
            "runs (kills)",
            "sync calls",
            "listings",
            "other calls",
            "syncs/s",
            "client CPU ms/target",
            "started twice",
            "lost",
            "final statuses",
            "wall s",
        ],
    )
    # Every uninterrupted run has a token cache and store of its own (see _clean), so each
    # requests a token: the overhead fake lifts Zoho's 10 token requests per 10 minutes.
    unlimited = {"requests_per_minute": None, "metadata_per_minute": None}
    with (
        tempfile.TemporaryDirectory(prefix="zoho-bench-crash-") as tmp,
        FakeProcess({**unlimited, "token_limit": 10_000}, layout) as fake,
    ):
        workdir = Path(tmp)
        targets = workdir / "targets.csv"
        targets.write_text("".join(f"{w},{d}\n" for w, d in layout.targets(size.targets)))
        clean: dict[bool, list[JSON]] = {True: [], False: []}
        for n in range(size.rounds):
            for journal in (True, False) if n % 2 == 0 else (False, True):
                progress(f"  scenario 10: uninterrupted, {'journal' if journal else 'none'}")
                clean[journal].append(_clean(fake, targets, workdir, journal, n))
    with (
        tempfile.TemporaryDirectory(prefix="zoho-bench-crash-") as tmp,
        FakeProcess(unlimited, layout) as fake,
    ):
        workdir = Path(tmp)
        targets = workdir / "targets.csv"
        targets.write_text("".join(f"{w},{d}\n" for w, d in layout.targets(size.targets)))
        progress(f"  scenario 10: {size.kills} kills and resumes")
        crash = _crash(fake, size, targets, workdir)

    # Each round runs both modes back to back (in alternating order), so a pair shares the
    # machine's load of the moment: the ratio is the median of the rounds' own ratios.
    pairs = [
        j["syncs_per_second"] / n["syncs_per_second"]
        for j, n in zip(clean[True], clean[False], strict=True)
        if j["syncs_per_second"] and n["syncs_per_second"]
    ]
    ratio = statistics.median(pairs) if pairs else None
    for label, journal in (
        ("uninterrupted, no journal", False),
        ("uninterrupted, -o journal", True),
    ):
        runs = clean[journal]
        s = runs[0]["stats"]
        by_route = s["requests_by_route"]
        scenario.rows.append(
            [
                label,
                f"{len(runs)} x 1 (0)",
                f"{s['sync_calls']:,}",
                f"{by_route.get('datasources', 0):,}",
                f"{s['requests'] - s['sync_calls'] - by_route.get('datasources', 0):,}",
                fmt(statistics.median(r["syncs_per_second"] or 0.0 for r in runs), 1),
                fmt(statistics.median(1000 * r["client_cpu"] / size.targets for r in runs), 2),
                f"{max(r['stats']['datasources_synced_twice'] for r in runs):,}",
                "-",
                "-",
                fmt(statistics.median(r["wall"] for r in runs), 1),
            ]
        )
    s = crash["stats"]
    by_route = s["requests_by_route"]
    scenario.rows.append(
        [
            "killed and resumed",
            f"{crash['runs']} ({crash['kills']})",
            f"{s['sync_calls']:,}",
            f"{by_route.get('datasources', 0):,}",
            f"{s['requests'] - s['sync_calls'] - by_route.get('datasources', 0):,}",
            "-",
            "-",
            f"{s['datasources_synced_twice']:,}",
            f"{crash['lost']:,}",
            ", ".join(f"{k} {v:,}" for k, v in sorted(crash["final_statuses"].items())),
            fmt(crash["wall"], 1),
        ]
    )
    resumes = crash["runs"] - 1
    base = clean[True][0]["stats"]
    # Calls beyond one uninterrupted run, per kind ("requests" at the fake: analytics calls,
    # token requests not included). Counted per kind, so that targets a resume never sent
    # (lost) do not hide re-sent ones.
    extra_syncs = max(0, s["sync_calls"] - base["sync_calls"])
    extra_other = max(0, s["requests"] - s["sync_calls"] - (base["requests"] - base["sync_calls"]))
    extra = extra_syncs + extra_other
    extra_per_resume = extra / resumes / size.workspaces if resumes else None
    scenario.contenders = {
        "clean_journal": {"rounds": clean[True]},
        "clean_none": {"rounds": clean[False]},
        "crash": crash,
    }
    scenario.targets += [
        Target("datasources started twice", float(s["datasources_synced_twice"]), 0, "=="),
        Target(
            "lost targets (no final result)",
            float(crash["lost"]),
            0,
            "==",
            note=f"of {size.targets:,}",
        ),
        Target(
            "extra calls per resume, in listings per workspace",
            round(extra_per_resume, 3) if extra_per_resume is not None else None,
            EXTRA_GOAL,
            "<=",
            note=f"{extra_syncs:,} Sync Data and {extra_other:,} other analytics calls beyond "
            f"one uninterrupted run, {resumes} resumes, {size.workspaces} workspaces",
        ),
        Target(
            "throughput with the journal / without (median of paired rounds)",
            round(ratio, 3) if ratio is not None else None,
            OVERHEAD_GOAL,
            ">=",
            unit="x",
        ),
    ]
    cpu = {j: statistics.median(r["client_cpu"] for r in clean[j]) for j in (True, False)}
    rates = {j: [r["syncs_per_second"] or 0.0 for r in clean[j]] for j in (True, False)}
    scenario.notes.append(
        f"Throughput of every round, syncs/s: journal {', '.join(fmt(x, 1) for x in rates[True])}"
        f"; none {', '.join(fmt(x, 1) for x in rates[False])}; paired ratios "
        f"{', '.join(f'{x:.3f}' for x in pairs)}. Median client CPU, journal / none: "
        f"{fmt(cpu[True] / cpu[False] if cpu[False] else None, 3)}x (interpreter start-up "
        f"included). Journal of an uninterrupted run: {clean[True][0]['journal_bytes']:,} bytes."
    )
    scenario.notes.append(
        f"Crash run: {crash['kills']} kills in {crash['runs']} runs; exit codes of the runs "
        f"that ended by themselves: {crash['final_exit_codes']}; journal lines by kind: "
        f"{crash['kinds'] or 'none'}; lines that do not parse: {crash['broken_lines']}; token "
        f"requests {s['token_requests']}; rejected (6045) {s['rejected_rate_limited']}."
    )
    if crash["ended_before_kill_point"]:
        scenario.notes.append(
            f"A run ended before its kill point (exit {crash['ended_before_kill_point']}): "
            f"fewer kills than the {size.kills} scheduled."
        )
    for m in [*clean[True], *clean[False]]:
        if m["exit_code"]:
            scenario.notes.append(f"An uninterrupted run exited {m['exit_code']}: {m['stderr']}")
    if crash["final_exit_codes"][-1]:
        scenario.notes.append(f"The last resume exited non-zero: {crash['stderr']}")
    return scenario
