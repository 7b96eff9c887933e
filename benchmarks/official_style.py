"""An "official-style" Zoho Analytics client: how Zoho's own Python client calls Sync Data.

Written for the benchmarks from the behaviour of Zoho's official Python ``AnalyticsClient``
(REST API v2), not copied from it. What it reproduces, because that is what the benchmark
compares against:

- synchronous ``requests``, and a **new** ``requests.Session`` for every call (so a new TCP
  connection per call: no keep-alive pooling);
- the access token is kept on the client object with no expiry; it is fetched lazily when
  it is ``None`` and re-fetched **reactively** when an answer carries error 8535, after
  which the call is retried exactly once;
- no lock around the token: concurrent callers that all see ``None`` (or all get 8535)
  each fetch a token - the "token storm";
- no timeouts, no backoff, no retries other than the one after 8535, no rate limiting;
- token requests send the refresh-token grant as query parameters; Sync Data sends
  ``CONFIG`` url-encoded in the query string (only when non-empty);
- any non-2xx answer raises :class:`ServerError` with Zoho's error code.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import requests

__all__ = ["AnalyticsClient", "ServerError", "WorkspaceAPI"]

CLIENT_VERSION = "2.6.0"
USER_AGENT = f"Analytics Python Client v{CLIENT_VERSION}"


class ServerError(Exception):
    """Zoho answered with an error (or the token grant failed)."""

    def __init__(self, body: str, *, is_token_error: bool) -> None:
        self.error_code = 0
        self.message = body
        self.is_token_error = is_token_error
        try:
            data = json.loads(body)
            if not is_token_error:
                self.error_code = int(data["data"]["errorCode"])
                self.message = str(data["data"]["errorMessage"])
        except (ValueError, KeyError, TypeError):
            pass
        super().__init__(self.message)


class _Answer:
    """The few parts of a response the official client looks at."""

    def __init__(self, status_code: int, text: str) -> None:
        self.status_code = status_code
        self.text = text


class AnalyticsClient:
    """Entry point, as in the official client: credentials plus server URLs.

    Example::

        client = AnalyticsClient(client_id, client_secret, refresh_token,
                                 analytics_server_url=fake.api_url,
                                 accounts_server_url=fake.accounts_url)
        client.get_workspace_instance(org_id, ws_id).sync_data(ds_id)
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        analytics_server_url: str,
        accounts_server_url: str,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.analytics_server_url = analytics_server_url.rstrip("/")
        self.accounts_server_url = accounts_server_url.rstrip("/")
        self.access_token: str | None = None
        self.token_requests = 0  # not in the official client: counted for the report

    def get_workspace_instance(self, org_id: str, workspace_id: str) -> WorkspaceAPI:
        return WorkspaceAPI(self, org_id, workspace_id)

    # -- the request machinery, as the official client does it ----------------------------

    def send_api_request(
        self, method: str, path: str, config: dict[str, Any] | None, headers: dict[str, str]
    ) -> Any:
        # Lazy first token, no lock: every thread that sees None fetches its own.
        if self.access_token is None:
            self.regenerate_token()
        url = self.analytics_server_url + path
        params = None
        if config:
            params = "CONFIG=" + urllib.parse.quote_plus(json.dumps(config))
        answer = self._submit(method, url, params, headers, self.access_token)
        if not str(answer.status_code).startswith("2"):
            if _is_token_expired(answer):
                # Reactive refresh on 8535, then exactly one retry.
                self.regenerate_token()
                answer = self._submit(method, url, params, headers, self.access_token)
                if not str(answer.status_code).startswith("2"):
                    raise ServerError(answer.text, is_token_error=False)
            else:
                raise ServerError(answer.text, is_token_error=False)
        if answer.status_code != 200:
            return None  # 204: "sync started", no body
        return json.loads(answer.text)

    def _submit(
        self,
        method: str,
        url: str,
        params: str | None,
        headers: dict[str, str] | None,
        access_token: str | None,
    ) -> _Answer:
        headers = dict(headers or {})
        if access_token is not None:
            headers["Authorization"] = "Zoho-oauthtoken " + access_token
        headers["User-Agent"] = USER_AGENT
        # A fresh Session per call, never closed explicitly, no timeout: as the original.
        session = requests.Session()
        response = session.request(method, url, params=params, headers=headers)
        return _Answer(response.status_code, response.text)

    def regenerate_token(self) -> None:
        self.token_requests += 1
        grant = urllib.parse.urlencode(
            {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_token,
                "grant_type": "refresh_token",
            }
        )
        answer = self._submit(
            "POST", self.accounts_server_url + "/oauth/v2/token", grant, None, None
        )
        if answer.status_code == 200:
            body = json.loads(answer.text)
            if "access_token" in body:
                self.access_token = str(body["access_token"])
                return
        raise ServerError(answer.text, is_token_error=True)


class WorkspaceAPI:
    """A workspace handle with the org header, as ``get_workspace_instance`` returns."""

    def __init__(self, client: AnalyticsClient, org_id: str, workspace_id: str) -> None:
        self.client = client
        self.endpoint = "/restapi/v2/workspaces/" + workspace_id
        self.request_headers = {"ZANALYTICS-ORGID": org_id}

    def sync_data(self, datasource_id: str, config: dict[str, Any] | None = None) -> None:
        """Start a sync of one datasource (raises ``ServerError`` on any failure)."""
        path = self.endpoint + "/datasources/" + datasource_id + "/sync"
        self.client.send_api_request("POST", path, config or {}, self.request_headers)

    def get_datasources(self) -> Any:
        path = self.endpoint + "/datasources"
        return self.client.send_api_request("GET", path, None, self.request_headers)["data"][
            "dataSources"
        ]


def _is_token_expired(answer: _Answer) -> bool:
    try:
        return int(json.loads(answer.text)["data"]["errorCode"]) == 8535
    except (ValueError, KeyError, TypeError):
        return False
