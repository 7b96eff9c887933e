"""The README's service example, run as it is printed, against FakeZoho over loopback."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer

from zoho_async import Limits
from zoho_async.testing import Fault

from .helpers import ds_id, session_for, workspace_fake

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
WS = "1001"


def service_source() -> str:
    """The README's ``# service.py`` block, exactly as printed."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# service\.py.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the README has one service example"
    return str(blocks[0])


def load_service(tmp_path: Path) -> ModuleType:
    path = tmp_path / "service.py"
    path.write_text(service_source(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("readme_service", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_service"] = module  # dataclass-free, but typing may look it up
    spec.loader.exec_module(module)
    return module


async def _json(client: TestClient[Any, Any], method: str, url: str, **kw: Any) -> Any:
    async with client.request(method, url, **kw) as response:
        return response.status, await response.json()


async def test_the_readme_service_example_serves_syncs_runs_and_health(tmp_path: Path) -> None:
    service = load_service(tmp_path)
    async with workspace_fake() as fake:
        ids = [ds_id(fake.add_datasource(WS)) for _ in range(5)]
        app = service.create_app(lambda: session_for(fake))
        async with TestClient(TestServer(app)) as client:
            status, body = await _json(
                client, "POST", f"/workspaces/{WS}/datasources/{ids[0]}/sync"
            )
            assert (status, body) == (200, {"status": "STARTED"})
            # the same datasource again, while its sync runs: Zoho's 18073, typed
            status, body = await _json(
                client, "POST", f"/workspaces/{WS}/datasources/{ids[0]}/sync"
            )
            assert status == 502
            assert body["error"] == "SyncInProgressError" and body["code"] == 18073
            status, body = await _json(client, "POST", "/runs", json={"workspaces": [WS]})
            assert status == 202
            run_url = f"/runs/{body['run_id']}"
            with anyio.fail_after(60):
                while not (run := (await _json(client, "GET", run_url))[1])["done"]:
                    await anyio.sleep(0.05)  # polling the app, as its users would
            assert run["error"] is None
            assert run["counts"] == {"STARTED": 4, "ALREADY_RUNNING": 1}
            async with client.get("/runs/nope") as missing:
                assert missing.status == 404
            status, health = await _json(client, "GET", "/health")
            assert status == 200 and health["token_requests"] == 1
            assert health["requests"] >= 8 and health["token_expires_in"] > 0
            token = await app[service.SESSION].get_access_token()
            assert token not in str(health)
        assert [fake.stats.syncs_started[d] for d in ids] == [1, 1, 1, 1, 1]


async def test_the_readme_service_example_answers_busy_without_sending(tmp_path: Path) -> None:
    service = load_service(tmp_path)
    async with workspace_fake() as fake:
        ds = ds_id(fake.add_datasource(WS))
        app = service.create_app(lambda: session_for(fake, limits=Limits()))
        async with TestClient(TestServer(app)) as client:
            fake.script("sync", [Fault.rate_limited(retry_after="60")])
            status, body = await _json(client, "POST", f"/workspaces/{WS}/datasources/{ds}/sync")
            assert status == 502 and body["error"] == "RateLimitedError"
            # the org is paused for a minute: the next call gives up at its timeout unsent
            status, body = await _json(client, "POST", f"/workspaces/{WS}/datasources/{ds}/sync")
            assert (status, body) == (503, {"status": "BUSY"})
        assert fake.stats.sync_calls[ds] == 1
