"""The command line as real processes: Ctrl-C, the demo, the fake server, a missing extra."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from zoho_async.testing import FakeZoho

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "zoho_async", *args]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOHO_")}
    env.update(extra)
    return env


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    built = FakeZoho.populated(
        workspaces=1,
        datasources_per_workspace=30,
        mix=False,
        requests_per_minute=None,
        metadata_per_minute=None,
    )
    with FakeZoho.run_in_thread(built) as running:
        yield running


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated (SIGTERM)")],
)
def test_signal_mid_run_writes_every_target_and_exits_128_plus_signal(
    fake: FakeZoho, tmp_path: Path, signum: int, code: int, said: str
) -> None:
    # SIGTERM (timeout, cron, CI) is handled like Ctrl-C: a result for every target, the
    # summary, and 128 + the signal
    targets = tmp_path / "targets.csv"
    ids = [(d.workspace_id, d.datasource_id) for d in fake.datasources()]
    targets.write_text("".join(f"{ws},{ds}\n" for ws, ds in ids))
    out = tmp_path / "results.jsonl"
    env = clean_env(
        ZOHO_CLIENT_ID=fake.client_id,
        ZOHO_CLIENT_SECRET=fake.client_secret,
        ZOHO_REFRESH_TOKEN=fake.refresh_token,
        ZOHO_ORG_ID=fake.default_org_id or "",
        ZOHO_API_URL=fake.api_url,
        ZOHO_ACCOUNTS_URL=fake.accounts_url,
        ZOHO_TOKEN_CACHE=str(tmp_path / "tokens.json"),
    )
    # 120 calls a minute: 30 targets would take 15 s, so the run is surely mid-way
    args = ["sync", "-t", str(targets), "-o", str(out), "-f", "jsonl", "--grace", "1"]
    proc = subprocess.Popen(
        command(*args, "--metadata-rate", "120"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first result: the run is under way
    assert json.loads(first)["status"] == "STARTED"
    proc.send_signal(signum)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert said in err
    assert "Sync results" in err  # the summary (on stderr: stdout is JSON Lines)
    stdout_rows = [json.loads(line) for line in (first + rest).splitlines()]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rows = [row for row in rows if "kind" not in row]  # the journal's own lines
    assert len(rows) == len(ids) == len(stdout_rows)  # one line per target
    assert sorted(r["index"] for r in rows) == list(range(len(ids)))
    statuses = {r["status"] for r in rows}
    assert statuses <= {"STARTED", "CANCELLED"}
    assert "CANCELLED" in statuses
    started = {r["datasource_id"] for r in rows if r["status"] == "STARTED"}
    assert started == {ds for ds, n in fake.stats.syncs_started.items() if n}


def test_demo_exits_0_with_the_planned_failure_and_clean_jsonl() -> None:
    proc = subprocess.run(
        command(
            "demo",
            "--workspaces",
            "2",
            "--datasources",
            "40",
            "--metadata-rate",
            "4000",
            "-f",
            "jsonl",
        ),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(),
        timeout=60,
    )
    # the forbidden datasource FAILS as the demo planned: `pip install ... && zoho-async
    # demo` must succeed in a chain
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    statuses = {r["status"] for r in rows}
    assert {"STARTED", "ALREADY_RUNNING", "QUOTA_EXHAUSTED", "SKIPPED", "FAILED"} <= statuses
    assert [r["error_code"] for r in rows if r["status"] == "FAILED"] == [7301]
    assert "Sync results" in proc.stderr
    assert "FAILED (expected)" in proc.stderr
    # the extra targets and the words are explained before the run
    assert f"80 datasources make {len(rows)} targets" in proc.stderr
    assert "Metadata calls are" in proc.stderr and '"no quota" is' in proc.stderr


def test_demo_sigterm_writes_every_target_and_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    # 240 metadata calls a minute: 40 targets take about 10 s, so the run is surely mid-way
    proc = subprocess.Popen(
        command("demo", "--workspaces", "1", "--datasources", "40", "--metadata-rate", "240",
                "-f", "jsonl", "-o", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # a first result: the run is under way
    assert json.loads(first)["status"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "Terminated (SIGTERM)" in err
    rows = [r for r in map(json.loads, out.read_text().splitlines()) if "kind" not in r]
    assert sorted(r["index"] for r in rows) == list(range(len(rows)))
    assert len(rows) >= 40  # every target has its line, CANCELLED if never sent
    assert "CANCELLED" in {r["status"] for r in rows}


def test_fake_server_prints_what_to_use_and_serves_sync(tmp_path: Path) -> None:
    server = subprocess.Popen(
        command(
            "fake-server",
            "--port",
            "0",
            "--workspaces",
            "1",
            "--datasources",
            "3",
            "--metadata-rate",
            "0",
            "--rate",
            "0",
            "--plain",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=clean_env(),
    )
    try:
        assert server.stdout is not None
        exports: dict[str, str] = {}
        while "ZOHO_ORG_ID" not in exports:
            line = server.stdout.readline()
            assert line, "fake-server exited early"
            if line.startswith("export "):
                name, _, value = line[len("export ") :].strip().partition("=")
                exports[name] = value
        assert set(exports) >= {"ZOHO_API_URL", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN"}
        env = clean_env(**exports, ZOHO_TOKEN_CACHE=str(tmp_path / "tokens.json"))
        listed = subprocess.run(
            command("workspaces", "-f", "json"), capture_output=True, text=True, cwd=ROOT,
            env=env, timeout=30,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        ws = json.loads(listed.stdout)[0]["workspace_id"]
        synced = subprocess.run(
            command("sync", ws, "-f", "jsonl", "--metadata-rate", "6000", "--rate", "10000"), capture_output=True, text=True, cwd=ROOT,
            env=env, timeout=30,
        )  # fmt: skip
        assert synced.returncode == 0, synced.stderr
        assert len(synced.stdout.splitlines()) == 3
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=15)
    assert server.returncode == 0
    assert "stopped" in out


def test_fake_server_on_every_address_prints_loopback_urls_and_old_flag_warns() -> None:
    server = subprocess.Popen(
        command("fake-server", "--host", "0.0.0.0", "--port", "0", "--rate-limit", "6"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    try:
        assert server.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("export ZOHO_ORG_ID"):
            line = server.stdout.readline()
            assert line, "fake-server exited early"
            lines.append(line)
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=15)
    text = "".join(lines)
    # URLs the CLI accepts (plain http only to loopback), and why they are not 0.0.0.0
    assert "export ZOHO_API_URL=http://127.0.0.1:" in text
    assert "0.0.0.0" not in text and "loopback" in text
    # --rate-limit still works (as --metadata-rate) and says it is deprecated
    assert "10 requests and 6 metadata calls a minute per org" in text
    assert "--rate-limit is deprecated; use --metadata-rate" in err


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _zoho_async_completion zoho-async"),
        ("zsh", "#compdef zoho-async"),
        ("fish", "complete --no-files --command zoho-async"),
    ],
)
def test_completion_script_for_each_documented_shell(shell: str, marker: str) -> None:
    # what the README tells users to eval or save: _ZOHO_ASYNC_COMPLETE=<shell>_source
    proc = subprocess.run(
        command(), capture_output=True, text=True, cwd=ROOT, timeout=30,
        env=clean_env(_ZOHO_ASYNC_COMPLETE=f"{shell}_source"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout
    # and the script's callback completes the commands
    # fish passes the word being completed, bash and zsh its index
    cword = "sy" if shell == "fish" else "1"
    env = clean_env(
        _ZOHO_ASYNC_COMPLETE=f"{shell}_complete", COMP_WORDS="zoho-async sy", COMP_CWORD=cword
    )
    done = subprocess.run(command(), capture_output=True, text=True, cwd=ROOT, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "sync" in done.stdout


def test_missing_cli_extra_is_a_one_line_hint() -> None:
    code = "import sys; sys.modules['click'] = None; from zoho_async.__main__ import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "zoho-async's command line needs the cli extra: pip install 'zoho-async[cli]'"
    )
