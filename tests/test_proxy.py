"""Proxies and custom CAs, through a real forward proxy on loopback.

``ForwardProxy`` is a small HTTP/1.1 forward proxy written here: absolute-form requests
(``GET http://host/path``) are forwarded to the target, ``CONNECT host:port`` opens a
tunnel (the TLS inside stays end to end with the https FakeZoho), and every request that
passes is logged, so a test can say exactly what went through it and what did not.

The accounts URL is the fake's own address under the name ``localhost`` (the API keeps
``127.0.0.1``): token requests and API requests then reach the proxy under different
targets, even through a tunnel whose contents it cannot read.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio.from_thread
import attrs
import pytest
import trustme
from click.testing import CliRunner, Result

from zoho_async import AnalyticsSession, InvalidInputError, TransportError
from zoho_async.cli import cli
from zoho_async.testing import FakeZoho

from .helpers import cli_env, session_for

pytestmark = pytest.mark.anyio

USER = "proxy-user"
PASSWORD = "pr0xy-s3cret/pw"  # has a character that URL-encoding changes
QUOTED = "pr0xy-s3cret%2Fpw"
HEADER = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@attrs.define
class Passed:
    """One request the proxy received: ``CONNECT host:port`` or ``GET http://...``."""

    method: str
    target: str
    proxy_authorization: str | None
    authorization: str | None


class ForwardProxy:
    """A forward proxy on 127.0.0.1 with an optional Basic credential (407 otherwise).

    One request per client connection (``Connection: close`` upstream), which is all a
    test needs and keeps the relaying simple.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.passed: list[Passed] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # every stream it opened or accepted, closed (and waited for) when it stops: a
        # transport merely told to close when its loop ends warns as unclosed
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    def targets(self) -> list[str]:
        return [f"{p.method} {p.target}" for p in self.passed]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for writer in list(self._writers):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            await server.wait_closed()

    async def __aenter__(self) -> ForwardProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        method, target, _version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.passed.append(
            Passed(method, target, headers.get("proxy-authorization"), headers.get("authorization"))
        )
        if self.credentials is not None:
            user, password = self.credentials
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if headers.get("proxy-authorization") != expected:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                await writer.drain()
                return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            self._writers.add(up_writer)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._pipe_both(reader, writer, up_reader, up_writer)
            return
        # absolute-form: http://host:port/path?query -> origin-form to the target
        rest = target.partition("://")[2]
        authority, slash, path = rest.partition("/")
        host, _, port = authority.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        self._writers.add(up_writer)
        kept = [
            line
            for line in header_lines
            if line.partition(":")[0].strip().lower()
            not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        upstream_head = "\r\n".join(
            [f"{method} {slash}{path} HTTP/1.1", *kept, "Connection: close", "", ""]
        )
        up_writer.write(upstream_head.encode("latin-1"))
        length = int(headers.get("content-length", "0"))
        if length:
            up_writer.write(await reader.readexactly(length))
        await up_writer.drain()
        try:
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()

    async def _pipe_both(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.contextmanager
def proxy_in_thread(credentials: tuple[str, str] | None = None) -> Iterator[ForwardProxy]:
    """A :class:`ForwardProxy` on its own loop, for the command line (which runs its own)."""
    proxy = ForwardProxy(credentials)
    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(proxy.start)
        try:
            yield proxy
        finally:
            portal.call(proxy.stop)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def by_name(fake: FakeZoho) -> str:
    """The fake's address under the name ``localhost`` (the accounts URL of these tests)."""
    return fake.api_url.replace("127.0.0.1", "localhost")


