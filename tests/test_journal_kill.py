"""Kill tests of the crash-safe journal (issue 12): SIGKILL a bulk run at seeded random
points, resume it until a run ends by itself, and count at the fake.

Each round builds its own FakeZoho (syncs that finish in 0.5 s, some datasources with two
sync intervals) served from this process over loopback, runs ``zoho-async sync -t FILE -o
JOURNAL`` (or a child process running ``session.sync_many(..., journal=PATH)``), kills it
with SIGKILL at the points a ``random.Random(seed)`` schedule picks, resumes with
``--resume JOURNAL`` (or ``journal=PATH`` in this process) until a run exits by itself,
then checks, whatever the timing of the kills:

- no (datasource, interval) started twice: the fake's starts per datasource are at most 1
  for single-interval datasources, and every start is accounted for by a target whose
  final result says STARTED (or UNCONFIRMED: may have started);
- no target lost: every target has a result line, and its last one is final (STARTED,
  ALREADY_RUNNING or UNCONFIRMED), never two STARTED lines for one target;
- every line of the journal parses as JSON (a torn line is repaired, not built upon);
- a later resume of the finished journal sends no Sync Data call.

A kill point is "after n more result lines" (plus up to 50 ms), or a moment during start-up:
killing at any moment is legal, so nothing here depends on where a kill lands. The bound
on n keeps every scheduled kill ahead of the run's end, so each round makes all its kills:
3 CLI rounds of 8 kills and 1 SDK round of 6, 30 in all.

The CLI rounds use the CLI's default store (SQLite beside the token cache: the claims of a
killed run outlive it) in two rounds and ``--shared local`` in one (only the journal keeps
the count). A run's request timeout is short (1.5 s), since a resume waits until each
pending intent is that old before it lists.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from zoho_async import AnalyticsSession, InvalidInputError, Limits, SyncTarget
from zoho_async.testing import FakeZoho

from .helpers import CLI_FAST, cli_env

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

SYNC_SECONDS = 0.5  # the syncs: shorter than the request timeout
# The request timeout of every run. Resume waits until each pending intent is at least this
# old before it lists, so a small one keeps a round short.
TIMEOUT = 1.5
# The fake answers each request after 50-200 ms, so up to 8 Sync Data calls are in flight
# at a kill (8 pending intents) and a run of 100 targets lasts seconds, not a blink: a kill
# lands where its schedule says, not after the run ended.
LATENCY, JITTER = 0.05, 0.15
WORKSPACES = 4
PLAIN_PER_WORKSPACE = 23
MULTI_PER_WORKSPACE = 1  # datasources with two sync intervals: 25 targets a workspace
# A datasource's second interval is sent once its first one's sync has ended, seen in a
# listing every poll interval (30 s by default): poll often, so a round takes seconds.
POLL_SECONDS = 0.2
POLL = ["--poll-interval", str(POLL_SECONDS)]
KILLS_PER_ROUND = 8  # per CLI round: 3 rounds
SDK_KILLS = 6  # one SDK round: 30 kills in all, the minimum
# a kill comes at most this many result lines after the run's first: 8 kills leave most of
# the 100 targets to later runs, even counting what was in flight at each kill
MAX_RESULTS_PER_KILL = 3
STARTUP_KILL = 0.8  # a start-up kill lands within this many seconds of the spawn
RUN_LIMIT = 120.0  # a run that takes longer is stuck: fail, do not hang
# What --resume skips: a target whose last result is one of these is done
DONE = frozenset({"STARTED", "ALREADY_RUNNING", "UNCONFIRMED"})

Key = tuple[str, str, str | None]  # workspace, datasource, interval (None: its only one)


# -- the world ------------------------------------------------------------------------------


@attrs.frozen
class World:
    """A started fake, its targets, and each datasource's number of intervals."""

    fake: FakeZoho
    targets: list[dict[str, str]]
    intervals: dict[str, int]

    def keys(self) -> set[Key]:
        return {_key(t) for t in self.targets}


