"""``session.snapshot()``: what a long-lived session is doing, as one frozen value.

Cheap enough for a health endpoint polled every second: it reads counters the session
keeps anyway, sends nothing and awaits nothing. It never holds the access token, only how
long the current one has left.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = ["OrgSnapshot", "SessionSnapshot"]


@attrs.frozen
class OrgSnapshot:
    """The pacing of one org (``org_id`` is ``""`` for calls without one, or for the
    whole credential when ``Limits(per_org=False)``).

    ``waiting``: calls waiting for a turn now. ``rate_factor``: the pace as a share of the
    limit (1.0 = the full limit; lowered after a 6045, climbing back). ``paused_for``:
    seconds left of a rate-limit pause (0.0: none). ``rejections``: 6045/429 answers.
    """

    org_id: str
    waiting: int = 0
    rate_factor: float = 1.0
    paused_for: float = 0.0
    rejections: int = 0


@attrs.frozen
class SessionSnapshot:
    """A session at one moment; see :meth:`AnalyticsSession.snapshot`.

    ``token_expires_in``: seconds the cached access token is still valid (0.0 once it has
    expired; ``None`` before the first token). ``requests``: HTTP requests sent (API and token);
    ``retries``: attempts that were retries; ``token_requests``: token requests sent;
    ``in_flight``: requests on the wire now.

    Example::

        snap = session.snapshot()
        if any(org.paused_for for org in snap.orgs.values()):
            print("rate limited:", snap.to_dict())
    """

    taken_at: datetime
    orgs: Mapping[str, OrgSnapshot] = attrs.field(factory=dict)
    token_expires_in: float | None = None
    requests: int = 0
    retries: int = 0
    token_requests: int = 0
    in_flight: int = 0

    @property
    def waiting(self) -> int:
        """Calls waiting for a turn, across orgs."""
        return sum(org.waiting for org in self.orgs.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (times as ISO 8601, seconds rounded to milliseconds)."""
        return {
            "taken_at": self.taken_at.isoformat(),
            "orgs": {
                key: {
                    "waiting": org.waiting,
                    "rate_factor": round(org.rate_factor, 3),
                    "paused_for": round(org.paused_for, 3),
                    "rejections": org.rejections,
                }
                for key, org in self.orgs.items()
            },
            "waiting": self.waiting,
            "token_expires_in": None
            if self.token_expires_in is None
            else round(self.token_expires_in, 3),
            "requests": self.requests,
            "retries": self.retries,
            "token_requests": self.token_requests,
            "in_flight": self.in_flight,
        }
