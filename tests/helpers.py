"""Helpers shared by the tests: a session pointed at a FakeZoho."""

from __future__ import annotations

from typing import Any

from zoho_async import AnalyticsSession, Limits, RetryPolicy
from zoho_async.testing import FakeZoho

FAST = Limits(requests_per_minute=600_000, metadata_per_minute=600_000, max_in_flight=16)


def session_for(fake: FakeZoho, **overrides: Any) -> AnalyticsSession:
    """A session on the fake, with no waiting in retries and pacing far above the tests."""
    options: dict[str, Any] = {
        "org_id": fake.default_org_id,
        "api_url": fake.api_url,
        "accounts_url": fake.accounts_url,
        "limits": FAST,
        "retry": RetryPolicy.testing(),
        "timeout": 5.0,
    }
    options.update(overrides)
    credentials = dict(fake.credentials)
    for key in ("client_id", "client_secret", "refresh_token"):
        if key in options:
            credentials[key] = options.pop(key)
    return AnalyticsSession(**credentials, **options)
