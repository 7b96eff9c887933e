"""One error hierarchy for everything zoho-async raises.

::

    ZohoError
    ├── InvalidInputError (also ValueError)     bad input, raised before any request
    │   ├── InvalidIdError                      id not a non-empty digit string
    │   ├── UnknownDataCentreError              data centre key not in the table
    │   ├── ConfigTooLongError                  CONFIG over 3,000 characters
    │   ├── MissingCredentialsError             client id / secret / refresh token missing
    │   ├── InsecureURLError                    http:// to a non-loopback host
    │   └── JournalInUseError                   the journal is open in another run
    ├── ApiError                                Zoho answered with an error envelope
    │   ├── AuthError                           8535, 8518 (after one refresh and retry)
    │   ├── PermissionDeniedError               7301, 8023, 7925
    │   ├── NotFoundError                       7103, 7104, 18061, 7387, 8084
    │   ├── OrgRequiredError                    8083 (ZANALYTICS-ORGID missing)
    │   ├── SyncInProgressError                 18073, 18072
    │   ├── SyncQuotaExceededError              19000048
    │   ├── RateLimitedError                    6045, HTTP 429
    │   ├── ApiUnitsExhaustedError              6043, 6044 (daily units)
    │   ├── InvalidConfigError                  8504, 8507, 8077-8080, 8516, 8182, 8183
    │   └── ServerError                         7005, any 5xx
    ├── TokenError                              the accounts server refused a token
    │   ├── TokenRefreshError                   invalid_code, invalid_client, other errors
    │   └── TokenThrottledError                 "Access Denied" throttle, or our own budget
    ├── TransportError                          network failure (wraps aiohttp, ``from``)
    │   └── TimeoutError                        also a builtin TimeoutError
    ├── ProtocolError                           a body that is not the documented envelope
    ├── SyncUnconfirmedError                    a Sync Data that may have started (not re-sent)
    ├── PacingTimeoutError (also TimeoutError)  a call's timeout= passed before it was sent
    └── CoordinatorUnavailableError             the shared store (--shared) went away

Branch on the class or on ``ApiError.code``, never on the (localised) message.
"""

from __future__ import annotations

import builtins
from typing import ClassVar

__all__ = [
    "ApiError",
    "ApiUnitsExhaustedError",
    "AuthError",
    "ConfigTooLongError",
    "InsecureURLError",
    "InvalidConfigError",
    "InvalidIdError",
    "InvalidInputError",
    "MissingCredentialsError",
    "NotFoundError",
    "OrgRequiredError",
    "PacingTimeoutError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "ServerError",
    "SyncInProgressError",
    "SyncQuotaExceededError",
    "SyncUnconfirmedError",
    "TimeoutError",
    "TokenError",
    "TokenRefreshError",
    "TokenThrottledError",
    "TransportError",
    "UnknownDataCentreError",
    "ZohoError",
    "error_for_code",
]


class ZohoError(Exception):
    """Base class of every error zoho-async raises on purpose.

    Example::

        try:
            await ws.sync_data(ds_id)
        except zoho_async.ZohoError as exc:
            log.warning("sync failed: %s", exc)
    """


# -- local validation -------------------------------------------------------------------


class InvalidInputError(ZohoError, ValueError):
    """Input rejected locally, before any request was sent."""


class InvalidIdError(InvalidInputError):
    """An id that is not a non-empty string of digits."""


class UnknownDataCentreError(InvalidInputError):
    """A data-centre key not in the table; the message lists the valid keys."""


class ConfigTooLongError(InvalidInputError):
    """A CONFIG whose JSON is longer than Zoho accepts (3,000 characters for Sync Data)."""


class MissingCredentialsError(InvalidInputError):
    """Client id, client secret or refresh token missing or empty."""


class InsecureURLError(InvalidInputError):
    """A plain ``http://`` URL for a host that is not loopback (credentials would leak)."""


# -- answers from Zoho ------------------------------------------------------------------


class ApiError(ZohoError):
    """Zoho Analytics answered with a failure envelope (or an HTTP error status).

    ``code`` is Zoho's ``errorCode`` (0 when the answer carried none, e.g. a bare 429),
    ``summary`` its constant-like summary, ``message`` its (localised) text and
    ``http_status`` the HTTP status of the answer.

    Example::

        try:
            await ws.sync_data(ds_id)
        except ApiError as exc:
            print(exc.code, exc.http_status)
    """

    codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        code: int,
        message: str = "",
        *,
        summary: str = "",
        http_status: int | None = None,
    ) -> None:
        self.code = code
        self.summary = summary
        self.message = message
        self.http_status = http_status
        super().__init__(code, message)

    def __str__(self) -> str:
        parts = [f"Zoho error {self.code}"]
        if self.summary:
            parts.append(f"({self.summary})")
        if self.http_status is not None:
            parts.append(f"[HTTP {self.http_status}]")
        text = " ".join(parts)
        return f"{text}: {self.message}" if self.message else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"summary={self.summary!r}, http_status={self.http_status!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # keyword-only arguments do not survive the default pickling of exceptions
        return (
            _rebuild_api_error,
            (type(self), self.code, self.message, self.summary, self.http_status),
        )


def _rebuild_api_error(
    cls: type[ApiError], code: int, message: str, summary: str, http_status: int | None
) -> ApiError:
    return cls(code, message, summary=summary, http_status=http_status)


class AuthError(ApiError):
    """The access token was refused even after a fresh one was minted (8535, 8518)."""

    codes = frozenset({8535, 8518})


