"""A child process of scenario 12: the README's service example, or the latency probe.

Reads one JSON spec on stdin (the fake's address, the mode, the limits) and:

- ``"mode": "app"``: serves the README's ``# service.py`` app, exactly as printed, on a
  free loopback port with a session at the given limits; prints ``{"port", "pid"}`` and
  serves until stdin closes.
- ``"mode": "latency"``: alternates the SDK's ``sync_data`` with a bare aiohttp POST of
  the same Sync Data request to the same fake (no rate limit), one at a time; prints the
  latencies of each.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import anyio.to_thread
from aiohttp import web

from benchmarks._shared import JSON, ORG_ID, Layout
from zoho_async import AnalyticsSession, Limits, RetryPolicy
from zoho_async._protocol import api_headers

README = Path(__file__).resolve().parent.parent / "README.md"


def load_service() -> ModuleType:
    """The README's service example, loaded from its text."""
    text = README.read_text(encoding="utf-8")
    (source,) = re.findall(r"```python\n(# service\.py.*?)```", text, flags=re.S)
    path = Path(sys.argv[0]).parent / "_service_example.py"
    module = ModuleType("readme_service")
    module.__file__ = str(path)
    sys.modules["readme_service"] = module
    exec(compile(source, "README.md:service.py", "exec"), module.__dict__)
    return module


def _session(spec: JSON) -> AnalyticsSession:
    creds = spec["credentials"]
    return AnalyticsSession(
        creds["client_id"],
        creds["client_secret"],
        creds["refresh_token"],
        org_id=ORG_ID,
        api_url=spec["api_url"],
        accounts_url=spec["accounts_url"],
        limits=Limits(**spec["limits"]),
        retry=RetryPolicy(),
        call_timeout=10,
    )


async def serve(spec: JSON) -> None:
    service = load_service()
    app = service.create_app(lambda: _session(spec))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        (address,) = runner.addresses
        print(json.dumps({"port": address[1], "pid": os.getpid()}), flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin
    finally:
        await runner.cleanup()


async def latency(spec: JSON) -> None:
    layout = Layout.from_json(spec["layout"])
    calls, warmup = int(spec["calls"]), 50
    targets = list(layout.targets(layout.datasources))
    sdk: list[float] = []
    bare: list[float] = []
    async with _session(spec) as session, aiohttp.ClientSession() as http:
        token = await session.get_access_token()
        headers = api_headers(token, ORG_ID, "bench")
        for i in range(calls + warmup):
            ws, ds = targets[i % len(targets)]
            started = time.perf_counter()
            await session.sync_data(ws, ds)
            middle = time.perf_counter()
            url = f"{spec['api_url']}/restapi/v2/workspaces/{ws}/datasources/{ds}/sync"
            async with http.post(url, headers=headers) as response:
                await response.read()
                assert response.status == 204, response.status
            ended = time.perf_counter()
            if i >= warmup:
                sdk.append(middle - started)
                bare.append(ended - middle)
    print(json.dumps({"sdk": sdk, "bare": bare}), flush=True)


def main() -> None:
    spec: Any = json.loads(sys.stdin.readline())
    if spec["mode"] == "app":
        anyio.run(serve, spec)
    else:
        anyio.run(latency, spec)


if __name__ == "__main__":
    main()
