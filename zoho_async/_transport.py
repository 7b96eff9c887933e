"""The only module that touches aiohttp: send one request, get status, headers and body.

Network failures become :class:`TransportError` (``sent=False`` when the connection was
never made, so a retry cannot duplicate anything) or :class:`TimeoutError`.

Proxies: an explicit ``proxy=`` URL, else (``trust_env``) the standard ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY`` variables, read once when the transport is built. We resolve
them ourselves instead of turning on aiohttp's ``trust_env``: that one also reads
``~/.netrc`` on every request and adds its Basic credentials, which would clash with our
``Authorization`` header (a ``ValueError`` on every API call) or hand unrelated netrc
credentials to the accounts server with the token request.
"""

from __future__ import annotations

import base64
import builtins
import ipaddress
import logging
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs
from yarl import URL

from ._errors import InvalidInputError, TimeoutError, TransportError

__all__ = ["Proxy", "RawResponse", "Transport", "make_ssl_context", "parse_proxy"]

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
    """``None``: verify with the system store; a path: verify with that CA bundle.

    A bundle that cannot be read or holds no certificate is an ``InvalidInputError`` here,
    before any request, rather than an ``OSError``/``SSLError`` from deep in ``ssl``.
    """
    if ssl_option is None:
        return True
    if isinstance(ssl_option, ssl.SSLContext):
        return ssl_option
    try:
        return ssl.create_default_context(cafile=str(ssl_option))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise InvalidInputError(
            f"CA bundle {str(ssl_option)!r} is not a readable PEM file: {exc}"
        ) from None


_MASK = "***"


def _mask_userinfo(text: str) -> str:
    """``text`` with everything before the host's ``@`` masked (pure string work, so it
    is safe on input that is not even a valid URL)."""
    head, sep, rest = text.partition("://")
    if not sep:
        head, rest = "", text
    authority = rest.split("/", 1)[0]
    if "@" not in authority:
        return text
    tail = rest[authority.rindex("@") :]
    return f"{head}{sep}{_MASK}{tail}"


@attrs.frozen(repr=False)
class Proxy:
    """A forward HTTP proxy: its URL without credentials, and the credentials apart.

    The credentials are secrets: ``repr`` and :attr:`display` mask them, and they leave
    only as the ``Proxy-Authorization`` header to the proxy, never inside a URL that could
    end up in a message.
    """

    url: URL
    password: str | None = None
    authorization: str | None = None  # "Basic ...", the header's value

    @property
    def display(self) -> str:
        """The proxy URL for messages: ``http://***@host:port`` when it has credentials."""
        origin = str(self.url)
        if self.authorization is None:
            return origin
        scheme, _, rest = origin.partition("://")
        return f"{scheme}://{_MASK}@{rest}"

    def scrub(self, text: str) -> str:
        """``text`` with the proxy's password (plain, URL-encoded, or inside the encoded
        header) masked: a last filter on messages built from aiohttp's."""
        if self.authorization is None:
            return text
        password = self.password or ""
        header = self.authorization.removeprefix("Basic ")
        # longest first, so the encoded header is masked whole
        for secret in (header, urllib.parse.quote(password, safe=""), password):
            # very short passwords would mask ordinary words: the header still covers them
            if len(secret) >= 4 and secret in text:
                text = text.replace(secret, _MASK)
        return text

    def __repr__(self) -> str:
        return f"Proxy({self.display!r})"


