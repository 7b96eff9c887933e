"""``zoho-async auth login | status | logout``: from a Self Client grant code to a stored
refresh token, a check of it, and its revocation.

A real user gets a grant code from the API Console of their data centre (Self Client ->
Generate Code); ``fake-server`` prints one. ``login`` exchanges it at the accounts server
(``grant_type=authorization_code``) and keeps the refresh token and the client secret in
the OS keyring, or, without a usable keyring, in the profile file with mode 0600.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import attrs
import click

from zoho_async import (
    DATA_CENTRES,
    AnalyticsSession,
    GrantedTokens,
    InvalidInputError,
    ProtocolError,
    TokenError,
    TokenRefreshError,
    TransportError,
    exchange_grant_code,
    revoke_refresh_token,
)
from zoho_async.profiles import (
    REQUIRED_SCOPES,
    Endpoints,
    SecretStore,
    resolve_endpoints,
    write_profile,
)

from ._app import (
    CREDENTIALS_HELP,
    AuthProblem,
    InputProblem,
    RunProblem,
    connection_options,
    errors_to_exit_codes,
    settings_from,
)
from ._config import REDACTOR, proxy_secrets, setup_logging
from ._profiles_cli import profile_option, secret_sources

__all__ = ["auth", "console_url", "login_steps"]

#: Zoho's default lifetime of a grant code, in minutes (the console offers up to 10).
CODE_MINUTES = 3

F = TypeVar("F", bound=Callable[..., Any])


def console_url(accounts_url: str) -> str:
    """The API Console of the data centre whose accounts server this is.

    >>> console_url("https://accounts.zoho.eu")
    'https://api-console.zoho.eu'
    """
    host = urlsplit(accounts_url).hostname or ""
    if host.startswith("accounts."):
        return "https://api-console." + host.removeprefix("accounts.")
    return "https://api-console.zoho.com"


def login_steps(data_center: str, accounts_url: str) -> str:
    """What the user does in the API Console, step by step."""
    known = {dc.accounts_url for dc in DATA_CENTRES.values()}
    # the data centre's console, also when the accounts URL is overridden (a proxy)
    dc = DATA_CENTRES.get(data_center.strip().lower())
    console = console_url(dc.accounts_url if dc else accounts_url)
    lines = [f"Log in to Zoho Analytics (data centre {data_center}, accounts {accounts_url}):"]
    if accounts_url not in known:
        lines.append(
            "  This accounts server is not one of Zoho's: get the grant code from it (a "
            "fake-server prints one) and skip steps 1-3."
        )
    lines += [
        f"  1. Open {console} and sign in (the console of your data centre).",
        "  2. Add Client > Self Client (once); copy its Client ID and Client Secret.",
        '  3. Open the Self Client\'s "Generate Code" tab and enter these scopes:',
        "       " + ",".join(REQUIRED_SCOPES),
        "     (metadata.create: Sync Data; metadata.read: organisations, workspaces,",
        "     datasources; ZohoAnalytics.fullaccess.all also covers both). Pick a time",
        f"     duration ({CODE_MINUTES} minutes by default, 10 at most), a description, "
        "then Create.",
        "  4. Paste the grant code below before it expires (it works once).",
    ]
    return "\n".join(lines)


@attrs.frozen
class Network:
    """How ``login`` and ``logout`` reach the accounts server: as every other command
    does (``--proxy``/``ZOHO_PROXY``, else the environment's; ``--ca-bundle``)."""

    proxy: str | None = None
    ca_bundle: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"proxy": self.proxy or None, "ssl": self.ca_bundle or None}


def exchange_code(
    accounts_url: str, client_id: str, client_secret: str, code: str, network: Network
) -> GrantedTokens:
    """Exchange a grant code for tokens (the SDK's :func:`exchange_grant_code`); one-line
    errors for Zoho's refusals."""
    call = functools.partial(
        exchange_grant_code,
        code,
        client_id=client_id,
        client_secret=client_secret,
        accounts_url=accounts_url,
        **network.kwargs(),
    )
    try:
        return anyio.run(call)
    except TokenRefreshError as exc:
        if exc.error.lower() == "invalid_code":
            raise AuthProblem(
                "grant code rejected (invalid_code): expired or already used: generate a "
                f"new code, they last {CODE_MINUTES} minutes unless you chose longer"
            ) from None
        if exc.error.lower() == "invalid_client":
            raise AuthProblem(
                f"client rejected (invalid_client): check the client id and secret, and that "
                f"{accounts_url} is your data centre's accounts server (--data-center)"
            ) from None
        raise AuthProblem(REDACTOR(f"grant code exchange failed: {exc}")) from None
    except (TransportError, ProtocolError, TokenError) as exc:
        raise RunProblem(REDACTOR(f"grant code exchange failed: {exc}")) from None


