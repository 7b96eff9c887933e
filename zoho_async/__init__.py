"""zoho-async: an async SDK for Zoho Analytics REST API v2, built for bulk Sync Data.

Example::

    import anyio
    from zoho_async import AnalyticsSession

    async def main() -> None:
        async with AnalyticsSession(client_id="...", client_secret="...",
                                    refresh_token="...", org_id="55522777") as session:
            report = await session.sync_workspaces(["35130000001055707"])
            print(report.counts)

    anyio.run(main)
"""

from ._auth import FileTokenStore, MemoryTokenStore, StoredToken, TokenStore
from ._coord_local import LocalCoordinator
from ._coord_redis import RedisCoordinator
from ._coord_sqlite import SqliteCoordinator
from ._coordinator import Claim, Coordinator, CoordinatorUnavailableError, PaceState
from ._errors import (
    ApiError,
    ApiUnitsExhaustedError,
    AuthError,
    ConfigTooLongError,
    InsecureURLError,
    InvalidConfigError,
    InvalidIdError,
    InvalidInputError,
    MissingCredentialsError,
    NotFoundError,
    OrgRequiredError,
    PacingTimeoutError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SyncInProgressError,
    SyncQuotaExceededError,
    SyncUnconfirmedError,
    TimeoutError,
    TokenError,
    TokenRefreshError,
    TokenThrottledError,
    TransportError,
    UnknownDataCentreError,
    ZohoError,
)
from ._grant import GrantedTokens, exchange_grant_code, revoke_refresh_token
from ._journal import Journal, JournalInUseError, JournalState
from ._models import Datasource, Org, SyncConfig, SyncInterval, WorkspaceInfo, parse_zoho_time
from ._pacing import Limits
from ._regions import DATA_CENTRES
from ._results import (
    ROW_FIELDS,
    BulkSyncError,
    InvalidTarget,
    PlanEntry,
    PlannedTarget,
    SyncPlan,
    SyncReport,
    SyncResult,
    SyncStatus,
    SyncTarget,
    is_ok,
)
from ._retry import RetryPolicy
from ._session import USER_AGENT, AnalyticsSession, Workspace, __version__
from ._snapshot import OrgSnapshot, SessionSnapshot
from ._validation import check_id

__all__ = [
    "DATA_CENTRES",
    "ROW_FIELDS",
    "USER_AGENT",
    "AnalyticsSession",
    "ApiError",
    "ApiUnitsExhaustedError",
    "AuthError",
    "BulkSyncError",
    "Claim",
    "ConfigTooLongError",
    "Coordinator",
    "CoordinatorUnavailableError",
    "Datasource",
    "FileTokenStore",
    "GrantedTokens",
    "InsecureURLError",
    "InvalidConfigError",
    "InvalidIdError",
    "InvalidInputError",
    "InvalidTarget",
    "Journal",
    "JournalInUseError",
    "JournalState",
    "Limits",
    "LocalCoordinator",
    "MemoryTokenStore",
    "MissingCredentialsError",
    "NotFoundError",
    "Org",
    "OrgRequiredError",
    "OrgSnapshot",
    "PaceState",
    "PacingTimeoutError",
    "PermissionDeniedError",
    "PlanEntry",
    "PlannedTarget",
    "ProtocolError",
    "RateLimitedError",
    "RedisCoordinator",
    "RetryPolicy",
    "ServerError",
    "SessionSnapshot",
    "SqliteCoordinator",
    "StoredToken",
    "SyncConfig",
    "SyncInProgressError",
    "SyncInterval",
    "SyncPlan",
    "SyncQuotaExceededError",
    "SyncReport",
    "SyncResult",
    "SyncStatus",
    "SyncTarget",
    "SyncUnconfirmedError",
    "TimeoutError",
    "TokenError",
    "TokenRefreshError",
    "TokenStore",
    "TokenThrottledError",
    "TransportError",
    "UnknownDataCentreError",
    "Workspace",
    "WorkspaceInfo",
    "ZohoError",
    "__version__",
    "check_id",
    "exchange_grant_code",
    "is_ok",
    "parse_zoho_time",
    "revoke_refresh_token",
]
