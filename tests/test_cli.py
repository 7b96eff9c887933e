"""The command line through Click's runner, against a FakeZoho served on a thread."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from zoho_async.cli import cli
from zoho_async.testing import FakeZoho, Fault

from .helpers import CLI_FAST, cli_env

FAST = CLI_FAST


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeZoho]:
    # Syncs take the fake's default time unless a test asks for another duration with
    # @pytest.mark.parametrize("fake", [seconds], indirect=True).
    duration: dict[str, Any] = {}
    if hasattr(request, "param"):
        duration["sync_duration"] = request.param
    built = FakeZoho.populated(
        workspaces=2,
        datasources_per_workspace=5,
        mix=False,
        requests_per_minute=None,
        metadata_per_minute=None,
        **duration,
    )
    with FakeZoho.run_in_thread(built) as running:
        yield running


@pytest.fixture
def env(fake: FakeZoho, tmp_path: Path) -> dict[str, str | None]:
    return cli_env(fake, tmp_path)


def workspace_ids(fake: FakeZoho) -> list[str]:
    return list(dict.fromkeys(d.workspace_id for d in fake.datasources()))


def datasource_ids(fake: FakeZoho, workspace_id: str) -> list[str]:
    return [d.datasource_id for d in fake.datasources(workspace_id) if d.datasource_id]


def run(args: list[str], env: dict[str, str | None], stdin: str | None = None) -> Result:
    if args and args[0] == "sync":
        args = [*args, *FAST]
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False)


def jsonl(text: str) -> list[dict[str, Any]]:
    """The result rows of JSON Lines (a results file's journal lines left out)."""
    rows = [json.loads(line) for line in text.splitlines()]
    return [row for row in rows if "kind" not in row]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return jsonl(path.read_text())


# -- listings ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_orgs_and_workspaces_in_every_format(
    fake: FakeZoho, env: dict[str, str | None], fmt: str
) -> None:
    orgs = run(["orgs", "-f", fmt], env)
    spaces = run(["workspaces", "-f", fmt], env)
    assert orgs.exit_code == 0, orgs.output
    assert spaces.exit_code == 0, spaces.output
    org_id = fake.default_org_id
    assert org_id is not None
    ws = workspace_ids(fake)
    if fmt == "json":
        assert [o["org_id"] for o in json.loads(orgs.stdout)] == [org_id]
        assert {w["workspace_id"] for w in json.loads(spaces.stdout)} == set(ws)
    elif fmt == "jsonl":
        assert [o["org_id"] for o in jsonl(orgs.stdout)] == [org_id]
        assert {w["workspace_id"] for w in jsonl(spaces.stdout)} == set(ws)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(spaces.stdout)))
        assert {r["workspace_id"] for r in rows} == set(ws)
        assert next(csv.DictReader(io.StringIO(orgs.stdout)))["org_id"] == org_id
    else:
        assert org_id in orgs.stdout
        assert all(w in spaces.stdout for w in ws)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_datasources(fake: FakeZoho, env: dict[str, str | None], fmt: str) -> None:
    ws = workspace_ids(fake)[0]
    result = run(["datasources", ws, "-f", fmt], env)
    assert result.exit_code == 0, result.output
    ids = datasource_ids(fake, ws)
    if fmt == "json":
        rows = json.loads(result.stdout)
        assert [r["datasource_id"] for r in rows] == ids
        assert {"name", "source", "schedule", "last_sync_status", "last_sync_time"} <= set(rows[0])
        assert rows[0]["total_sync_allowed"] == 5
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [r["datasource_id"] for r in rows] == ids
    else:
        assert all(i in result.stdout for i in ids)
        assert "syncs used/allowed" in result.stdout


