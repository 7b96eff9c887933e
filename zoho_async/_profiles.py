"""Profiles: named settings in ``config.toml``, secrets in the OS keyring (or the file).

Shared by the SDK (:meth:`AnalyticsSession.from_profile`) and the command line (no click
here). The file lives in ``platformdirs.user_config_dir("zoho-async")`` (``ZOHO_CONFIG``
names another one, for tests and CI) and holds flat tables::

    [profiles.default]
    data_center = "eu"
    client_id = "1000.ABC..."
    org_id = "60001234567"
    workspaces = ["35130000001055707"]
    metadata_rate = 60

Precedence when settings are resolved: explicit values (flags, keywords), then the
environment (``ZOHO_*``), then the profile, then built-in defaults. Secrets (client secret,
refresh token) follow the same order; in a profile they live in the OS keyring (the
``keyring`` package) when a usable backend exists, else in the file, which is then written
with mode 0600.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ._env import ENV_VARS as SESSION_ENV_VARS
from ._env import read_env
from ._errors import InvalidInputError

__all__ = [
    "CONFIG_ENV",
    "ENV_VARS",
    "KEYRING_SERVICE",
    "PROFILE_ENV",
    "PROFILE_KEYS",
    "REQUIRED_SCOPES",
    "SECRET_KEYS",
    "ResolvedSettings",
    "SecretStore",
    "config_path",
    "dumps_profiles",
    "profile_name",
    "read_profiles",
    "resolve_settings",
    "write_profile",
]

#: The environment variable naming the config file (default: the user config directory).
CONFIG_ENV = "ZOHO_CONFIG"
#: The environment variable naming the profile (default: "default").
PROFILE_ENV = "ZOHO_PROFILE"
#: The keyring service name secrets are stored under (user name: ``PROFILE:KEY``).
KEYRING_SERVICE = "zoho-async"

#: What Sync Data and the listings need: Sync Data is ``metadata.create``; Get
#: Organizations, the workspace listings and Get Datasources are ``metadata.read``.
REQUIRED_SCOPES = ("ZohoAnalytics.metadata.create", "ZohoAnalytics.metadata.read")

#: Non-secret profile keys and their types.
PROFILE_KEYS: dict[str, type] = {
    "data_center": str,
    "client_id": str,
    "org_id": str,
    "workspaces": list,
    "rate": int,
    "metadata_rate": int,
    "shared": str,
    "api_url": str,
    "accounts_url": str,
}
#: Secret keys: kept in the keyring when possible, never shown.
SECRET_KEYS = ("client_secret", "refresh_token")

#: Setting -> the environment variable it is read from: the SDK's names (``_env``) for the
#: settings a profile holds, and the CLI's shared-store variable.
ENV_VARS = {
    **{key: name for key, name in SESSION_ENV_VARS.items() if key in (*PROFILE_KEYS, *SECRET_KEYS)},
    "shared": "ZOHO_SHARED",
}

_NAME = re.compile(r"[A-Za-z0-9_-]+")


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``ZOHO_CONFIG``, else ``config.toml`` in the user config directory."""
    env = os.environ if env is None else env
    given = env.get(CONFIG_ENV, "").strip()
    if given:
        return Path(given).expanduser()
    try:
        import platformdirs
    except ImportError:  # the SDK alone: the XDG rule, as platformdirs applies it on Linux
        xdg = env.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
        return base / "zoho-async" / "config.toml"
    return Path(platformdirs.user_config_dir("zoho-async", appauthor=False)) / "config.toml"


