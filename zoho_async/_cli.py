"""The ``zoho-async`` command line: a thin shell of Click options over the SDK.

Each command turns its options into settings and hands them to a helper module
(``_cli_run`` for bulk syncs, ``_cli_listings`` for tables, ``_cli_demo`` for the fake);
:func:`_errors_to_exit_codes` maps what escapes to the documented exit codes, printing one
line and never a traceback or a secret.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from ._cli_config import REDACTOR, ConnectionSettings, default_token_cache, setup_logging
from ._cli_output import FORMATS
from ._cli_run import SyncOptions, run_sync
from ._cli_summary import EXIT_AUTH, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from ._cli_targets import read_results, read_targets, spec_from_arguments
from ._errors import AuthError, InvalidInputError, TokenError, ZohoError
from ._pacing import Limits
from ._session import __version__

__all__ = ["cli"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes:
  0    every target STARTED or ALREADY_RUNNING (with --wait: and finished
       "Success"); SKIPPED and QUOTA_EXHAUSTED do not fail a run
  1    some target FAILED or was CANCELLED, or (--wait) ended otherwise
  2    usage or input error (bad ids, unreadable targets file, ...)
  3    authentication failure
  130  interrupted (Ctrl-C), after writing a result for every target
"""

CREDENTIALS_HELP = """\b
Credentials and settings come from the environment (or the flags):
  ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN, ZOHO_ORG_ID,
  ZOHO_DATA_CENTER (us, eu, in, au, cn, jp, sa, ca), ZOHO_API_URL,
  ZOHO_ACCOUNTS_URL, ZOHO_TOKEN_CACHE.
"""


class InputProblem(click.ClickException):
    """Usage or input error: one line, exit 2."""

    exit_code = EXIT_USAGE


class AuthProblem(click.ClickException):
    """Authentication failure: one line, exit 3."""

    exit_code = EXIT_AUTH


class RunProblem(click.ClickException):
    """Zoho or the network failed the command: one line, exit 1."""

    exit_code = EXIT_FAILED


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: task groups wrap what their
    tasks raise, but the user needs the error itself."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _problem(exc: BaseException) -> click.ClickException | None:
    if isinstance(exc, InvalidInputError):
        return InputProblem(REDACTOR(str(exc)))
    if isinstance(exc, TokenError | AuthError):
        return AuthProblem(REDACTOR(f"authentication failed: {exc}"))
    if isinstance(exc, ZohoError):
        return RunProblem(REDACTOR(str(exc)))
    return None


@contextlib.contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    """Map what escapes a command to its exit code, with a one-line message."""
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except (ZohoError, BaseExceptionGroup) as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, KeyboardInterrupt):
            raise SystemExit(EXIT_INTERRUPTED) from None
        problem = _problem(leaf)
        if problem is None:
            raise
        raise problem from None


def _output_options(formats: tuple[str, ...]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        func = click.option(
            "-v",
            "--verbose",
            count=True,
            help="Log more to stderr: -v INFO, -vv DEBUG (secrets are never logged).",
        )(func)
        func = click.option(
            "-q", "--quiet", is_flag=True, help="No progress, notes or summary on stderr."
        )(func)
        return click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(formats),
            default="table",
            show_default=True,
            help="What stdout gets. json/jsonl/csv print nothing else, so they pipe cleanly.",
        )(func)

    return decorate


