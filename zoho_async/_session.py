"""``AnalyticsSession``: credentials, one HTTP session, one token cache, one pacer."""

from __future__ import annotations

import enum
import logging
import os
import ssl as ssl_module
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any

import aiohttp
import anyio

from ._auth import TokenBudget, TokenCache, TokenStore, digest, token_key
from ._bulk import (
    BulkContext,
    RunOptions,
    SyncIterator,
    new_baselines,
    normalise_workspaces,
)
from ._bulk import discover as bulk_discover
from ._bulk import plan_sync as bulk_plan_sync
from ._bulk import sync_many as bulk_sync_many
from ._bulk._context import RunTasks
from ._coordinator import Coordinator
from ._env import session_kwargs
from ._errors import (
    InvalidInputError,
    MissingCredentialsError,
    PacingTimeoutError,
    SyncUnconfirmedError,
)
from ._executor import CallResult, Executor
from ._journal import Journal
from ._models import Datasource, Org, SyncConfig, WorkspaceInfo
from ._pacing import Limits, Pacer
from ._protocol import (
    TOKEN_PATH,
    ApiRequest,
    TokenGrant,
    build_sync_request,
    datasources_request,
    decode_token_response,
    entries,
    orgs_request,
    token_form,
    workspaces_request,
)
from ._regions import resolve_endpoints
from ._results import PlannedTarget, SyncPlan, SyncReport, SyncResult
from ._retry import RetryPolicy
from ._settle import Baselines, settler
from ._shared import SharedPacer, SharedTokenBudget, SharedTokenStore
from ._snapshot import OrgSnapshot, SessionSnapshot
from ._transport import Transport, parse_proxy
from ._upkeep import Upkeep
from ._validation import check_id, check_optional_id, check_positive

__all__ = ["USER_AGENT", "AnalyticsSession", "Workspace", "__version__"]

log = logging.getLogger("zoho_async")

try:
    __version__ = version("zoho-async")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

USER_AGENT = f"zoho-async/{__version__}"

OnResult = Callable[[SyncResult], Awaitable[None] | None]
Targets = Iterable[Any] | AsyncIterable[Any]
# What sync_workspaces and discover take: an id (the session's org), a WorkspaceInfo, a
# Workspace handle, a mapping {"workspace_id": ..., "org_id": ...}, or an
# (org_id, workspace_id) tuple. plan_sync takes the same except the tuple (ambiguous there).
WorkspaceRefs = Iterable[
    "str | int | WorkspaceInfo | Workspace | Mapping[str, Any] | tuple[str, str]"
]


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