@contextmanager
def world(sync_duration: float = SYNC_SECONDS) -> Iterator[World]:
    """A fake of ``WORKSPACES`` workspaces served from a thread of this process; each
    datasource has a connection (quota) of its own."""
    fake = FakeZoho(
        requests_per_minute=None,
        metadata_per_minute=None,
        sync_duration=sync_duration,
        latency=LATENCY,
        latency_jitter=JITTER,
    )
    org = fake.add_org(is_default=True)
    targets: list[dict[str, str]] = []
    intervals: dict[str, int] = {}
    for w in range(WORKSPACES):
        ws = fake.add_workspace(org.org_id, str(1001 + w)).workspace_id
        for i in range(PLAIN_PER_WORKSPACE + MULTI_PER_WORKSPACE):
            count = 2 if i < MULTI_PER_WORKSPACE else 1
            ds = fake.add_datasource(ws, intervals=count)
            assert ds.datasource_id is not None
            intervals[ds.datasource_id] = count
            if count == 1:
                targets.append({"workspace_id": ws, "datasource_id": ds.datasource_id})
            else:
                targets += [
                    {"workspace_id": ws, "datasource_id": ds.datasource_id, "sync_interval_id": i}
                    for i in ds.interval_ids
                ]
    with FakeZoho.run_in_thread(fake) as running:
        yield World(running, targets, intervals)


def _key(row: dict[str, Any]) -> Key:
    return (str(row["workspace_id"]), str(row["datasource_id"]), row.get("sync_interval_id"))


# -- reading the journal ----------------------------------------------------------------------


def complete_lines(path: Path) -> list[bytes]:
    """The lines of ``path`` that end in a newline (a torn last line is not one)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.split(b"\n")[:-1]


def is_result(line: bytes) -> bool:
    """A result line: a ``SyncResult.to_dict()`` (it has "status", no "kind")."""
    try:
        row = json.loads(line)
    except ValueError:
        return False
    return isinstance(row, dict) and "status" in row and "kind" not in row


def result_count(path: Path) -> int:
    return sum(1 for line in complete_lines(path) if is_result(line))


def parse_all(path: Path) -> list[dict[str, Any]]:
    """Every line of the journal as JSON; a line that does not parse fails the test."""
    rows = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line[:120]!r}")
    return rows


# -- what must hold after the last run -------------------------------------------------------


def problems(w: World, rows: list[dict[str, Any]]) -> list[str]:
    """Everything wrong with the journal and the fake's counters, as sentences."""
    found: list[str] = []
    lines: dict[Key, list[str]] = defaultdict(list)
    for row in rows:
        if "status" in row and "kind" not in row:
            lines[_key(row)].append(str(row["status"]))
    expected = w.keys()
    lost = expected - set(lines)
    if lost:
        found.append(f"{len(lost)} targets have no result line")
    strangers = set(lines) - expected
    if strangers:
        found.append(f"{len(strangers)} result lines name no target: {sorted(strangers)[:3]}")
    twice = [k for k, statuses in lines.items() if statuses.count("STARTED") > 1]
    if twice:
        found.append(f"{len(twice)} targets have two STARTED result lines")
    final = {k: statuses[-1] for k, statuses in lines.items() if k in expected}
    unfinished = Counter(s for s in final.values() if s not in DONE)
    if unfinished:
        found.append(f"targets whose last result is not final (lost): {dict(unfinished)}")
    started = Counter(k[1] for k, s in final.items() if s == "STARTED")
    maybe = Counter(k[1] for k, s in final.items() if s == "UNCONFIRMED")
    starts = w.fake.stats.syncs_started
    doubles = [ds for ds, n in w.intervals.items() if n == 1 and starts[ds] > 1]
    if doubles:
        found.append(f"{len(doubles)} single-interval datasources started more than once")
    # Every start at the fake is some target's: at most one start per target, so a
    # datasource's starts lie between its STARTED targets and those plus the UNCONFIRMED
    # ones. This is what pins each (datasource, interval) to one start: the fake counts
    # starts per datasource only.
    unaccounted = [ds for ds in w.intervals if starts[ds] > started[ds] + maybe[ds]]
    if unaccounted:
        extra = sum(starts[ds] - started[ds] - maybe[ds] for ds in unaccounted)
        found.append(
            f"{len(unaccounted)} datasources have {extra} starts beyond their STARTED or "
            "UNCONFIRMED targets (synced twice, or started with no STARTED result)"
        )
    phantom = [ds for ds in w.intervals if started[ds] > starts[ds]]
    if phantom:
        found.append(f"{len(phantom)} datasources have STARTED results the fake never started")
    return found