def parse_proxy(value: str, what: str = "proxy") -> Proxy:
    """A :class:`Proxy` from ``http://[user:password@]host[:port]``, else
    ``InvalidInputError`` naming ``what`` (credentials masked in the message).

    A value without a scheme is taken as ``http://`` (the usual ``HTTP_PROXY=host:3128``).
    Only ``http://`` proxies are supported: the tunnel to Zoho is TLS end to end through a
    ``CONNECT``, so the hop to the proxy itself needs none.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty http:// URL")
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    shown = _mask_userinfo(text)
    try:
        url = URL(text)
        host = url.host
        port = url.port
    except (ValueError, TypeError):
        raise InvalidInputError(f"{what} is not a valid URL: {shown!r}") from None
    if url.scheme != "http":
        raise InvalidInputError(
            f"{what} must be an http:// proxy URL (https:// and socks proxies are not "
            f"supported), got {shown!r}"
        )
    if not host or port is None:
        raise InvalidInputError(f"{what} has no host: {shown!r}")
    if url.path not in ("", "/") or url.query_string or url.fragment:
        raise InvalidInputError(f"{what} must be just scheme://host:port, got {shown!r}")
    bare = URL.build(scheme="http", host=host, port=port)
    if url.user is None and url.password is None:
        return Proxy(bare)
    user, password = url.user or "", url.password or ""
    # RFC 7617 Basic, UTF-8: built here rather than with aiohttp's BasicAuth/proxy_auth,
    # which recent aiohttp deprecates
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return Proxy(bare, password, "Basic " + token)


# the request schemes whose proxy the environment gives (ALL_PROXY is not one: as aiohttp)
_ENV_SCHEMES = ("http", "https")


def _bypass(origin: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` names the host of ``origin`` (``scheme://host[:port]``).

    The usual rules (curl, requests): entries split on commas, ``*`` for every host; a
    name matches itself and its subdomains (a leading ``.`` or ``*.`` changes nothing);
    ``host:port`` only that port; an IP address or a CIDR block the addresses in it.
    """
    parts = urllib.parse.urlsplit(origin)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw_entry in no_proxy.replace(" ", ",").split(","):
        entry = raw_entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
            name, _, port_text = entry.rpartition(":")
            if not port_text.isdigit():
                continue
            entry_port = int(port_text)
        name = name.strip("[]").removeprefix("*").lstrip(".")
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def _env_proxies() -> tuple[dict[str, Proxy], dict[str, str]]:
    """The proxies of the environment (``HTTPS_PROXY``, ``http_proxy``, ...) by scheme,
    and urllib's raw table (which holds ``NO_PROXY`` under ``"no"``)."""
    raw = urllib.request.getproxies_environment()
    parsed = {
        scheme: parse_proxy(raw[scheme], f"{scheme.upper()}_PROXY (environment)")
        for scheme in _ENV_SCHEMES
        if raw.get(scheme)
    }
    return parsed, raw


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
        proxy: Proxy | None = None,
        trust_env: bool = True,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._ssl = make_ssl_context(ssl_option)
        self._external = client_session
        self._own: aiohttp.ClientSession | None = None
        self._limit = limit
        self.requests = 0
        # An explicit proxy serves every request; else the environment's, per scheme,
        # unless NO_PROXY names the host. Read now, so a bad variable fails before any
        # request and no request pays for scanning the environment.
        self._proxy = proxy
        self._env: dict[str, Proxy] = {}
        self._env_raw: dict[str, str] = {}
        if proxy is None and trust_env:
            self._env, self._env_raw = _env_proxies()
        self._routes: dict[str, Proxy | None] = {}  # origin -> its proxy (a handful of hosts)

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to ``url`` goes through, or ``None`` for a direct one."""
        if self._proxy is not None or not self._env:
            return self._proxy
        scheme, _, rest = url.partition("://")
        netloc = rest.split("/", 1)[0].split("?", 1)[0]
        key = f"{scheme}://{netloc}"
        try:
            return self._routes[key]
        except KeyError:
            pass
        route = self._env.get(scheme.lower())
        if route is not None and _bypass(key, self._env_raw.get("no", "")):
            route = None
        self._routes[key] = route
        return route

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
        proxy = self.proxy_for(url)
        if proxy is not None:
            kwargs["proxy"] = proxy.url
            if proxy.authorization is not None:
                credential = {"Proxy-Authorization": proxy.authorization}
                if url.startswith("https:"):
                    # for the CONNECT only: the tunnelled request never carries it
                    kwargs["proxy_headers"] = credential
                else:
                    # a plain-http request goes to the proxy itself, which strips it
                    kwargs["headers"] = {**headers, **credential}
        self.requests += 1
        try:
            return await self._send(method, url, proxy, kwargs)
        except TransportError as exc:
            if proxy is None or proxy.authorization is None:
                raise
            # aiohttp's exceptions keep the Proxy-Authorization header and the credentials
            # (request_info, connection key): cut the chain so no traceback prints them
            raise type(exc)(proxy.scrub(str(exc)), sent=exc.sent) from None

    async def _send(
        self, method: str, url: str, proxy: Proxy | None, kwargs: dict[str, Any]
    ) -> RawResponse:
        try:
            async with self.session.request(method, url, **kwargs) as response:
                if proxy is not None and response.status == 407:
                    # a plain-http request answered by the proxy itself: it never reached
                    # Zoho (Zoho never answers 407), so this is safe to say and to retry
                    raise TransportError(
                        f"proxy {proxy.display} refused {_origin(url)}: 407 Proxy "
                        "Authentication Required",
                        sent=False,
                    )
                if response.status == 204 or response.content_length == 0:
                    body = b""  # Sync Data's answer: nothing to read
                else:
                    body = await _read_all(response, url)
                # the (case-insensitive) header proxy as is: copying it costs every request
                return RawResponse(response.status, response.headers, body)
        except aiohttp.ClientProxyConnectionError as exc:
            assert proxy is not None
            raise TransportError(
                f"cannot connect to proxy {proxy.display} for {_origin(url)}: {_describe(exc)}",
                sent=False,
            ) from exc
        except aiohttp.ClientHttpProxyError as exc:
            # the proxy said no to CONNECT: nothing reached Zoho
            assert proxy is not None
            raise TransportError(
                f"proxy {proxy.display} refused the tunnel to {_origin(url)}: "
                f"{exc.status} {exc.message}",
                sent=False,
            ) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError) as exc:
            # includes certificate errors: the request never left this machine
            raise TransportError(
                f"cannot connect to {_origin(url)}{_via(proxy)}: {_describe(exc)}", sent=False
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise TimeoutError(
                f"cannot connect to {_origin(url)}{_via(proxy)} in time", sent=False
            ) from exc
        except (builtins.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimeoutError(
                f"no answer from {_origin(url)}{_via(proxy)} in time", sent=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"request to {_origin(url)}{_via(proxy)} failed: {_describe(exc)}", sent=True
            ) from exc


def _via(proxy: Proxy | None) -> str:
    return "" if proxy is None else f" via proxy {proxy.display}"


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
