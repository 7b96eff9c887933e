"""Public face of profiles (``config.toml`` + keyring), for the command line and scripts.

The implementation is :mod:`zoho_async._profiles`; see
:meth:`zoho_async.AnalyticsSession.from_profile` for the usual entry point.
``resolve_endpoints`` is here too: logging in needs a data centre's hosts before there is
a session.
"""

from __future__ import annotations

from ._profiles import (
    CONFIG_ENV,
    CREDENTIALS_DOC,
    ENV_VARS,
    KEYRING_SERVICE,
    PROFILE_ENV,
    PROFILE_KEYS,
    REQUIRED_SCOPES,
    SECRET_KEYS,
    ResolvedSettings,
    SecretStore,
    config_path,
    dumps_profiles,
    profile_name,
    read_profiles,
    resolve_settings,
    write_profile,
)
from ._regions import Endpoints, resolve_endpoints

__all__ = [
    "CONFIG_ENV",
    "CREDENTIALS_DOC",
    "ENV_VARS",
    "KEYRING_SERVICE",
    "PROFILE_ENV",
    "PROFILE_KEYS",
    "REQUIRED_SCOPES",
    "SECRET_KEYS",
    "Endpoints",
    "ResolvedSettings",
    "SecretStore",
    "config_path",
    "dumps_profiles",
    "profile_name",
    "read_profiles",
    "resolve_endpoints",
    "resolve_settings",
    "write_profile",
]
