"""A refresh token from a Self Client grant code, and its revocation.

Both run once per credential, before (or after) any session, so they are plain
functions. They share the session's transport: the same proxies (``proxy=``, or the
environment's unless ``trust_env=False``), CA bundle (``ssl=``), timeouts, and the
same typed errors, so ``zoho-async auth login`` behind a corporate proxy works as
``sync`` does.
"""

from __future__ import annotations

import json
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import InvalidInputError, ProtocolError, TokenError, TokenRefreshError
from ._protocol import decode_token_response
from ._regions import resolve_endpoints
from ._session import USER_AGENT
from ._transport import RawResponse, Transport, parse_proxy

__all__ = ["GrantedTokens", "exchange_grant_code", "revoke_refresh_token"]


@attrs.frozen
class GrantedTokens:
    """What a grant code is exchanged for. The tokens never show in repr.

    ``scope`` is the comma-separated scopes the code was made for, as Zoho returns them.
    """

    refresh_token: str = attrs.field(repr=False)
    access_token: str = attrs.field(repr=False)
    expires_in: float
    api_domain: str | None = None
    scope: str | None = None


async def _post(
    url: str,
    *,
    form: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    proxy: str | None,
    ssl: ssl_module.SSLContext | str | None,
    trust_env: bool,
    timeout: float,
) -> RawResponse:
    transport = Transport(
        timeout=timeout,
        connect_timeout=min(timeout, 10.0),
        ssl_option=ssl,
        proxy=parse_proxy(proxy) if proxy is not None else None,
        trust_env=trust_env,
    )
    await transport.open()
    try:
        return await transport.send(
            "POST", url, headers={"User-Agent": USER_AGENT}, form=form, params=params
        )
    finally:
        await transport.close()


def _require(name: str, value: object) -> None:
    """Refuse an empty credential before any request (never showing its value)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty string")


def _json(response: RawResponse) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        return None


async def exchange_grant_code(
    code: str,
    *,
    client_id: str,
    client_secret: str,
    data_center: str = "us",
    accounts_url: str | None = None,
    proxy: str | None = None,
    ssl: ssl_module.SSLContext | str | None = None,
    trust_env: bool = True,
    timeout: float = 30.0,
) -> GrantedTokens:
    """Exchange a Self Client grant code (``grant_type=authorization_code``) for a refresh
    token and a first access token.

    A code works once and lasts a few minutes: ``TokenRefreshError`` with
    ``error == "invalid_code"`` when it is expired, used or unknown, ``"invalid_client"``
    for a wrong client id or secret (or another data centre's client). Bad input
    (empty code, unknown data centre, a plain ``http://`` accounts URL off loopback) is an
    ``InvalidInputError`` before any request.

    Example::

        tokens = await exchange_grant_code("1000.abcd...", client_id="1000.XXXX",
                                           client_secret=secret, data_center="eu")
        keep_safely(tokens.refresh_token)
    """
    for name, value in (("code", code), ("client_id", client_id), ("client_secret", client_secret)):
        _require(name, value)
    endpoints = resolve_endpoints(data_center, None, accounts_url)
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id.strip(),
        "client_secret": client_secret,
        "code": code.strip(),
    }
    response = await _post(
        endpoints.accounts_url + "/oauth/v2/token",
        form=form,
        proxy=proxy,
        ssl=ssl,
        trust_env=trust_env,
        timeout=timeout,
    )
    doc = _json(response)
    error = str(doc.get("error"))[:80] if isinstance(doc, dict) and doc.get("error") else None
    if error is not None and error.lower() == "invalid_code":
        raise TokenRefreshError(
            "grant code rejected (invalid_code): expired, already used, or made for another "
            "client; generate a new one (Self Client > Generate Code)",
            error=error,
            http_status=response.status,
        )
    # the access-token part reads as a refresh's answer: the same errors, the same checks
    grant = decode_token_response(response.status, response.body)
    refresh = doc.get("refresh_token") if isinstance(doc, dict) else None
    if not isinstance(refresh, str) or not refresh.strip():
        raise ProtocolError(
            "grant code answer without a refresh_token",
            http_status=response.status,  # no snippet: the body holds an access token
        )
    scope = doc.get("scope") if isinstance(doc, dict) else None
    return GrantedTokens(
        refresh_token=refresh.strip(),
        access_token=grant.access_token,
        expires_in=grant.expires_in,
        api_domain=grant.api_domain,
        scope=scope if isinstance(scope, str) else None,
    )


async def revoke_refresh_token(
    refresh_token: str,
    *,
    data_center: str = "us",
    accounts_url: str | None = None,
    proxy: str | None = None,
    ssl: ssl_module.SSLContext | str | None = None,
    trust_env: bool = True,
    timeout: float = 30.0,
) -> None:
    """Revoke a refresh token at Zoho (``POST /oauth/v2/token/revoke``); the access tokens
    made from it stop working too.

    Raises ``TokenError`` when Zoho refuses (an unknown or already revoked token), and
    ``TransportError``/``TimeoutError`` when it cannot be reached.

    Example::

        await revoke_refresh_token(old_token, data_center="eu")
    """
    _require("refresh_token", refresh_token)
    endpoints = resolve_endpoints(data_center, None, accounts_url)
    # Zoho documents the token as a query parameter
    response = await _post(
        endpoints.accounts_url + "/oauth/v2/token/revoke",
        params={"token": refresh_token.strip()},
        proxy=proxy,
        ssl=ssl,
        trust_env=trust_env,
        timeout=timeout,
    )
    doc = _json(response)
    if response.status == 200 and isinstance(doc, dict) and doc.get("status") == "success":
        return
    raise TokenError(
        f"revocation refused: {endpoints.accounts_url} answered HTTP {response.status}"
    )
