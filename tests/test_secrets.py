"""No secret ever leaks: logs, reprs, exceptions and exported results are searched."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from zoho_async import FileTokenStore, Limits, RetryPolicy, SyncConfig, SyncTarget, ZohoError
from zoho_async.testing import FakeZoho, Fault

from .helpers import ds_id, session_for

pytestmark = pytest.mark.anyio

PASSWORD = "ftp-Pa55word-" + "z" * 12


async def test_full_run_leaks_nothing(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, ours and aiohttp's
    texts: list[str] = []
    async with FakeZoho(
        requests_per_minute=None, metadata_per_minute=None, sync_duration=30.0
    ) as fake:
        org = fake.add_org(is_default=True)
        fake.add_workspace(org.org_id, "1001")
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(12)]
        ids.append(ds_id(fake.add_datasource("1001", forbidden=True)))
        fake.script(
            "sync",
            [
                Fault.error(
                    7005,
                    500,
                ),
                Fault(drop=True, then_process=True),
                Fault.error(6045),
                Fault(status=401, body=""),
            ],
        )
        config = SyncConfig(user_name="ftpuser", password=PASSWORD)
        targets = [SyncTarget("1001", d, config=config) for d in ids]
        store = FileTokenStore(tmp_path / "tokens.json")
        limits = Limits(
            requests_per_minute=600_000, metadata_per_minute=600_000, rate_limit_pause=0.01
        )
        for in_query in (False, True):
            async with session_for(
                fake,
                token_store=store,
                limits=limits,
                retry=RetryPolicy.testing(),
                config_in_query=in_query,
            ) as session:
                report = await session.sync_many(targets)
                fake.revoke_tokens()  # the next round refreshes
                texts += [repr(session), report.to_json(), repr(report), str(report.to_rows())]
                texts += [repr(t) for t in targets] + [repr(config), str(config)]
                for result in report.results:
                    texts += [repr(result), str(result.to_dict())]
                # errors of every kind, raised for real
                for datasource in (ids[-1], "5"):
                    try:
                        await session.workspace("1001").sync_data(datasource, config=config)
                    except ZohoError as exc:
                        texts += [str(exc), repr(exc), repr(exc.__cause__)]
        async with session_for(fake, client_secret="wrong-" + fake.client_secret) as bad:
            try:
                await bad.get_orgs()
            except ZohoError as exc:
                texts += [str(exc), repr(exc), repr(bad)]
        secrets = [fake.client_secret, fake.refresh_token, PASSWORD, *fake.stats.tokens_issued]
        assert len(fake.stats.tokens_issued) >= 2
        texts.append(caplog.text)
        assert "DEBUG" in caplog.text or caplog.records
    haystack = "\n".join(texts)
    for secret in secrets:
        assert secret not in haystack
    token_file = tmp_path / "tokens.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    stored = token_file.read_text()
    assert fake.client_secret not in stored and fake.refresh_token not in stored
    assert PASSWORD not in stored