def network_options(func: F) -> F:
    """``--proxy`` and ``--ca-bundle``, as :func:`connection_options` spells them."""
    func = click.option(
        "--ca-bundle",
        envvar="ZOHO_CA_BUNDLE",
        type=click.Path(exists=True, dir_okay=False),
        metavar="FILE",
        help="PEM file of the CAs to trust for the accounts server's TLS.",
    )(func)
    return click.option(
        "--proxy",
        envvar="ZOHO_PROXY",
        metavar="URL",
        help="HTTP proxy to the accounts server (default: HTTPS_PROXY from the environment).",
    )(func)


def _endpoints(data_center: str, api_url: str | None, accounts_url: str | None) -> Endpoints:
    """The data centre's hosts, overrides applied; a bad one is a usage error (exit 2)."""
    try:
        return resolve_endpoints(data_center, api_url, accounts_url)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None


# -- the commands ---------------------------------------------------------------------


@click.group()
def auth() -> None:
    """Log in with a Self Client grant code, check the credential, log out.

    \b
    Try it against the fake first:
      zoho-async fake-server            # prints a grant code and the export lines
      zoho-async auth login --accounts-url http://127.0.0.1:8765 \\
          --api-url http://127.0.0.1:8765 --code CODE
    """


@auth.command()
@functools.partial(profile_option, creates=True)
@click.option("--data-center", envvar="ZOHO_DATA_CENTER", default="us", show_default=True,
              help="Zoho data centre: us, eu, in, au, cn, jp, sa or ca.")  # fmt: skip
@click.option("--api-url", envvar="ZOHO_API_URL", help="Override the Analytics API URL.")
@click.option("--accounts-url", envvar="ZOHO_ACCOUNTS_URL", help="Override the accounts URL.")
@click.option("--client-id", envvar="ZOHO_CLIENT_ID", help="The Self Client's Client ID.")
@click.option("--client-secret", envvar="ZOHO_CLIENT_SECRET",
              help="The Self Client's Client Secret (prompted, hidden, when not given; "
              "prefer the prompt or ZOHO_CLIENT_SECRET to the flag).")  # fmt: skip
@click.option("--org-id", envvar="ZOHO_ORG_ID", help="Default organisation id to store.")
@click.option("--code", help="The grant code (prompted, hidden, when not given).")
@network_options
def login(
    new_profile: str,
    data_center: str,
    api_url: str | None,
    accounts_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    org_id: str | None,
    code: str | None,
    proxy: str | None,
    ca_bundle: str | None,
) -> None:
    """Exchange a grant code for a refresh token and store it in PROFILE.

    Prints the API Console URL and the scopes to tick, asks for what is missing, then
    stores the refresh token and client secret in the OS keyring (or, with no usable
    keyring, in the profile file with mode 0600, with a warning) and the rest in the
    profile.
    """
    profile = new_profile
    with errors_to_exit_codes():
        endpoints = _endpoints(data_center, api_url, accounts_url)
        store = SecretStore()
        click.echo(login_steps(data_center, endpoints.accounts_url), err=True)
        if not client_id:
            client_id = click.prompt("Client ID", err=True).strip()
        if not client_secret:
            client_secret = store.get(profile, "client_secret")[0] if store.path.exists() else None
        if not client_secret:
            client_secret = click.prompt("Client Secret", hide_input=True, err=True).strip()
        if not code:
            code = click.prompt("Grant code", hide_input=True, err=True).strip()
        if not (client_id and client_secret and code):
            raise InputProblem("the client id, client secret and grant code must not be empty")
        REDACTOR.add(client_secret, code, *proxy_secrets(proxy))
        network = Network(proxy, ca_bundle)
        tokens = exchange_code(endpoints.accounts_url, client_id, client_secret, code, network)
        refresh_token = tokens.refresh_token
        REDACTOR.add(refresh_token, tokens.access_token)
        path = write_profile(
            profile,
            {
                "data_center": data_center,
                "client_id": client_id,
                "org_id": org_id,
                "api_url": api_url,
                "accounts_url": accounts_url,
            },
        )
        where = store.put(profile, "refresh_token", refresh_token)
        store.put(profile, "client_secret", client_secret)
    if where == "keyring":
        kept = "in the OS keyring (service zoho-async)"
    else:
        kept = f"in {path} (mode 0600)"
        click.echo(
            f"warning: no usable OS keyring: the refresh token and client secret are stored "
            f"in {path}, readable by you only (mode 0600); use a keyring or ZOHO_* variables "
            "where that is not acceptable",
            err=True,
        )
    scope = tokens.scope
    click.echo(
        f"Logged in: profile {profile!r}, data centre {data_center}"
        + (f", scopes {scope}" if scope else "")
        + f". Refresh token and client secret stored {kept}; settings in {path}."
    )
    click.echo(
        "Note: each login makes a new refresh token and Zoho keeps at most 20 per user, "
        "deleting the oldest even if something still uses it: 'zoho-async auth logout' "
        "the ones you no longer need.",
        err=True,
    )


