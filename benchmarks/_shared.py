"""Shared helpers: the world layout, the fake-server and contender processes, the report.

Process layout of every scenario that measures speed or memory::

    python -m benchmarks (orchestrator, idle while measuring)
       |-- python -m benchmarks.fake_server   FakeZoho on loopback, control over stdin/stdout
       |-- python -m benchmarks.contenders    one contender at a time, JSON spec in, JSON out

The fake runs in its own process so that the client under test has a core of its own (the
machine has two), and each contender runs in a fresh process so that its peak RSS and CPU
time are its own and no contender inherits another's warm caches or leftovers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import attrs

ROOT = Path(__file__).resolve().parent
ORG_ID = "55522777001"

JSON = dict[str, Any]

# -- the world: ids derived from positions, so every process can generate targets lazily --


@attrs.frozen
class Layout:
    """``workspaces`` x ``per_workspace`` syncable datasources with predictable ids.

    Ids are computed, not drawn, so the contender process generates its targets lazily from
    the same layout instead of receiving a 100,000-item list.
    """

    workspaces: int
    per_workspace: int = 100
    quota: int = 5  # manual syncs allowed per datasource (Zoho's default is 5 a day)
    # Seconds a started sync stays "in progress". Instant (0.0) unless a scenario says
    # otherwise, not FakeZoho's realistic 3 s default: the scenarios that reuse datasources
    # measure throughput, and a reused datasource still running would answer 18073.
    sync_duration: float = 0.0

    @property
    def datasources(self) -> int:
        return self.workspaces * self.per_workspace

    @staticmethod
    def workspace_id(w: int) -> str:
        return str(35_130_000_000_000_000 + w)

    def datasource_id(self, w: int, d: int) -> str:
        return str(17_670_000_000_000_000 + w * 100_000 + d)

    def targets(self, count: int, start: int = 0) -> Iterator[tuple[str, str]]:
        """``count`` (workspace id, datasource id) pairs, cycling over the datasources."""
        total = self.datasources
        for i in range(start, start + count):
            w, d = divmod(i % total, self.per_workspace)
            yield self.workspace_id(w), self.datasource_id(w, d)

    def to_json(self) -> JSON:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: JSON) -> Layout:
        return cls(**data)

    @classmethod
    def for_syncs(cls, syncs: int, *, distinct: bool = True, **kwargs: Any) -> Layout:
        """Enough datasources for ``syncs`` syncs: one each when ``distinct``, else 1,000
        reused ones with a quota big enough for the run."""
        per = 100
        if distinct:
            return cls(workspaces=max(1, -(-syncs // per)), per_workspace=per, **kwargs)
        workspaces = min(10, max(1, -(-syncs // per)))
        quota = -(-syncs // (workspaces * per)) + 1
        return cls(workspaces=workspaces, per_workspace=per, quota=quota, **kwargs)


# -- child processes -------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # the children import `benchmarks` and `zoho_async` from this source tree
    root = str(ROOT.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


class FakeProcess:
    """A FakeZoho serving from its own process; control it with :meth:`command`.

    Example::

        with FakeProcess({"latency": 0.1}, Layout(workspaces=20)) as fake:
            run_contender({"contender": "zoho_async", **fake.address, ...})
            stats = fake.command("stats")
    """

    def __init__(self, server: JSON, layout: Layout) -> None:
        self.server = server
        self.layout = layout
        self._proc: subprocess.Popen[str] | None = None
        self.info: JSON = {}

    def __enter__(self) -> FakeProcess:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fake_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
            cwd=str(ROOT.parent),
        )
        self._proc = proc
        self.info = self._exchange({"server": self.server, "layout": self.layout.to_json()})
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._send(proc, {"command": "stop"})
                proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    @staticmethod
    def _send(proc: subprocess.Popen[str], message: JSON) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    def _exchange(self, message: JSON) -> JSON:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        self._send(proc, message)
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake server process died (exit code {proc.poll()})")
        answer: JSON = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"fake server: {answer['error']}")
        return answer

    def command(self, command: str, **args: Any) -> JSON:
        """Send one control command ("stats", "mark", "revoke", "script", "reset")."""
        return self._exchange({"command": command, **args})

    @property
    def address(self) -> JSON:
        """What a contender needs to reach the fake: URLs, credentials, org id, layout."""
        return {
            "api_url": self.info["api_url"],
            "accounts_url": self.info["accounts_url"],
            "credentials": self.info["credentials"],
            "org_id": ORG_ID,
            "layout": self.layout.to_json(),
        }


def run_contender(
    spec: JSON, *, module: str = "benchmarks.contenders", timeout: float = 900.0
) -> JSON:
    """Run one contender in a fresh process (``python -m module``, JSON spec on stdin);
    its JSON result (the last line it prints)."""
    done = subprocess.run(
        [sys.executable, "-m", module],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=_child_env(),
        cwd=str(ROOT.parent),
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"contender {spec.get('contender')!r} failed (exit {done.returncode}):\n"
            + done.stderr[-4000:]
        )
    result: JSON = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measured(fake: FakeProcess, spec: JSON) -> tuple[JSON, JSON]:
    """Run a contender against ``fake``; (contender result, fake stats for that run)."""
    fake.command("reset")
    result = run_contender({**fake.address, **spec})
    stats = fake.command("stats")
    return result, stats


# -- results -------------------------------------------------------------------------------


@attrs.define
class Target:
    """One target of the issue: ``value`` compared with ``goal`` (``>=`` or ``<=``/``==``)."""

    name: str
    value: float | None
    goal: float
    op: Literal[">=", "<=", "=="]
    unit: str = ""
    note: str = ""

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        if self.op == ">=":
            return self.value >= self.goal
        if self.op == "<=":
            return self.value <= self.goal
        return self.value == self.goal

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "value": self.value,
            "goal": f"{self.op} {self.goal:g}",
            "unit": self.unit,
            "met": self.met,
            "note": self.note,
        }


@attrs.define
class Scenario:
    """What a scenario reports: a table of contenders, targets, notes and profiles."""

    number: int
    title: str
    setup: str
    columns: list[str]
    rows: list[list[str]] = attrs.field(factory=list)
    contenders: dict[str, JSON] = attrs.field(factory=dict)
    targets: list[Target] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    profile: str | None = None

    def to_json(self) -> JSON:
        return {
            "number": self.number,
            "title": self.title,
            "setup": self.setup,
            "contenders": self.contenders,
            "targets": [t.to_json() for t in self.targets],
            "notes": self.notes,
            "profile": self.profile,
        }


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table, with thousands separators; "-" for missing."""
    if value is None:
        return "-"
    if abs(value) >= 100 or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def machine() -> JSON:
    """What the numbers were measured on."""

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "aiohttp": ver("aiohttp"),
        "anyio": ver("anyio"),
        "requests": ver("requests"),
        "zoho_async": ver("zoho-async"),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()),
    }


