"""The fake's brain: bookkeeping of each arrival, then the answer, under one lock.

The HTTP layer (``_http``) calls :meth:`Engine.arrive` as soon as a request is read, then
:meth:`Engine.process` when it is time to answer. Everything that touches shared state takes
``lock`` (a threading lock, because ``run_in_thread`` lets a test thread build and inspect
while the server loop runs); nothing awaits while holding it.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping

import attrs

from ._accounts import Accounts, Credentials
from ._analytics import AnalyticsApi, Call, parse_config
from ._faults import Fault, FaultScript
from ._limits import FixedWindowLimit
from ._routes import METADATA_ROUTES
from ._stats import FakeStats
from ._wire import TIME_ZONES, Reply, failure, zoho_time
from ._world import World

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
    sync_duration: float = 0.0
    latency: float = 0.0
    latency_jitter: float = 0.0
    time_zone: str = "IST"
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if self.time_zone not in TIME_ZONES:
            raise ValueError(f"time_zone must be one of {sorted(TIME_ZONES)}")
        if self.window_seconds <= 0 or self.token_window <= 0:
            raise ValueError("window lengths must be positive")


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
            if route == "token":
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
            call = Call(ticket.route, ticket.args, ticket.org_id, ticket.config_raw, now)
            return self.api.handle(call)
