"""``zoho-async auth login | status | logout`` against a FakeZoho, with a real in-memory
keyring backend (never the machine's keyring) and keyring's fail backend for the fallback."""

from __future__ import annotations

import json
import os
import queue
import shlex
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from click.testing import CliRunner, Result
from keyring.backends import fail

from zoho_async.cli import cli
from zoho_async.testing import FakeZoho

from .helpers import CLI_ENV_NAMES, CLI_FAST, plain_fake_in_thread

ROOT = Path(__file__).resolve().parents[1]


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps passwords in a dict, for tests."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    with plain_fake_in_thread(1, 3, sync_duration=0) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    """No ZOHO_* credentials; the config file and token cache in tmp_path."""
    values: dict[str, str | None] = dict.fromkeys(CLI_ENV_NAMES)
    values.update(
        ZOHO_CONFIG=str(tmp_path / "conf" / "config.toml"),
        ZOHO_PROFILE=None,
        ZOHO_SHARED=None,
        ZOHO_TOKEN_CACHE=str(tmp_path / "cache" / "tokens.json"),
    )
    return values


def run(args: list[str], env: dict[str, str | None], stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False)


def login_args(fake: FakeZoho, code: str, profile: str = "fake") -> list[str]:
    return [
        "auth",
        "login",
        "--profile",
        profile,
        "--api-url",
        fake.api_url,
        "--accounts-url",
        fake.accounts_url,
        "--client-id",
        fake.client_id,
        "--code",
        code,
    ]


def config_of(env: dict[str, str | None]) -> dict[str, object]:
    path = Path(str(env["ZOHO_CONFIG"]))
    return tomllib.loads(path.read_text())


def test_login_keyring_status_sync_logout(
    fake: FakeZoho, env: dict[str, str | None], memory_keyring: MemoryKeyring
) -> None:
    code = fake.issue_grant_code()
    # the client secret is prompted for, hidden
    result = run(login_args(fake, code), env, stdin=fake.client_secret + "\n")
    assert result.exit_code == 0, result.output
    assert "ZohoAnalytics.metadata.create,ZohoAnalytics.metadata.read" in result.stderr
    assert "https://api-console.zoho.com" in result.stderr
    assert "stored in the OS keyring" in result.stdout
    (refresh,) = set(fake.refresh_tokens) - {fake.refresh_token}
    stored = memory_keyring.passwords
    assert stored[("zoho-async", "fake:refresh_token")] == refresh
    assert stored[("zoho-async", "fake:client_secret")] == fake.client_secret
    text = Path(str(env["ZOHO_CONFIG"])).read_text()
    assert refresh not in text and fake.client_secret not in text
    assert config_of(env) == {
        "profiles": {
            "fake": {
                "data_center": "us",
                "client_id": fake.client_id,
                "api_url": fake.api_url,
                "accounts_url": fake.accounts_url,
            }
        }
    }
    assert refresh not in result.output and fake.client_secret not in result.output

    status = run(["auth", "status", "--profile", "fake"], env)
    assert status.exit_code == 0, status.output
    assert str(fake.default_org_id) in status.stdout
    assert "access token   valid for" in status.stdout
    assert "refresh_token  *** (keyring)" in status.stdout
    assert refresh not in status.output and fake.client_secret not in status.output
    shown = json.loads(run(["auth", "status", "--profile", "fake", "-f", "json"], env).stdout)
    assert shown["orgs"][0]["org_id"] == fake.default_org_id
    assert 0 < shown["token_expires_in"] <= 3600
    assert shown["secrets"] == {"client_secret": "keyring", "refresh_token": "keyring"}

    logout = run(["auth", "logout", "--profile", "fake"], env)
    assert logout.exit_code == 0, logout.output
    assert "Revoked the refresh token" in logout.stdout
    assert "OS keyring" in logout.stdout
    assert refresh not in fake.refresh_tokens
    assert ("zoho-async", "fake:refresh_token") not in stored
    again = run(["auth", "status", "--profile", "fake"], env)
    assert again.exit_code == 2
    assert "auth login" in again.stderr and "README.md#credentials" in again.stderr


def test_used_or_expired_code_and_wrong_client_are_one_line_each(
    fake: FakeZoho, env: dict[str, str | None], memory_keyring: MemoryKeyring
) -> None:
    code = fake.issue_grant_code()
    secret = ["--client-secret", fake.client_secret]
    assert run([*login_args(fake, code), *secret], env).exit_code == 0
    reused = run([*login_args(fake, code), *secret], env)
    assert reused.exit_code == 3
    assert reused.stderr.splitlines()[-1] == (
        "Error: grant code rejected (invalid_code): expired or already used: generate a new "
        "code, they last 3 minutes unless you chose longer"
    )
    wrong = run([*login_args(fake, fake.issue_grant_code()), "--client-secret", "0" * 42], env)
    assert wrong.exit_code == 3
    assert "invalid_client" in wrong.stderr and "--data-center" in wrong.stderr


def test_without_a_keyring_secrets_go_to_a_0600_file_with_a_warning(
    fake: FakeZoho, env: dict[str, str | None], no_keyring: None
) -> None:
    args = [*login_args(fake, fake.issue_grant_code()), "--client-secret", fake.client_secret]
    result = run(args, env)
    assert result.exit_code == 0, result.output
    path = Path(str(env["ZOHO_CONFIG"]))
    assert "warning: no usable OS keyring" in result.stderr and str(path) in result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    table = config_of(env)["profiles"]["fake"]  # type: ignore[index]
    assert table["refresh_token"] in fake.refresh_tokens
    assert table["client_secret"] == fake.client_secret
    shown = run(["config", "show", "--profile", "fake"], env)
    assert "refresh_token  ***" in shown.stdout and "(file)" in shown.stdout
    assert table["refresh_token"] not in shown.output
    synced = run(["sync", "--profile", "fake", "-w", _workspace(fake), *CLI_FAST], env)
    assert synced.exit_code == 0, synced.output
    logout = run(["auth", "logout", "--profile", "fake", "--all"], env)
    assert "profile file" in logout.stdout and "client secret" in logout.stdout
    left = config_of(env)["profiles"]["fake"]  # type: ignore[index]
    assert "refresh_token" not in left and "client_secret" not in left


def test_logout_deletes_even_when_revocation_fails(
    fake: FakeZoho, env: dict[str, str | None], memory_keyring: MemoryKeyring
) -> None:
    args = [*login_args(fake, fake.issue_grant_code()), "--client-secret", fake.client_secret]
    assert run(args, env).exit_code == 0
    refresh = memory_keyring.passwords[("zoho-async", "fake:refresh_token")]
    fake.revoke_refresh_token(refresh)  # revoked elsewhere: Zoho answers HTTP 400
    result = run(["auth", "logout", "--profile", "fake"], env)
    assert result.exit_code == 0, result.output
    assert "warning: could not revoke" in result.stderr and "HTTP 400" in result.stderr
    assert ("zoho-async", "fake:refresh_token") not in memory_keyring.passwords
    assert refresh not in result.output
    nothing = run(["auth", "logout", "--profile", "fake"], env)
    assert "nothing to revoke" in nothing.stdout


def test_login_prompts_with_the_data_centres_console(
    fake: FakeZoho, env: dict[str, str | None], memory_keyring: MemoryKeyring
) -> None:
    code = fake.issue_grant_code()
    args = ["auth", "login", "--data-center", "eu", "--api-url", fake.api_url]
    args += ["--accounts-url", fake.accounts_url]
    answers = f"{fake.client_id}\n{fake.client_secret}\n{code}\n"
    result = run(args, env, stdin=answers)
    assert result.exit_code == 0, result.output
    assert "https://api-console.zoho.eu" in result.stderr
    assert "Client ID" in result.stderr and "Grant code" in result.stderr
    assert code not in result.output and fake.client_secret not in result.output
    assert config_of(env)["profiles"]["default"]["data_center"] == "eu"  # type: ignore[index]


def test_unknown_data_centre_is_refused(env: dict[str, str | None]) -> None:
    result = run(["auth", "login", "--data-center", "mars", "--code", "x"], env)
    assert result.exit_code == 2
    assert "unknown data centre 'mars'" in result.stderr


def _workspace(fake: FakeZoho) -> str:
    return fake.datasources()[0].workspace_id


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_readme_path_fake_server_login_with_printed_code_then_sync_with_profile(
    env: dict[str, str | None], memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    """The README's path: fake-server, auth login with the code it prints, sync --profile."""
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("ZOHO_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "zoho_async", "fake-server", "--port", "0", "--plain",
         "--workspaces", "1", "--datasources", "3", "--metadata-rate", "0",
         "--sync-duration", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=server_env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = server.stdout

        def pump() -> None:
            for text in stdout:
                lines.put(text)

        threading.Thread(target=pump, daemon=True).start()
        login_line = ""
        while not login_line:
            # a bound on waiting for output, so a missing line fails instead of hanging
            line = lines.get(timeout=30)
            if line.startswith("zoho-async auth login"):
                login_line = line
        args = shlex.split(login_line)[1:]
        logged = run(args, env)
        assert logged.exit_code == 0, logged.output
        listed = run(["workspaces", "--profile", "fake", "-f", "json"], env)
        assert listed.exit_code == 0, listed.output
        workspace = json.loads(listed.stdout)[0]["workspace_id"]
        synced = run(["sync", workspace, "--profile", "fake", "-f", "jsonl", *CLI_FAST], env)
        assert synced.exit_code == 0, synced.output
        rows = [json.loads(line) for line in synced.stdout.splitlines()]
        assert len(rows) == 3 and {r["status"] for r in rows} == {"STARTED"}
    finally:
        server.terminate()
        server.communicate(timeout=15)
