"""The CLI's files: ``--resume`` / ``--only-failed`` need a readable results file (exit 2
and nothing sent otherwise), ``-o`` alone makes a new one, and UNCONFIRMED targets are
never re-sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from zoho_async.cli import cli
from zoho_async.testing import FakeZoho

from .helpers import CLI_FAST, cli_env, plain_fake_in_thread

FAST = CLI_FAST


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    # instant syncs: these tests look at which targets are sent, not at sync durations
    with plain_fake_in_thread(1, 4, sync_duration=0.0) as running:
        yield running


@pytest.fixture
def env(fake: FakeZoho, tmp_path: Path) -> dict[str, str | None]:
    return cli_env(fake, tmp_path)


def run(args: list[str], env: dict[str, str | None]) -> Result:
    return CliRunner().invoke(cli, ["sync", *args, *FAST], env=env, catch_exceptions=False)


def workspace(fake: FakeZoho) -> str:
    return fake.datasources()[0].workspace_id


def ids(fake: FakeZoho) -> list[str]:
    return [d.datasource_id for d in fake.datasources() if d.datasource_id]


def row(ws: str, ds: str, status: str, **extra: Any) -> str:
    return json.dumps({"workspace_id": ws, "datasource_id": ds, "status": status, **extra})


def assert_nothing_sent(fake: FakeZoho) -> None:
    assert fake.stats.sync_calls.total() == 0
    assert fake.stats.requests == 0  # not even a token or a listing


@pytest.mark.parametrize("option", ["--resume", "--only-failed"])
def test_a_missing_file_is_exit_2_and_sends_nothing(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path, option: str
) -> None:
    missing = tmp_path / "nope.jsonl"
    args = [option, str(missing)] if option == "--only-failed" else [workspace(fake)]
    if option == "--resume":
        args += [option, str(missing)]
    result = run(args, env)
    assert result.exit_code == 2, result.output
    assert f"cannot read {missing}" in result.stderr
    assert_nothing_sent(fake)
    assert not missing.exists()  # the typo is not turned into a file


@pytest.mark.parametrize("option", ["--resume", "--only-failed"])
def test_a_missing_file_with_output_makes_no_output_file(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path, option: str
) -> None:
    out = tmp_path / "out.jsonl"
    target = [] if option == "--only-failed" else [workspace(fake)]
    result = run([*target, option, str(tmp_path / "nope.jsonl"), "-o", str(out)], env)
    assert result.exit_code == 2, result.output
    assert_nothing_sent(fake)
    assert not out.exists()


@pytest.mark.parametrize("option", ["--resume", "--only-failed"])
@pytest.mark.parametrize("kind", ["directory", "not utf-8"])
def test_an_unreadable_file_is_exit_2_and_sends_nothing(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path, option: str, kind: str
) -> None:
    path = tmp_path / "results.jsonl"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe\x00garbage\n")
    target = [] if option == "--only-failed" else [workspace(fake)]
    result = run([*target, option, str(path)], env)
    assert result.exit_code == 2, result.output
    assert f"cannot read {path}" in result.stderr
    assert_nothing_sent(fake)


def test_output_alone_creates_a_new_file_then_resume_reads_it(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    out = tmp_path / "new" / "results.jsonl"
    out.parent.mkdir()
    first = run([workspace(fake), ids(fake)[0], "-o", str(out)], env)
    assert first.exit_code == 0, first.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["status"] for r in rows if "kind" not in r] == ["STARTED"]
    again = run([workspace(fake), "--resume", str(out), "-q"], env)
    assert again.exit_code == 0, again.output
    assert fake.stats.sync_calls[ids(fake)[0]] == 1  # resumed: not sent twice
    assert sum(fake.stats.sync_calls.values()) == len(ids(fake))


def test_only_failed_never_resends_unconfirmed_and_says_so(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace(fake)
    failed, unconfirmed, bad_outcome, started = ids(fake)
    previous = tmp_path / "results.jsonl"
    previous.write_text(
        "\n".join(
            [
                row(ws, failed, "FAILED", error_code=7301),
                row(ws, unconfirmed, "UNCONFIRMED", error_message="may have started"),
                row(ws, bad_outcome, "STARTED", outcome="Failed"),
                row(ws, started, "STARTED", outcome="Success"),
            ]
        )
        + "\n"
    )
    result = run(["--only-failed", str(previous), "-f", "jsonl"], env)
    assert result.exit_code == 0, result.output
    sent = sorted(json.loads(x)["datasource_id"] for x in result.stdout.splitlines())
    assert sent == sorted([failed, bad_outcome])
    assert fake.stats.sync_calls[unconfirmed] == 0
    assert fake.stats.sync_calls[started] == 0
    assert "1 UNCONFIRMED target not re-sent" in result.stderr


def test_resume_skips_unconfirmed_and_says_so(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace(fake)
    unconfirmed = ids(fake)[0]
    previous = tmp_path / "results.jsonl"
    previous.write_text(row(ws, unconfirmed, "UNCONFIRMED") + "\n")
    result = run([ws, "--resume", str(previous)], env)
    assert result.exit_code == 0, result.output
    assert fake.stats.sync_calls[unconfirmed] == 0
    assert sum(fake.stats.sync_calls.values()) == len(ids(fake)) - 1
    assert "1 UNCONFIRMED target not re-sent" in result.stderr


def test_help_says_unconfirmed_is_not_resent() -> None:
    text = " ".join(CliRunner().invoke(cli, ["sync", "--help"]).output.split())
    assert "UNCONFIRMED targets are never re-sent" in text
    assert "it must exist" in text


def test_a_failed_wait_outcome_exits_1_and_the_json_report_agrees(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    ws = workspace(fake)
    bad = fake.add_datasource(ws, outcome="Failed").datasource_id
    assert bad is not None
    args = [ws, "--wait", "--poll-interval", "0.05", "--wait-timeout", "60"]
    result = run([*args, "-f", "json"], env)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["summary"]["ok"] is False  # SyncReport.ok, the same rule as the exit code
    assert sorted(r["outcome"] for r in doc["results"]) == ["Failed"] + ["Success"] * 4
    assert "outcome: Failed" in result.stderr  # the summary's failures table
