"""``zoho-async demo`` and ``fake-server``: the embedded FakeZoho, for a first look and for
testing.

``demo`` builds a small, deliberately untidy world (already running syncs, spent quotas, one
datasource the user may not sync, a Local Drive file, slow answers), scales the fake's
per-minute limit and the client's pacing up by the same factor, and hands the run to
:func:`run_sync`, the code path of ``sync``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import signal
import sys
import urllib.parse
from typing import TYPE_CHECKING

import anyio
import attrs
import click

from zoho_async import InvalidInputError, Journal, Limits, SyncResult, SyncStatus

from ._app import EXIT_CODES_HELP, errors_to_exit_codes, output_options
from ._config import REDACTOR, ConnectionSettings, setup_logging
from ._output import FORMATS
from ._run import SyncOptions, run_sync
from ._targets import TargetSpec

if TYPE_CHECKING:
    # imported when a command runs: the fake's server code is not needed for --help
    from zoho_async.testing import FakeZoho

__all__ = ["DemoWorld", "build_demo", "demo", "fake_server", "run_demo", "serve_fake"]

_SOURCES = ("MySQL", "PostgreSQL", "Zoho CRM", "Salesforce CRM", "Google Sheets", "MS SQL Server")
_SLOW_EVERY = 25  # every 25th sync request answers slowly
_SLOW_SECONDS = 1.5
# The demo's syncs take 2 s (those already running, 4 s), chosen here rather than taken from
# FakeZoho's default, so that the demo's run and its --wait look the same whatever that
# default becomes.
_DEMO_SYNC_SECONDS = 2.0
_FORBIDDEN_CODE = 7301  # Zoho's answer for a datasource the user may not sync


def _overall(metadata_per_minute: int) -> int:
    # Zoho allows 100 requests a minute in all for 60 metadata calls; keep the ratio
    return math.ceil(metadata_per_minute * 100 / 60)


@attrs.frozen
class DemoWorld:
    """The demo's fake (not started), the workspaces to sync, and what the demo planned."""

    fake: FakeZoho
    spec: TargetSpec
    datasources: int
    forbidden: frozenset[str]  # datasource ids the user may not sync: FAILED is expected
    extra_targets: int  # datasources with two sync intervals add one target each

    def expected(self, result: SyncResult) -> bool:
        """Whether a result that is not ok is the one the demo set up to fail."""
        return (
            result.status is SyncStatus.FAILED
            and result.error_code == _FORBIDDEN_CODE
            and result.target.datasource_id in self.forbidden
        )


