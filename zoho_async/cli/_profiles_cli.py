"""``--profile`` for the commands that talk to Zoho, and ``zoho-async config show``.

How a profile reaches a command: ``--profile`` (or ``ZOHO_PROFILE``) is an eager option,
processed before the others; its callback puts the profile's values into Click's
``default_map``, so each option resolves as flag, then environment, then profile, then
its built-in default, and Click records which one won. Secrets are looked up only when
neither a flag nor the environment gave one (:func:`fill_secrets`), so a CI run with
``ZOHO_*`` variables never touches a keyring.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from zoho_async import InvalidInputError
from zoho_async.profiles import (
    PROFILE_KEYS,
    SECRET_KEYS,
    ResolvedSettings,
    SecretStore,
    profile_name,
    read_profiles,
    resolve_settings,
)

__all__ = [
    "config",
    "fill_secrets",
    "profile_option",
    "profile_workspaces",
    "secret_sources",
]

_META = "zoho_async.profile"
# Keys a profile may default for any command that has an option of that name. The
# profile's workspaces are not among them: they are sync's targets only when it is given
# none at all (see profile_workspaces), never added to the ones it is given.
_DEFAULTABLE = frozenset(PROFILE_KEYS) - {"workspaces"}


def _load_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    try:
        name = profile_name(value)
        profiles = read_profiles()
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None
    # a profile named by flag or ZOHO_PROFILE must exist, except for the command making it
    if name not in profiles and value and param.name != "new_profile":
        known = ", ".join(profiles) or "none yet"
        raise click.BadParameter(
            f"no profile {name!r} (profiles: {known}); create it with "
            f"'zoho-async auth login --profile {name}'"
        )
    table = profiles.get(name, {})
    names = {p.name for p in ctx.command.params}
    defaults = {k: v for k, v in table.items() if k in _DEFAULTABLE and k in names}
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta[_META] = (name, table, name in profiles)
    return name


def profile_option(func: Any, *, creates: bool = False) -> Any:
    """``--profile NAME`` (env ``ZOHO_PROFILE``; default: "default" when the file has it).

    ``creates``: the command writes the profile (``auth login``), so it may not exist yet;
    the command then gets it as ``new_profile``.
    """
    return click.option(
        "--profile",
        "new_profile" if creates else "profile",
        envvar="ZOHO_PROFILE",
        metavar="NAME",
        is_eager=True,
        expose_value=True,
        callback=_load_profile,
        help="Settings profile of config.toml (see 'zoho-async config show'); flags and "
        "ZOHO_* variables override it. Default: ZOHO_PROFILE, else 'default' if present.",
    )(func)


def _current() -> tuple[str, dict[str, Any], bool] | None:
    """(profile name, its table, whether the file has it) of the running command."""
    ctx = click.get_current_context(silent=True)
    found: tuple[str, dict[str, Any], bool] | None = ctx.meta.get(_META) if ctx else None
    return found


def fill_secrets(kwargs: dict[str, Any]) -> None:
    """Pop ``profile`` from a command's kwargs and fill a missing client secret or refresh
    token from the profile's keyring entry or file (only for a profile that exists)."""
    kwargs.pop("profile", None)
    current = _current()
    if current is None or not current[2]:
        return  # no such profile: nothing to look up, and no keyring access
    store: SecretStore | None = None
    found: dict[str, str] = {}
    for key in SECRET_KEYS:
        if not kwargs.get(key):
            store = store or SecretStore()
            kwargs[key], where = store.get(current[0], key)
            if where:
                found[key] = where
    ctx = click.get_current_context()
    ctx.meta[_META + ".secrets"] = found


def secret_sources() -> dict[str, str]:
    """Where this command's secrets came from: flag, env, keyring, file or missing."""
    ctx = click.get_current_context()
    stored: dict[str, str] = ctx.meta.get(_META + ".secrets", {})
    sources = {}
    for key in SECRET_KEYS:
        source = ctx.get_parameter_source(key)
        if source == click.core.ParameterSource.COMMANDLINE:
            sources[key] = "flag"
        elif source == click.core.ParameterSource.ENVIRONMENT:
            sources[key] = "env"
        else:
            sources[key] = stored.get(key, "missing")
    return sources


def profile_workspaces() -> tuple[str, ...]:
    """The profile's default workspaces, for a ``sync`` given no targets."""
    current = _current()
    if current is None:
        return ()
    return tuple(str(w) for w in current[1].get("workspaces", ()))


def explicit_settings(ctx: click.Context) -> dict[str, Any]:
    """The profile settings this command got from flags (the command line itself)."""
    explicit = {}
    for key in (*PROFILE_KEYS, *SECRET_KEYS):
        if ctx.params.get(key) is None:
            continue
        if ctx.get_parameter_source(key) == click.core.ParameterSource.COMMANDLINE:
            explicit[key] = ctx.params[key]
    return explicit


# -- config show ----------------------------------------------------------------------


@click.group()
def config() -> None:
    """Settings profiles (config.toml) and where each setting comes from."""


def _rows(resolved: ResolvedSettings) -> list[dict[str, str]]:
    rows = [
        {"setting": "profile", "value": resolved.profile, "source": ""},
        {"setting": "config_file", "value": str(resolved.path), "source": ""},
    ]
    rows += [{"setting": k, "value": v, "source": s} for k, v, s in resolved.rows()]
    return rows


@config.command("show")
@profile_option
@click.option("--client-id", help="OAuth client id.")
@click.option("--client-secret", help="OAuth client secret (shown masked).")
@click.option("--refresh-token", help="OAuth refresh token (shown masked).")
@click.option("--org-id", help="Organisation id.")
@click.option("--data-center", help="Zoho data centre.")
@click.option("--api-url", help="Analytics API URL.")
@click.option("--accounts-url", help="Accounts URL.")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts.",
)
def show(profile: str, fmt: str, **_flags: Any) -> None:
    """Print the resolved settings and where each comes from: flag, env, profile,
    default; secrets as *** with where they are kept (keyring, env, file, flag).

    The order is: flags, then ZOHO_* variables, then the profile, then defaults.
    """
    ctx = click.get_current_context()
    try:
        # the implicit "default" may be absent; a profile named by flag must exist
        named = ctx.get_parameter_source("profile") == click.core.ParameterSource.COMMANDLINE
        resolved = resolve_settings(profile if named else None, explicit=explicit_settings(ctx))
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None
    rows = _rows(resolved)
    if fmt == "json":
        click.echo(json.dumps({r["setting"]: {"value": r["value"], "source": r["source"]}
                               for r in rows}, indent=2))  # fmt: skip
        return
    width = max(len(r["setting"]) for r in rows)
    vwidth = max(len(r["value"]) for r in rows)
    for r in rows:
        source = f"({r['source']})" if r["source"] else ""
        click.echo(f"{r['setting']:<{width}}  {r['value']:<{vwidth}}  {source}".rstrip())


def config_file_note(path: Path) -> str:
    """How the user sees where the profile file is."""
    return f"profile file: {path}"