def _need(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MissingCredentialsError(f"{what} is required (a non-empty string)")
    return value.strip()


class AnalyticsSession:
    """A connection to Zoho Analytics for one credential.

    One aiohttp session, one shared access token (refreshed once for every task), pacing
    per org inside Zoho's per-minute limits, and safe retries - for single calls and bulk
    runs alike.

    ``timeout`` bounds each HTTP request. ``call_timeout`` is the default of every single
    call's ``timeout=`` (``None``: no bound): the time a call may spend before its
    request is sent - waiting for a pacing turn, a rate-limit pause, the token, a retry.
    Past it the call raises :class:`PacingTimeoutError` without sending anything; a
    request already sent is never cut (it ends within ``timeout``).

    Example::

        async with AnalyticsSession(client_id=..., client_secret=..., refresh_token=...,
                                    org_id="55522777", data_center="eu") as session:
            ws = session.workspace("35130000001055707")
            await ws.sync_data("1767024000004595194")
            report = await session.sync_workspaces(["35130000001055707"])
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        org_id: str | None = None,
        data_center: str = "us",
        api_url: str | None = None,
        accounts_url: str | None = None,
        token_store: TokenStore | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        ssl: ssl_module.SSLContext | str | None = None,
        client_session: aiohttp.ClientSession | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        config_in_query: bool = False,
        token_requests_per_10_minutes: int = 10,
        coordinator: Coordinator | None = None,
        call_timeout: float | None = None,
    ) -> None:
        self._client_id = _need(client_id, "client_id")
        self._client_secret = _need(client_secret, "client_secret")
        self._refresh_token = _need(refresh_token, "refresh_token")
        self.org_id = check_optional_id(org_id, "org_id")
        self.endpoints = resolve_endpoints(data_center, api_url, accounts_url)
        self.timeout = check_positive(timeout, "timeout")
        self.connect_timeout = check_positive(connect_timeout, "connect_timeout")
        self.call_timeout = (
            None if call_timeout is None else check_positive(call_timeout, "call_timeout")
        )
        if limits is not None and not isinstance(limits, Limits):
            raise InvalidInputError("limits must be a zoho_async.Limits")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidInputError("retry must be a zoho_async.RetryPolicy")
        if not isinstance(token_requests_per_10_minutes, int) or token_requests_per_10_minutes < 1:
            raise InvalidInputError("token_requests_per_10_minutes must be an int >= 1")
        if coordinator is not None and not isinstance(coordinator, Coordinator):
            raise InvalidInputError("coordinator must be a zoho_async.Coordinator")
        if coordinator is not None and token_store is not None:
            raise InvalidInputError(
                "pass token_store or coordinator, not both: a coordinator keeps the token"
            )
        self.coordinator = coordinator
        self.limits = limits or Limits()
        self.retry = retry or RetryPolicy()
        self.config_in_query = bool(config_in_query)
        self._token_store = token_store
        self._token_limit = token_requests_per_10_minutes
        self._ssl = ssl
        self._client_session = client_session
        # proxy=: every request (token and API) through this http:// proxy; else, with
        # trust_env, HTTPS_PROXY/HTTP_PROXY/NO_PROXY. Parsed now: a bad URL fails here, and
        # its credentials are kept apart from the URL (never in reprs or messages).
        self._proxy = None if proxy is None else parse_proxy(proxy)
        self._trust_env = bool(trust_env)
        self._state = _State.NEW
        # who this session is to the coordinator's leases and claims, and which Zoho it
        # paces (budgets are per data centre and org)
        self.run_id = uuid.uuid4().hex
        self.namespace = digest(self.endpoints.api_url)[:16]
        self._transport: Transport | None = None
        self._tokens: TokenCache | None = None
        self._upkeep: Upkeep | None = None  # the session's own background work
        self._executor: Executor | None = None
        self._baselines: Baselines | None = None  # single sync_data calls' baselines
        self._runs = RunTasks()  # iter_sync runs not yet ended: closing ends them

    @classmethod
    def from_env(
        cls, *, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> AnalyticsSession:
        """A session from the ``ZOHO_*`` variables that the CLI reads and
        ``zoho-async fake-server`` prints.

        ``ZOHO_CLIENT_ID``, ``ZOHO_CLIENT_SECRET`` and ``ZOHO_REFRESH_TOKEN`` are required;
        ``ZOHO_ORG_ID``, ``ZOHO_DATA_CENTER``, ``ZOHO_API_URL``, ``ZOHO_ACCOUNTS_URL``,
        ``ZOHO_PROXY`` and ``ZOHO_CA_BUNDLE`` (the ``ssl=`` CA file) are optional; blank
        counts as unset. ``environ`` replaces ``os.environ`` (for tests). Keywords win over
        the environment, and any other keyword of the constructor passes through. Missing
        credentials raise :class:`MissingCredentialsError` naming the variables; bad
        values (an unknown data centre, a non-loopback ``http://`` URL) raise
        ``InvalidInputError`` as the constructor does, before any request.

        Example::

            async with AnalyticsSession.from_env(limits=Limits(max_in_flight=4)) as session:
                report = await session.sync_workspaces(["35130000001055707"])
        """
        return cls(**session_kwargs(environ, overrides))

    @classmethod
    def from_profile(cls, name: str | None = None, **overrides: Any) -> AnalyticsSession:
        """A session from a profile of ``config.toml`` (what ``zoho-async auth login``
        writes), its secrets from the OS keyring or the file.

        ``name`` None: ``ZOHO_PROFILE``, else "default". ``ZOHO_*`` environment variables
        override the profile; keywords override both. Setting keywords are the profile's
        keys (``org_id``, ``data_center``, ``rate``, ``metadata_rate``, ...); any other
        keyword goes to the constructor (``timeout=``, ``limits=``, ...). A profile's
        ``shared`` and ``workspaces`` are for the command line and are not used here.
        ``MissingCredentialsError`` when no client id, secret or refresh token is found.

        Example::

            async with AnalyticsSession.from_profile("work", timeout=60) as session:
                print(await session.get_orgs())
        """
        from ._profiles import session_kwargs

        return cls(**session_kwargs(name, overrides))

    def __repr__(self) -> str:
        cid = self._client_id
        shown = cid[:8] + "..." if len(cid) > 8 else cid
        return (
            f"AnalyticsSession(api_url={self.endpoints.api_url!r}, org_id={self.org_id!r}, "
            f"client_id={shown!r}, state={self._state.value})"
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> AnalyticsSession:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # No task group here: what a caller starts (an iter_sync run) is that caller's,
        # so the session may be entered in one task and left in another (a fixture), and
        # the body's own error propagates as itself.
        await self.close()
        return None

    async def open(self) -> None:
        """Open the HTTP session (``async with`` does this for you)."""
        if self._state is _State.CLOSED:
            raise RuntimeError("this AnalyticsSession is closed; create a new one")
        if self._state is _State.OPEN:
            return
        transport = Transport(
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            ssl_option=self._ssl,
            client_session=self._client_session,
            limit=max(self.limits.max_in_flight + 2, 10),
            proxy=self._proxy,
            trust_env=self._trust_env,
        )
        key = token_key(self.endpoints.accounts_url, self._client_id, self._refresh_token)
        store: TokenStore | None = self._token_store
        budget: TokenBudget | SharedTokenBudget = TokenBudget(self._token_limit, 600.0)
        # limiters are created here, inside the running loop
        pacer = Pacer(self.limits)
        coordinator = self.coordinator
        if coordinator is not None:
            await coordinator.open()  # one clear error now if the store is unusable
            store = SharedTokenStore(
                coordinator,
                self.run_id,
                lease_ttl=self.timeout + 10.0,
                wait=2 * self.timeout + 30.0,
            )
            budget = SharedTokenBudget(coordinator, key, self._token_limit, 600.0)
            pacer = SharedPacer(self.limits, coordinator, namespace=self.namespace)
        await transport.open()
        self._transport = transport
        # Its own group, not the opener's: see _upkeep. close() ends it before the transport.
        upkeep = Upkeep()
        self._upkeep = upkeep
        await upkeep.open()
        self._tokens = TokenCache(
            key=key, fetch=self._fetch_token, store=store, budget=budget, background=upkeep
        )
        self._executor = Executor(
            api_url=self.endpoints.api_url,
            transport=transport,
            tokens=self._tokens,
            pacer=pacer,
            retry=self.retry,
            user_agent=USER_AGENT,
        )
        self._state = _State.OPEN

    async def close(self) -> None:
        """End the session's background work and release the connector (even when
        cancelled, and from any task). Idempotent."""
        self._state = _State.CLOSED
        await self._runs.end()  # before the connector goes: their clean-up may still call
        upkeep, self._upkeep = self._upkeep, None
        if upkeep is not None:
            await upkeep.close()  # shielded inside; a refresh in flight is cancelled
        transport, self._transport = self._transport, None
        if transport is not None:
            with anyio.CancelScope(shield=True):
                await transport.close()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def _require_open(self) -> Executor:
        if self._state is _State.NEW:
            raise RuntimeError(
                "AnalyticsSession is not open; use `async with AnalyticsSession(...) as s:`"
            )
        if self._state is _State.CLOSED or self._executor is None:
            raise RuntimeError("this AnalyticsSession is closed; create a new one")
        return self._executor

    # -- token ----------------------------------------------------------------------------

    async def _fetch_token(self) -> TokenGrant:
        assert self._transport is not None
        raw = await self._transport.send(
            "POST",
            self.endpoints.accounts_url + TOKEN_PATH,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            form=token_form(self._client_id, self._client_secret, self._refresh_token),
        )
        return decode_token_response(raw.status, raw.body)

    @property
    def token_requests(self) -> int:
        """Token requests this session has sent so far."""
        return self._tokens.requests if self._tokens is not None else 0

    @property
    def http_requests(self) -> int:
        """HTTP requests (API and token) this session has sent so far."""
        return self._transport.requests if self._transport is not None else 0

    async def get_access_token(self, *, timeout: float | None = None) -> str:
        """The current access token (refreshed if needed). Keep it secret.

        ``timeout`` (default ``call_timeout``) bounds the wait for a refresh:
        :class:`PacingTimeoutError` past it (the refresh goes on for other callers).
        """
        self._require_open()
        assert self._tokens is not None
        deadline = self._deadline(timeout)
        if deadline is None:
            return await self._tokens.get()
        with anyio.CancelScope(deadline=deadline):
            return await self._tokens.get()
        raise PacingTimeoutError(f"no access token within {timeout or self.call_timeout:g} s")

    def snapshot(self) -> SessionSnapshot:
        """What the session is doing now, as a frozen value (see :class:`SessionSnapshot`).

        Per org: calls waiting for a turn, the rate factor, the pause left, rejections;
        the token's remaining lifetime (never the token); request, retry and token-request
        counts. Sends nothing and awaits nothing: cheap enough for a health endpoint.

        Example::

            async def health(request):
                return web.json_response(session.snapshot().to_dict())
        """
        executor = self._executor
        orgs: dict[str, OrgSnapshot] = {}
        if executor is not None:
            for key, view in sorted(executor.pacer.org_states().items()):
                orgs[key] = OrgSnapshot(
                    org_id=key,
                    waiting=view.waiting,
                    rate_factor=view.factor,
                    paused_for=view.paused_for,
                    rejections=view.rejections,
                )
        return SessionSnapshot(
            taken_at=datetime.now(UTC),
            orgs=orgs,
            token_expires_in=None if self._tokens is None else self._tokens.remaining(),
            requests=self.http_requests,
            retries=0 if executor is None else executor.retries,
            token_requests=self.token_requests,
            in_flight=0 if executor is None else executor.in_flight,
        )

    # -- single calls ---------------------------------------------------------------------

    def _org(self, org_id: str | None) -> str | None:
        return check_optional_id(org_id, "org_id") or self.org_id

    def _deadline(self, timeout: float | None) -> float | None:
        """The monotonic deadline of a call's ``timeout=`` (or the session's default)."""
        timeout = self.call_timeout if timeout is None else check_positive(timeout, "timeout")
        return None if timeout is None else anyio.current_time() + timeout

    async def _call(self, request: ApiRequest, *, timeout: float | None = None) -> Any:
        deadline = self._deadline(timeout)
        result = await self._require_open().call(request, deadline=deadline)
        return _unwrap(result, request, deadline)

    async def _sync(
        self,
        request: ApiRequest,
        key: tuple[str | None, str],
        datasource_id: str,
        interval_id: str | None,
        timeout: float | None = None,
    ) -> None:
        """One Sync Data call, settled like a bulk run's (see ``Workspace.sync_data``)."""
        executor = self._require_open()
        deadline = self._deadline(timeout)
        if self._baselines is None:
            # A long-lived session reuses a workspace's baseline for a few minutes, then
            # reads it again: at most one extra listing per workspace per 5 minutes.
            self._baselines = new_baselines(executor, max_age=_BASELINE_MAX_AGE)
        baselines = self._baselines
        if deadline is None:
            await baselines.before_send(key)
        else:
            # the baseline listing comes before the send: it counts against timeout=
            with anyio.CancelScope(deadline=deadline) as scope:
                await baselines.before_send(key)
            if scope.cancelled_caught:
                raise _not_sent(request, deadline)
        result = await executor.call(
            request,
            deadline=deadline,
            settle=settler(baselines, key, datasource_id, interval_id, delay=self.timeout),
        )
        if result.unconfirmed is not None:
            raise SyncUnconfirmedError(
                f"Sync Data of {datasource_id} may have started; not sent again: "
                f"{result.unconfirmed}",
                evidence=result.unconfirmed,
                cause=result.error,
            )
        _unwrap(result, request, deadline)
        baselines.note_started(key, datasource_id)

    async def get_orgs(self, *, timeout: float | None = None) -> list[Org]:
        """Every organisation of the user. ``timeout``: see :class:`AnalyticsSession`.

        Example::

            for org in await session.get_orgs():
                print(org.org_id, org.name)
        """
        data = await self._call(orgs_request(), timeout=timeout)
        return [Org.from_api(e) for e in entries(data, "orgs")]

    async def get_workspaces(
        self, kind: str = "all", *, timeout: float | None = None
    ) -> list[WorkspaceInfo]:
        """Owned and shared workspaces (``kind="owned"`` or ``"shared"`` for one side).
        ``timeout``: see :class:`AnalyticsSession`.

        Example::

            owned = [w for w in await session.get_workspaces() if w.owned]
        """
        if kind not in ("all", "owned", "shared"):
            raise InvalidInputError("kind must be 'all', 'owned' or 'shared'")
        data = await self._call(workspaces_request(kind), timeout=timeout)
        if kind != "all":
            return [
                WorkspaceInfo.from_api(e, owned=kind == "owned")
                for e in entries(data, "workspaces")
            ]
        owned = [WorkspaceInfo.from_api(e, owned=True) for e in entries(data, "ownedWorkspaces")]
        shared = [WorkspaceInfo.from_api(e, owned=False) for e in entries(data, "sharedWorkspaces")]
        return owned + shared

    def workspace(self, workspace_id: str, org_id: str | None = None) -> Workspace:
        """A handle on one workspace (no request is made).

        Example::

            ws = session.workspace("35130000001055707", org_id="55522777")
        """
        return Workspace(self, check_id(workspace_id, "workspace_id"), self._org(org_id))

    async def get_datasources(
        self, workspace_id: str, *, org_id: str | None = None, timeout: float | None = None
    ) -> list[Datasource]:
        """The datasources of a workspace (Local Drive entries included, without ids)."""
        return await self.workspace(workspace_id, org_id).get_datasources(timeout=timeout)

    async def sync_data(
        self,
        workspace_id: str,
        datasource_id: str,
        *,
        org_id: str | None = None,
        config: SyncConfig | None = None,
        sync_interval_id: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Start a sync of one datasource; see :meth:`Workspace.sync_data`."""
        await self.workspace(workspace_id, org_id).sync_data(
            datasource_id, config=config, sync_interval_id=sync_interval_id, timeout=timeout
        )

    # -- bulk -----------------------------------------------------------------------------

    async def sync_many(
        self,
        targets: Targets,
        *,
        config: SyncConfig | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
        deadline: float | None = None,
        on_result: OnResult | None = None,
        poll_interval: float = 30.0,
        stop: anyio.Event | None = None,
        confirm_starts: bool = True,
        journal: Journal | str | os.PathLike[str] | None = None,
    ) -> SyncReport:
        """Sync every target, paced and retried; one result per target, in input order.

        ``targets``: an iterable or async iterable of :class:`SyncTarget` or
        ``(workspace_id, datasource_id)`` tuples; it is pulled lazily. ``deadline``: seconds
        from the start after which nothing new is started (the rest are CANCELLED).
        ``wait``: poll Get Datasources (once per workspace per ``poll_interval``) until each
        started sync reports a final status, at most ``wait_timeout`` seconds (1 hour when
        ``None``). ``on_result`` is called (or awaited) with each result as it is final.
        Setting ``stop`` (an ``anyio.Event``) stops gracefully, as on Ctrl-C: nothing new
        is sent, requests on the wire finish, the rest are CANCELLED, and the report is
        returned as usual.

        ``confirm_starts`` (on by default) lists each workspace once before its first
        sync. An attempt that may have reached Zoho (timeout, drop, 5xx, 7005, garbled
        answer) is then settled from that listing's counters instead of being sent again:
        STARTED when it shows the sync started, re-sent when it shows it did not,
        UNCONFIRMED when it cannot tell. Cost: one metadata call per workspace per run,
        plus one per workspace per settling round. ``confirm_starts=False`` saves the
        listing and reports every such attempt UNCONFIRMED (or, with
        ``RetryPolicy(resend_unconfirmed=True)``, re-sends it and risks a second sync).

        ``on_result`` is called exactly once per target that gets a result: a result
        counts as delivered once its call has begun, so a callback interrupted by
        cancellation is not called again for that target.

        Cancelling the call (a cancel scope, ``anyio.move_on_after``) returns promptly,
        even with an endless or stuck source: every target already pulled from
        ``targets`` gets its result through ``on_result`` (CANCELLED if it was not sent),
        and so does the rest of a sized input (a list or tuple); any other iterable or
        async iterable is not pulled further, and its unpulled targets get no result.

        A refused refresh token (:class:`TokenRefreshError`: revoked or invalid) stops the
        run at once: nothing more is sent, and every target not yet sent ends FAILED with
        that error, without waiting for pacing turns (the rest of a sized input too; any
        other source is not pulled further).

        ``journal`` (a :class:`~zoho_async.Journal` or a path) makes the run crash-safe:
        the file is locked for the run (:class:`~zoho_async.JournalInUseError` if another
        process has it), each workspace's baseline and each request's intent are written
        (and fsync-ed) before the request, each result as it comes. Called again with the
        same journal after a kill, the run hands back the journaled result of every target
        already done and settles each request the killed run may have sent from one fresh
        listing per workspace: STARTED without a call, sent when it did not start,
        UNCONFIRMED when it cannot tell. See the README's "Interrupted runs".

        Example::

            report = await session.sync_many([("351300...", "176702...")], wait=True)
            report.raise_for_failures()
        """
        options = RunOptions(
            config,
            wait,
            wait_timeout,
            deadline,
            poll_interval,
            stop,
            confirm_starts,
            journal=journal,
        )
        return await bulk_sync_many(self._bulk_context(), targets, options, on_result)

    def iter_sync(
        self,
        targets: Targets,
        *,
        config: SyncConfig | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
        deadline: float | None = None,
        poll_interval: float = 30.0,
        stop: anyio.Event | None = None,
        confirm_starts: bool = True,
        journal: Journal | str | os.PathLike[str] | None = None,
    ) -> SyncIterator:
        """Like :meth:`sync_many`, yielding each result as it is final (not in input order).

        ``stop`` (or the iterator's ``stop()``) ends the run gracefully: the remaining
        targets are still yielded, as CANCELLED. Leaving the loop early cancels the run;
        it ends promptly even with an endless or stuck source, which is not pulled
        further (results not yet received are dropped). A refused refresh token stops
        the run as in :meth:`sync_many`: the targets not yet sent come out FAILED with
        :class:`TokenRefreshError`. ``journal`` works as in :meth:`sync_many`.

        Example::

            async for result in session.iter_sync(targets):
                print(result.target.datasource_id, result.status.value)
        """
        options = RunOptions(
            config,
            wait,
            wait_timeout,
            deadline,
            poll_interval,
            stop,
            confirm_starts,
            journal=journal,
        )
        return SyncIterator(self._bulk_context(), targets, options)

    async def sync_workspaces(
        self,
        workspaces: WorkspaceRefs,
        *,
        config: SyncConfig | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
        deadline: float | None = None,
        on_result: OnResult | None = None,
        poll_interval: float = 30.0,
        stop: anyio.Event | None = None,
        confirm_starts: bool = True,
        journal: Journal | str | os.PathLike[str] | None = None,
    ) -> SyncReport:
        """Discover the datasources of each workspace and sync every syncable one.

        Entries without a datasource id are SKIPPED, exhausted quotas are QUOTA_EXHAUSTED
        without a sync call, and a datasource with several intervals gets one sync each.
        Workspaces are ids (``str`` or ``int``, with the session's org), ``WorkspaceInfo``
        objects, ``session.workspace(...)`` handles, mappings
        ``{"workspace_id": ..., "org_id": ...}``, or ``(org_id, workspace_id)`` tuples (the
        same kinds :meth:`plan_sync` takes, plus the tuple). Anything else, a
        :class:`SyncTarget` included, raises ``InvalidInputError`` before any request.
        ``report.ok`` and ``raise_for_failures()`` follow :func:`~zoho_async.is_ok`.
        ``journal`` works as in :meth:`sync_many`: a killed run resumes without a second
        sync.

        Example::

            report = await session.sync_workspaces(["35130000001055707"])
        """
        options = RunOptions(
            config,
            wait,
            wait_timeout,
            deadline,
            poll_interval,
            stop,
            confirm_starts,
            journal=journal,
        )
        pairs = normalise_workspaces(self.org_id, workspaces)  # ids checked before any request
        # one context: discovery's listings are the run's baselines (no second listing)
        context = self._bulk_context()
        return await bulk_sync_many(context, bulk_discover(context, pairs), options, on_result)

    def discover(self, workspaces: WorkspaceRefs) -> AsyncIterator[PlannedTarget]:
        """List each workspace (one Get Datasources call each) and yield what to sync.

        Takes the workspace references :meth:`sync_workspaces` takes; they are validated
        at once, before any request. Each datasource (and each of its sync intervals)
        becomes one :class:`PlannedTarget`; entries without an id come as SKIPPED,
        exhausted quotas as QUOTA_EXHAUSTED, and a workspace that cannot be listed as one
        FAILED item. Hand the items to :meth:`sync_many` as they are.

        Example::

            planned = [p async for p in session.discover(["35130000001055707"])]
            report = await session.sync_many(planned)
        """
        pairs = normalise_workspaces(self.org_id, workspaces)
        return bulk_discover(self._bulk_context(), pairs)

    async def plan_sync(
        self, targets_or_workspaces: Iterable[Any] | AsyncIterable[Any]
    ) -> SyncPlan:
        """A dry run: what would be synced and the quota left. Sends no sync.

        Accepts workspaces, discovered like :meth:`sync_workspaces` (ids, ``WorkspaceInfo``,
        ``session.workspace(...)`` handles, ``{"workspace_id": ..., "org_id": ...}``), and
        targets as :meth:`sync_many` takes them (``SyncTarget``, ``PlannedTarget``,
        ``{"workspace_id": ..., "datasource_id": ...}``), mixed freely; each workspace is
        listed once to read quotas. A bare 2-tuple is refused with ``InvalidInputError``
        before any request: it could be ``(org_id, workspace_id)`` or
        ``(workspace_id, datasource_id)``.

        Example::

            plan = await session.plan_sync(["35130000001055707"])
            print(plan.counts, plan.quota_spend)
        """
        return await bulk_plan_sync(self._bulk_context(), targets_or_workspaces)

    # -- what a bulk run receives ---------------------------------------------------------

    def _bulk_context(self) -> BulkContext:
        return BulkContext(
            executor=self._require_open(),
            org_id=self.org_id,
            config_in_query=self.config_in_query,
            limits=self.limits,
            access_token=self.get_access_token,
            counters=lambda: (self.token_requests, self.http_requests),
            settle_delay=self.timeout,
            coordinator=self.coordinator,
            namespace=self.namespace,
            runs=self._runs,
        )

    @property
    def _exec(self) -> Executor:  # for tests that look at the pacer
        return self._require_open()


class Workspace:
    """A workspace handle: ``session.workspace(ws_id)``. Makes no request by itself."""

    def __init__(self, session: AnalyticsSession, workspace_id: str, org_id: str | None) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.org_id = org_id

    def __repr__(self) -> str:
        return f"Workspace({self.workspace_id!r}, org_id={self.org_id!r})"

    async def get_datasources(self, *, timeout: float | None = None) -> list[Datasource]:
        """Every datasource entry (Get Datasources). Needs an org id. ``timeout``: see
        :class:`AnalyticsSession`.

        Example::

            syncable = [d for d in await ws.get_datasources() if d.syncable]
        """
        data = await self.session._call(
            datasources_request(self.workspace_id, self.org_id), timeout=timeout
        )
        return [
            Datasource.from_api(e, workspace_id=self.workspace_id)
            for e in entries(data, "dataSources")
        ]

    async def sync_data(
        self,
        datasource_id: str,
        *,
        config: SyncConfig | None = None,
        sync_interval_id: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Start a sync (Sync Data). Returns ``None`` once Zoho answers 204 ("started").

        Raises :class:`SyncInProgressError` (already running), ``SyncQuotaExceededError``,
        ``NotFoundError``, ``PermissionDeniedError``, ``InvalidConfigError`` and the other
        ``ApiError`` subclasses; paced and retried like a bulk run. ``timeout`` (default
        the session's ``call_timeout``) bounds the time before the request is sent:
        :class:`PacingTimeoutError` past it, with nothing sent; once sent, an ambiguous
        failure is settled as usual (:class:`SyncUnconfirmedError` when it cannot tell).

        Example::

            await ws.sync_data("1767024000004595194",
                               config=SyncConfig(sync_interval_id="1767024000004595201"))
        """
        request = build_sync_request(
            self.workspace_id,
            datasource_id,
            self.org_id,
            config,
            sync_interval_id,
            config_in_query=self.session.config_in_query,
        )
        await self.session._sync(
            request,
            (self.org_id, self.workspace_id),
            datasource_id,
            sync_interval_id or (config.sync_interval_id if config is not None else None),
            timeout,
        )


_BASELINE_MAX_AGE = 300.0


def _unwrap(result: CallResult, request: ApiRequest, deadline: float | None) -> Any:
    if result.ours_in_progress or result.settled is not None:
        return None
    if result.error is not None:
        # the last failure; with a timeout= that ended the retries, it is still the
        # truth about what was sent
        raise result.error
    if result.cancelled:
        raise _not_sent(request, deadline)
    return result.data


def _not_sent(request: ApiRequest, deadline: float | None) -> PacingTimeoutError:
    late = "" if deadline is None else f" ({anyio.current_time() - deadline:.2f} s past it)"
    return PacingTimeoutError(
        f"{request.method} {request.route}: timeout= reached before the request could be "
        f"sent{late}; nothing was sent"
    )
