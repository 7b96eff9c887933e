"""When to retry and how long to wait: pure decisions plus a frozen config.

Sync Data spends quota. A failure is SAFE to retry when the request never reached Zoho or
Zoho said it did nothing (6045/429, 8535). After a 7005/5xx/timeout/drop the sync may have
started (AMBIGUOUS): it is retried, and a retry answered 18073 is read as our first attempt
having started it. That proof only holds while the first sync is still running: if it has
already finished, the retry starts a second sync.
"""

from __future__ import annotations

import enum
import random

import attrs

from ._errors import (
    ApiError,
    AuthError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TokenError,
    TransportError,
    ZohoError,
)
from ._validation import check_non_negative, check_positive

__all__ = ["Decision", "RetryPolicy", "classify"]


class Decision(enum.Enum):
    """How a failed attempt may be retried."""

    NO = "no"  # final: report it
    SAFE = "safe"  # nothing happened at Zoho; retry freely
    RATE_LIMITED = "rate_limited"  # nothing happened; pause the org, then retry
    REFRESH = "refresh"  # token refused: refresh once, then retry once
    AMBIGUOUS = "ambiguous"  # may have happened; retry, and read 18073 as "ours"


def _check_attempts(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"attempts must be an int >= 1, got {value!r}")


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    check_positive(value, attr.name)


def _non_negative(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    check_non_negative(value, attr.name)


@attrs.frozen
class RetryPolicy:
    """Capped exponential backoff with full jitter, bounded by attempts and the deadline.

    ``attempts`` counts every try of one call (1 = no retry). ``rate_limit_attempts`` is a
    separate, larger budget for 6045/429 answers, which cost nothing at Zoho.
    ``retry_after_cap`` bounds how long a Retry-After header may make us wait.
    ``wait=False`` removes every backoff wait (for tests); rate-limit pauses still follow
    the limiter's clock. ``resend_unconfirmed=True`` re-sends a Sync Data request whose
    first attempt may have reached Zoho when its listing cannot tell whether the sync
    started (the default reports it UNCONFIRMED instead: a second send may spend another
    of the connection's manual syncs).

    Example::

        RetryPolicy(attempts=4, base=0.5, cap=20.0)
        RetryPolicy.testing()      # same decisions, no waiting
    """

    attempts: int = attrs.field(default=4, validator=_check_attempts)
    base: float = attrs.field(default=0.5, validator=_positive)
    cap: float = attrs.field(default=30.0, validator=_positive)
    jitter: float = attrs.field(default=1.0, validator=_non_negative)
    retry_after_cap: float = attrs.field(default=120.0, validator=_non_negative)
    rate_limit_attempts: int = attrs.field(default=20, validator=_check_attempts)
    wait: bool = True
    resend_unconfirmed: bool = False

    @classmethod
    def testing(cls, attempts: int = 4) -> RetryPolicy:
        """The same decisions with no backoff waits, for tests."""
        return cls(attempts=attempts, wait=False)

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry (a token refresh after 8535 still happens once)."""
        return cls(attempts=1, rate_limit_attempts=1)

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds before retry ``retry_number`` (1-based): ``min(cap, base * 2**(n-1))``,
        scaled down by up to ``jitter`` (full jitter at 1.0)."""
        if not self.wait:
            return 0.0
        ceiling = min(self.cap, self.base * 2.0 ** max(retry_number - 1, 0))
        if self.jitter <= 0:
            return ceiling
        draw = (rng or random).random()
        return ceiling * (1.0 - min(self.jitter, 1.0) * draw)

    def retry_after(self, value: float | None) -> float | None:
        """A server-supplied wait, capped; ``None`` when the server gave none."""
        if value is None:
            return None
        return min(max(value, 0.0), self.retry_after_cap)


# Codes that must never be retried, whatever their class says.
_NEVER = frozenset({7301, 7103, 18061, 8182, 8183, 8507, 19000048, 6043, 6044})


def classify(error: ZohoError) -> Decision:
    """The retry decision for one failed attempt (pure)."""
    if isinstance(error, TransportError):
        return Decision.AMBIGUOUS if error.sent else Decision.SAFE
    if isinstance(error, TokenError):
        # token refused or throttled: retrying would only spend the token budget
        return Decision.NO
    if isinstance(error, ProtocolError):
        # garbage from a proxy or a truncated answer: Zoho may have acted on it
        return Decision.AMBIGUOUS
    if isinstance(error, ApiError):
        if error.code in _NEVER:
            return Decision.NO
        if isinstance(error, RateLimitedError):
            return Decision.RATE_LIMITED
        if isinstance(error, AuthError) and error.code == 8535:
            return Decision.REFRESH
        if isinstance(error, ServerError):
            return Decision.AMBIGUOUS
    return Decision.NO
