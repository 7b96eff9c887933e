"""The command line's rough edges (issue 14): unusable cache paths, flag spellings, quiet and
verbose, flag combinations, the Failures table, the demo's verdict. Click's runner against
a FakeZoho served on a thread."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from zoho_async import (
    AnalyticsSession,
    SyncResult,
    SyncStatus,
    SyncTarget,
    UnknownDataCentreError,
)
from zoho_async.cli import cli
from zoho_async.cli._demo import build_demo
from zoho_async.cli._progress import RATE_WINDOW, PlainProgress, calls_in_window
from zoho_async.cli._summary import exit_code
from zoho_async.testing import FakeZoho, Fault

from .helpers import CLI_FAST, cli_env, plain_fake_in_thread


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    with plain_fake_in_thread(1, 4) as running:
        yield running


@pytest.fixture
def env(fake: FakeZoho, tmp_path: Path) -> dict[str, str | None]:
    return cli_env(fake, tmp_path)


def run(args: list[str], env: dict[str, str | None]) -> Result:
    if args and args[0] == "sync":
        args = [*args, *CLI_FAST]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def workspace(fake: FakeZoho) -> str:
    return next(d.workspace_id for d in fake.datasources())


def rows(text: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, text.splitlines()) if "kind" not in r]


# -- an unusable token cache or shared-state path -----------------------------------------


@pytest.mark.parametrize(
    ("extra", "said", "hint"),
    [
        # a path under a regular file: fails for root too, unlike a 0500 directory
        (["--shared", "local"], "token cache", "--no-token-cache or --token-cache PATH"),
        ([], "shared state (sqlite)", "--no-token-cache or --token-cache PATH"),
        (["--shared", "sqlite:{file}/shared.db"], "shared state", "--shared local"),
    ],
)
def test_unusable_cache_path_is_one_line_exit_2_and_no_results_file(
    fake: FakeZoho,
    env: dict[str, str | None],
    tmp_path: Path,
    extra: list[str],
    said: str,
    hint: str,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = tmp_path / "out.jsonl"
    env = {**env, "ZOHO_TOKEN_CACHE": str(blocker / "sub" / "tokens.json")}
    extra = [arg.format(file=blocker) for arg in extra]
    result = run(["sync", workspace(fake), "-o", str(out), *extra], env)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert said in result.stderr and hint in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()  # checked before the results file was opened
    assert fake.stats.token_requests == 0
    # the listings go through the same check
    listed = run(["orgs", *extra], env)
    assert listed.exit_code == 2
    assert hint in listed.stderr and listed.stderr.count("\n") == 1


# -- fake-server ----------------------------------------------------------------------------


def test_fake_server_refuses_a_non_loopback_address_it_cannot_advertise() -> None:
    result = CliRunner().invoke(cli, ["fake-server", "--host", "10.1.2.3", "--port", "0"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "not a loopback address" in result.stderr and "0.0.0.0" in result.stderr


# -- -q and -v ------------------------------------------------------------------------------


def test_verbose_shows_refreshes_retries_and_pauses_one_line_each(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    fake.script(
        "sync",
        [
            Fault(status=401, body=""),  # the token is refused: one refresh
            Fault.rate_limited("0.1"),  # a pacing pause
        ],
    )
    # a listing is safe to send again: a 503 there is retried
    fake.script("datasources", [Fault(status=503, body="")])
    result = run(["sync", workspace(fake), "-v", "-f", "jsonl", "--no-token-cache"], env)
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "DEBUG" not in err
    assert err.count("refreshing the access token") == 2  # the first token, then the refresh
    assert "access token refused" in err
    assert "rate limited by Zoho" in err and "pausing" in err
    assert "retrying GET datasources" in err
    for secret in (fake.client_secret, fake.refresh_token, *fake.stats.tokens_issued):
        assert secret not in err


def test_quiet_prints_nothing_when_all_is_well_and_only_failures_otherwise(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    ws = workspace(fake)
    quiet = run(["sync", ws, "-q"], env)
    assert quiet.exit_code == 0
    assert quiet.stdout == "" and quiet.stderr == ""  # no table, notes or progress
    fake.script("sync", [Fault.error(7301, 403)])
    failed = run(["sync", ws, "-q", "--no-token-cache"], env)
    assert failed.exit_code == 1
    assert failed.stdout == ""
    assert "Failures (1)" in failed.stderr and "7301" in failed.stderr
    assert "Sync results" not in failed.stderr  # the counts are not an error


# -- flag combinations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run", "--wait"], "--dry-run sends no sync; drop --wait"),
        (["--dry-run", "--deadline", "5"], "--dry-run sends no sync; drop --deadline"),
        (["--dry-run", "-o", "{tmp}/r.jsonl"], "--dry-run writes no results; drop --output"),
        (["--wait-timeout", "5"], "--wait-timeout only applies with --wait"),
        (["--sync-interval-id", "123"], "--sync-interval-id applies to DATASOURCE_IDs"),
        (["--data-center", "mars"], "unknown data centre 'mars'"),
    ],
)
def test_combinations_that_would_be_ignored_are_refused_in_one_line(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path, args: list[str], message: str
) -> None:
    args = [arg.format(tmp=tmp_path) for arg in args]
    out = tmp_path / "out.jsonl"
    if "-o" not in args:
        args = [*args, "-o", str(out)]  # the results file must not be left behind
    result = run(["sync", workspace(fake), *args], env)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not out.exists() and not (tmp_path / "r.jsonl").exists()
    assert fake.stats.token_requests == 0


def test_data_centre_is_checked_even_with_both_url_overrides(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    assert env["ZOHO_API_URL"] and env["ZOHO_ACCOUNTS_URL"]  # both overrides set
    result = run(["orgs", "--data-center", "mars"], env)
    assert result.exit_code == 2
    assert "unknown data centre 'mars'" in result.stderr
    # the SDK constructor too
    with pytest.raises(UnknownDataCentreError, match="mars"):
        AnalyticsSession(
            "id", "secret", "token", data_center="mars",
            api_url=fake.api_url, accounts_url=fake.accounts_url,
        )  # fmt: skip


def test_dry_run_of_a_resume_shows_what_would_be_sent(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace(fake)
    journal = tmp_path / "run.jsonl"
    first = run(["sync", ws, "-o", str(journal), "-f", "jsonl"], env)
    assert first.exit_code == 0, first.output
    started = rows(first.stdout)[0]["datasource_id"]
    # make one target not done: it is what a resume would send
    lines = journal.read_text().splitlines()
    kept = [line for line in lines if json.loads(line).get("datasource_id") != started]
    journal.write_text("".join(f"{line}\n" for line in kept))
    before = journal.read_text()
    syncs = sum(fake.stats.syncs_started.values())
    plan = run(["sync", ws, "--resume", str(journal), "--dry-run", "-f", "jsonl"], env)
    assert plan.exit_code == 0, plan.output
    assert "--output" not in plan.stderr
    assert [r["datasource_id"] for r in rows(plan.stdout)] == [started]
    assert journal.read_text() == before  # a dry run writes nothing
    assert sum(fake.stats.syncs_started.values()) == syncs


# -- the progress rate ----------------------------------------------------------------------


def test_displayed_rate_counts_the_last_minute_and_never_passes_the_limit() -> None:
    # a pacer at 60 a minute with a burst of 10: ten turns at once, then one a second
    # once the burst is paid back. The old average (done / elapsed) showed 65/min after
    # 12 s; the count of the last minute shows 13, and never more than 60
    sent = [0.0] * 10 + [float(s) for s in range(10, 130)]
    assert 13 / 12 * 60 == 65  # what the average said
    assert calls_in_window(sent, now=12.0) == 13
    shown = [calls_in_window(sent, float(now)) for now in range(131)]
    assert max(shown) == 60  # the limit the pacer keeps for any 60 s window, reached
    assert calls_in_window([], now=5.0) == 0


@given(st.lists(st.floats(min_value=0, max_value=600), max_size=200), st.floats(0, 700))
def test_the_rate_is_at_most_the_most_any_minute_held(times: list[float], now: float) -> None:
    times.sort()
    shown = calls_in_window(times, now)
    assert shown == sum(1 for t in times if now - RATE_WINDOW < t <= now)


def test_progress_line_shows_requests_sent_in_the_last_minute() -> None:
    stream = io.StringIO()
    progress = PlainProgress(stream, interval=10.0)
    progress.begin("Syncing", 3)
    now = datetime.now(UTC)
    target = SyncTarget("1001", "2002")
    progress.advance(SyncResult(target, 0, SyncStatus.STARTED, attempts=1, started_at=now))
    progress.advance(SyncResult(target, 1, SyncStatus.SKIPPED))  # no request: not counted
    old = now - timedelta(seconds=61)  # sent more than a minute ago: not counted
    progress.advance(SyncResult(target, 2, SyncStatus.STARTED, attempts=1, started_at=old))
    assert "3/3 (100%)" in progress.line()
    assert "1 sent in the last minute" in progress.line()


# -- the demo -------------------------------------------------------------------------------


def test_demo_wait_ends_with_every_outcome_and_exit_0(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    args = ["demo", "--workspaces", "1", "--datasources", "30", "--metadata-rate", "60000",
            "--wait", "--sync-seconds", "0.2", "-f", "jsonl", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    results = rows(result.stdout)
    assert len(results) == 31  # 30 datasources, one with two intervals
    assert rows(out.read_text()) == results  # the demo's -o is a journal, as sync's
    syncing = [r for r in results if r["status"] in ("STARTED", "ALREADY_RUNNING")]
    assert syncing and all(r["outcome"] == "Success" for r in syncing)
    assert [r["error_code"] for r in results if r["status"] == "FAILED"] == [7301]
    assert "Outcomes (--wait)" in result.stderr


def test_demo_fails_only_on_a_surprise() -> None:
    world = build_demo(1, 30, 0.0, metadata_rate=600)
    (forbidden,) = world.forbidden
    other = next(d.datasource_id for d in world.fake.datasources() if d.datasource_id != forbidden)
    denied = SyncResult(SyncTarget("1001", forbidden), 0, SyncStatus.FAILED, error_code=7301)
    surprise = SyncResult(SyncTarget("1001", other), 1, SyncStatus.FAILED, error_code=7301)
    other_error = SyncResult(SyncTarget("1001", forbidden), 2, SyncStatus.FAILED, error_code=8504)
    started = SyncResult(SyncTarget("1001", other), 3, SyncStatus.STARTED)
    assert world.expected(denied)
    assert not world.expected(surprise) and not world.expected(other_error)
    assert exit_code([denied, started], wait=False, interrupted=False, expected=world.expected) == 0
    for unexpected in (surprise, other_error):
        code = exit_code(
            [denied, unexpected], wait=False, interrupted=False, expected=world.expected
        )
        assert code == 1


# -- one spelling per idea, and help for every option ------------------------------------------


def test_every_command_spells_the_rates_alike_and_every_option_has_help() -> None:
    for name in ("sync", "demo", "fake-server"):
        command = cli.commands[name]
        options = {opt for p in command.params for opt in getattr(p, "opts", [])}
        assert {"--rate", "--metadata-rate"} <= options, name
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{name} {param.opts[0]} has no help"
    shown = CliRunner().invoke(cli, ["fake-server", "--help"]).output
    assert "--rate-limit" not in shown  # the deprecated alias works but is not advertised


def test_demo_rate_is_all_requests_and_metadata_rate_the_metadata_calls() -> None:
    args = ["demo", "--workspaces", "1", "--datasources", "5", "--metadata-rate", "6000",
            "--rate", "9000", "--sync-seconds", "0", "-f", "jsonl"]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "scaled to 6000 metadata calls and 9000 requests a minute" in result.stderr


def test_failures_table_shows_workspace_and_interval(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    ws = workspace(fake)
    fake.script("sync", [Fault.error(7301, 403)])
    result = run(["sync", ws, "--no-token-cache"], env)
    assert result.exit_code == 1
    header = next(line for line in result.stdout.splitlines() if "datasource" in line)
    assert "workspace" in header and "interval" in header
    failed = next(line for line in result.stdout.splitlines() if "7301" in line)
    assert ws in failed


def test_a_run_refused_before_any_result_leaves_no_results_file(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    bad = {**env, "ZOHO_CLIENT_SECRET": "not-the-right-secret-123"}
    result = run(["sync", workspace(fake), "-o", str(out), "--no-token-cache"], bad)
    assert result.exit_code == 3, result.output
    assert not out.exists()  # it held only the journal's "run" line: nothing to resume


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes through 0500"
)
def test_token_cache_under_a_read_only_directory_is_one_line(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o500)
    try:
        env = {**env, "ZOHO_TOKEN_CACHE": str(home / ".cache" / "tokens.json")}
        result = run(["orgs"], env)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1
        assert "--no-token-cache or --token-cache PATH" in result.stderr
    finally:
        home.chmod(0o700)
