"""From an HTTP request to an HTTP response: route table, engine, aiohttp app.

- :func:`resolve` says which endpoint a request is for. Route names are what
  ``FakeZoho.script`` takes.
- :class:`Engine` is the fake's brain: bookkeeping of each arrival, then the answer, under
  one lock. The aiohttp handler calls :meth:`Engine.arrive` as soon as a request is read,
  then :meth:`Engine.process` when it is time to answer. Everything that touches shared
  state takes ``lock`` (a threading lock, because ``run_in_thread`` lets a test thread build
  and inspect while the server loop runs); nothing awaits while holding it.
- :func:`build_app` is the aiohttp side: read a request, let the engine decide, apply
  latency and faults. One catch-all route, so unknown paths get Zoho's failure envelope
  instead of aiohttp's default 404 page, and every request, known or not, is counted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping

import attrs
from aiohttp import web

from ._accounts import Accounts, Credentials
from ._analytics import AnalyticsApi, Call, parse_config
from ._faults import Fault, FaultScript
from ._stats import FakeStats, FixedWindowLimit
from ._wire import JSON_CONTENT_TYPE, Reply, failure, zoho_time, zone_spec
from ._world import World

# -- routes -----------------------------------------------------------------------------

_PREFIX = "/restapi/v2"
_TABLE: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"/oauth/v2/token/?"), "token"),
    ("POST", re.compile(r"/oauth/v2/token/revoke/?"), "revoke"),
    # The fake's own: a Self Client grant code, for people trying `auth login` in a shell.
    ("POST", re.compile(r"/_fake/grant-code/?"), "grant_code"),
    ("GET", re.compile(_PREFIX + r"/orgs/?"), "orgs"),
    ("GET", re.compile(_PREFIX + r"/workspaces/?"), "workspaces"),
    ("GET", re.compile(_PREFIX + r"/workspaces/(?P<which>owned|shared)/?"), "workspaces"),
    ("GET", re.compile(_PREFIX + r"/workspaces/(?P<ws>[^/]+)/?"), "workspace"),
    ("GET", re.compile(_PREFIX + r"/workspaces/(?P<ws>[^/]+)/datasources/?"), "datasources"),
    (
        # Plural "datasources" only: the singular path in Zoho's OpenAPI file is a spec error.
        "POST",
        re.compile(_PREFIX + r"/workspaces/(?P<ws>[^/]+)/datasources/(?P<ds>[^/]+)/sync/?"),
        "sync",
    ),
    ("GET", re.compile(_PREFIX + r"/resources/?"), "resources"),
)

# The accounts server's routes: counted as token requests, never against the API's limits.
ACCOUNTS_ROUTES = frozenset({"token", "revoke"})

# The scope each route needs (Sync Data: metadata.create; the listings: metadata.read;
# resources: inferred to be a read too). Tokens of the seeded refresh token have them all.
ROUTE_SCOPES = {
    "sync": "ZohoAnalytics.metadata.create",
    **dict.fromkeys(
        ("orgs", "workspaces", "workspace", "datasources", "resources"),
        "ZohoAnalytics.metadata.read",
    ),
}

# Routes Zoho counts as METADATA calls for the per-minute limit (inferred from their scopes).
METADATA_ROUTES = frozenset({"orgs", "workspaces", "workspace", "datasources", "sync", "resources"})


def resolve(method: str, path: str) -> tuple[str, dict[str, str]]:
    """(route name, path arguments); "unknown" when nothing matches.

    Example::

        >>> resolve("POST", "/restapi/v2/workspaces/1/datasources/2/sync")
        ('sync', {'ws': '1', 'ds': '2'})
    """
    for verb, pattern, name in _TABLE:
        match = pattern.fullmatch(path)
        if match and verb == method:
            return name, {k: v for k, v in match.groupdict().items() if v is not None}
    return "unknown", {}


# -- engine -----------------------------------------------------------------------------

# Seconds a started sync stays "in progress" unless told otherwise. Real syncs take seconds,
# not zero: a fake whose syncs finish at once hides the double starts that only happen when
# a retry arrives after the first sync has already finished.
DEFAULT_SYNC_DURATION = 3.0

AUTH_PREFIX = "Zoho-oauthtoken "
ORG_HEADER = "ZANALYTICS-ORGID"


@attrs.frozen
class Settings:
    """The server's knobs, as given to ``FakeZoho(...)``."""

    token_lifetime: float = 3600.0
    requests_per_minute: int | None = 100
    metadata_per_minute: int | None = 60
    window_seconds: float = 60.0
    token_limit: int = 10
    token_window: float = 600.0
    throttle_status: int = 400
    sync_duration: float = DEFAULT_SYNC_DURATION
    latency: float = 0.0
    latency_jitter: float = 0.0
    time_zone: str = "IST"
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        zone_spec(self.time_zone)  # raises ValueError when it is not one
        if self.window_seconds <= 0 or self.token_window <= 0:
            raise ValueError("window lengths must be positive")
        if self.sync_duration < 0:
            raise ValueError("sync_duration must be 0 (instant) or more seconds")