def _connection_options(func: F) -> F:
    """The credential and endpoint options shared by every command that talks to Zoho."""
    options = [
        click.option("--client-id", envvar="ZOHO_CLIENT_ID", help="OAuth client id."),
        click.option(
            "--client-secret",
            envvar="ZOHO_CLIENT_SECRET",
            help="OAuth client secret. Discouraged as a flag (it shows in process lists "
            "and shell history): set ZOHO_CLIENT_SECRET instead.",
        ),
        click.option(
            "--refresh-token",
            envvar="ZOHO_REFRESH_TOKEN",
            help="OAuth refresh token. Discouraged as a flag: set ZOHO_REFRESH_TOKEN.",
        ),
        click.option(
            "--org-id",
            envvar="ZOHO_ORG_ID",
            help="Organisation id (ZANALYTICS-ORGID). When unset, each workspace's org is "
            "looked up.",
        ),
        click.option(
            "--data-center",
            envvar="ZOHO_DATA_CENTER",
            default="us",
            show_default=True,
            help="Zoho data centre: us, eu, in, au, cn, jp, sa or ca.",
        ),
        click.option("--api-url", envvar="ZOHO_API_URL", help="Override the Analytics API URL."),
        click.option(
            "--accounts-url", envvar="ZOHO_ACCOUNTS_URL", help="Override the accounts URL."
        ),
        click.option(
            "--token-cache",
            envvar="ZOHO_TOKEN_CACHE",
            type=click.Path(dir_okay=False),
            help="Where access tokens are cached between runs (default: tokens.json in the "
            "user cache directory). Refresh tokens and secrets are never written.",
        ),
        click.option(
            "--no-token-cache", is_flag=True, help="Keep the access token in memory only."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(kwargs: dict[str, Any], limits: Limits | None = None) -> ConnectionSettings:
    cache: Path | None = None
    if not kwargs.pop("no_token_cache"):
        given = kwargs.pop("token_cache")
        cache = Path(given).expanduser() if given else default_token_cache()
    else:
        kwargs.pop("token_cache")
    settings = ConnectionSettings(
        client_id=kwargs.pop("client_id"),
        client_secret=kwargs.pop("client_secret"),
        refresh_token=kwargs.pop("refresh_token"),
        org_id=kwargs.pop("org_id"),
        data_center=kwargs.pop("data_center"),
        api_url=kwargs.pop("api_url"),
        accounts_url=kwargs.pop("accounts_url"),
        token_cache=cache,
        limits=limits,
    )
    settings.register_secrets()
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="zoho-async")
def cli() -> None:
    """Trigger Zoho Analytics "Sync Data" across many datasources, and look around.

    \b
    Try it without an account:  zoho-async demo
    Sync a whole workspace:     zoho-async sync 35130000001055707
    Sync some datasources:      zoho-async sync 35130000001055707 1767024000004595194
    """


# -- sync -------------------------------------------------------------------------------


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None or "-" in (a, b):
        return False
    return os.path.abspath(a) == os.path.abspath(b)


def _warn(quiet: bool) -> Callable[[str], None]:
    def warn(text: str) -> None:
        if not quiet:
            click.echo(f"Warning: {REDACTOR(text)}", err=True)

    return warn


@cli.command(epilog=EXIT_CODES_HELP + "\n" + CREDENTIALS_HELP)
@click.argument("ids", nargs=-1, metavar="[WORKSPACE_ID [DATASOURCE_ID ...]]")
@click.option(
    "-w", "--workspace", "workspaces", multiple=True, metavar="ID",
    help="Sync every syncable datasource of this workspace (repeatable).",
)  # fmt: skip
@click.option(
    "-t", "--targets", "targets_file", metavar="FILE",
    help="Read targets from CSV (workspace_id,datasource_id[,org_id,sync_interval_id], "
    "header optional) or JSON Lines; '-' reads stdin.",
)  # fmt: skip
@click.option("--wait", is_flag=True, help="Wait for each sync to finish; report the outcome.")
@click.option(
    "--wait-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="With --wait: give up waiting for an outcome after this long (default 3600).",
)  # fmt: skip
@click.option(
    "--poll-interval", type=click.FloatRange(min=0, min_open=True), default=30.0,
    show_default=True, metavar="SECONDS", help="With --wait: how often to poll for outcomes.",
)  # fmt: skip
@click.option(
    "--deadline", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="Stop sending syncs after this long; the rest are CANCELLED.",
)  # fmt: skip
@click.option(
    "--rate", type=click.IntRange(min=1), default=100, show_default=True, metavar="N",
    help="Requests a minute per org, in all (Zoho's limit: 100).",
)  # fmt: skip
@click.option(
    "--metadata-rate", type=click.IntRange(min=1), default=60, show_default=True, metavar="N",
    help="Metadata calls (Sync Data, listings) a minute per org (Zoho's limit: 60).",
)  # fmt: skip
@click.option(
    "--max-in-flight", type=click.IntRange(min=1), default=8, show_default=True, metavar="N",
    help="Requests in flight at once.",
)  # fmt: skip
@click.option(
    "--sync-interval-id", metavar="ID",
    help="Interval to sync, for the datasources named on the command line or in --targets "
    "rows without one.",
)  # fmt: skip
@click.option(
    "--dry-run", is_flag=True,
    help="Show the plan and the quota it would spend; send no sync.",
)  # fmt: skip
@click.option(
    "-o", "--output", metavar="FILE",
    help="Write results as JSON Lines, one per line, as they arrive (a killed run leaves a "
    "valid partial file). Appends when FILE is the --resume/--only-failed file.",
)  # fmt: skip
@click.option(
    "--resume", metavar="FILE",
    help="Skip targets already STARTED/ALREADY_RUNNING in this results file, and append "
    "the new results to it (or to --output).",
)  # fmt: skip
@click.option(
    "--only-failed", metavar="FILE",
    help="Re-run the FAILED and CANCELLED targets of this results file.",
)  # fmt: skip
@click.option("--progress-interval", type=float, default=10.0, hidden=True)
@click.option("--grace", type=float, default=3.0, hidden=True)
@_output_options(FORMATS)
@_connection_options
def sync(**kwargs: Any) -> None:
    """Start Sync Data for a workspace's datasources, or for a list of targets.

    With a WORKSPACE_ID alone, every syncable datasource of the workspace is synced
    (Local Drive and Snapshot entries are SKIPPED; spent quotas are QUOTA_EXHAUSTED
    without a call). With DATASOURCE_IDs, only those. Combine with --workspace and
    --targets freely. Calls are paced within Zoho's per-minute limits and retried only
    when that cannot start a second sync.
    """
    fmt, quiet, verbose = kwargs.pop("fmt"), kwargs.pop("quiet"), kwargs.pop("verbose")
    setup_logging(verbose, quiet)
    with _errors_to_exit_codes():
        limits = Limits(
            requests_per_minute=kwargs.pop("rate"),
            metadata_per_minute=kwargs.pop("metadata_rate"),
            max_in_flight=kwargs.pop("max_in_flight"),
        )
        options = _sync_options(kwargs, fmt, quiet)
        settings = _settings(kwargs, limits)
        if kwargs.pop("dry_run"):
            from ._cli_plan import run_plan

            if options.output:
                raise InvalidInputError("--dry-run writes no results; drop --output")
            code = run_plan(
                settings,
                options.spec,
                skip=options.skip,
                fmt=fmt,
                quiet=quiet,
                metadata_rate=limits.metadata_per_minute,
            )
        else:
            code = run_sync(settings, options)
    raise SystemExit(code)


def _sync_options(kwargs: dict[str, Any], fmt: str, quiet: bool) -> SyncOptions:
    """Validate the target options and read every input file before any request."""
    interval = kwargs.pop("sync_interval_id")
    resume, only_failed = kwargs.pop("resume"), kwargs.pop("only_failed")
    output = kwargs.pop("output")
    spec = spec_from_arguments(
        kwargs.pop("ids"), kwargs.pop("workspaces"), sync_interval_id=interval
    )
    targets_file = kwargs.pop("targets_file")
    if targets_file:
        spec = spec + read_targets(targets_file, sync_interval_id=interval)
    if resume and only_failed:
        raise InvalidInputError("use either --resume or --only-failed, not both")
    skip: frozenset[tuple[str, str | None, str | None]] = frozenset()
    append = False
    if only_failed:
        if not spec.empty:
            raise InvalidInputError("--only-failed takes its targets from FILE; name no others")
        spec = read_results(only_failed, warn=_warn(quiet)).failed()
        if spec.empty:
            _warn(quiet)(f"{only_failed}: nothing FAILED or CANCELLED to re-run")
        append = _same_file(output, only_failed)
    elif resume:
        skip = read_results(resume, warn=_warn(quiet), missing_ok=True).done()
        output = output or resume
        append = _same_file(output, resume)
    if spec.empty and not only_failed:
        raise InvalidInputError(
            "nothing to sync: give a WORKSPACE_ID, --workspace or --targets (see --help)"
        )
    return SyncOptions(
        spec=spec,
        skip=skip,
        wait=kwargs.pop("wait"),
        wait_timeout=kwargs.pop("wait_timeout"),
        deadline=kwargs.pop("deadline"),
        poll_interval=kwargs.pop("poll_interval"),
        output=output,
        append=append,
        fmt=fmt,
        quiet=quiet,
        progress_interval=kwargs.pop("progress_interval"),
        grace=kwargs.pop("grace"),
    )


# -- listings ---------------------------------------------------------------------------


@cli.command(epilog=CREDENTIALS_HELP)
@_output_options(FORMATS)
@_connection_options
def orgs(fmt: str, quiet: bool, verbose: int, **kwargs: Any) -> None:
    """List your organisations."""
    from ._cli_listings import list_orgs

    setup_logging(verbose, quiet)
    with _errors_to_exit_codes():
        list_orgs(_settings(kwargs), fmt)


@cli.command(epilog=CREDENTIALS_HELP)
@click.option(
    "--kind", type=click.Choice(["all", "owned", "shared"]), default="all", show_default=True
)
@_output_options(FORMATS)
@_connection_options
def workspaces(fmt: str, quiet: bool, verbose: int, kind: str, **kwargs: Any) -> None:
    """List your workspaces (owned and shared)."""
    from ._cli_listings import list_workspaces

    setup_logging(verbose, quiet)
    with _errors_to_exit_codes():
        list_workspaces(_settings(kwargs), fmt, kind)


@cli.command(epilog=CREDENTIALS_HELP)
@click.argument("workspace_id")
@_output_options(FORMATS)
@_connection_options
def datasources(fmt: str, quiet: bool, verbose: int, workspace_id: str, **kwargs: Any) -> None:
    """List a workspace's datasources: schedule, last sync, quota used, intervals."""
    from ._cli_listings import list_datasources
    from ._validation import check_id

    setup_logging(verbose, quiet)
    with _errors_to_exit_codes():
        list_datasources(_settings(kwargs), fmt, check_id(workspace_id, "WORKSPACE_ID"))


# -- the fake ---------------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--workspaces", "n_workspaces", type=click.IntRange(1, 50), default=5,
              show_default=True, help="Workspaces in the fake.")  # fmt: skip