def assert_sound(w: World, journal: Path) -> None:
    found = problems(w, parse_all(journal))
    assert not found, "; ".join(found)


# -- processes ----------------------------------------------------------------------------------


def sync_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "zoho_async", "sync", *args]


def process_env(values: dict[str, str | None]) -> dict[str, str]:
    """This process's environment without any ZOHO_* variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOHO_")}
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def finish(proc: subprocess.Popen[bytes]) -> None:
    """Make sure a process this test started is gone (killed if still running)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=RUN_LIMIT)


@attrs.frozen
class KillPoint:
    """Where a kill lands: after ``results`` more result lines (then ``extra`` seconds), or
    ``extra`` seconds after the spawn when ``results`` is 0."""

    results: int
    extra: float


def schedule(rng: random.Random, kills: int) -> list[KillPoint]:
    points = []
    for _ in range(kills):
        n = rng.randint(0, MAX_RESULTS_PER_KILL)
        extra = rng.uniform(0, STARTUP_KILL) if n == 0 else rng.uniform(0, 0.05)
        points.append(KillPoint(n, extra))
    return points


def kill_at(proc: subprocess.Popen[bytes], journal: Path, point: KillPoint) -> bool:
    """SIGKILL ``proc`` at ``point``; False when it ended by itself first."""
    began = time.monotonic()
    if point.results:
        goal = result_count(journal) + point.results
        # polling the file: the kill point is defined by the run's own progress
        while proc.poll() is None and result_count(journal) < goal:
            assert time.monotonic() - began < RUN_LIMIT, "the run made no progress"
            time.sleep(0.005)
    deadline = time.monotonic() + point.extra
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=RUN_LIMIT)
    return True


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


# -- a. the CLI, killed and resumed -----------------------------------------------------------


