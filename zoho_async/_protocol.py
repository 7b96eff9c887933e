"""Pure protocol functions: build requests, decode answers. No I/O, no event loop.

All HTTP meaning lives here, so it can be tested (and fuzzed) without a server: a decoder
returns data or raises a :class:`~zoho_async.ZohoError` subclass, never anything else.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs

from ._errors import (
    ApiError,
    InvalidInputError,
    ProtocolError,
    RateLimitedError,
    TokenRefreshError,
    TokenThrottledError,
    error_for_code,
)
from ._models import SyncConfig
from ._validation import check_id, check_optional_id

__all__ = [
    "ApiRequest",
    "TokenGrant",
    "build_sync_request",
    "decode_api_response",
    "decode_token_response",
    "entries",
    "parse_retry_after",
    "redact",
]

API_PREFIX = "/restapi/v2"
TOKEN_PATH = "/oauth/v2/token"
_SNIPPET_CHARS = 120

# Anything shaped like a Zoho token, and the values of secret-bearing JSON/form fields.
_TOKEN_RE = re.compile(r"\b1000\.[0-9A-Za-z]{8,}(?:\.[0-9A-Za-z]+)?")
_FIELD_RE = re.compile(
    r"""(?i)(access_token|refresh_token|client_secret|password|authorization)"""
    r"""(["']?\s*[:=]\s*["']?)([^"'&\s,}]*)"""
)


def redact(text: str) -> str:
    """Mask anything that looks like a token or a secret field's value.

    >>> redact('{"access_token":"1000.abcdef0123456789.xyz"}')
    '{"access_token":"***"}'
    """
    text = _FIELD_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return _TOKEN_RE.sub("***", text)


def snippet(body: bytes) -> str:
    """A short, secret-free prefix of a body for error messages."""
    text = body[: _SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return redact(text)[:_SNIPPET_CHARS]


# -- requests ---------------------------------------------------------------------------


@attrs.frozen
class ApiRequest:
    """What to send: method, path below the API root, query, form body, org, call kind.

    ``metadata`` marks calls that count against Zoho's METADATA per-minute limit (Sync
    Data and the discovery calls).
    """

    method: str
    path: str
    params: Mapping[str, str] = attrs.field(factory=dict)
    form: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    org_id: str | None = None
    metadata: bool = True
    route: str = ""


def _seg(value: str) -> str:
    # ids are validated digit strings; quoting is for anything else
    return value if value.isdigit() and value.isascii() else quote(value, safe="")


def orgs_request() -> ApiRequest:
    return ApiRequest("GET", f"{API_PREFIX}/orgs", route="orgs")


def workspaces_request(kind: str = "all") -> ApiRequest:
    """``kind``: "all" (owned + shared), "owned" or "shared"."""
    suffix = "" if kind == "all" else f"/{kind}"
    return ApiRequest("GET", f"{API_PREFIX}/workspaces{suffix}", route="workspaces")


def datasources_request(workspace_id: str, org_id: str | None) -> ApiRequest:
    return ApiRequest(
        "GET",
        f"{API_PREFIX}/workspaces/{_seg(workspace_id)}/datasources",
        org_id=org_id,
        route="datasources",
    )


def sync_request(
    workspace_id: str,
    datasource_id: str,
    org_id: str | None,
    config_json: str | None,
    *,
    config_in_query: bool = False,
) -> ApiRequest:
    """Sync Data. CONFIG goes in the form body by default (keeps passwords out of URLs and
    proxy logs), or in the query string as Zoho's official Python client sends it."""
    params: dict[str, str] = {}
    form: dict[str, str] | None = None
    if config_json is not None:
        if config_in_query:
            params["CONFIG"] = config_json
        else:
            form = {"CONFIG": config_json}
    return ApiRequest(
        "POST",
        f"{API_PREFIX}/workspaces/{_seg(workspace_id)}/datasources/{_seg(datasource_id)}/sync",
        params=params,
        form=form,
        org_id=org_id,
        route="sync",
    )


