"""Pure protocol functions: request building and answer decoding, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from zoho_async import (
    ApiError,
    AuthError,
    InvalidConfigError,
    NotFoundError,
    OrgRequiredError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SyncInProgressError,
    SyncQuotaExceededError,
    TokenRefreshError,
    TokenThrottledError,
)
from zoho_async._errors import ApiUnitsExhaustedError, error_for_code
from zoho_async._protocol import (
    api_headers,
    datasources_request,
    decode_api_response,
    decode_token_response,
    parse_retry_after,
    redact,
    sync_request,
    token_form,
)


def failure(code: int, message: str = "msg", summary: str = "SOME_ERROR") -> bytes:
    return json.dumps(
        {
            "status": "failure",
            "summary": summary,
            "data": {"errorCode": code, "errorMessage": message},
        }
    ).encode()


@pytest.mark.parametrize(
    ("code", "http", "cls"),
    [
        (8535, 401, AuthError),
        (8518, 400, AuthError),
        (7301, 403, PermissionDeniedError),
        (8023, 403, PermissionDeniedError),
        (7925, 400, PermissionDeniedError),
        (7103, 404, NotFoundError),
        (7104, 404, NotFoundError),
        (18061, 404, NotFoundError),
        (7387, 400, NotFoundError),
        (8084, 400, NotFoundError),
        (8083, 400, OrgRequiredError),
        (18073, 400, SyncInProgressError),
        (18072, 400, SyncInProgressError),
        (19000048, 400, SyncQuotaExceededError),
        (6045, 400, RateLimitedError),
        (6043, 400, ApiUnitsExhaustedError),
        (8504, 400, InvalidConfigError),
        (8507, 400, InvalidConfigError),
        (8077, 400, InvalidConfigError),
        (8080, 400, InvalidConfigError),
        (8516, 400, InvalidConfigError),
        (8182, 403, InvalidConfigError),
        (8183, 400, InvalidConfigError),
        (7005, 500, ServerError),
    ],
)
def test_each_code_maps_to_its_class(code: int, http: int, cls: type[ApiError]) -> None:
    with pytest.raises(cls) as info:
        decode_api_response(http, failure(code, "the message", "CONSTANT"))
    err = info.value
    assert type(err) is cls
    assert (err.code, err.message, err.summary, err.http_status) == (
        code,
        "the message",
        "CONSTANT",
        http,
    )
    assert str(code) in str(err) and "the message" in str(err)


def test_unknown_code_is_plain_api_error_with_code() -> None:
    with pytest.raises(ApiError) as info:
        decode_api_response(400, failure(123456))
    assert type(info.value) is ApiError and info.value.code == 123456


def test_unknown_code_on_5xx_is_server_error() -> None:
    assert error_for_code(99999, 503) is ServerError
    assert error_for_code(99999, 429) is RateLimitedError


def test_success_envelope_returns_data() -> None:
    body = json.dumps({"status": "success", "summary": "Get orgs", "data": {"orgs": []}}).encode()
    assert decode_api_response(200, body) == {"orgs": []}
    assert decode_api_response(204, b"") is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Bad gateway</body></html>",
        b'{"status": "success", "data": ',  # truncated
        b"[1, 2, 3]",
        b'{"status": "failure", "data": {"errorCode": "abc"}}',
        b'{"status": "weird"}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_bodies_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_api_response(400 if b"failure" in body else 200, body)
    assert info.value.http_status in (200, 400)


def test_html_error_pages_keep_status_meaning() -> None:
    with pytest.raises(ServerError) as info:
        decode_api_response(502, b"<html>502 Bad Gateway</html>")
    assert info.value.http_status == 502
    with pytest.raises(AuthError):
        decode_api_response(401, b"")
    with pytest.raises(RateLimitedError) as rl:
        decode_api_response(429, b"slow down", {"Retry-After": "12"})
    assert rl.value.retry_after == 12.0


def test_6045_carries_retry_after_from_header() -> None:
    with pytest.raises(RateLimitedError) as info:
        decode_api_response(400, failure(6045), {"retry-after": "3"})
    assert info.value.retry_after == 3.0


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("250ms") == 0.25
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None


def test_token_success_and_lifetime_defaults() -> None:
    body = json.dumps(
        {
            "access_token": "1000.aaa.bbb",
            "expires_in": 3600,
            "api_domain": "https://www.zohoapis.com",
            "token_type": "Bearer",
        }
    )
    grant = decode_token_response(200, body.encode())
    assert grant.access_token == "1000.aaa.bbb" and grant.expires_in == 3600
    assert "1000.aaa" not in repr(grant)
    for expires in (None, 0, -5, "x"):
        doc = {"access_token": "t"}
        if expires is not None:
            doc["expires_in"] = expires  # type: ignore[assignment]
        assert decode_token_response(200, json.dumps(doc).encode()).expires_in == 3600


@pytest.mark.parametrize("status", [200, 400])
def test_token_errors(status: int) -> None:
    with pytest.raises(TokenRefreshError, match="revoked"):
        decode_token_response(status, b'{"error": "invalid_code"}')
    with pytest.raises(TokenRefreshError, match="data centre"):
        decode_token_response(status, b'{"error": "invalid_client"}')
    with pytest.raises(TokenThrottledError) as info:
        decode_token_response(
            status,
            json.dumps(
                {
                    "error": "Access Denied",
                    "error_description": "You have made too many requests continuously.",
                }
            ).encode(),
            now=1000.0,
        )
    assert info.value.retry_at == 1600.0


def test_token_protocol_errors_never_echo_the_token() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_token_response(200, b'{"access_token": "1000.deadbeefdeadbeef.cafe", "expi')
    assert "deadbeef" not in str(info.value)
    with pytest.raises(ProtocolError):
        decode_token_response(503, b"<html>down</html>")
    with pytest.raises(ProtocolError):
        decode_token_response(200, b'{"token_type": "Bearer"}')


def test_redact_masks_secret_shapes() -> None:
    text = 'refresh_token=1000.abcdef123456.zz&client_secret=s3cr3t {"password": "pw1"}'
    out = redact(text)
    assert "abcdef123456" not in out and "s3cr3t" not in out and "pw1" not in out


def test_sync_request_puts_config_in_body_by_default() -> None:
    req = sync_request("1", "2", "3", '{"userName":"u"}')
    assert req.method == "POST"
    assert req.path == "/restapi/v2/workspaces/1/datasources/2/sync"
    assert req.form == {"CONFIG": '{"userName":"u"}'} and not req.params
    assert "userName" not in repr(req)
    query = sync_request("1", "2", "3", '{"userName":"u"}', config_in_query=True)
    assert query.params == {"CONFIG": '{"userName":"u"}'} and query.form is None
    bare = sync_request("1", "2", "3", None)
    assert bare.form is None and not bare.params


def test_headers_and_token_form() -> None:
    headers = api_headers("tok", "55", "zoho-async/1")
    assert headers["Authorization"] == "Zoho-oauthtoken tok"
    assert headers["ZANALYTICS-ORGID"] == "55"
    assert "ZANALYTICS-ORGID" not in api_headers("tok", None, "ua")
    assert token_form("c", "s", "r")["grant_type"] == "refresh_token"
    assert datasources_request("9", "8").org_id == "8"
