"""The accounts server: refresh-token and authorization-code grants, revocation, access
tokens, their expiry and throttling."""

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


#: The scopes of a grant code unless told otherwise: what ``zoho-async auth login`` asks
#: the user to tick.
DEFAULT_GRANT_SCOPES = ("ZohoAnalytics.metadata.create", "ZohoAnalytics.metadata.read")
#: Zoho's default lifetime of a Self Client grant code (the API Console offers 3 to 10 min).
GRANT_CODE_TTL = 180.0
#: Refresh tokens one user may hold per client; minting one more deletes the oldest.
MAX_REFRESH_TOKENS = 20


@attrs.frozen
class GrantCode:
    """A Self Client grant code: single use, good until ``expires_at`` (clock reading)."""

    code: str = attrs.field(repr=False)
    scopes: tuple[str, ...]
    expires_at: float


class Accounts:
    """Mints access tokens and tells the analytics side whether one is valid.

    Grants: ``refresh_token`` (the seeded refresh token, or one minted by a code) and
    ``authorization_code`` (codes from :meth:`issue_code`, single use, expiring). Revocation
    of a refresh token also revokes the access tokens minted from it, as Zoho does.

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
        self._minted_by: dict[str, str] = {}  # access token -> the refresh token behind it
        self._grants: dict[str, deque[float]] = {}  # refresh token -> recent grant times
        # Live refresh tokens, oldest first (dict order), with their scopes.
        self._refresh: dict[str, str] = {credentials.refresh_token: SCOPE}
        self._codes: dict[str, GrantCode] = {}

    # -- grant codes (the API Console's "Generate Code") --------------------------------------

    def issue_code(self, scopes: tuple[str, ...], ttl: float, now: float) -> GrantCode:
        """A new grant code, as the Self Client's "Generate Code" gives one."""
        if ttl <= 0:
            raise ValueError("a grant code's ttl must be positive")
        if not scopes:
            raise ValueError("a grant code needs at least one scope")
        code = GrantCode(f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}", scopes, now + ttl)
        self._codes[code.code] = code
        return code

    def refresh_tokens(self) -> list[str]:
        """The live refresh tokens, oldest first."""
        return list(self._refresh)

    # -- the token endpoint -----------------------------------------------------------------

    def grant(self, params: Mapping[str, str], now: float) -> tuple[int, dict[str, Any], str]:
        """Answer a token request: (HTTP status, JSON body, minted token or "")."""
        creds = self.credentials
        if (
            params.get("client_id") != creds.client_id
            or params.get("client_secret") != creds.client_secret
        ):
            return 200, {"error": "invalid_client"}, ""
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(params.get("code", ""), now)
        if grant_type != "refresh_token":
            return 200, {"error": "unsupported_grant_type"}, ""
        refresh = params.get("refresh_token", "")
        scope = self._refresh.get(refresh)
        if scope is None:
            return 200, {"error": "invalid_code"}, ""
        recent = self._grants.setdefault(refresh, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            denied = {"error": "Access Denied", "error_description": THROTTLE_DESCRIPTION}
            return self.throttle_status, denied, ""
        recent.append(now)
        token = self._mint(refresh, now)
        return 200, self._token_body(token, scope), token

    def _exchange_code(self, code: str, now: float) -> tuple[int, dict[str, Any], str]:
        # Single use: the code is gone whatever happens next, as an expired one is.
        found = self._codes.pop(code, None)
        if found is None or now >= found.expires_at:
            return 200, {"error": "invalid_code"}, ""
        refresh = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        scope = ",".join(found.scopes)
        self._refresh[refresh] = scope
        while len(self._refresh) > MAX_REFRESH_TOKENS:
            # Zoho deletes the user's oldest refresh token, whoever still uses it.
            self.revoke(next(iter(self._refresh)))
        self._grants[refresh] = deque([now])  # the exchange mints an access token too
        token = self._mint(refresh, now)
        return 200, {**self._token_body(token, scope), "refresh_token": refresh}, token

    def _mint(self, refresh: str, now: float) -> str:
        # Real secrets, not seeded: tokens must never collide across fakes or runs.
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self._expiry[token] = now + self.lifetime
        self._minted_by[token] = refresh
        return token

    def _token_body(self, token: str, scope: str) -> dict[str, Any]:
        return {
            "access_token": token,
            "scope": scope,
            "api_domain": API_DOMAIN,
            "token_type": "Bearer",
            "expires_in": max(1, round(self.lifetime)),
        }

    def mint_request(self, params: Mapping[str, str], now: float) -> tuple[int, dict[str, Any]]:
        """Answer the fake's own ``POST /_fake/grant-code`` (not a Zoho path)."""
        try:
            ttl = float(params.get("ttl", GRANT_CODE_TTL))
            scope = params.get("scope", "")
            scopes = tuple(s for s in scope.split(",") if s) or DEFAULT_GRANT_SCOPES
            code = self.issue_code(scopes, ttl, now)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 200, {"code": code.code, "expires_in": round(ttl), "scope": ",".join(scopes)}

    # -- the revoke endpoint ----------------------------------------------------------------

    def revoke_request(self, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer ``POST /oauth/v2/token/revoke?token=...``: ``{"status": "success"}``, or
        HTTP 400 for a token that is not live (Zoho documents only the status; the body's
        shape is inferred)."""
        if not self.revoke(params.get("token", "")):
            return 400, {"status": "failure", "error": "invalid_token"}
        return 200, {"status": "success"}

    def revoke(self, token: str) -> bool:
        """Revoke a refresh token (and every access token minted from it) or one access
        token; False when it is not live."""
        if token in self._refresh:
            del self._refresh[token]
            self._grants.pop(token, None)
            for access in [a for a, r in self._minted_by.items() if r == token]:
                self._expiry.pop(access, None)
                del self._minted_by[access]
            return True
        if token in self._expiry:
            del self._expiry[token]
            self._minted_by.pop(token, None)
            return True
        return False

    # -- what the analytics side and the owner API use --------------------------------------

    def is_valid(self, token: str, now: float) -> bool:
        expiry = self._expiry.get(token)
        return expiry is not None and now < expiry

    def allows(self, token: str, needed: str) -> bool:
        """Whether ``token``'s grant covers scope ``needed`` (e.g.
        ``ZohoAnalytics.metadata.create``): named, or its group's ``.all``, or
        ``ZohoAnalytics.fullaccess.all``."""
        refresh = self._minted_by.get(token)
        granted = set(self._refresh.get(refresh, SCOPE).split(",")) if refresh else {SCOPE}
        service, group, _ = needed.split(".", 2)
        return bool(granted & {needed, f"{service}.{group}.all", f"{service}.fullaccess.all"})

    def revoke_tokens(self) -> None:
        self._expiry.clear()
        self._minted_by.clear()

    def expire_tokens(self) -> None:
        self._expiry = dict.fromkeys(self._expiry, float("-inf"))

    def revoke_refresh_token(self, refresh: str | None = None) -> None:
        """Revoke ``refresh`` (default: the seeded one) and every access token issued so far."""
        self._refresh.pop(refresh or self.credentials.refresh_token, None)
        self.revoke_tokens()
