"""Profiles: the TOML file, precedence (flag, env, profile, default), ``config show``,
``--profile`` on commands, and ``AnalyticsSession.from_profile``."""

from __future__ import annotations

import json
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from zoho_async import AnalyticsSession, InvalidInputError, MissingCredentialsError
from zoho_async._profiles import (
    SecretStore,
    dumps_profiles,
    read_profiles,
    resolve_settings,
    write_profile,
)
from zoho_async._profiles import session_kwargs as profile_session_kwargs
from zoho_async.cli import cli
from zoho_async.testing import FakeZoho

from .helpers import CLI_ENV_NAMES, CLI_FAST, plain_fake_in_thread
from .test_auth_cli import MemoryKeyring, memory_keyring

__all__ = ["memory_keyring"]  # the fixture, imported to be used here

NAMES = st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True), st.text(max_size=8))
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
VALUES = st.one_of(TEXT, st.integers(-(2**63), 2**63 - 1), st.lists(TEXT, max_size=3))


@given(st.dictionaries(NAMES, st.dictionaries(NAMES, VALUES, max_size=4), max_size=3))
def test_writer_output_reads_back_the_same(profiles: dict[str, dict[str, object]]) -> None:
    assert tomllib.loads(dumps_profiles(profiles)) == ({"profiles": profiles} if profiles else {})


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "conf" / "config.toml"
    monkeypatch.setenv("ZOHO_CONFIG", str(path))
    for name in (*CLI_ENV_NAMES, "ZOHO_PROFILE", "ZOHO_SHARED"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_precedence_flag_env_profile_default(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_settings().sources == {"data_center": "default"}
    write_profile("default", {"org_id": "111", "data_center": "eu", "workspaces": ["5", "6"]})
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    got = resolve_settings()
    assert (got.get("org_id"), got.sources["org_id"]) == ("111", "profile")
    assert got.get("workspaces") == ["5", "6"] and got.get("data_center") == "eu"
    monkeypatch.setenv("ZOHO_ORG_ID", "222")
    assert resolve_settings().sources["org_id"] == "env"
    got = resolve_settings(explicit={"org_id": "333"})
    assert (got.get("org_id"), got.sources["org_id"]) == ("333", "flag")


def test_profile_from_env_and_unknown_profiles(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_profile("work", {"org_id": "9"})
    monkeypatch.setenv("ZOHO_PROFILE", "work")
    assert resolve_settings().get("org_id") == "9"
    monkeypatch.setenv("ZOHO_PROFILE", "nope")
    with pytest.raises(InvalidInputError, match=r"no profile 'nope'.*auth login --profile nope"):
        resolve_settings()
    with pytest.raises(InvalidInputError, match="letters, digits"):
        resolve_settings("a b")


def test_bad_files_are_one_clear_error(conf: Path) -> None:
    conf.parent.mkdir(parents=True)
    conf.write_text("[profiles.default\n")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        read_profiles()
    conf.write_text('[profiles.default]\nregion = "eu"\n')
    with pytest.raises(InvalidInputError, match=r"unknown key profiles\.default\.region"):
        read_profiles()
    conf.write_text('[profiles.default]\nrate = "fast"\n')
    with pytest.raises(InvalidInputError, match=r"profiles\.default\.rate must be an integer"):
        read_profiles()
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 2 and "must be an integer" in result.stderr
    conf.write_text("[other]\nkeep = 1\n")
    with pytest.raises(InvalidInputError, match=r"holds more than \[profiles\] \(other\)"):
        write_profile("default", {"org_id": "1"})
    assert conf.read_text() == "[other]\nkeep = 1\n"


def run(args: list[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, input=stdin, catch_exceptions=False)


def test_config_show_sources_and_masking(
    conf: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    write_profile("default", {"org_id": "111", "client_id": "1000.ID", "data_center": "eu"})
    SecretStore().put("default", "refresh_token", "1000.refresh-secret")
    monkeypatch.setenv("ZOHO_CLIENT_SECRET", "env-secret-value")
    result = run(["config", "show", "--data-center", "in"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert lines["data_center"] == ["in", "(flag)"]
    assert lines["org_id"] == ["111", "(profile)"]
    assert lines["client_secret"] == ["***", "(env)"]
    assert lines["refresh_token"] == ["***", "(keyring)"]
    assert lines["config_file"] == [str(conf)]
    assert "secret" not in result.stdout.replace("client_secret", "")
    shown = json.loads(run(["config", "show", "-f", "json"]).stdout)
    assert shown["data_center"] == {"value": "eu", "source": "profile"}
    assert shown["refresh_token"] == {"value": "***", "source": "keyring"}
    assert shown["rate"] == {"value": "", "source": "unset"}
    assert run(["config", "show", "--profile", "other"]).exit_code == 2


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    with plain_fake_in_thread(2, 2, sync_duration=0) as running:
        yield running


def fake_profile(fake: FakeZoho, name: str = "default", **extra: object) -> None:
    values = {"client_id": fake.client_id, "api_url": fake.api_url}
    write_profile(name, {**values, "accounts_url": fake.accounts_url, **extra})
    SecretStore().put(name, "client_secret", fake.client_secret)
    SecretStore().put(name, "refresh_token", fake.refresh_token)


def test_sync_takes_the_profiles_workspaces_only_when_given_none(
    conf: Path, fake: FakeZoho, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    spaces = list(dict.fromkeys(d.workspace_id for d in fake.datasources()))
    fake_profile(fake, "ci", workspaces=[spaces[0]])
    cache = ["--no-token-cache"]
    result = run(["sync", "--profile", "ci", "-f", "jsonl", *cache, *CLI_FAST])
    assert result.exit_code == 0, result.output
    assert {json.loads(x)["workspace_id"] for x in result.stdout.splitlines()} == {spaces[0]}
    result = run(["sync", spaces[1], "--profile", "ci", "-f", "jsonl", *cache, *CLI_FAST])
    assert result.exit_code == 0, result.output
    assert {json.loads(x)["workspace_id"] for x in result.stdout.splitlines()} == {spaces[1]}
    unknown = run(["orgs", "--profile", "nope"])
    assert unknown.exit_code == 2 and "auth login --profile nope" in unknown.stderr


def test_missing_credentials_point_to_auth_login(conf: Path) -> None:
    result = run(["orgs"])
    assert result.exit_code == 2
    assert "zoho-async auth login" in result.stderr and "#credentials" in result.stderr


@pytest.mark.anyio
async def test_from_profile_env_overrides_profile_keywords_override_both(
    conf: Path, fake: FakeZoho, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_profile(fake, "work", org_id="111", metadata_rate=7)
    monkeypatch.setenv("ZOHO_PROFILE", "work")
    session = AnalyticsSession.from_profile()
    assert session.org_id == "111" and session.limits.metadata_per_minute == 7
    monkeypatch.setenv("ZOHO_ORG_ID", str(fake.default_org_id))
    session = AnalyticsSession.from_profile(timeout=5)
    assert session.org_id == fake.default_org_id and session.timeout == 5
    async with session:
        assert [o.org_id for o in await session.get_orgs()] == [fake.default_org_id]
    session = AnalyticsSession.from_profile("work", org_id="333", metadata_rate=9)
    assert session.org_id == "333" and session.limits.metadata_per_minute == 9
    assert "secret" not in repr(session)
    monkeypatch.delenv("ZOHO_PROFILE")
    monkeypatch.delenv("ZOHO_ORG_ID")
    with pytest.raises(MissingCredentialsError, match="auth login --profile default"):
        AnalyticsSession.from_profile()  # no "default" profile, no ZOHO_* credentials


def test_from_profile_takes_the_environments_proxy_and_ca_bundle(
    conf: Path, fake: FakeZoho, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a profile holds no proxy or CA file: from_profile reads them as from_env does
    fake_profile(fake, "work")
    monkeypatch.setenv("ZOHO_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("ZOHO_CA_BUNDLE", "/etc/ssl/corp.pem")
    kwargs = profile_session_kwargs("work", {})
    assert kwargs["proxy"] == "http://127.0.0.1:3128" and kwargs["ssl"] == "/etc/ssl/corp.pem"
    assert profile_session_kwargs("work", {"proxy": None})["proxy"] is None  # keywords win


def test_profile_rates_default_the_flags_and_flags_win(
    conf: Path, fake: FakeZoho, memory_keyring: MemoryKeyring
) -> None:
    space = fake.datasources()[0].workspace_id
    fake_profile(fake, "ci", metadata_rate=7777)
    args = ["sync", space, "--profile", "ci", "--dry-run", "-f", "jsonl", "--no-token-cache"]
    result = run(args)
    assert result.exit_code == 0, result.output
    assert "at 7777 metadata calls a minute" in result.stderr
    result = run([*args, "--metadata-rate", "5555"])
    assert "at 5555 metadata calls a minute" in result.stderr