class PermissionDeniedError(ApiError):
    """The user may not do this (7301, 8023, 7925). Never retried."""

    codes = frozenset({7301, 8023, 7925})


class NotFoundError(ApiError):
    """Unknown workspace, datasource or org, or an org mismatch (7103, 7104, 18061, 7387, 8084)."""

    codes = frozenset({7103, 7104, 18061, 7387, 8084})


class OrgRequiredError(ApiError):
    """The call needs an org id (the ZANALYTICS-ORGID header was missing, 8083)."""

    codes = frozenset({8083})


class SyncInProgressError(ApiError):
    """A sync of this datasource (18073) or table (18072) is already running."""

    codes = frozenset({18073, 18072})


class SyncQuotaExceededError(ApiError):
    """The connection's manual-sync quota for the day is spent (19000048). Never retried."""

    codes = frozenset({19000048})


class RateLimitedError(ApiError):
    """Too many requests this minute (6045) or HTTP 429; ``retry_after`` in seconds if known."""

    codes = frozenset({6045})

    def __init__(
        self,
        code: int,
        message: str = "",
        *,
        summary: str = "",
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, summary=summary, http_status=http_status)
        self.retry_after = retry_after


class ApiUnitsExhaustedError(ApiError):
    """The org's daily API units are spent (6043, 6044). Never retried."""

    codes = frozenset({6043, 6044})


class InvalidConfigError(ApiError):
    """Zoho rejected the CONFIG (8504, 8507, 8077-8080, 8516) or the interval (8182, 8183)."""

    codes = frozenset({8504, 8507, 8077, 8078, 8079, 8080, 8516, 8182, 8183})


class ServerError(ApiError):
    """Zoho failed internally (7005, any 5xx). Ambiguous for Sync Data: it may have started."""

    codes = frozenset({7005})


_API_CLASSES: tuple[type[ApiError], ...] = (
    AuthError,
    PermissionDeniedError,
    NotFoundError,
    OrgRequiredError,
    SyncInProgressError,
    SyncQuotaExceededError,
    RateLimitedError,
    ApiUnitsExhaustedError,
    InvalidConfigError,
    ServerError,
)
_CLASS_BY_CODE: dict[int, type[ApiError]] = {
    code: cls for cls in _API_CLASSES for code in cls.codes
}


def error_for_code(code: int, http_status: int | None = None) -> type[ApiError]:
    """The ``ApiError`` subclass for a Zoho error code (and HTTP status, for unknown codes).

    >>> error_for_code(18073).__name__
    'SyncInProgressError'
    """
    cls = _CLASS_BY_CODE.get(code)
    if cls is not None:
        return cls
    if http_status == 429:
        return RateLimitedError
    if http_status is not None and http_status >= 500:
        return ServerError
    return ApiError


# -- accounts server --------------------------------------------------------------------


class TokenError(ZohoError):
    """The accounts server did not give us an access token."""


class TokenRefreshError(TokenError):
    """Token refresh refused (``invalid_code``, ``invalid_client``, ...). Not retried.

    ``error`` is the accounts server's error string; the message names the likely cause.
    """

    def __init__(self, message: str, *, error: str = "", http_status: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.http_status = http_status


class TokenThrottledError(TokenError):
    """Too many token requests: Zoho's throttle, or our own 10-per-10-minutes budget.

    ``retry_at`` is a ``time.time()`` timestamp after which a refresh may be tried again,
    when known.
    """

    def __init__(self, message: str, *, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


# -- transport and protocol -------------------------------------------------------------


class TransportError(ZohoError):
    """The request failed on the network. ``sent`` tells whether it may have reached Zoho.

    ``sent=False`` means the connection was never made (safe to retry anything);
    ``sent=True`` means the server may have acted on it (ambiguous for Sync Data).
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class TimeoutError(TransportError, builtins.TimeoutError):
    """No answer within the timeout. Also a builtin ``TimeoutError``."""


class ProtocolError(ZohoError):
    """An answer that is not the documented envelope (HTML error page, truncated JSON, ...).

    ``http_status`` is the HTTP status; ``snippet`` a short prefix of the body.
    """

    def __init__(self, message: str, *, http_status: int | None = None, snippet: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.snippet = snippet

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else "protocol error"
        if self.http_status is not None:
            text += f" [HTTP {self.http_status}]"
        if self.snippet:
            text += f": {self.snippet!r}"
        return text


# -- settled outcomes ---------------------------------------------------------------------


class SyncUnconfirmedError(ZohoError):
    """A Sync Data request may have reached Zoho, and its listing cannot tell whether the
    sync started. It was not sent again: a second send could spend another of the
    connection's manual syncs. ``evidence`` says what the listing showed; ``cause`` is the
    failure that made the attempt ambiguous.

    Example::

        try:
            await ws.sync_data("1767024000003153002")
        except SyncUnconfirmedError as exc:
            log.warning("check the datasource by hand: %s", exc.evidence)
    """

    def __init__(self, message: str, *, evidence: str, cause: ZohoError | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence
        self.cause = cause


class PacingTimeoutError(ZohoError, builtins.TimeoutError):
    """A call's ``timeout=`` passed before its request could be sent: waiting for a pacing
    turn, a rate-limit pause, or the access token. Nothing was sent. (A request already
    sent is never cut by ``timeout=``: it ends by itself, within the session's request
    timeout, and an ambiguous Sync Data is settled as usual.)

    Example::

        try:
            await ws.sync_data("1767024000003153002", timeout=5)
        except PacingTimeoutError:
            return web.json_response({"error": "busy, try again"}, status=503)
    """
