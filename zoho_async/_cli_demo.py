"""``demo`` and ``fake-server``: the embedded FakeZoho, for a first look and for testing.

``demo`` builds a small, deliberately untidy world (already running syncs, spent quotas, one
datasource the user may not sync, a Local Drive file, slow answers), scales the fake's
per-minute limit and the client's pacing up by the same factor, and hands the run to
:func:`run_sync`, the code path of ``sync``.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys

import anyio

from ._cli_config import ConnectionSettings
from ._cli_run import SyncOptions, run_sync
from ._cli_targets import TargetSpec
from ._errors import InvalidInputError
from ._pacing import Limits
from .testing import FakeZoho, Fault

__all__ = ["build_demo", "run_demo", "serve_fake"]

_SOURCES = ("MySQL", "PostgreSQL", "Zoho CRM", "Salesforce CRM", "Google Sheets", "MS SQL Server")
_SLOW_EVERY = 25  # every 25th sync request answers slowly
_SLOW_SECONDS = 1.5


def _overall(metadata_per_minute: int) -> int:
    # Zoho allows 100 requests a minute in all for 60 metadata calls; keep the ratio
    return math.ceil(metadata_per_minute * 100 / 60)


def build_demo(
    workspaces: int, datasources: int, rate: int, sync_seconds: float
) -> tuple[FakeZoho, TargetSpec]:
    """The demo's fake (not started) and the workspaces to sync."""
    fake = FakeZoho(
        requests_per_minute=_overall(rate),
        metadata_per_minute=rate,
        sync_duration=sync_seconds,
        seed=7,
    )
    org = fake.add_org(name="Demo Org", is_default=True)
    total = workspaces * datasources
    names: list[str] = []
    n = 0
    for w in range(workspaces):
        ws = fake.add_workspace(org.org_id, name=f"Demo Workspace {w + 1}")
        names.append(ws.workspace_id)
        for _ in range(datasources):
            source = _SOURCES[n % len(_SOURCES)]
            if n == 7:
                fake.add_datasource(ws.workspace_id, kind="local_drive")
            elif n == total // 2:
                fake.add_datasource(ws.workspace_id, source=source, forbidden=True)
            elif n % 23 == 5:
                fake.add_datasource(
                    ws.workspace_id, source=source, running=True, sync_duration=2 * sync_seconds
                )
            elif n % 31 == 9:
                fake.add_datasource(ws.workspace_id, source=source, sync_used=5)
            elif n % 37 == 11:
                fake.add_datasource(ws.workspace_id, source=source, intervals=2)
            else:
                fake.add_datasource(ws.workspace_id, source=source)
            n += 1
    slow = [Fault()] * (_SLOW_EVERY - 1) + [Fault(delay=_SLOW_SECONDS)]
    fake.script("sync", slow * (total // _SLOW_EVERY + 1))
    return fake, TargetSpec(tuple((org.org_id, ws) for ws in names))


def run_demo(
    *,
    workspaces: int,
    datasources: int,
    rate: int,
    wait: bool,
    fmt: str,
    output: str | None,
    quiet: bool,
    progress_interval: float,
) -> int:
    """Start the demo fake on a thread and run a real bulk sync against it."""
    fake, spec = build_demo(workspaces, datasources, rate, sync_seconds=2.0)
    with FakeZoho.run_in_thread(fake) as running:
        if not quiet:
            total = workspaces * datasources
            calls = total + workspaces
            sys.stderr.write(
                f"Demo: a fake Zoho Analytics at {running.api_url} with {total} datasources in "
                f"{workspaces} workspaces: some already running, some out of quota, one you may "
                "not sync, one Local Drive file, some slow to answer.\n"
                f"Its limit is scaled to {rate} metadata calls a minute (Zoho allows 60), so "
                f"this takes about {math.ceil(calls / rate * 60)} s instead of "
                f"{math.ceil(calls / 60)} min.\n"
            )
            sys.stderr.flush()
        settings = ConnectionSettings(
            client_id=running.client_id,
            client_secret=running.client_secret,
            refresh_token=running.refresh_token,
            org_id=running.default_org_id,
            api_url=running.api_url,
            accounts_url=running.accounts_url,
            token_cache=None,  # the demo's tokens belong to the demo
            limits=Limits(requests_per_minute=_overall(rate), metadata_per_minute=rate),
        )
        options = SyncOptions(
            spec=spec,
            wait=wait,
            wait_timeout=60.0,
            poll_interval=1.0,
            output=output,
            fmt=fmt,
            quiet=quiet,
            progress_interval=progress_interval,
        )
        return run_sync(settings, options)


def serve_fake(
    *,
    host: str,
    port: int,
    workspaces: int,
    datasources: int,
    latency_ms: float,
    rate_limit: int,
    seed: int,
    mix: bool,
) -> int:
    """Run a populated FakeZoho in the foreground until Ctrl-C; print how to use it."""
    fake = FakeZoho.populated(
        workspaces=workspaces,
        datasources_per_workspace=datasources,
        seed=seed,
        mix=mix,
        host=host,
        port=port,
        latency=latency_ms / 1000.0,
        metadata_per_minute=rate_limit or None,
        requests_per_minute=_overall(rate_limit) if rate_limit else None,
    )

    async def serve() -> None:
        try:
            await fake.start()
        except OSError as exc:
            raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        try:
            _announce(fake, workspaces, datasources, rate_limit)
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
        finally:
            await fake.stop()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve)
    print("FakeZoho stopped.", flush=True)
    return 0


def _announce(fake: FakeZoho, workspaces: int, datasources: int, rate_limit: int) -> None:
    limit = f"{rate_limit} metadata calls a minute per org" if rate_limit else "no rate limit"
    lines = [
        f"FakeZoho is running at {fake.api_url} (Ctrl-C to stop)",
        f"  {workspaces} workspaces x {datasources} datasources, {limit}",
        "  These are the fake's own credentials, safe to share. Point your code at it with:",
        "",
        f"export ZOHO_API_URL={fake.api_url}",
        f"export ZOHO_ACCOUNTS_URL={fake.accounts_url}",
        f"export ZOHO_CLIENT_ID={fake.client_id}",
        f"export ZOHO_CLIENT_SECRET={fake.client_secret}",
        f"export ZOHO_REFRESH_TOKEN={fake.refresh_token}",
        f"export ZOHO_ORG_ID={fake.default_org_id}",
        "",
    ]
    print("\n".join(lines), flush=True)