def profile_name(name: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``name``, else ``ZOHO_PROFILE``, else ``"default"``; checked to be a plain word."""
    env = os.environ if env is None else env
    chosen = name or env.get(PROFILE_ENV, "").strip() or "default"
    if not _NAME.fullmatch(chosen):
        raise InvalidInputError(f"profile names are letters, digits, '-' and '_', got {chosen!r}")
    return chosen


# -- the file -------------------------------------------------------------------------


def read_profiles(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every profile in the file (``{}`` when there is no file); ``InvalidInputError`` for
    a file that is not TOML or holds a value of the wrong type."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid TOML: {exc}") from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise InvalidInputError(f"{path}: [profiles] must be a table")
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise InvalidInputError(f"{path}: profiles.{name} must be a table")
        for key, value in table.items():
            expected = PROFILE_KEYS.get(key, str)
            if key not in PROFILE_KEYS and key not in SECRET_KEYS:
                raise InvalidInputError(
                    f"{path}: unknown key profiles.{name}.{key} (known: "
                    + ", ".join([*PROFILE_KEYS, *SECRET_KEYS])
                    + ")"
                )
            if not isinstance(value, expected) or isinstance(value, bool):
                kind = {str: "a string", int: "an integer", list: "a list"}[expected]
                raise InvalidInputError(f"{path}: profiles.{name}.{key} must be {kind}")
    return profiles


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("profile numbers must be finite")
        return repr(value)
    if isinstance(value, str):
        # A TOML basic string: escape backslash, quote and control characters.
        out = []
        for char in value:
            if char in '"\\':
                out.append("\\" + char)
            elif ord(char) < 0x20 or ord(char) == 0x7F:
                out.append(f"\\u{ord(char):04x}")
            else:
                out.append(char)
        return '"' + "".join(out) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a profile")


def _toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted one."""
    return key if _NAME.fullmatch(key) else _toml_value(key)


def dumps_profiles(profiles: Mapping[str, Mapping[str, Any]]) -> str:
    """The TOML text of flat profile tables (strings, numbers, lists of them).

    Own writer, as the standard library reads TOML but cannot write it, and these tables
    are flat: no dependency for a few lines.

    >>> print(dumps_profiles({"default": {"data_center": "eu", "workspaces": ["1"]}}), end="")
    [profiles.default]
    data_center = "eu"
    workspaces = ["1"]
    """
    blocks = []
    for name, table in profiles.items():
        lines = [f"[profiles.{_toml_key(name)}]"]
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in table.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to an existing tmp file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_profile(
    name: str,
    values: Mapping[str, Any],
    *,
    remove: tuple[str, ...] = (),
    path: Path | None = None,
) -> Path:
    """Merge ``values`` into profile ``name`` (``None`` values and ``remove`` keys are
    dropped) and write the file with mode 0600; returns its path. The file is rewritten
    from its profiles, so comments in it are not kept."""
    path = path or config_path()
    profiles = read_profiles(path)
    with contextlib.suppress(FileNotFoundError):
        others = set(tomllib.loads(path.read_text(encoding="utf-8"))) - {"profiles"}
        if others:
            # the file is rewritten from its profiles: refuse rather than drop the rest
            raise InvalidInputError(
                f"{path} holds more than [profiles] ({', '.join(sorted(others))}); move "
                "that elsewhere or edit the profile by hand"
            )
    table = dict(profiles.get(profile_name(name), {}))
    for key, value in values.items():
        if key not in PROFILE_KEYS and key not in SECRET_KEYS:
            raise InvalidInputError(f"unknown profile key {key!r}")
        if value is None:
            table.pop(key, None)
        else:
            table[key] = list(value) if isinstance(value, tuple) else value
    for key in remove:
        table.pop(key, None)
    profiles[name] = table
    _write_private(path, dumps_profiles(profiles))
    return path


# -- secrets --------------------------------------------------------------------------


def _keyring_backend() -> Any | None:
    """The keyring backend to use, or None when keyring is missing or has no usable
    backend (its ``fail`` backend, or a priority below 1 such as the ``null`` one)."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration: fall back to the file
        return None
    if isinstance(backend, fail.Keyring):
        return None
    priority = getattr(type(backend), "priority", 1)
    with contextlib.suppress(TypeError):
        if priority is not None and float(priority) <= 0:
            return None
    return backend


@attrs.define
class SecretStore:
    """Where a profile's secrets are kept: the keyring when usable, else the file.

    ``get`` answers (value, where) with where "keyring" or "file"; ``put`` answers where it
    stored; ``delete`` answers the places it removed the secret from.
    """

    path: Path = attrs.field(factory=config_path)
    backend: Any = attrs.field(factory=_keyring_backend, repr=False)

    @property
    def uses_keyring(self) -> bool:
        return self.backend is not None

    def get(self, profile: str, key: str) -> tuple[str | None, str | None]:
        if self.backend is not None:
            try:
                value = self.backend.get_password(KEYRING_SERVICE, f"{profile}:{key}")
            except Exception:  # locked or unreachable keyring: try the file
                value = None
            if value:
                return value, "keyring"
        value = read_profiles(self.path).get(profile, {}).get(key)
        return (value, "file") if value else (None, None)

    def put(self, profile: str, key: str, value: str) -> str:
        if self.backend is not None:
            self.backend.set_password(KEYRING_SERVICE, f"{profile}:{key}", value)
            # a copy left in the file by an earlier keyring-less login would shadow nothing
            # but would still be a secret on disk
            if key in read_profiles(self.path).get(profile, {}):
                write_profile(profile, {}, remove=(key,), path=self.path)
            return "keyring"
        write_profile(profile, {key: value}, path=self.path)
        return "file"

    def delete(self, profile: str, key: str) -> list[str]:
        removed = []
        if self.backend is not None:
            with contextlib.suppress(Exception):  # PasswordDeleteError: nothing there
                self.backend.delete_password(KEYRING_SERVICE, f"{profile}:{key}")
                removed.append("keyring")
        if key in read_profiles(self.path).get(profile, {}):
            write_profile(profile, {}, remove=(key,), path=self.path)
            removed.append("file")
        return removed


# -- resolution -----------------------------------------------------------------------


@attrs.frozen
class ResolvedSettings:
    """Settings with where each came from: "flag" (explicit), "env", "profile",
    "keyring" or "file" (a profile's secret), or "default". Secrets are not in the repr."""

    profile: str
    path: Path
    values: Mapping[str, Any] = attrs.field(repr=False)
    sources: Mapping[str, str]

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def rows(self) -> Iterator[tuple[str, str, str]]:
        """(setting, shown value, source) with secrets masked as ``***``."""
        for key in (*PROFILE_KEYS, *SECRET_KEYS):
            value = self.values.get(key)
            source = self.sources.get(key, "unset")
            if value is None or value == "":
                yield key, "", "unset"
            elif key in SECRET_KEYS:
                yield key, "***", source
            elif isinstance(value, list | tuple):
                yield key, ",".join(str(v) for v in value), source
            else:
                yield key, str(value), source


def resolve_settings(
    name: str | None = None,
    *,
    explicit: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
    store: SecretStore | None = None,
) -> ResolvedSettings:
    """Resolve every setting: ``explicit`` values, then the environment, then profile
    ``name`` (``None``: ``ZOHO_PROFILE`` or "default"), then defaults (``data_center``
    "us"). A profile named explicitly must exist; the implicit "default" may be absent."""
    env = os.environ if env is None else env
    path = path or config_path(env)
    chosen = profile_name(name, env)
    profiles = read_profiles(path)
    if chosen not in profiles and (name or env.get(PROFILE_ENV)):
        known = ", ".join(profiles) or "none"
        raise InvalidInputError(
            f"no profile {chosen!r} in {path} (profiles: {known}); create it with "
            f"'zoho-async auth login --profile {chosen}'"
        )
    table = profiles.get(chosen, {})
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in (*PROFILE_KEYS, *SECRET_KEYS):
        given = (explicit or {}).get(key)
        env_value = env.get(ENV_VARS[key], "").strip() if key in ENV_VARS else ""
        if given is not None and given != "" and given != ():
            values[key], sources[key] = given, "flag"
        elif env_value:
            values[key], sources[key] = env_value, "env"
        elif key in SECRET_KEYS and chosen in profiles:
            # only a profile that exists is looked up: no keyring access otherwise
            stored, where = (store or SecretStore(path)).get(chosen, key)
            if stored and where:
                values[key], sources[key] = stored, where
        elif key in table:
            values[key], sources[key] = table[key], "profile"
    if "data_center" not in values:
        values["data_center"], sources["data_center"] = "us", "default"
    return ResolvedSettings(chosen, path, values, sources)


#: Where the README explains credentials, for messages about missing ones.
CREDENTIALS_DOC = "README.md#credentials"


def session_kwargs(name: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``AnalyticsSession`` for :meth:`~AnalyticsSession.from_profile`:
    settings resolved from ``overrides``, the environment and the profile; keywords that
    are not settings are passed through unchanged."""
    from ._errors import MissingCredentialsError
    from ._pacing import Limits

    settings = {k: v for k, v in overrides.items() if k in PROFILE_KEYS or k in SECRET_KEYS}
    passed = {k: v for k, v in overrides.items() if k not in settings}
    resolved = resolve_settings(name, explicit=settings)
    missing = [
        ENV_VARS[key]
        for key in ("client_id", "client_secret", "refresh_token")
        if not resolved.get(key)
    ]
    if missing:
        raise MissingCredentialsError(
            f"missing credentials for profile {resolved.profile!r}: run 'zoho-async auth "
            f"login --profile {resolved.profile}' or set {', '.join(missing)} (see the "
            f"README's Credentials section, {CREDENTIALS_DOC})"
        )
    kwargs: dict[str, Any] = {
        key: resolved.get(key)
        for key in (
            "client_id",
            "client_secret",
            "refresh_token",
            "org_id",
            "data_center",
            "api_url",
            "accounts_url",
        )
    }
    rates = {
        "requests_per_minute": resolved.get("rate"),
        "metadata_per_minute": resolved.get("metadata_rate"),
    }
    rates = {k: int(v) for k, v in rates.items() if v is not None}
    if rates and "limits" not in passed:
        passed["limits"] = Limits(**rates)
    # settings a profile does not hold (ZOHO_PROXY, ZOHO_CA_BUNDLE) still come from the
    # environment, as with from_env
    extra = {k: v for k, v in read_env().items() if k not in kwargs}
    return {**extra, **kwargs, **passed}