def build_demo(
    workspaces: int,
    datasources: int,
    sync_seconds: float,
    *,
    metadata_rate: int,
    rate: int | None = None,
) -> DemoWorld:
    """The demo's world: limits a minute of ``metadata_rate`` metadata calls and ``rate``
    requests in all (default: Zoho's ratio, 100 for 60)."""
    from zoho_async.testing import FakeZoho, Fault

    fake = FakeZoho(
        requests_per_minute=rate or _overall(metadata_rate),
        metadata_per_minute=metadata_rate,
        sync_duration=sync_seconds,
        seed=7,
    )
    org = fake.add_org(name="Demo Org", is_default=True)
    total = workspaces * datasources
    names: list[str] = []
    forbidden: set[str] = set()
    extra = 0
    n = 0
    for w in range(workspaces):
        ws = fake.add_workspace(org.org_id, name=f"Demo Workspace {w + 1}")
        names.append(ws.workspace_id)
        for _ in range(datasources):
            source = _SOURCES[n % len(_SOURCES)]
            if n == 7:
                fake.add_datasource(ws.workspace_id, kind="local_drive")
            elif n == total // 2:
                ds = fake.add_datasource(ws.workspace_id, source=source, forbidden=True)
                if ds.datasource_id:
                    forbidden.add(ds.datasource_id)
            elif n % 23 == 5:
                fake.add_datasource(
                    ws.workspace_id, source=source, running=True, sync_duration=2 * sync_seconds
                )
            elif n % 31 == 9:
                fake.add_datasource(ws.workspace_id, source=source, sync_used=5)
            elif n % 37 == 11:
                fake.add_datasource(ws.workspace_id, source=source, intervals=2)
                extra += 1
            else:
                fake.add_datasource(ws.workspace_id, source=source)
            n += 1
    slow = [Fault()] * (_SLOW_EVERY - 1) + [Fault(delay=_SLOW_SECONDS)]
    fake.script("sync", slow * (total // _SLOW_EVERY + 1))
    return DemoWorld(
        fake,
        TargetSpec(tuple((org.org_id, ws) for ws in names)),
        total,
        frozenset(forbidden),
        extra,
    )


def _have(count: int) -> str:
    return f"{count} of them has" if count == 1 else f"{count} of them have"


def _introduction(
    world: DemoWorld, api_url: str, workspaces: int, rate: int, metadata_rate: int
) -> str:
    total = world.datasources
    calls = total + world.extra_targets + workspaces
    return (
        f"Demo: a fake Zoho Analytics at {api_url} with {total} datasources in "
        f"{workspaces} workspace{'s' if workspaces != 1 else ''}: some already running, "
        "some out of quota, one you may not sync, one Local Drive file, some slow to answer.\n"
        f"Targets: one per datasource and sync interval; {_have(world.extra_targets)} two "
        f"intervals, so {total} datasources make {total + world.extra_targets} targets.\n"
        "Metadata calls are the requests Zoho limits to 60 a minute per org (Sync Data, "
        'listings); "no quota" is a datasource whose manual syncs for today are spent, so it '
        "is not called.\n"
        f"The limits are scaled to {metadata_rate} metadata calls and {rate} requests a minute "
        f"(Zoho allows 60 and 100), so this takes about {math.ceil(calls / metadata_rate * 60)} "
        f"s instead of {math.ceil(calls / 60)} min. The datasource you may not sync is expected "
        "to fail: the demo exits 0 when every result is what it set up.\n"
    )


def run_demo(
    *,
    workspaces: int,
    datasources: int,
    metadata_rate: int,
    rate: int | None = None,
    wait: bool,
    fmt: str,
    output: str | None,
    quiet: bool,
    progress_interval: float,
    sync_seconds: float = _DEMO_SYNC_SECONDS,
) -> int:
    """Start the demo fake on a thread and run a real bulk sync against it.

    The exit code is ``sync``'s, except that the forbidden datasource's FAILED is what the
    demo set up: 0 when everything else is ok too.
    """
    from zoho_async.testing import FakeZoho

    rate = rate or _overall(metadata_rate)
    world = build_demo(
        workspaces, datasources, sync_seconds, metadata_rate=metadata_rate, rate=rate
    )
    journal = None
    if output:
        # the results file is a journal, as in sync: opened (and locked) before the run
        journal = Journal(output, fresh=True, redact=REDACTOR)
        journal.open()
    with FakeZoho.run_in_thread(world.fake) as running:
        if not quiet:
            sys.stderr.write(_introduction(world, running.api_url, workspaces, rate, metadata_rate))
            sys.stderr.flush()
        settings = ConnectionSettings(
            client_id=running.client_id,
            client_secret=running.client_secret,
            refresh_token=running.refresh_token,
            org_id=running.default_org_id,
            api_url=running.api_url,
            accounts_url=running.accounts_url,
            token_cache=None,  # the demo's tokens belong to the demo
            trust_env=False,  # the fake is on loopback: never through a proxy of the environment
            limits=Limits(requests_per_minute=rate, metadata_per_minute=metadata_rate),
        )
        options = SyncOptions(
            spec=world.spec,
            wait=wait,
            wait_timeout=60.0,
            poll_interval=min(1.0, sync_seconds) if sync_seconds > 0 else 1.0,
            output=output,
            journal=journal,
            fresh_output=journal is not None,
            fmt=fmt,
            quiet=quiet,
            progress_interval=progress_interval,
            expected=world.expected,
        )
        return run_sync(settings, options)


def serve_fake(
    *,
    host: str,
    port: int,
    workspaces: int,
    datasources: int,
    latency_ms: float,
    metadata_rate: int,
    rate: int | None = None,
    seed: int = 0,
    mix: bool = True,
    sync_duration: float = 3.0,
    time_zone: str = "IST",
) -> int:
    """Run a populated FakeZoho in the foreground until Ctrl-C; print how to use it.

    ``rate`` and ``metadata_rate`` are the fake's limits a minute per org (0 or None: no
    limit); ``rate`` defaults to Zoho's ratio of ``metadata_rate`` (100 for 60).
    ``InvalidInputError`` for a non-loopback ``host`` other than a wildcard (see
    :func:`_loopback_for`).
    """
    loopback = _loopback_for(host)  # before anything starts: a refused host changes nothing
    if rate is None:
        rate = _overall(metadata_rate) if metadata_rate else 0
    from zoho_async.testing import FakeZoho

    fake = FakeZoho.populated(
        workspaces=workspaces,
        datasources_per_workspace=datasources,
        seed=seed,
        mix=mix,
        host=host,
        port=port,
        latency=latency_ms / 1000.0,
        metadata_per_minute=metadata_rate or None,
        requests_per_minute=rate or None,
        sync_duration=sync_duration,
        time_zone=time_zone,
    )

    async def serve() -> None:
        try:
            await fake.start()
        except OSError as exc:
            raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        try:
            _announce(fake, workspaces, datasources, rate, metadata_rate, sync_duration, loopback)
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
        finally:
            await fake.stop()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve)
    print("FakeZoho stopped.", flush=True)
    return 0


_WILDCARD_NOTE = (
    "  It listens on every address, but the URLs below use loopback: zoho-async and the SDK",
    "  refuse plain http:// to any other host (credentials would cross the network in clear",
    "  text). From another machine, tunnel the port: ssh -L PORT:127.0.0.1:PORT THIS-HOST.",
)


def _loopback_for(host: str) -> str | None:
    """Check ``--host``: None for a loopback address (its URLs work as printed), the
    loopback address to print for a wildcard one (0.0.0.0, ::); any other address is
    refused (``InvalidInputError``), because the URLs it would print are refused too."""
    name = host.strip().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return None
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return None
    if address is not None and address.is_unspecified:
        return "[::1]" if address.version == 6 else "127.0.0.1"
    raise InvalidInputError(
        f"--host {host} is not a loopback address: the fake serves plain http://, and "
        "zoho-async and the SDK refuse http:// to any host but 127.0.0.1, ::1 and localhost "
        "(credentials would cross the network in clear text); use --host 127.0.0.1 (the "
        "default) and tunnel the port from other machines (ssh -L), or --host 0.0.0.0 to "
        "listen everywhere and use it over loopback"
    )


def _announce(
    fake: FakeZoho,
    workspaces: int,
    datasources: int,
    rate: int,
    metadata_rate: int,
    sync_duration: float,
    loopback: str | None,
) -> None:
    api_url = accounts_url = fake.api_url
    if loopback is not None:
        # listening on every address: this machine reaches it over loopback, the only
        # plain-http host the CLI and the SDK accept
        port = urllib.parse.urlsplit(fake.api_url).port
        api_url = accounts_url = f"http://{loopback}:{port}"
    limits = [
        f"{rate} requests" if rate else "",
        f"{metadata_rate} metadata calls" if metadata_rate else "",
    ]
    shown = " and ".join(text for text in limits if text)
    limit = f"{shown} a minute per org" if shown else "no rate limit"
    syncs = f"syncs take {sync_duration:g} s" if sync_duration > 0 else "syncs finish at once"
    lines = [
        f"FakeZoho is running at {api_url} (Ctrl-C to stop)",
        f"  {workspaces} workspaces x {datasources} datasources, {limit}, {syncs}",
        *(_WILDCARD_NOTE if loopback is not None else ()),
        "  These are the fake's own credentials, safe to share. Point your code at it with:",
        "",
        f"export ZOHO_API_URL={api_url}",
        f"export ZOHO_ACCOUNTS_URL={accounts_url}",
        f"export ZOHO_CLIENT_ID={fake.client_id}",
        f"export ZOHO_CLIENT_SECRET={fake.client_secret}",
        f"export ZOHO_REFRESH_TOKEN={fake.refresh_token}",
        f"export ZOHO_ORG_ID={fake.default_org_id}",
        "",
        *_login_hint(fake),
    ]
    print("\n".join(lines), flush=True)


#: The printed grant code lasts as long as the API Console's longest choice, 10 minutes,
#: so a reader has time to follow the README (a real code lasts 3 minutes by default).
_PRINTED_CODE_TTL = 600.0


def _login_hint(fake: FakeZoho) -> list[str]:
    """A grant code, as a Self Client gives one, and how to get more: so that
    ``auth login`` can be tried before a real account is involved."""
    code = fake.issue_grant_code(ttl=_PRINTED_CODE_TTL)
    return [
        "  Or practise 'zoho-async auth login' (the Self Client flow) with this grant code,",
        "  single use and valid 10 minutes:",
        "",
        f"zoho-async auth login --profile fake --api-url {fake.api_url} "
        f"--accounts-url {fake.accounts_url} --client-id {fake.client_id} "
        f"--client-secret {fake.client_secret} --code {code}",
        "",
        f"  Another code: curl -s -X POST {fake.api_url}/_fake/grant-code",
        "",
    ]


# -- the commands ---------------------------------------------------------------------


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--workspaces", "n_workspaces", type=click.IntRange(1, 50), default=5,
              show_default=True, help="Workspaces in the fake.")  # fmt: skip