def test_datasources_finds_the_org_without_org_id(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    ws = workspace_ids(fake)[0]
    result = run(["datasources", ws, "-f", "json"], {**env, "ZOHO_ORG_ID": None})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 5


# -- sync -------------------------------------------------------------------------------


def test_sync_workspace_jsonl_stdout_is_results_only(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    ws = workspace_ids(fake)
    result = run(["sync", ws[0], "-w", ws[1], "-f", "jsonl"], env)
    assert result.exit_code == 0, result.output
    rows = jsonl(result.stdout)  # every stdout line is a JSON object
    assert len(rows) == 10
    assert {r["status"] for r in rows} == {"STARTED"}
    assert sorted(r["index"] for r in rows) == list(range(10))
    assert "Sync results" in result.stderr  # the summary goes to stderr
    assert sum(fake.stats.syncs_started.values()) == 10


# instant syncs: the second run syncs a datasource the first run synced
@pytest.mark.parametrize("fake", [0.0], indirect=True, ids=["instant syncs"])
def test_sync_named_datasources_as_json_and_csv(fake: FakeZoho, env: dict[str, str | None]) -> None:
    ws = workspace_ids(fake)[0]
    ids = datasource_ids(fake, ws)[:2]
    result = run(["sync", ws, *ids, "-f", "json"], env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["summary"]["counts"]["STARTED"] == 2
    assert [r["datasource_id"] for r in doc["results"]] == ids
    # the first run's claims still hold (see test_a_rerun_right_after_meets_the_claims):
    # this process-local run shares nothing with it
    result = run(["sync", ws, ids[0], "-f", "csv", "-q", "--shared", "local"], env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["datasource_id"], r["status"]) for r in rows] == [(ids[0], "STARTED")]
    assert result.stderr == ""  # --quiet


@pytest.mark.parametrize("fake", [0.0], indirect=True, ids=["instant syncs"])
def test_a_rerun_right_after_meets_the_claims(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace_ids(fake)[0]
    ids = datasource_ids(fake, ws)[:2]
    assert run(["sync", ws, *ids], env).exit_code == 0
    again = run(["sync", ws, *ids, "-f", "json"], env)
    assert again.exit_code == 0, again.output  # CLAIMED is not a failure
    doc = json.loads(again.stdout)
    assert doc["summary"]["counts"]["CLAIMED"] == 2
    assert all("claimed by run" in r["error_message"] for r in doc["results"])
    assert all(fake.stats.sync_calls[d] == 1 for d in ids)
    assert (tmp_path / "cache" / "shared.db").exists()  # the default: beside the token cache


def test_table_format_prints_the_summary_with_failures(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    ws = workspace_ids(fake)[0]
    fake.script("sync", [Fault.error(7301, http_status=403)])
    result = run(["sync", ws], env)
    assert result.exit_code == 1
    assert "Sync results" in result.stdout
    assert "Failures (1)" in result.stdout
    assert "7301" in result.stdout
    assert "You do not have permission" in result.stdout


def test_output_then_resume_skips_what_started(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace_ids(fake)[0]
    ids = datasource_ids(fake, ws)
    out = tmp_path / "results.jsonl"
    first = run(["sync", ws, *ids[:2], "--output", str(out)], env)
    assert first.exit_code == 0, first.output
    assert [r["datasource_id"] for r in read_lines(out)] == ids[:2]
    again = run(["sync", ws, "--resume", str(out), "-q"], env)
    assert again.exit_code == 0, again.output
    lines = read_lines(out)  # appended to the resume file
    assert sorted(r["datasource_id"] for r in lines) == sorted(ids)
    assert all(fake.stats.sync_calls[i] == 1 for i in ids)  # nothing synced twice


def test_resume_skips_a_truncated_last_line(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace_ids(fake)[0]
    ids = datasource_ids(fake, ws)[:3]
    out = tmp_path / "results.jsonl"
    assert run(["sync", ws, *ids, "-o", str(out)], env).exit_code == 0
    text = out.read_text()
    out.write_text(text[: len(text) - 40])  # a run killed mid-line
    # lines are written as results come, in any order: the torn one is the missing one
    kept = {r["datasource_id"] for r in jsonl("\n".join(out.read_text().splitlines()[:-1]))}
    (torn,) = set(ids) - kept
    again = run(["sync", ws, "--resume", str(out), "-f", "json", "--timeout", "2"], env)
    assert again.exit_code == 0, again.output
    assert "incomplete last line" in again.stderr
    # its result line was lost, but its intent line says it may have been sent: settled
    # from Get Datasources, not sent again
    assert all(fake.stats.sync_calls[d] == 1 for d in ids)
    results = {r["datasource_id"]: r for r in json.loads(again.stdout)["results"]}
    assert results[torn]["status"] == "STARTED"
    assert "interrupted run" in results[torn]["error_message"]
    # the fragment was cut off: every line of the file is whole
    assert all(json.loads(line) for line in out.read_text().splitlines())


def test_only_failed_reruns_failed_targets(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace_ids(fake)[0]
    ids = datasource_ids(fake, ws)
    out = tmp_path / "results.jsonl"
    fake.script("sync", [Fault.error(7301, http_status=403)])
    first = run(["sync", ws, *ids[:2], "-o", str(out)], env)
    assert first.exit_code == 1
    statuses = {r["datasource_id"]: r["status"] for r in read_lines(out)}
    assert sorted(statuses.values()) == ["FAILED", "STARTED"]
    failed = next(i for i, status in statuses.items() if status == "FAILED")
    calls_before = fake.stats.sync_calls[failed]
    again = run(["sync", "--only-failed", str(out), "-o", str(out), "-f", "jsonl"], env)
    assert again.exit_code == 0, again.output
    assert [r["datasource_id"] for r in jsonl(again.stdout)] == [failed]
    assert fake.stats.sync_calls[failed] == calls_before + 1
    lines = read_lines(out)  # appended: the old lines stay, the new one comes last
    assert len(lines) == 3
    assert (lines[-1]["datasource_id"], lines[-1]["status"]) == (failed, "STARTED")


def test_targets_file_csv_jsonl_and_stdin(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace_ids(fake)
    a, b = datasource_ids(fake, ws[0])[:2]
    csv_file = tmp_path / "targets.csv"
    csv_file.write_text(f"workspace_id,datasource_id\n# a comment\n{ws[0]},{a}\n\n{ws[0]},{b}\n")
    result = run(["sync", "--targets", str(csv_file), "-f", "jsonl"], env)
    assert result.exit_code == 0, result.output
    assert sorted(r["datasource_id"] for r in jsonl(result.stdout)) == sorted([a, b])
    lines = json.dumps({"workspace_id": ws[1]}) + "\n"  # no datasource: the whole workspace
    result = run(["sync", "--targets", "-", "-f", "jsonl"], env, stdin=lines)
    assert result.exit_code == 0, result.output
    assert len(jsonl(result.stdout)) == 5


def test_dry_run_sends_no_sync(fake: FakeZoho, env: dict[str, str | None]) -> None:
    ws = workspace_ids(fake)[0]
    result = run(["sync", ws, "--dry-run", "-f", "json"], env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["summary"]["syncs"] == 5
    assert doc["summary"]["quota_spend"] == 5
    assert sum(fake.stats.sync_calls.values()) == 0
    table = run(["sync", ws, "--dry-run"], env)
    assert "would send 5 syncs" in table.stdout


def test_wait_reports_outcomes(fake: FakeZoho, env: dict[str, str | None]) -> None:
    ws = workspace_ids(fake)[0]
    ids = datasource_ids(fake, ws)[:2]
    result = run(["sync", ws, *ids, "--wait", "--poll-interval", "0.2", "-f", "jsonl"], env)
    assert result.exit_code == 0, result.output
    assert {r["outcome"] for r in jsonl(result.stdout)} == {"Success"}


def test_deadline_cancels_what_was_not_sent(fake: FakeZoho, env: dict[str, str | None]) -> None:
    ws = workspace_ids(fake)[0]
    fake.set_latency(0.5)
    result = run(["sync", ws, "--deadline", "0.3", "--max-in-flight", "1", "-f", "jsonl"], env)
    assert result.exit_code == 1
    assert "CANCELLED" in {r["status"] for r in jsonl(result.stdout)}


# -- credentials and secrets --------------------------------------------------------------


def test_token_is_cached_between_runs(fake: FakeZoho, env: dict[str, str | None]) -> None:
    assert run(["orgs"], env).exit_code == 0
    assert run(["workspaces"], env).exit_code == 0
    assert fake.stats.token_requests == 1


def test_verbose_logs_never_show_secrets(
    fake: FakeZoho, env: dict[str, str | None], tmp_path: Path
) -> None:
    ws = workspace_ids(fake)[0]
    out = tmp_path / "r.jsonl"
    # failures, retries and a refresh on the way: every path that logs gets exercised
    fake.script(
        "sync",
        [
            Fault.error(7005, 500),
            Fault(drop=True, then_process=True),  # settled STARTED from the listing
            Fault(status=401, body=""),
            Fault.rate_limited("0.1"),
        ],
    )
    result = run(["sync", ws, "-vv", "-f", "jsonl", "-o", str(out), "--no-token-cache"], env)
    assert result.exit_code == 0, result.output
    assert "DEBUG" in result.stderr
    assert len(fake.stats.tokens_issued) == 2  # the 401 made it refresh once
    everything = result.stdout + result.stderr + out.read_text()
    secrets = [fake.client_secret, fake.refresh_token, *fake.stats.tokens_issued]
    assert fake.stats.tokens_issued
    for secret in secrets:
        assert secret not in everything


def test_bad_secret_is_exit_3_without_the_secret(
    fake: FakeZoho, env: dict[str, str | None]
) -> None:
    ws = workspace_ids(fake)[0]
    bad = {**env, "ZOHO_CLIENT_SECRET": "not-the-right-secret-123"}
    for args in (["sync", ws, "--no-token-cache"], ["orgs", "--no-token-cache"]):
        result = run(args, bad)
        assert result.exit_code == 3, result.output
        assert result.stderr.count("\n") == 1
        assert "authentication failed" in result.stderr
        assert "not-the-right-secret-123" not in result.output


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "abc"], "WORKSPACE_ID must be"),
        (["sync", "123", "x1"], "DATASOURCE_ID must be"),
        (["sync"], "nothing to sync"),
        (["sync", "--targets", "/no/such/file.csv"], "cannot read /no/such/file.csv"),
        (["sync", "1", "--resume", "a", "--only-failed", "b"], "either --resume"),
        (["datasources", "12x"], "WORKSPACE_ID must be"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(
    env: dict[str, str | None], args: list[str], message: str
) -> None:
    result = run(args, env)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_malformed_targets_line_names_the_line(env: dict[str, str | None], tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("111,222\n333,444\n555,oops\n")
    result = run(["sync", "--targets", str(bad)], env)
    assert result.exit_code == 2
    assert f"{bad} line 3" in result.stderr
    bad.write_text('{"workspace_id": "1", "datasource_id": "2"}\n{"workspace_id": \n')
    result = run(["sync", "--targets", str(bad.rename(tmp_path / "t.jsonl"))], env)
    assert result.exit_code == 2
    assert "line 2: not valid JSON" in result.stderr


def test_unknown_data_centre_and_missing_credentials(env: dict[str, str | None]) -> None:
    no_urls = {**env, "ZOHO_API_URL": None, "ZOHO_ACCOUNTS_URL": None}
    result = run(["orgs", "--data-center", "mars"], no_urls)
    assert result.exit_code == 2
    assert "unknown data centre 'mars'" in result.stderr
    result = run(["orgs"], {**env, "ZOHO_REFRESH_TOKEN": None})
    assert result.exit_code == 2
    assert "ZOHO_REFRESH_TOKEN" in result.stderr


def test_help_documents_exit_codes_and_env() -> None:
    result = CliRunner().invoke(cli, ["sync", "--help"])
    assert result.exit_code == 0
    for text in ("130", "authentication failure", "ZOHO_CLIENT_SECRET", "Discouraged"):
        assert text in result.output