def build_sync_request(
    workspace_id: str,
    datasource_id: object,
    org_id: str | None,
    config: SyncConfig | None,
    sync_interval_id: object,
    *,
    config_in_query: bool = False,
) -> ApiRequest:
    """Validate and build one Sync Data request (raises before anything is sent)."""
    ds_id = check_id(datasource_id, "datasource_id")
    if config is not None and not isinstance(config, SyncConfig):
        raise InvalidInputError("config must be a SyncConfig")
    interval = check_optional_id(sync_interval_id, "sync_interval_id")
    if config is None and interval is None:
        encoded = None  # the common case: no CONFIG at all, nothing to build
    else:
        encoded = (config or SyncConfig()).with_interval(interval).encode()
    return sync_request(workspace_id, ds_id, org_id, encoded, config_in_query=config_in_query)


def entries(data: Any, key: str) -> list[dict[str, Any]]:
    """The list of objects under ``data[key]``; ``ProtocolError`` when the shape is wrong.

    A lone object is read as a list of one, and non-object items are dropped: listings
    are read for what they hold, not rejected for one odd entry.
    """
    if not isinstance(data, dict):
        raise ProtocolError(f"expected an object with {key!r} in 'data'")
    value = data.get(key, [])
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ProtocolError(f"expected a list under {key!r}")
    return [e for e in value if isinstance(e, dict)]


def api_headers(access_token: str, org_id: str | None, user_agent: str) -> dict[str, str]:
    headers = {
        "Authorization": f"Zoho-oauthtoken {access_token}",
        "User-Agent": user_agent,
    }
    if org_id is not None:
        headers["ZANALYTICS-ORGID"] = org_id
    return headers


def token_form(client_id: str, client_secret: str, refresh_token: str) -> dict[str, str]:
    """The refresh-token grant as a form body (never in the URL)."""
    return {
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "refresh_token",
    }


# -- answers ----------------------------------------------------------------------------