@click.option("--datasources", "n_datasources", type=click.IntRange(1, 1000), default=60,
              show_default=True, help="Datasources per workspace.")  # fmt: skip
@click.option("--rate", type=click.IntRange(min=1), metavar="N",
              help="Requests a minute in all, for the fake and the client alike "
              "(default: 100/60 of --metadata-rate, Zoho's ratio).")  # fmt: skip
@click.option("--metadata-rate", type=click.IntRange(min=1), default=1200, show_default=True,
              metavar="N", help="Metadata calls (Sync Data, listings) a minute, for the fake "
              "and the client alike; Zoho allows 60, scaled up so the demo is quick.")  # fmt: skip
@click.option("--wait", is_flag=True, help="Also wait for the syncs' outcomes.")
@click.option("-o", "--output", metavar="FILE",
              help="Write results as JSON Lines: a journal, as sync's --output.")  # fmt: skip
@click.option("--progress-interval", type=float, default=5.0, hidden=True)
@click.option("--sync-seconds", type=click.FloatRange(min=0), default=_DEMO_SYNC_SECONDS,
              hidden=True)  # fmt: skip
@output_options(FORMATS)
def demo(
    n_workspaces: int,
    n_datasources: int,
    rate: int | None,
    metadata_rate: int,
    wait: bool,
    output: str | None,
    progress_interval: float,
    sync_seconds: float,
    fmt: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Run a real bulk sync against a built-in fake Zoho (no account needed).

    A few hundred datasources over several workspaces, some already running, some out of
    quota, one forbidden, one Local Drive file, some slow to answer; the fake's per-minute
    limit is scaled so the run takes well under a minute. It runs through the same code
    as `sync`. The forbidden datasource FAILS, as the demo planned: the demo exits 0 when
    every result is what it set up, and 1 only on a surprise.
    """
    setup_logging(verbose, quiet)
    with errors_to_exit_codes():
        code = run_demo(
            workspaces=n_workspaces,
            datasources=n_datasources,
            metadata_rate=metadata_rate,
            rate=rate,
            wait=wait,
            fmt=fmt,
            output=output,
            quiet=quiet,
            progress_interval=progress_interval,
            sync_seconds=sync_seconds,
        )
    raise SystemExit(code)


def _check_zone(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from zoho_async.testing import zone_spec

    try:
        zone_spec(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.command("fake-server")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: loopback, or 0.0.0.0 / :: for every address (the "
              "URLs printed still use loopback). Other addresses are refused: the CLI and "
              "the SDK refuse plain http:// to them.")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: any free port).")  # fmt: skip
@click.option("--workspaces", "n_workspaces", type=click.IntRange(1), default=3,
              show_default=True, help="Workspaces in the fake.")  # fmt: skip
@click.option("--datasources", "n_datasources", type=click.IntRange(1), default=20,
              show_default=True, help="Datasources per workspace.")  # fmt: skip
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="MS", help="Milliseconds added to every answer.")  # fmt: skip
@click.option("--rate", type=click.IntRange(min=0), metavar="N",
              help="Requests a minute per org, in all (0: no limit; default: 100/60 of "
              "--metadata-rate, Zoho's 100 for 60).")  # fmt: skip
@click.option("--metadata-rate", type=click.IntRange(min=0), default=60, show_default=True,
              metavar="N", help="Metadata calls (Sync Data, listings) a minute per org "
              "(0: no limit).")  # fmt: skip
@click.option("--rate-limit", type=click.IntRange(min=0), hidden=True,
              help="Deprecated spelling of --metadata-rate.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fake world.")
@click.option("--plain", is_flag=True, help="Only plain syncable datasources (no mix).")
@click.option("--sync-duration", type=click.FloatRange(min=0), default=3.0, show_default=True,
              metavar="SECONDS", help="Seconds a started sync stays in progress, as real "
              "syncs take time (0: syncs finish at once).")  # fmt: skip
@click.option("--time-zone", default="IST", show_default=True, callback=_check_zone,
              metavar="ZONE", help="Zone sync times are printed in: IST, UTC, PST, ... or an "
              "abbreviation with its offset, such as CST@-06:00 or CST@+08:00.")  # fmt: skip
def fake_server(
    host: str,
    port: int,
    n_workspaces: int,
    n_datasources: int,
    latency: float,
    rate: int | None,
    metadata_rate: int,
    rate_limit: int | None,
    seed: int,
    plain: bool,
    sync_duration: float,
    time_zone: str,
) -> None:
    """Run a fake Zoho Analytics in the foreground, for testing your own code.

    Prints its URL and the client credentials to use (the fake's own, not secrets).
    Stop it with Ctrl-C.
    """
    if rate_limit is not None:
        # the old spelling keeps working, with a nudge towards the one shared by every command
        click.echo("Warning: --rate-limit is deprecated; use --metadata-rate", err=True)
        metadata_rate = rate_limit
    if rate is None:
        rate = _overall(metadata_rate) if metadata_rate else 0
    with errors_to_exit_codes():
        code = serve_fake(
            host=host,
            port=port,
            workspaces=n_workspaces,
            datasources=n_datasources,
            latency_ms=latency,
            rate=rate,
            metadata_rate=metadata_rate,
            seed=seed,
            mix=not plain,
            sync_duration=sync_duration,
            time_zone=time_zone,
        )
    raise SystemExit(code)
