"""The accounts server: refresh-token grant, access tokens, their expiry and throttling."""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

THROTTLE_DESCRIPTION = (
    "You have made too many requests continuously. Please try again after some time."
)
API_DOMAIN = "https://www.zohoapis.com"
SCOPE = "ZohoAnalytics.fullaccess.all"


@attrs.frozen
class Credentials:
    client_id: str
    client_secret: str
    refresh_token: str

    @classmethod
    def from_seed(cls, seed: int) -> Credentials:
        # A private Random so drawing credentials never shifts the world's id sequence.
        rng = random.Random(f"credentials-{seed}")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        client_id = "1000." + "".join(rng.choice(alphabet) for _ in range(30))
        client_secret = f"{rng.getrandbits(168):042x}"
        refresh_token = f"1000.{rng.getrandbits(128):032x}.{rng.getrandbits(128):032x}"
        return cls(client_id, client_secret, refresh_token)


class Accounts:
    """Mints access tokens and tells the analytics side whether one is valid.

    Not thread-safe by itself: the fake calls it under its lock.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        lifetime: float,
        limit: int,
        window: float,
        throttle_status: int,
    ) -> None:
        self.credentials = credentials
        self.lifetime = lifetime
        self.limit = limit
        self.window = window
        self.throttle_status = throttle_status
        self._expiry: dict[str, float] = {}  # access token -> clock reading it expires at
        self._grants: dict[str, deque[float]] = {}  # refresh token -> recent grant times
        self._revoked_refresh: set[str] = set()

    def grant(self, params: Mapping[str, str], now: float) -> tuple[int, dict[str, Any], str]:
        """Answer a token request: (HTTP status, JSON body, minted token or "")."""
        creds = self.credentials
        if (
            params.get("client_id") != creds.client_id
            or params.get("client_secret") != creds.client_secret
        ):
            return 200, {"error": "invalid_client"}, ""
        if params.get("grant_type") != "refresh_token":
            return 200, {"error": "unsupported_grant_type"}, ""
        refresh = params.get("refresh_token", "")
        if refresh != creds.refresh_token or refresh in self._revoked_refresh:
            return 200, {"error": "invalid_code"}, ""
        recent = self._grants.setdefault(refresh, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            denied = {"error": "Access Denied", "error_description": THROTTLE_DESCRIPTION}
            return self.throttle_status, denied, ""
        recent.append(now)
        # Real secrets, not seeded: tokens must never collide across fakes or runs.
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self._expiry[token] = now + self.lifetime
        body: dict[str, Any] = {
            "access_token": token,
            "scope": SCOPE,
            "api_domain": API_DOMAIN,
            "token_type": "Bearer",
            "expires_in": max(1, round(self.lifetime)),
        }
        return 200, body, token

    def is_valid(self, token: str, now: float) -> bool:
        expiry = self._expiry.get(token)
        return expiry is not None and now < expiry

    def revoke_tokens(self) -> None:
        self._expiry.clear()

    def expire_tokens(self) -> None:
        self._expiry = dict.fromkeys(self._expiry, float("-inf"))

    def revoke_refresh_token(self) -> None:
        self._revoked_refresh.add(self.credentials.refresh_token)
        self.revoke_tokens()