def _load_json(status: int, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ProtocolError(
            "answer is not JSON", http_status=status, snippet=snippet(body)
        ) from None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds, milliseconds ("250ms")
    or an HTTP date. ``None`` when absent or unreadable; never negative.

    >>> parse_retry_after("7")
    7.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        is_ms = text.lower().endswith("ms")
        seconds = float(text[:-2]) / 1000.0 if is_ms else float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None or when.tzinfo is None:
            return None
        current = time.time() if now is None else now
        try:
            seconds = when.timestamp() - current
        except (OverflowError, OSError, ValueError):
            return None
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def decode_api_response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Any:
    """Decode an Analytics answer: the ``data`` of a success envelope (``None`` for 204),
    or raise the ``ApiError`` subclass for the error code, or ``ProtocolError``.

    >>> decode_api_response(204, b"") is None
    True
    """
    if status == 204:
        return None
    headers = headers or {}
    # only a refusal can carry a meaningful Retry-After; skip the lookup on success
    retry_after = parse_retry_after(_header(headers, "Retry-After")) if status >= 400 else None
    if 200 <= status < 300 and not body.strip():
        return None
    if not body.strip():
        raise _status_error(status, "", retry_after)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        if status in (401, 429) or status >= 500:
            # An HTML error page from a proxy or load balancer: keep the status meaning.
            raise _status_error(status, snippet(body), retry_after) from None
        raise ProtocolError(
            "answer is not JSON", http_status=status, snippet=snippet(body)
        ) from None
    if not isinstance(doc, dict):
        raise ProtocolError(
            "answer is not a JSON object", http_status=status, snippet=snippet(body)
        )
    outcome = doc.get("status")
    if outcome == "success" and status < 400:
        return doc.get("data")
    if outcome == "failure" or status >= 400:
        data = doc.get("data")
        code = data.get("errorCode") if isinstance(data, dict) else None
        message = data.get("errorMessage") if isinstance(data, dict) else None
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code.strip())
        if isinstance(code, bool) or not isinstance(code, int):
            if outcome != "failure" and (status == 429 or status >= 500 or status == 401):
                raise _status_error(status, snippet(body), retry_after)
            raise ProtocolError(
                "failure envelope without an integer errorCode",
                http_status=status,
                snippet=snippet(body),
            )
        summary = doc.get("summary")
        text = message if isinstance(message, str) else ""
        cls = error_for_code(code, status)
        kwargs: dict[str, Any] = {
            "summary": summary if isinstance(summary, str) else "",
            "http_status": status,
        }
        if issubclass(cls, RateLimitedError):
            kwargs["retry_after"] = retry_after
        raise cls(code, redact(text), **kwargs)
    raise ProtocolError(
        "answer has no 'status' of success or failure", http_status=status, snippet=snippet(body)
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                return val
    return value


def _status_error(status: int, text: str, retry_after: float | None) -> ApiError:
    """An error from the HTTP status alone (no envelope): 429, 5xx, a bare 401."""
    if status == 429:
        return RateLimitedError(
            0, text or "HTTP 429 Too Many Requests", http_status=status, retry_after=retry_after
        )
    if status == 401:
        return error_for_code(8535)(
            8535, text or "HTTP 401 without an error envelope", http_status=status
        )
    cls = error_for_code(0, status)
    return cls(0, text or f"HTTP {status} without a body", http_status=status)


@attrs.frozen
class TokenGrant:
    """A fresh access token and its lifetime in seconds. The token never shows in repr."""

    access_token: str = attrs.field(repr=False)
    expires_in: float
    api_domain: str | None = None


_DEFAULT_LIFETIME = 3600.0


def decode_token_response(status: int, body: bytes, *, now: float | None = None) -> TokenGrant:
    """Decode the accounts server's answer to a refresh-token grant.

    Raises ``TokenRefreshError`` (``invalid_code``, ``invalid_client``, others),
    ``TokenThrottledError`` ("Access Denied", with HTTP 200 or 400) or ``ProtocolError``.
    """
    if status >= 500 or status == 429:
        raise ProtocolError("accounts server failed", http_status=status, snippet=snippet(body))
    doc = _load_json(status, body)
    if not isinstance(doc, dict):
        raise ProtocolError(
            "token answer is not a JSON object", http_status=status, snippet=snippet(body)
        )
    error = doc.get("error")
    if error is not None:
        error_text = str(error)[:80]
        description = doc.get("error_description")
        desc = redact(str(description))[:200] if isinstance(description, str) else ""
        lowered = error_text.lower()
        if lowered == "access denied" or "throttle" in desc.lower() or "too many" in desc.lower():
            current = time.time() if now is None else now
            raise TokenThrottledError(
                "Zoho throttled token requests (Access Denied"
                + (f": {desc}" if desc else "")
                + "); token creation is blocked for up to 10 minutes",
                retry_at=current + 600.0,
            )
        if lowered == "invalid_code":
            raise TokenRefreshError(
                "refresh token rejected (invalid_code): it is wrong, revoked, or was minted "
                "in another data centre; generate a new refresh token",
                error=error_text,
                http_status=status,
            )
        if lowered == "invalid_client":
            raise TokenRefreshError(
                "client rejected (invalid_client): check the client id and secret, and that "
                "the data centre (accounts URL) is the one the client was registered in",
                error=error_text,
                http_status=status,
            )
        raise TokenRefreshError(
            f"token refresh failed: {redact(error_text)}" + (f" ({desc})" if desc else ""),
            error=error_text,
            http_status=status,
        )
    token = doc.get("access_token")
    if status != 200 or not isinstance(token, str) or not token.strip():
        raise ProtocolError(
            "token answer without an access_token", http_status=status, snippet=snippet(body)
        )
    expires = doc.get("expires_in")
    lifetime = _DEFAULT_LIFETIME
    if isinstance(expires, int | float) and not isinstance(expires, bool):
        lifetime = float(expires)
    elif isinstance(expires, str):
        try:
            lifetime = float(expires)
        except ValueError:
            lifetime = _DEFAULT_LIFETIME
    if math.isnan(lifetime) or lifetime <= 0:
        # A zero or missing lifetime would make every call refresh; assume Zoho's usual
        # hour but let the reactive 8535 path catch an early expiry.
        lifetime = _DEFAULT_LIFETIME
    lifetime = min(lifetime, 86400.0)
    domain = doc.get("api_domain")
    return TokenGrant(token.strip(), lifetime, domain if isinstance(domain, str) else None)
