"""``FakeZoho``: accounts and analytics servers on loopback, for tests of Zoho clients.

Holds the public object (settings, builders, controls, counters), its lifecycle on the
caller's event loop (``start``, ``stop``, ``async with``), and :func:`serve_in_thread`,
which serves it from a background thread for synchronous test code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypedDict

from aiohttp import web

from ._accounts import DEFAULT_GRANT_SCOPES, GRANT_CODE_TTL
from ._analytics import complete_sync, settle_sync
from ._engine import DEFAULT_SYNC_DURATION, Engine, Settings, build_app
from ._faults import Fault
from ._stats import FakeStats
from ._world import FakeDatasource, FakeOrg, FakeWorkspace, populate

# -- the fake ---------------------------------------------------------------------------


class Credentials(TypedDict):
    """The fake's valid client credentials."""

    client_id: str
    client_secret: str
    refresh_token: str


class FakeZoho:
    """A fake Zoho Analytics (REST API v2) plus its accounts server, over real HTTP.

    Answers like Zoho: same paths, envelopes, error codes, HTTP statuses, OAuth quirks and
    per-minute limits; syncs take time and spend quota. Zoho's official clients work
    against it unchanged (point their accounts and analytics URLs at it).

    Example::

        async with FakeZoho.populated(workspaces=2, datasources_per_workspace=5) as fake:
            client = MyClient(fake.api_url, fake.accounts_url, **fake.credentials)
            ...
            assert fake.stats.syncs_started.total() == 10

    Syncs take time, as real ones do: a started sync stays in progress for
    ``sync_duration`` seconds (3 by default; per datasource with
    :meth:`add_datasource`), and a second sync of it meanwhile answers 18073 (already
    running). ``sync_duration=0`` makes every sync finish the moment it starts, for tests
    that need an instant sync; they should say so.

    Times are printed as Zoho prints them, in the account's zone by abbreviation:
    ``time_zone="IST"`` (the default), or any abbreviation with its offset, such as
    ``"CST@-06:00"`` (Chicago) or ``"CST@+08:00"`` (Shanghai), to test readers of
    ambiguous zones.

    The server runs on asyncio (aiohttp): use it from ``asyncio.run`` or anyio's asyncio
    backend, or from synchronous code with :meth:`run_in_thread`.
    """

    def __init__(
        self,
        *,
        token_lifetime: float = 3600.0,
        requests_per_minute: int | None = 100,
        metadata_per_minute: int | None = 60,
        window_seconds: float = 60.0,
        token_limit: int = 10,
        token_window: float = 600.0,
        throttle_status: int = 400,
        sync_duration: float = DEFAULT_SYNC_DURATION,
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        time_zone: str = "IST",
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = Settings(
            token_lifetime=token_lifetime,
            requests_per_minute=requests_per_minute,
            metadata_per_minute=metadata_per_minute,
            window_seconds=window_seconds,
            token_limit=token_limit,
            token_window=token_window,
            throttle_status=throttle_status,
            sync_duration=sync_duration,
            latency=latency,
            latency_jitter=latency_jitter,
            time_zone=time_zone,
            seed=seed,
        )
        self._engine = Engine(settings, clock)
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._base_url: str | None = None

    @classmethod
    def populated(
        cls,
        *,
        orgs: int = 1,
        workspaces: int = 3,
        datasources_per_workspace: int = 100,
        seed: int = 0,
        mix: bool = True,
        **server_kwargs: Any,
    ) -> FakeZoho:
        """A fake filled by a seeded generator (not started yet).

        With ``mix`` a realistic spread (a few multi-interval, Local Drive/Snapshot entries
        without ids, live connections, already running, quota spent, shared connections,
        one forbidden); without, only plain syncable single-interval connections.

        Example::

            fake = FakeZoho.populated(workspaces=2, datasources_per_workspace=10, mix=False)
        """
        fake = cls(seed=seed, **server_kwargs)
        populate(
            fake,
            orgs=orgs,
            workspaces=workspaces,
            datasources_per_workspace=datasources_per_workspace,
            seed=seed,
            mix=mix,
        )
        return fake

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve. Example: ``await fake.start(); print(fake.api_url)``."""
        if self._runner is not None:
            raise RuntimeError("FakeZoho is already running")
        self._closing = asyncio.Event()
        app = build_app(self._engine, self._closing)
        # handler_cancellation: a client that hangs up cancels its handler, so a request
        # abandoned during a scripted delay is never processed afterwards.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        scheme = "https" if self._ssl_context is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        self._base_url = f"{scheme}://{shown}:{port}"
        self._engine.restart_clock()

    async def stop(self) -> None:
        """Stop serving; calling it again is harmless."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._closing is not None:
            self._closing.set()  # wake handlers sleeping through latency or delays
        await runner.cleanup()

    async def __aenter__(self) -> FakeZoho:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @classmethod
    @contextlib.contextmanager
    def run_in_thread(cls, fake: FakeZoho | None = None, /, **kwargs: Any) -> Iterator[FakeZoho]:
        """Serve on a background thread with its own event loop, for synchronous clients.

        Pass a built fake, or keyword arguments for a new one.

        Example::

            with FakeZoho.run_in_thread(FakeZoho.populated(mix=False)) as fake:
                requests.post(fake.accounts_url + "/oauth/v2/token", params=...)
        """
        if fake is not None and kwargs:
            raise TypeError("pass either a FakeZoho or keyword arguments, not both")
        with serve_in_thread(fake if fake is not None else cls(**kwargs)) as running:
            yield running

    # -- addresses and credentials ---------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base URL of the analytics API, e.g. ``http://127.0.0.1:54321`` (no trailing /)."""
        if self._base_url is None:
            raise RuntimeError("FakeZoho is not started; use 'async with' or await start()")
        return self._base_url

    @property
    def accounts_url(self) -> str:
        """Base URL of the accounts server (token at ``/oauth/v2/token``)."""
        return self.api_url

    @property
    def client_id(self) -> str:
        return self._engine.credentials.client_id

    @property
    def client_secret(self) -> str:
        return self._engine.credentials.client_secret

    @property
    def refresh_token(self) -> str:
        return self._engine.credentials.refresh_token

    @property
    def credentials(self) -> Credentials:
        """``client_id``, ``client_secret``, ``refresh_token``, ready for ``**``.

        A ``TypedDict``, so ``AnalyticsSession(**fake.credentials, ...)`` type-checks.
        """
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }

    @property
    def default_org_id(self) -> str | None:
        with self._engine.lock:
            return next(iter(self._engine.world.orgs), None)

    @property
    def stats(self) -> FakeStats:
        return self._engine.stats

    def reset_stats(self) -> None:
        with self._engine.lock:
            self._engine.stats.reset()

    def clear_script(self) -> None:
        """Drop every scripted fault not yet used (all routes).

        Example::

            fake.script("sync", [Fault.rate_limited()] * 50)
            ...
            fake.clear_script()  # the storm is over
        """
        self._engine.faults.clear()

    def window_left(self) -> float:
        """Seconds until the current rate-limit window ends."""
        engine = self._engine
        with engine.lock:
            elapsed = (engine.clock() - engine.epoch) % engine.settings.window_seconds
            return engine.settings.window_seconds - elapsed

    def window_index(self) -> int:
        """The index of the rate-limit window now (the keys of ``stats.window_counts``).

        Example::

            now = fake.window_index()
            assert fake.stats.metadata_window_counts[org].get(now - 1, 0) <= 60
        """
        engine = self._engine
        with engine.lock:
            return int((engine.clock() - engine.epoch) // engine.settings.window_seconds)

    # -- builders --------------------------------------------------------------------------------

    def add_org(
        self, org_id: str | None = None, name: str = "Org", is_default: bool = False
    ) -> FakeOrg:
        """Add an organisation (the first one added is the default)."""
        return self._engine.world.add_org(org_id, name, is_default)

    def add_workspace(
        self,
        org_id: str,
        workspace_id: str | None = None,
        name: str | None = None,
        owned: bool = True,
    ) -> FakeWorkspace:
        """Add a workspace to ``org_id`` (owned, or shared with us when ``owned=False``)."""
        return self._engine.world.add_workspace(org_id, workspace_id, name, owned)

    def add_datasource(
        self,
        workspace_id: str,
        datasource_id: str | None = None,
        *,
        name: str | None = None,
        source: str | None = None,
        intervals: int = 1,
        sync_used: int = 0,
        total_sync_allowed: int = 5,
        connection_id: str | None = None,
        forbidden: bool = False,
        kind: str = "connection",
        sync_duration: float | None = None,
        outcome: str = "Success",
        running: bool = False,
    ) -> FakeDatasource:
        """Add a datasource to a workspace.

        ``kind`` is "connection" (syncable), "local_drive" or "snapshot" (listed without an
        id), or "live" (design-sync fields; sync answers 18061). Datasources naming the same
        ``connection_id`` share one quota (the first one's numbers). ``running=True`` starts
        with a sync in progress: for ``sync_duration`` seconds, or until :meth:`finish_sync`
        when the duration is 0. ``sync_duration`` overrides the fake's own for this
        datasource (``None``: the fake's, 3 s by default; 0: every sync finishes at once).

        Example::

            ds = fake.add_datasource(ws.workspace_id, intervals=2, sync_duration=0.5)
        """
        return self._engine.world.add_datasource(
            workspace_id,
            datasource_id,
            name=name,
            source=source,
            intervals=intervals,
            sync_used=sync_used,
            total_sync_allowed=total_sync_allowed,
            connection_id=connection_id,
            forbidden=forbidden,
            kind=kind,
            sync_duration=sync_duration,
            outcome=outcome,
            running=running,
        )

    def datasource(self, datasource_id: str) -> FakeDatasource:
        """The datasource with this id, its sync state brought up to date."""
        engine = self._engine
        with engine.lock:
            found = engine.world.find_datasource(datasource_id)
            settle_sync(found, engine.clock(), engine.stamp)
            return found

    def datasources(self, workspace_id: str | None = None) -> list[FakeDatasource]:
        """Every datasource (of one workspace, or all), in listing order."""
        world = self._engine.world
        with world.lock:
            keys = [workspace_id] if workspace_id is not None else list(world.datasources)
            return [ds for key in keys for ds in world.datasources.get(key, [])]

    # -- control ---------------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (8535 from now on)."""
        with self._engine.lock:
            self._engine.accounts.revoke_tokens()

    def expire_tokens(self) -> None:
        """Expire every access token issued so far (8535 from now on)."""
        with self._engine.lock:
            self._engine.accounts.expire_tokens()

    def revoke_refresh_token(self, refresh_token: str | None = None) -> None:
        """Revoke a refresh token (default: :attr:`refresh_token`) and every access token
        issued so far: its token requests answer ``invalid_code`` from now on."""
        with self._engine.lock:
            self._engine.accounts.revoke_refresh_token(refresh_token)

    def issue_grant_code(
        self,
        scopes: Sequence[str] = DEFAULT_GRANT_SCOPES,
        ttl: float = GRANT_CODE_TTL,
    ) -> str:
        """A grant code, as the API Console's Self Client "Generate Code" gives one.

        Exchange it at ``/oauth/v2/token`` with ``grant_type=authorization_code`` (and
        :attr:`client_id` / :attr:`client_secret`) for a new refresh token. It is single
        use and expires ``ttl`` seconds from now (Zoho's default: 3 minutes); after that it
        answers ``{"error": "invalid_code"}``, as Zoho does. A running fake also mints
        one for ``POST /_fake/grant-code`` (optional ``ttl`` seconds and ``scope``, comma
        separated), answering ``{"code": ..., "expires_in": ...}``: a path of the fake's
        own, for people following the README in a shell.

        Example::

            code = fake.issue_grant_code(ttl=60)
            # zoho-async auth login --code CODE --accounts-url ...
        """
        engine = self._engine
        with engine.lock:
            return engine.accounts.issue_code(tuple(scopes), ttl, engine.clock()).code

    @property
    def refresh_tokens(self) -> list[str]:
        """Every live refresh token, oldest first: the seeded one and those minted by grant
        codes, less the revoked ones (a user holds at most 20; one more deletes the oldest)."""
        with self._engine.lock:
            return self._engine.accounts.refresh_tokens()

    def finish_sync(self, datasource_id: str) -> None:
        """Complete a sync in progress now (no-op when none is running)."""
        engine = self._engine
        with engine.lock:
            found = engine.world.find_datasource(datasource_id)
            if found.running:
                complete_sync(found, engine.stamp(engine.clock()))

    def script(self, route: str, faults: Sequence[Fault]) -> None:
        """Answer the next ``len(faults)`` requests to ``route`` with these faults.

        Routes: "token", "revoke", "orgs", "workspaces", "workspace", "datasources", "sync",
        "resources", "unknown", or "*" (any analytics route, after its own queue).

        Example::

            fake.script("sync", [Fault.error(7005, http_status=500)])
        """
        self._engine.faults.add(route, faults)

    def set_latency(self, latency: float, jitter: float = 0.0) -> None:
        """Seconds added to every response, plus uniform random ``[0, jitter)``."""
        with self._engine.lock:
            self._engine.latency = latency
            self._engine.jitter = jitter


# -- background thread ------------------------------------------------------------------


@contextlib.contextmanager
def serve_in_thread(fake: FakeZoho) -> Iterator[FakeZoho]:
    """Start ``fake`` on a new thread's event loop; stop it and join the thread on exit."""
    ready = threading.Event()
    errors: list[BaseException] = []
    handles: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            await fake.start()
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)
            ready.set()
            return
        handles.append((asyncio.get_running_loop(), stop))
        ready.set()
        try:
            await stop.wait()
        finally:
            await fake.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="FakeZoho", daemon=True)
    thread.start()
    ready.wait()
    if errors:
        thread.join()
        raise errors[0]
    loop, stop = handles[0]
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