def origin(url: str) -> str:
    return url.partition("://")[2]


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(authority: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
async def http_fake() -> AsyncIterator[FakeZoho]:
    async with FakeZoho(requests_per_minute=None, metadata_per_minute=None) as fake:
        fake.add_org(is_default=True)
        yield fake


@pytest.fixture
async def https_fake(authority: trustme.CA) -> AsyncIterator[FakeZoho]:
    async with FakeZoho(
        ssl_context=server_context(authority), requests_per_minute=None, metadata_per_minute=None
    ) as fake:
        fake.add_org(is_default=True)
        yield fake


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as running:
        yield running


@pytest.fixture
async def guarded_proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy((USER, PASSWORD)) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy variable of the machine leaks in; no ~/.netrc either."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def on(fake: FakeZoho, **overrides: Any) -> AnalyticsSession:
    """A session on ``fake`` whose token requests go to ``localhost``, API to 127.0.0.1."""
    return session_for(fake, accounts_url=by_name(fake), **overrides)


# -- the explicit proxy= ----------------------------------------------------------------------


async def test_proxy_argument_carries_token_and_api_requests(
    http_fake: FakeZoho, proxy: ForwardProxy
) -> None:
    async with on(http_fake, proxy=proxy.url()) as session:
        assert len(await session.get_orgs()) == 1
    assert proxy.targets() == [
        f"POST {by_name(http_fake)}/oauth/v2/token",
        f"GET {http_fake.api_url}/restapi/v2/orgs",
    ]
    assert http_fake.stats.token_requests == 1


async def test_https_goes_through_a_connect_tunnel_with_the_custom_ca(
    https_fake: FakeZoho, proxy: ForwardProxy, ca_bundle: str
) -> None:
    async with on(https_fake, proxy=proxy.url(), ssl=ca_bundle) as session:
        assert len(await session.get_orgs()) == 1
    # one tunnel per host: the token's, then the API's (TLS end to end inside)
    assert proxy.targets() == [
        f"CONNECT {origin(by_name(https_fake))}",
        f"CONNECT {origin(https_fake.api_url)}",
    ]


async def test_the_explicit_proxy_wins_over_the_environment(
    http_fake: FakeZoho, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    async with on(http_fake, proxy=proxy.url()) as session:
        await session.get_orgs()
    assert len(proxy.passed) == 2  # NO_PROXY is the environment's; proxy= serves every host


async def test_a_callers_client_session_goes_through_the_proxy_too(
    http_fake: FakeZoho, proxy: ForwardProxy
) -> None:
    async with (
        aiohttp.ClientSession() as client,
        on(http_fake, proxy=proxy.url(), client_session=client) as session,
    ):
        await session.get_orgs()
    assert [p.method for p in proxy.passed] == ["POST", "GET"]


# -- the environment ----------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
async def test_https_proxy_variable_is_honoured(
    https_fake: FakeZoho,
    proxy: ForwardProxy,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, proxy.url())
    async with on(https_fake, ssl=ca_bundle) as session:
        assert len(await session.get_orgs()) == 1
    assert proxy.targets() == [
        f"CONNECT {origin(by_name(https_fake))}",
        f"CONNECT {origin(https_fake.api_url)}",
    ]


async def test_http_proxy_variable_is_honoured_for_http(
    http_fake: FakeZoho, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")  # not for http://
    async with on(http_fake) as session:
        await session.get_orgs()
    assert [p.method for p in proxy.passed] == ["POST", "GET"]


@pytest.mark.parametrize("no_proxy", ["localhost", ".localhost", "127.0.0.2,localhost"])
async def test_no_proxy_hosts_go_direct(
    https_fake: FakeZoho,
    proxy: ForwardProxy,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", no_proxy)
    async with on(https_fake, ssl=ca_bundle) as session:
        await session.get_orgs()
        await session.get_orgs()
    # the token went direct to localhost; only the API host used the proxy
    assert proxy.targets() == [f"CONNECT {origin(https_fake.api_url)}"]
    assert https_fake.stats.token_requests == 1


async def test_trust_env_false_ignores_the_environment(
    https_fake: FakeZoho, proxy: ForwardProxy, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    monkeypatch.setenv("HTTP_PROXY", "socks5://not-even-valid:1")
    async with on(https_fake, ssl=ca_bundle, trust_env=False) as session:
        assert len(await session.get_orgs()) == 1
    assert proxy.passed == []


async def test_netrc_is_never_read(
    http_fake: FakeZoho, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # aiohttp's own trust_env would add these to the token request, and refuse every API
    # call ("Cannot combine AUTHORIZATION header ..."): the environment is read for
    # proxies only
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    async with on(http_fake) as session:
        assert len(await session.get_orgs()) == 1
    assert [p.method for p in proxy.passed] == ["POST", "GET"]
    assert proxy.passed[0].authorization is None
    assert (proxy.passed[1].authorization or "").startswith("Zoho-oauthtoken ")


# -- credentials and failures ---------------------------------------------------------------------


def shows_the_secret(*texts: str) -> bool:
    return any(s in text for text in texts for s in (PASSWORD, QUOTED, HEADER))


def everything_about(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_proxy_credentials_are_sent_to_the_proxy_only(
    scheme: str,
    http_fake: FakeZoho,
    https_fake: FakeZoho,
    guarded_proxy: ForwardProxy,
    ca_bundle: str,
) -> None:
    fake = http_fake if scheme == "http" else https_fake
    url = guarded_proxy.url(f"{USER}:{QUOTED}")
    session = on(fake, proxy=url, ssl=ca_bundle)
    assert not shows_the_secret(repr(session), str(session))
    async with session:
        assert len(await session.get_orgs()) == 1
    assert [p.proxy_authorization for p in guarded_proxy.passed] == ["Basic " + HEADER] * 2
    if scheme == "http":  # forwarded requests lose the proxy's header on the way
        assert all(p.authorization != "Basic " + HEADER for p in guarded_proxy.passed)


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_wrong_proxy_credentials_are_a_transport_error_without_them(
    scheme: str,
    http_fake: FakeZoho,
    https_fake: FakeZoho,
    ca_bundle: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = http_fake if scheme == "http" else https_fake
    caplog.set_level("DEBUG", logger="zoho_async")
    async with ForwardProxy((USER, "the-right-one")) as guarded:
        url = guarded.url(f"{USER}:{QUOTED}")
        async with on(fake, proxy=url, ssl=ca_bundle) as session:
            with pytest.raises(TransportError) as info:
                await session.get_orgs()
    assert info.value.sent is False  # refused by the proxy: nothing reached Zoho
    assert "407" in str(info.value)
    assert "proxy http://***@127.0.0.1:" in str(info.value)
    assert not shows_the_secret(everything_about(info.value), caplog.text)
    assert fake.stats.token_requests == 0


async def test_unreachable_proxy_is_a_typed_transport_error(
    http_fake: FakeZoho, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="zoho_async")
    url = f"http://{USER}:{QUOTED}@127.0.0.1:{closed_port()}"
    async with on(http_fake, proxy=url) as session:
        with pytest.raises(TransportError) as info:
            await session.get_orgs()
    assert type(info.value) is TransportError
    assert info.value.sent is False
    assert "cannot connect to proxy http://***@127.0.0.1:" in str(info.value)
    assert not shows_the_secret(everything_about(info.value), caplog.text)
    assert http_fake.stats.token_requests == 0


@pytest.mark.parametrize(
    "url",
    [
        f"socks5://{USER}:{QUOTED}@127.0.0.1:1080",
        "https://127.0.0.1:3128",
        f"http://{USER}:{QUOTED}@:3128",
        "http://127.0.0.1:99999",
        f"http://{USER}:{QUOTED}@127.0.0.1:3128/some/path",
        "",
    ],
)
def test_a_bad_proxy_url_is_invalid_input_before_anything(url: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        AnalyticsSession("id", "secret", "refresh", proxy=url)
    assert not shows_the_secret(everything_about(info.value))


async def test_a_bad_proxy_variable_is_invalid_input_on_open(
    http_fake: FakeZoho, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"socks5://{USER}:{QUOTED}@127.0.0.1:1080")
    with pytest.raises(InvalidInputError, match="HTTP_PROXY") as info:
        async with on(http_fake):
            pass
    assert not shows_the_secret(everything_about(info.value))
    assert http_fake.stats.token_requests == 0


def test_proxy_parsing_and_its_repr() -> None:
    from zoho_async._transport import parse_proxy  # here: the module collects on old code

    parsed = parse_proxy(f"{USER}:{QUOTED}@proxy.corp:3128")  # no scheme: http://
    assert str(parsed.url) == "http://proxy.corp:3128"
    assert parsed.password == PASSWORD
    assert parsed.authorization == "Basic " + HEADER
    assert repr(parsed) == "Proxy('http://***@proxy.corp:3128')"
    assert str(parse_proxy("http://[::1]:3128/").url) == "http://[::1]:3128"


@pytest.mark.parametrize(
    ("origin_url", "no_proxy", "bypass"),
    [
        ("https://analyticsapi.zoho.com", "zoho.com", True),
        ("https://analyticsapi.zoho.com", ".zoho.com", True),
        ("https://analyticsapi.zoho.com", "*.zoho.com", True),
        ("https://analyticsapi.zoho.com", "ZOHO.COM", True),
        ("https://analyticsapi.zoho.com", "analyticsapi.zoho.com:443", True),
        ("https://analyticsapi.zoho.com", "analyticsapi.zoho.com:8443", False),
        ("https://notzoho.com", "zoho.com", False),
        ("https://a.example", "*", True),
        ("https://a.example", "", False),
        ("http://10.1.2.3:8080", "10.0.0.0/8", True),
        ("http://10.1.2.3:8080", "10.1.2.3", True),
        ("http://10.1.2.3:8080", "10.1.2.4", False),
        ("http://[::1]:5", "::1", True),
        ("http://[::1]:5", "[::1]:5", True),
        ("http://[::1]:5", "[::1]:6", False),
        ("https://localhost", "example.com, localhost", True),
    ],
)
def test_no_proxy_matching(origin_url: str, no_proxy: str, bypass: bool) -> None:
    from zoho_async._transport import _bypass

    assert _bypass(origin_url, no_proxy) is bypass


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def threaded_fake() -> Iterator[FakeZoho]:
    with FakeZoho.run_in_thread(requests_per_minute=None, metadata_per_minute=None) as fake:
        fake.add_org(is_default=True)
        yield fake


@pytest.fixture
def threaded_https_fake(authority: trustme.CA) -> Iterator[FakeZoho]:
    built = FakeZoho(
        ssl_context=server_context(authority), requests_per_minute=None, metadata_per_minute=None
    )
    with FakeZoho.run_in_thread(built) as fake:
        fake.add_org(is_default=True)
        yield fake


def cli_run(args: list[str], fake: FakeZoho, tmp_path: Path, **env: str | None) -> Result:
    values = cli_env(fake, tmp_path)
    values.update(ZOHO_ACCOUNTS_URL=by_name(fake), ZOHO_PROXY=None, ZOHO_CA_BUNDLE=None)
    values.update(env)
    return CliRunner().invoke(cli, args, env=values, catch_exceptions=False)


def test_cli_proxy_flag_carries_token_and_api(threaded_fake: FakeZoho, tmp_path: Path) -> None:
    with proxy_in_thread((USER, PASSWORD)) as proxy:
        url = proxy.url(f"{USER}:{QUOTED}")
        result = cli_run(["orgs", "-f", "json", "--proxy", url], threaded_fake, tmp_path)
        passed = proxy.targets()
    assert result.exit_code == 0, result.output
    assert passed == [
        f"POST {by_name(threaded_fake)}/oauth/v2/token",
        f"GET {threaded_fake.api_url}/restapi/v2/orgs",
    ]


def test_cli_ca_bundle_and_proxy_from_the_environment(
    threaded_https_fake: FakeZoho, tmp_path: Path, ca_bundle: str
) -> None:
    fake = threaded_https_fake
    without = cli_run(["orgs", "--no-token-cache"], fake, tmp_path)
    assert without.exit_code == 1  # the system store does not know the test CA
    assert len(without.output.strip().splitlines()) == 1
    with proxy_in_thread() as proxy:
        by_flag = cli_run(
            ["orgs", "--no-token-cache", "--ca-bundle", ca_bundle, "--proxy", proxy.url()],
            fake,
            tmp_path,
        )
        by_env = cli_run(
            ["workspaces", "--no-token-cache"],
            fake,
            tmp_path,
            ZOHO_CA_BUNDLE=ca_bundle,
            ZOHO_PROXY=proxy.url(),
        )
        passed = proxy.targets()
    assert by_flag.exit_code == 0, by_flag.output
    assert by_env.exit_code == 0, by_env.output
    tunnels = [f"CONNECT {origin(by_name(fake))}", f"CONNECT {origin(fake.api_url)}"]
    assert passed == tunnels * 2


def test_cli_unreachable_proxy_is_one_line_and_exit_1(
    threaded_fake: FakeZoho, tmp_path: Path
) -> None:
    url = f"http://{USER}:{QUOTED}@127.0.0.1:{closed_port()}"
    result = cli_run(["orgs", "--no-token-cache"], threaded_fake, tmp_path, ZOHO_PROXY=url)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "cannot connect to proxy http://***@127.0.0.1:" in lines[0]
    assert not shows_the_secret(result.output)
    assert threaded_fake.stats.token_requests == 0


def test_cli_bad_proxy_url_and_missing_ca_bundle_are_exit_2(
    threaded_fake: FakeZoho, tmp_path: Path
) -> None:
    bad = cli_run(
        ["orgs", "--proxy", f"socks5://{USER}:{QUOTED}@127.0.0.1:1080"], threaded_fake, tmp_path
    )
    assert bad.exit_code == 2
    assert len(bad.output.strip().splitlines()) == 1
    assert not shows_the_secret(bad.output)
    missing = cli_run(["orgs", "--ca-bundle", str(tmp_path / "nope.pem")], threaded_fake, tmp_path)
    assert missing.exit_code == 2
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    unreadable = cli_run(["orgs", "--ca-bundle", str(garbage)], threaded_fake, tmp_path)
    assert unreadable.exit_code == 2
    assert len(unreadable.output.strip().splitlines()) == 1
    assert threaded_fake.stats.token_requests == 0