@click.option("--datasources", "n_datasources", type=click.IntRange(1, 1000), default=60,
              show_default=True, help="Datasources per workspace.")  # fmt: skip
@click.option("--rate", type=click.IntRange(min=1), default=1200, show_default=True,
              help="Metadata calls a minute, for the fake and the client alike.")  # fmt: skip
@click.option("--wait", is_flag=True, help="Also wait for the syncs' outcomes.")
@click.option("-o", "--output", metavar="FILE", help="Write results as JSON Lines.")
@click.option("--progress-interval", type=float, default=5.0, hidden=True)
@_output_options(FORMATS)
def demo(
    n_workspaces: int,
    n_datasources: int,
    rate: int,
    wait: bool,
    output: str | None,
    progress_interval: float,
    fmt: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Run a real bulk sync against a built-in fake Zoho (no account needed).

    A few hundred datasources over several workspaces, some already running, some out of
    quota, one forbidden, one Local Drive file, some slow to answer; the fake's per-minute
    limit is scaled so the run takes well under a minute. It runs through the same code
    as `sync`. The forbidden datasource FAILS, so the demo exits 1, like a real run with
    a failure.
    """
    from ._cli_demo import run_demo

    setup_logging(verbose, quiet)
    with _errors_to_exit_codes():
        code = run_demo(
            workspaces=n_workspaces,
            datasources=n_datasources,
            rate=rate,
            wait=wait,
            fmt=fmt,
            output=output,
            quiet=quiet,
            progress_interval=progress_interval,
        )
    raise SystemExit(code)


@cli.command("fake-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: any free port).")  # fmt: skip
@click.option("--workspaces", "n_workspaces", type=click.IntRange(1), default=3,
              show_default=True)  # fmt: skip
@click.option("--datasources", "n_datasources", type=click.IntRange(1), default=20,
              show_default=True, help="Datasources per workspace.")  # fmt: skip
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="MS", help="Milliseconds added to every answer.")  # fmt: skip
@click.option("--rate-limit", type=click.IntRange(min=0), default=60, show_default=True,
              metavar="N", help="Metadata calls a minute per org (0: no limit).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fake world.")
@click.option("--plain", is_flag=True, help="Only plain syncable datasources (no mix).")
def fake_server(
    host: str,
    port: int,
    n_workspaces: int,
    n_datasources: int,
    latency: float,
    rate_limit: int,
    seed: int,
    plain: bool,
) -> None:
    """Run a fake Zoho Analytics in the foreground, for testing your own code.

    Prints its URL and the client credentials to use (the fake's own, not secrets).
    Stop it with Ctrl-C.
    """
    from ._cli_demo import serve_fake

    with _errors_to_exit_codes():
        code = serve_fake(
            host=host,
            port=port,
            workspaces=n_workspaces,
            datasources=n_datasources,
            latency_ms=latency,
            rate_limit=rate_limit,
            seed=seed,
            mix=not plain,
        )
    raise SystemExit(code)