class Cli:
    """``zoho-async sync`` on a world's targets, writing ``journal`` (stderr kept per run)."""

    def __init__(self, w: World, tmp_path: Path, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self.journal = tmp_path / "results.jsonl"
        self.targets = tmp_path / "targets.jsonl"
        self.targets.write_text("".join(json.dumps(t) + "\n" for t in w.targets))
        # The CLI's defaults: a token cache, hence the SQLite shared store beside it, as a
        # cron job gets them.
        self.env = process_env(cli_env(w.fake, tmp_path))
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.runs = 0

    def args(self, *extra: str) -> list[str]:
        # --resume once the journal exists (a run killed before creating it left nothing to
        # resume), as a wrapper script would do
        where = (
            ["--resume", str(self.journal)] if self.journal.exists() else ["-o", str(self.journal)]
        )
        return sync_command(
            "-t",
            str(self.targets),
            *where,
            "--timeout",
            str(self.timeout),
            *POLL,
            *CLI_FAST,
            *extra,
        )

    def spawn(self, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
        self.runs += 1
        log = self.logs / f"run-{self.runs}.err"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                self.args(*extra),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=ROOT,
                env=self.env,
            )
        return proc, log

    def run(self, *extra: str) -> tuple[int, str]:
        """One run to its end: exit code and stderr."""
        proc, log = self.spawn(*extra)
        try:
            code = proc.wait(timeout=RUN_LIMIT)
        finally:
            finish(proc)
        return code, log_tail(log)


def kill_and_resume(cli: Cli, points: list[KillPoint], *extra: str) -> int:
    """Kill a run at each point, then resume until a run exits by itself; the kills made."""
    kills = 0
    for point in points:
        proc, log = cli.spawn(*extra)
        try:
            killed = kill_at(proc, cli.journal, point)
        finally:
            finish(proc)
        if not killed:
            pytest.fail(f"run {cli.runs} ended before its kill point: {log_tail(log)}")
        kills += 1
    code, err = cli.run(*extra)
    # 1: some target UNCONFIRMED, which a loaded machine can make of a request that outlives
    # the short timeout; the journal's check says whether that is all it is
    assert code in (0, 1), f"the resume after {kills} kills exited {code}: {err}"
    return kills


# The CLI's default store (SQLite beside the token cache, as a cron job gets it: a killed
# run's claims outlive it), and no shared store (the journal alone keeps the count).
@pytest.mark.parametrize(("seed", "shared"), [(1, None), (2, None), (3, "local")])
def test_cli_killed_at_random_points_resumes_without_double_starts(
    seed: int, shared: str | None, tmp_path: Path
) -> None:
    extra = ["--shared", shared] if shared else []
    with world() as w:
        cli = Cli(w, tmp_path)
        kills = kill_and_resume(cli, schedule(random.Random(seed), KILLS_PER_ROUND), *extra)
        assert kills == KILLS_PER_ROUND
        assert_sound(w, cli.journal)
        w.fake.reset_stats()
        code, err = cli.run(*extra)
        assert code in (0, 1), err
        assert w.fake.stats.sync_calls.total() == 0  # a finished journal sends nothing


# -- b. a torn last line ----------------------------------------------------------------------


def test_a_torn_last_line_is_dropped_and_later_resumes_still_work(tmp_path: Path) -> None:
    with world() as w:
        # a timeout no request outlives, even on a loaded machine: every run must exit 0
        cli = Cli(w, tmp_path, timeout=5.0)
        code, err = cli.run()
        assert code == 0, err
        data = cli.journal.read_bytes()
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        assert is_result(last)  # the last line written is a result
        # a kill in the middle of writing it: half the line, no newline
        cli.journal.write_bytes(data[: len(data) - len(last) // 2 - 1])
        for attempt in (1, 2):
            code, err = cli.run()
            assert code == 0, f"resume {attempt} after the torn line exited {code}: {err}"
        assert_sound(w, cli.journal)  # parses line by line; nothing started twice


# -- c. a second resume of a live run -------------------------------------------------------------


def wait_for_result_line(proc: subprocess.Popen[bytes], journal: Path, what: str) -> None:
    """Poll until the journal holds a result line (its intent came before it)."""
    began = time.monotonic()
    while result_count(journal) == 0:
        assert proc.poll() is None, f"{what} ended before writing a result"
        assert time.monotonic() - began < RUN_LIMIT, f"{what} wrote no result"
        time.sleep(0.01)


@contextmanager
def stopped(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """``proc`` stopped (SIGSTOP): it keeps its files and locks and sends nothing, so
    whatever reaches the fake meanwhile comes from someone else."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


# The holder's pace: one metadata call per 3 s, so once a result line is written its next
# Sync Data call is seconds away, far longer than the moment it takes to stop it.
SLOW_METADATA_RATE = 20
SLOW = ["--rate", "100000", "--metadata-rate", str(SLOW_METADATA_RATE)]


def test_a_second_resume_of_a_live_run_is_refused_and_sends_nothing(tmp_path: Path) -> None:
    with world() as w:
        cli = Cli(w, tmp_path)
        # no shared store: the journal's lock alone must keep the second run out
        holder, _ = cli.spawn("--shared", "local", *SLOW)
        try:
            wait_for_result_line(holder, cli.journal, "the first run")
            with stopped(holder):
                before = w.fake.stats.sync_calls.total()
                assert cli.journal.exists()
                code, err = cli.run("--shared", "local")
                sent = w.fake.stats.sync_calls.total() - before
        finally:
            finish(holder)
    assert code == 2, f"the second resume exited {code} and sent {sent}: {err}"
    assert "in use" in err.lower()
    assert sent == 0


# -- d. the SDK: a child process killed, resumed with journal= in this process --------------------

CHILD = """
import json, sys
import anyio
from zoho_async import AnalyticsSession, Limits, SyncTarget

async def main(spec):
    async with AnalyticsSession(
        spec["client_id"], spec["client_secret"], spec["refresh_token"],
        org_id=spec["org_id"], api_url=spec["api_url"], accounts_url=spec["accounts_url"],
        limits=Limits(**spec["limits"]), timeout=spec["timeout"],
    ) as session:
        targets = [SyncTarget(**t) for t in spec["targets"]]
        await session.sync_many(
            targets, journal=spec["journal"], poll_interval=spec["poll_interval"]
        )

anyio.run(main, json.loads(sys.stdin.read()))
"""

FAST_LIMITS = {"requests_per_minute": 100_000, "metadata_per_minute": 100_000}


def session_for(w: World) -> AnalyticsSession:
    return AnalyticsSession(
        **w.fake.credentials,
        org_id=w.fake.default_org_id,
        api_url=w.fake.api_url,
        accounts_url=w.fake.accounts_url,
        limits=Limits(
            requests_per_minute=FAST_LIMITS["requests_per_minute"],
            metadata_per_minute=FAST_LIMITS["metadata_per_minute"],
        ),
        timeout=TIMEOUT,
    )


def spawn_child(
    w: World, journal: Path, log: Path, limits: dict[str, int]
) -> subprocess.Popen[bytes]:
    """A child process running ``sync_many(targets, journal=journal)``; its spec (with the
    fake's credentials) goes over stdin, never argv."""
    spec = {
        **w.fake.credentials,
        "org_id": w.fake.default_org_id,
        "api_url": w.fake.api_url,
        "accounts_url": w.fake.accounts_url,
        "limits": limits,
        "timeout": TIMEOUT,
        "poll_interval": POLL_SECONDS,
        "targets": w.targets,
        "journal": str(journal),
    }
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
            env=process_env({}),
        )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    return proc


def sdk_targets(w: World) -> list[SyncTarget]:
    return [SyncTarget(**t) for t in w.targets]


@pytest.mark.parametrize("seed", [4])
def test_sdk_killed_at_random_points_resumes_with_journal(seed: int, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with world() as w:
        for n, point in enumerate(schedule(random.Random(seed), SDK_KILLS), 1):
            log = tmp_path / f"child-{n}.err"
            proc = spawn_child(w, journal, log, FAST_LIMITS)
            try:
                killed = kill_at(proc, journal, point)
            finally:
                finish(proc)
            assert killed, f"child {n} ended before its kill point: {log_tail(log)}"

        async def resume() -> None:
            async with session_for(w) as session:
                report = await session.sync_many(
                    sdk_targets(w), journal=journal, poll_interval=POLL_SECONDS
                )
            assert len(report.results) == len(w.targets)
            assert {r.status.value for r in report.results} <= DONE

        anyio.run(resume)
        assert_sound(w, journal)
        w.fake.reset_stats()
        anyio.run(resume)  # done targets get their journaled results back, not re-sent
        assert w.fake.stats.sync_calls.total() == 0


def test_a_journal_held_by_a_live_process_raises_in_use(tmp_path: Path) -> None:
    # The names arrive with the journal; imported here so that the other tests of this
    # module run (and show what they catch) on code that lacks them.
    from zoho_async import Journal, JournalInUseError

    assert issubclass(JournalInUseError, InvalidInputError)
    journal = tmp_path / "journal.jsonl"
    with world() as w:
        # one metadata call per 3 s: see SLOW
        slow = {"requests_per_minute": 100_000, "metadata_per_minute": SLOW_METADATA_RATE}
        holder = spawn_child(w, journal, tmp_path / "holder.err", slow)
        try:
            wait_for_result_line(holder, journal, "the holder")
            with stopped(holder):
                before = w.fake.stats.sync_calls.total()

                async def second() -> None:
                    async with session_for(w) as session:
                        for given in (journal, Journal(journal)):
                            with pytest.raises(JournalInUseError):
                                await session.sync_many(
                                    sdk_targets(w), journal=given, poll_interval=POLL_SECONDS
                                )

                anyio.run(second)
                assert w.fake.stats.sync_calls.total() == before
        finally:
            finish(holder)