def write_reports(
    scenarios: list[Scenario], info: JSON, *, quick: bool, elapsed: float
) -> tuple[Path, Path]:
    """Write results(.json|-quick.json) and RESULTS(.md|-quick.md); return both paths."""
    suffix = "-quick" if quick else ""
    json_path = ROOT / f"results{suffix}.json"
    md_path = ROOT / f"RESULTS{suffix}.md"
    doc = {
        "machine": info,
        "quick": quick,
        "elapsed_seconds": round(elapsed, 1),
        "scenarios": [s.to_json() for s in scenarios],
        "summary": {
            "targets": sum(len(s.targets) for s in scenarios),
            "met": sum(t.met for s in scenarios for t in s.targets),
        },
    }
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md_path.write_text(render_markdown(scenarios, info, quick=quick, elapsed=elapsed))
    return json_path, md_path


def render_markdown(scenarios: list[Scenario], info: JSON, *, quick: bool, elapsed: float) -> str:
    out: list[str] = []
    size = "quick (reduced, CI smoke: not a measurement)" if quick else "full"
    out.append(f"# Benchmark results ({size})\n")
    out.append(
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), "
        f"{info['implementation']} {info['python']}, aiohttp {info['aiohttp']}, "
        f"anyio {info['anyio']}, requests {info['requests']}, zoho-async {info['zoho_async']}; "
        f"{info['platform']}. Load average at start: "
        f"{', '.join(f'{x:.2f}' for x in info['load_average_at_start'])}. "
        f"Whole run: {elapsed:.0f} s.\n"
    )
    out.append("Regenerate with `nox -s bench` (or `python -m benchmarks`); see README.md.\n")
    out.append("## Summary of targets\n")
    out.append("| scenario | target | measured | goal | met |")
    out.append("|---|---|---|---|---|")
    for s in scenarios:
        for t in s.targets:
            value = f"{show_number(t.value)} {t.unit}".strip()
            out.append(
                f"| {s.number}. {s.title} | {t.name} | {value} | {t.op} {t.goal:g} {t.unit} | "
                f"{'yes' if t.met else '**MISSED**'} |"
            )
    missed = [(s, t) for s in scenarios for t in s.targets if not t.met]
    total = sum(len(s.targets) for s in scenarios)
    out.append(f"\n{total - len(missed)} of {total} targets met.\n")
    for s in scenarios:
        out.append(f"## {s.number}. {s.title}\n")
        out.append(s.setup + "\n")
        out.append("| " + " | ".join(s.columns) + " |")
        out.append("|" + "---|" * len(s.columns))
        for row in s.rows:
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        for t in s.targets:
            mark = "met" if t.met else "**MISSED**"
            value = show_number(t.value)
            line = f"- {t.name}: {value} {t.unit} (goal {t.op} {t.goal:g}) - {mark}"
            out.append(line + (f". {t.note}" if t.note else ""))
        for note in s.notes:
            out.append(f"- {note}")
        if s.profile:
            out.append("\n<details><summary>profile</summary>\n\n```")
            out.append(s.profile.rstrip())
            out.append("```\n</details>")
        out.append("")
    return "\n".join(out) + "\n"


def show_number(value: float | None) -> str:
    """A measured value for the summary: whole numbers as such, others to 3 places."""
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}"


class Stopwatch:
    """Wall time since creation, for progress lines."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def progress(message: str) -> None:
    """Progress on stderr (stdout stays clean)."""
    print(message, file=sys.stderr, flush=True)
