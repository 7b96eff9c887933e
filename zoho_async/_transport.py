"""The only module that touches aiohttp: send one request, get status, headers and body.

Network failures become :class:`TransportError` (``sent=False`` when the connection was
never made, so a retry cannot duplicate anything) or :class:`TimeoutError`.
"""

from __future__ import annotations

import builtins
import logging
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs

from ._errors import TimeoutError, TransportError

__all__ = ["RawResponse", "Transport", "make_ssl_context"]

log = logging.getLogger("zoho_async")

# aiohttp's own default caps header sizes; we cap bodies so a runaway proxy page can't
# eat memory. Zoho's biggest answers (Get Datasources of a large workspace) are well below.
_MAX_BODY = 32 * 1024 * 1024


@attrs.frozen
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


def make_ssl_context(ssl_option: ssl.SSLContext | str | None) -> ssl.SSLContext | bool:
    """``None``: verify with the system store; a path: verify with that CA bundle."""
    if ssl_option is None:
        return True
    if isinstance(ssl_option, ssl.SSLContext):
        return ssl_option
    return ssl.create_default_context(cafile=str(ssl_option))


class Transport:
    """One aiohttp ``ClientSession`` (ours, or the caller's which we never close)."""

    def __init__(
        self,
        *,
        timeout: float,
        connect_timeout: float,
        ssl_option: ssl.SSLContext | str | None = None,
        client_session: aiohttp.ClientSession | None = None,
        limit: int = 100,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._ssl = make_ssl_context(ssl_option)
        self._external = client_session
        self._own: aiohttp.ClientSession | None = None
        self._limit = limit
        self.requests = 0

    async def open(self) -> None:
        if self._external is None and self._own is None:
            connector = aiohttp.TCPConnector(limit=self._limit, ssl=self._ssl)
            self._own = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, raise_for_status=False
            )

    async def close(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            await own.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        session = self._external or self._own
        if session is None:
            raise RuntimeError("transport is not open")
        return session

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """Send and read the whole answer; raise ``TransportError``/``TimeoutError``."""
        kwargs: dict[str, Any] = {"headers": headers}
        if params:
            kwargs["params"] = dict(params)
        if form is not None:
            kwargs["data"] = dict(form)
        if self._external is not None:
            # our own session carries these already; a caller's session does not
            kwargs["ssl"] = self._ssl
            kwargs["timeout"] = self._timeout
        self.requests += 1
        try:
            async with self.session.request(method, url, **kwargs) as response:
                if response.status == 204 or response.content_length == 0:
                    body = b""  # Sync Data's answer: nothing to read
                else:
                    body = await _read_all(response, url)
                # the (case-insensitive) header proxy as is: copying it costs every request
                return RawResponse(response.status, response.headers, body)
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError) as exc:
            # includes certificate errors: the request never left this machine
            raise TransportError(
                f"cannot connect to {_origin(url)}: {_describe(exc)}", sent=False
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise TimeoutError(f"cannot connect to {_origin(url)} in time", sent=False) from exc
        except (builtins.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimeoutError(f"no answer from {_origin(url)} in time", sent=True) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"request to {_origin(url)} failed: {_describe(exc)}", sent=True
            ) from exc


async def _read_all(response: aiohttp.ClientResponse, url: str) -> bytes:
    """The whole body, up to ``_MAX_BODY`` bytes, else ``TransportError``.

    ``StreamReader.read(n)`` returns whatever is buffered, not ``n`` bytes: a large answer
    arrives in several chunks, so read until EOF. A declared Content-Length over the cap
    is refused before reading anything; a chunked answer (no length) is stopped as soon as
    it passes the cap. Either way the connection is closed on the way out (its body is
    unread), never returned to the pool half-read.
    """
    declared = response.content_length
    if declared is not None and declared > _MAX_BODY:
        raise _too_large(url)
    chunks: list[bytes] = []
    size = 0
    # iter_any: each block as the socket delivered it, no re-slicing into fixed sizes
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > _MAX_BODY:
            raise _too_large(url)
        chunks.append(chunk)
    return b"".join(chunks)  # one chunk: join returns it as is, no copy


def _too_large(url: str) -> TransportError:
    # sent=True: the server did answer, so the request reached it
    return TransportError(f"answer from {_origin(url)} larger than {_MAX_BODY} bytes", sent=True)


def _origin(url: str) -> str:
    # never echo query strings: CONFIG (with passwords) may be in one
    return url.split("?", 1)[0]


def _describe(exc: BaseException) -> str:
    text = type(exc).__name__
    detail = str(exc).split("?", 1)[0]
    return f"{text}: {detail[:200]}" if detail else text
