"""The ``zoho-async`` command group and what its commands share.

Each command lives in its own module (``_sync``, ``_listings``, ``_demo``) as a thin
shell of Click options that turns them into settings and hands them to a helper;
:func:`errors_to_exit_codes` maps what escapes to the documented exit codes, printing one
line and never a traceback or a secret.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from zoho_async import (
    AuthError,
    CoordinatorUnavailableError,
    InvalidInputError,
    Limits,
    TokenError,
    ZohoError,
    __version__,
)

from ._config import REDACTOR, ConnectionSettings, default_shared, default_token_cache
from ._profiles_cli import fill_secrets, profile_option
from ._summary import EXIT_AUTH, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE

__all__ = [
    "CREDENTIALS_HELP",
    "EXIT_CODES_HELP",
    "cli",
    "connection_options",
    "errors_to_exit_codes",
    "output_options",
    "settings_from",
]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes:
  0    every result ok: STARTED or ALREADY_RUNNING (with --wait: and finished
       "Success"); SKIPPED, QUOTA_EXHAUSTED and CLAIMED (another run sharing
       --shared has it) do not fail a run
  1    some target FAILED, CANCELLED or UNCONFIRMED (may have started; not
       re-sent), or (--wait) ended otherwise or not in time
  2    usage or input error (bad ids, unreadable targets file, missing or
       unreadable --resume/--only-failed file, a results file another run has
       open, options that conflict, an unwritable token cache, --shared store
       unavailable, ...)
  3    authentication failure
  130  interrupted (Ctrl-C), after writing a result for every target
  143  terminated (SIGTERM, e.g. timeout or a CI job's limit), handled like
       Ctrl-C: a result for every target and the summary
"""

CREDENTIALS_HELP = """\b
Credentials and settings come from the flags, the environment or a profile
(zoho-async auth login; --profile or ZOHO_PROFILE, file ZOHO_CONFIG; see
'zoho-async config show' and the README's Credentials section):
  ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN, ZOHO_ORG_ID,
  ZOHO_DATA_CENTER (us, eu, in, au, cn, jp, sa, ca), ZOHO_API_URL,
  ZOHO_ACCOUNTS_URL, ZOHO_TOKEN_CACHE, ZOHO_PROXY, ZOHO_CA_BUNDLE, ZOHO_SHARED.
  HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured unless --proxy is given.
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
    if isinstance(exc, CoordinatorUnavailableError):
        # the --shared store is part of the set-up: a usage problem, exit 2
        text = str(exc)
        if not text.startswith("shared state unavailable"):
            text = f"shared state unavailable: {text}"
        return InputProblem(REDACTOR(text))
    if isinstance(exc, TokenError | AuthError):
        return AuthProblem(REDACTOR(f"authentication failed: {exc}"))
    if isinstance(exc, ZohoError):
        return RunProblem(REDACTOR(str(exc)))
    return None


@contextlib.contextmanager
def errors_to_exit_codes() -> Iterator[None]:
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


def output_options(formats: tuple[str, ...]) -> Callable[[F], F]:
    """``-v``, ``-q`` and ``-f/--format``, for every command that prints results."""

    def decorate(func: F) -> F:
        func = click.option(
            "-v",
            "--verbose",
            count=True,
            help="Log more to stderr: -v token refreshes, retries and rate-limit pauses as "
            "they happen, -vv every request too (DEBUG). Secrets are never logged.",
        )(func)
        func = click.option(
            "-q",
            "--quiet",
            is_flag=True,
            help="Print only errors: no progress, notes, warnings or summary; after a run, "
            "the Failures table only if a result failed.",
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


def connection_options(func: F) -> F:
    """The credential and endpoint options shared by every command that talks to Zoho."""
    options = [
        profile_option,
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
            "--proxy",
            envvar="ZOHO_PROXY",
            metavar="URL",
            help="HTTP proxy for every request to Zoho (token and API), "
            "http://[user:password@]host:port. Default: HTTPS_PROXY / HTTP_PROXY from the "
            "environment, NO_PROXY honoured. Prefer ZOHO_PROXY when it holds a password.",
        ),
        click.option(
            "--ca-bundle",
            envvar="ZOHO_CA_BUNDLE",
            type=click.Path(exists=True, dir_okay=False),
            metavar="FILE",
            help="PEM file of the CAs to trust for Zoho's TLS instead of the system store "
            "(e.g. the CA of a TLS-inspecting corporate proxy).",
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
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=30.0,
            show_default=True,
            metavar="SECONDS",
            help="Per-request timeout. Also how long --resume lets the requests of a killed "
            "run settle before it reads their outcome.",
        ),
        click.option(
            "--shared",
            envvar="ZOHO_SHARED",
            metavar="SPEC",
            help="Where Zoho's budgets (token, pace, claims) are shared with other runs: "
            "sqlite:PATH (this host), redis://HOST:PORT/DB or rediss://... (many hosts), or "
            "local (this process only). Default: sqlite: beside the token cache (local with "
            "--no-token-cache).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from(kwargs: dict[str, Any], limits: Limits | None = None) -> ConnectionSettings:
    """Pop the :func:`connection_options` from a command's ``kwargs`` into settings."""
    fill_secrets(kwargs)  # --profile's secrets, when no flag or variable gave them
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
        proxy=kwargs.pop("proxy") or None,
        ca_bundle=kwargs.pop("ca_bundle") or None,
        token_cache=cache,
        limits=limits,
        shared=kwargs.pop("shared") or default_shared(cache),
        timeout=kwargs.pop("timeout"),
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
    Shell completion (bash):    eval "$(_ZOHO_ASYNC_COMPLETE=bash_source zoho-async)"
                                (zsh_source, fish_source for zsh and fish)
    """
