"""The ``ZOHO_*`` environment variables, read into :class:`AnalyticsSession` keywords.

The same variables that ``zoho-async fake-server`` prints and the command line reads, so a
program, the CLI and the fake agree on one set of names. Kept apart from the session so
that other sources of settings (profiles) can layer themselves under or over it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._errors import MissingCredentialsError

__all__ = ["CREDENTIALS", "ENV_VARS", "HELP", "read_env", "session_kwargs"]

#: AnalyticsSession keyword -> the environment variable it is read from.
ENV_VARS: Mapping[str, str] = {
    "client_id": "ZOHO_CLIENT_ID",
    "client_secret": "ZOHO_CLIENT_SECRET",
    "refresh_token": "ZOHO_REFRESH_TOKEN",
    "org_id": "ZOHO_ORG_ID",
    "data_center": "ZOHO_DATA_CENTER",
    "api_url": "ZOHO_API_URL",
    "accounts_url": "ZOHO_ACCOUNTS_URL",
    "proxy": "ZOHO_PROXY",
    "ssl": "ZOHO_CA_BUNDLE",  # a PEM file: the session's ssl= takes a CA bundle path
}

#: The keywords without which no session can be made.
CREDENTIALS = ("client_id", "client_secret", "refresh_token")

#: Where a user who lacks credentials learns how to get them.
HELP = "see the Credentials section of the README (README.md#credentials)"


def read_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The session keywords set in ``environ`` (default ``os.environ``).

    Variables that are unset or blank are left out, as if unset: ``export ZOHO_ORG_ID=``
    in a shell script means "no org", not an org id of "".

    Example::

        >>> read_env({"ZOHO_ORG_ID": "55522777", "ZOHO_PROXY": " "})
        {'org_id': '55522777'}
    """
    source = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for keyword, name in ENV_VARS.items():
        value = source.get(name)
        if value is not None and value.strip():
            found[keyword] = value.strip()
    return found


def session_kwargs(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``AnalyticsSession`` keywords: the environment's, then ``overrides`` over them.

    Any keyword passes through (``limits=``, ``retry=``, ...); an override wins even when
    it is ``None``. Missing credentials raise :class:`MissingCredentialsError` naming the
    variables to set (never a value).
    """
    kwargs: dict[str, Any] = {**read_env(environ), **(overrides or {})}
    missing = [
        ENV_VARS[key]
        for key in CREDENTIALS
        if not (isinstance(kwargs.get(key), str) and kwargs[key].strip())
    ]
    if missing:
        raise MissingCredentialsError(f"missing credentials: set {', '.join(missing)}; {HELP}")
    return kwargs