@auth.command(epilog=CREDENTIALS_HELP)
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table for people, json for scripts.")  # fmt: skip
@connection_options
def status(fmt: str, **kwargs: Any) -> None:
    """Check the credential: get (or reuse) an access token and list the organisations.

    Shows the data centre, the accounts and API hosts, the organisations and how long the
    access token is still valid; never a secret.
    """
    setup_logging(0, False)
    profile = kwargs.get("profile")
    data_center = kwargs.get("data_center")
    with errors_to_exit_codes():
        settings = settings_from(kwargs)
        sources = secret_sources()

        async def check() -> dict[str, Any]:
            async with settings.session() as session:
                REDACTOR.add(await session.get_access_token())
                orgs = await session.get_orgs()
                left = session.snapshot().token_expires_in
                return _status(session, orgs, left)

        info: dict[str, Any] = anyio.run(check)
    info = {"profile": profile, "data_center": data_center, **info, "secrets": sources}
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    left = info["token_expires_in"]
    click.echo(f"profile        {profile}")
    click.echo(f"data centre    {data_center}")
    click.echo(f"accounts       {info['accounts_url']}")
    click.echo(f"API            {info['api_url']}")
    click.echo("access token   " + (f"valid for {left // 60} min {left % 60} s" if left else "?"))
    for key, where in sources.items():
        click.echo(f"{key:<15}*** ({where})")
    for org in info["orgs"]:
        mark = " (default)" if org["is_default"] else ""
        click.echo(f"org            {org['org_id']}  {org['name']}{mark}")


def _status(session: AnalyticsSession, orgs: list[Any], left: float | None) -> dict[str, Any]:
    return {
        "accounts_url": session.endpoints.accounts_url,
        "api_url": session.endpoints.api_url,
        "token_expires_in": None if left is None else int(left),
        "orgs": [{"org_id": o.org_id, "name": o.name, "is_default": o.is_default} for o in orgs],
    }


@auth.command()
@profile_option
@click.option("--data-center", envvar="ZOHO_DATA_CENTER", default="us", show_default=True,
              help="Zoho data centre of the token.")  # fmt: skip
@click.option("--api-url", envvar="ZOHO_API_URL", hidden=True)
@click.option("--accounts-url", envvar="ZOHO_ACCOUNTS_URL", help="Override the accounts URL.")
@click.option("--all", "forget_client", is_flag=True,
              help="Also delete the stored client secret.")  # fmt: skip
@network_options
def logout(
    profile: str,
    data_center: str,
    api_url: str | None,
    accounts_url: str | None,
    forget_client: bool,
    proxy: str | None,
    ca_bundle: str | None,
) -> None:
    """Revoke PROFILE's refresh token at Zoho and delete it locally (keyring and file).

    When Zoho cannot be reached or refuses, the token is still deleted here, with a
    warning: then remove it in Zoho Accounts (Sessions > Connected Apps).
    """
    with errors_to_exit_codes():
        endpoints = _endpoints(data_center, api_url, accounts_url)
        store = SecretStore()
        token = store.get(profile, "refresh_token")[0] if store.path.exists() else None
        if token is None:
            click.echo(f"No refresh token stored for profile {profile!r}: nothing to revoke.")
        else:
            REDACTOR.add(token, *proxy_secrets(proxy))
            _revoke_at_zoho(endpoints.accounts_url, token, Network(proxy, ca_bundle))
            removed = store.delete(profile, "refresh_token")
            places = ["OS keyring" if r == "keyring" else "profile file" for r in removed]
            click.echo(
                f"Deleted the refresh token of profile {profile!r} from the "
                + " and the ".join(places)
                + "."
            )
        if forget_client and store.delete(profile, "client_secret"):
            click.echo(f"Deleted the client secret of profile {profile!r}.")


def _revoke_at_zoho(accounts_url: str, token: str, network: Network) -> None:
    call = functools.partial(
        revoke_refresh_token, token, accounts_url=accounts_url, **network.kwargs()
    )
    try:
        anyio.run(call)
    except (TransportError, ProtocolError, TokenError, InvalidInputError) as exc:
        problem = str(exc)
    else:
        click.echo(f"Revoked the refresh token at {accounts_url}.")
        return
    click.echo(
        REDACTOR(
            f"warning: could not revoke the refresh token ({problem}); deleting it here "
            "anyway: remove it in Zoho Accounts (Sessions > Connected Apps) if it still works"
        ),
        err=True,
    )