@attrs.frozen
class Ticket:
    """What :meth:`Engine.arrive` learnt about a request, handed back to :meth:`process`."""

    route: str
    args: Mapping[str, str]
    org_id: str | None
    admitted: bool
    fault: Fault | None
    params: Mapping[str, str]
    config_raw: str | None


class Engine:
    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.lock = threading.RLock()
        self.credentials = Credentials.from_seed(settings.seed)
        self.world = World(
            seed=settings.seed,
            clock=clock,
            default_sync_duration=settings.sync_duration,
            lock=self.lock,
        )
        self.accounts = Accounts(
            self.credentials,
            lifetime=settings.token_lifetime,
            limit=settings.token_limit,
            window=settings.token_window,
            throttle_status=settings.throttle_status,
        )
        self.stats = FakeStats()
        self.faults = FaultScript()
        self.units_used: Counter[str] = Counter()
        self.api = AnalyticsApi(self.world, self.stamp, self.units_used, self.stats.syncs_started)
        self.latency = settings.latency
        self.jitter = settings.latency_jitter
        self._jitter_rng = random.Random(settings.seed)
        self.restart_clock()

    def restart_clock(self) -> None:
        """Windows count from here; timestamps map clock readings to wall time from here."""
        with self.lock:
            self.epoch = self.clock()
            self.wall_epoch = dt.datetime.now(dt.UTC)
            self.total_limit = FixedWindowLimit(self.settings.requests_per_minute)
            self.metadata_limit = FixedWindowLimit(self.settings.metadata_per_minute)

    def stamp(self, reading: float) -> str:
        moment = self.wall_epoch + dt.timedelta(seconds=reading - self.epoch)
        return zoho_time(moment, self.settings.time_zone)

    def response_delay(self) -> float:
        with self.lock:
            extra = self._jitter_rng.uniform(0, self.jitter) if self.jitter > 0 else 0.0
            return self.latency + extra

    # -- per request ---------------------------------------------------------------------------

    def arrive(
        self,
        route: str,
        args: Mapping[str, str],
        headers: Mapping[str, str],
        query: Mapping[str, str],
        form: Mapping[str, str],
    ) -> Ticket:
        """Count the arrival (even if it will be refused) and pick its scripted fault."""
        with self.lock:
            now = self.clock()
            stats = self.stats
            stats.last_headers = dict(headers)
            stats.recent_headers.append(stats.last_headers)
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            if route == "grant_code":  # the fake's owner path: not Zoho traffic, not counted
                return Ticket(route, args, None, True, None, {**form, **query}, None)
            if route in ACCOUNTS_ROUTES:
                stats.token_requests += 1
                params = {**form, **query}
                return Ticket(route, args, None, True, self.faults.take(route), params, None)
            org_id = headers.get(ORG_HEADER) or None
            key = org_id or ""
            window = int((now - self.epoch) // self.settings.window_seconds)
            stats.requests += 1
            stats.requests_by_route[route] += 1
            stats.window_counts.setdefault(key, Counter())[window] += 1
            stats.arrivals.setdefault(key, []).append(now)
            admitted = self.total_limit.admit(key, window)
            if route in METADATA_ROUTES:
                stats.metadata_window_counts.setdefault(key, Counter())[window] += 1
                admitted = self.metadata_limit.admit(key, window) and admitted
            config_raw = query.get("CONFIG", form.get("CONFIG"))
            if route == "sync":
                stats.sync_calls[args["ds"]] += 1
                source = "query" if "CONFIG" in query else "form" if "CONFIG" in form else "none"
                stats.configs.append((args["ds"], parse_config(config_raw)[0], source))
            fault = self.faults.take(route)
            return Ticket(route, args, org_id, admitted, fault, {}, config_raw)

    def depart(self) -> None:
        with self.lock:
            self.stats.in_flight -= 1

    def process(self, ticket: Ticket, headers: Mapping[str, str]) -> Reply:
        """The normal answer to a request, applying its effects (a sync starts here)."""
        with self.lock:
            now = self.clock()
            if ticket.route == "token":
                status, body, token = self.accounts.grant(ticket.params, now)
                if token:
                    self.stats.tokens_issued.append(token)
                return Reply(status, body)
            if ticket.route == "grant_code":
                return Reply(*self.accounts.mint_request(ticket.params, now))
            if ticket.route == "revoke":
                return Reply(*self.accounts.revoke_request(ticket.params))
            if not ticket.admitted:
                # Refused before anything else: the request did nothing.
                self.stats.rejected_rate_limited += 1
                return failure(6045)
            authorization = headers.get("Authorization", "")
            token = (
                authorization[len(AUTH_PREFIX) :] if authorization.startswith(AUTH_PREFIX) else ""
            )
            if not self.accounts.is_valid(token, now):
                return failure(8535)
            needed = ROUTE_SCOPES.get(ticket.route)
            if needed is not None and not self.accounts.allows(token, needed):
                return failure(8535)  # Zoho answers a missing scope as an invalid token
            call = Call(ticket.route, ticket.args, ticket.org_id, ticket.config_raw, now)
            return self.api.handle(call)


# -- aiohttp ----------------------------------------------------------------------------

ENGINE_KEY = web.AppKey("engine", Engine)
CLOSING_KEY = web.AppKey("closing", asyncio.Event)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def build_app(engine: Engine, closing: asyncio.Event) -> web.Application:
    app = web.Application()
    app[ENGINE_KEY] = engine
    app[CLOSING_KEY] = closing
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


async def _handle(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE_KEY]
    route, args = resolve(request.method, request.path)
    query = {key: request.query[key] for key in request.query}
    form: dict[str, str] = {}
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        posted = await request.post()
        form = {key: value for key, value in posted.items() if isinstance(value, str)}
    ticket = engine.arrive(route, args, request.headers, query, form)
    try:
        return await _answer(request, engine, ticket)
    finally:
        engine.depart()


async def _answer(request: web.Request, engine: Engine, ticket: Ticket) -> web.StreamResponse:
    fault = ticket.fault
    if fault is None:
        reply = engine.process(ticket, request.headers)
        await _pause(request, engine.response_delay())
        return _to_response(reply)
    processed = engine.process(ticket, request.headers) if fault.then_process else None
    if not await _pause(request, fault.delay + engine.response_delay()):
        return _shutting_down()
    if fault.drop:
        _drop(request)
    if fault.overrides_answer:
        status, body, headers = fault.render()
        return web.Response(status=status, body=body, headers=headers)
    # A delay-only fault: the request is handled after the delay, unless already done.
    if processed is None:
        processed = engine.process(ticket, request.headers)
    return _to_response(processed)


def _shutting_down() -> web.Response:
    # The server stopped during a scripted delay: do not start work nobody will see.
    return web.Response(status=503, text="FakeZoho is shutting down")


def _to_response(reply: Reply) -> web.Response:
    if reply.payload is None:
        return web.Response(status=reply.status, headers=reply.headers)
    headers = {"Content-Type": JSON_CONTENT_TYPE, **reply.headers}
    return web.Response(
        status=reply.status, body=json.dumps(reply.payload).encode(), headers=headers
    )


async def _pause(request: web.Request, seconds: float) -> bool:
    """Simulated latency; False when cut short because the server is stopping."""
    if seconds <= 0:
        return True
    closing = request.app[CLOSING_KEY]
    try:
        await asyncio.wait_for(closing.wait(), seconds)
    except TimeoutError:
        return True
    return False


def _drop(request: web.Request) -> None:
    """Close the connection with no response at all, as a crashed proxy would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # Ending the handler by cancellation is the one way aiohttp does not try to write a
    # response (and log an error) on the connection we just killed.
    raise asyncio.CancelledError
