"""Command line settings: credentials from flags or the environment, the token cache,
logging, and the redaction that keeps every secret out of what the command prints.

Why a redactor on top of an SDK that already never logs secrets: the command line also
prints error messages built from user input (URLs, file contents) and the output of other
libraries; one last filter on everything written is cheap and catches what review misses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import attrs

from zoho_async import (
    DATA_CENTRES,
    AnalyticsSession,
    Coordinator,
    FileTokenStore,
    InvalidInputError,
    Limits,
    MissingCredentialsError,
    RedisCoordinator,
    SqliteCoordinator,
    UnknownDataCentreError,
)
from zoho_async.profiles import CREDENTIALS_DOC

__all__ = [
    "ENV_VARS",
    "REDACTOR",
    "ConnectionSettings",
    "Redactor",
    "default_token_cache",
    "setup_logging",
]

#: Setting name -> the environment variable it is read from.
ENV_VARS = {
    "client_id": "ZOHO_CLIENT_ID",
    "client_secret": "ZOHO_CLIENT_SECRET",
    "refresh_token": "ZOHO_REFRESH_TOKEN",
    "org_id": "ZOHO_ORG_ID",
    "data_center": "ZOHO_DATA_CENTER",
    "api_url": "ZOHO_API_URL",
    "accounts_url": "ZOHO_ACCOUNTS_URL",
    "token_cache": "ZOHO_TOKEN_CACHE",
    "proxy": "ZOHO_PROXY",
    "ca_bundle": "ZOHO_CA_BUNDLE",
}

_MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words and digits


class Redactor:
    """Replaces every registered secret in a text with ``***``.

    Example::

        >>> r = Redactor()
        >>> r.add("s3cr3t-value")
        >>> r("token=s3cr3t-value")
        'token=***'
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        # longest first, so a secret containing another is masked whole; kept sorted here
        # because every line a run prints or journals passes through __call__
        self._ordered: tuple[str, ...] = ()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= _MIN_SECRET:
                self._secrets.add(value)
        self._ordered = tuple(sorted(self._secrets, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text


#: The process-wide redactor: the command line is one process with one set of secrets.
REDACTOR = Redactor()


def default_token_cache() -> Path:
    """``tokens.json`` in the user cache directory (platformdirs, else the XDG rule)."""
    try:
        import platformdirs
    except ImportError:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
        return base / "zoho-async" / "tokens.json"
    return Path(platformdirs.user_cache_dir("zoho-async", appauthor=False)) / "tokens.json"


@attrs.frozen
class ConnectionSettings:
    """Everything needed to open an :class:`AnalyticsSession` (secrets never in repr)."""

    client_id: str | None = attrs.field(default=None, repr=False)
    client_secret: str | None = attrs.field(default=None, repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    org_id: str | None = None
    data_center: str = attrs.field(default="us")
    api_url: str | None = None
    accounts_url: str | None = None
    proxy: str | None = attrs.field(default=None, repr=False)  # may hold a password
    trust_env: bool = True  # HTTPS_PROXY & co. (the demo's loopback fake goes direct)
    ca_bundle: str | None = None  # a PEM file, the session's ssl=
    token_cache: Path | None = None
    limits: Limits | None = None
    shared: str = "local"  # what --shared / ZOHO_SHARED resolved to (see shared_coordinator)
    timeout: float = 30.0  # seconds per request

    @data_center.validator
    def _check_data_center(self, _attribute: object, value: str) -> None:
        # checked here, when the settings are read, so a typo fails before the results
        # file is opened, and even when --api-url and --accounts-url make it unused
        if value.strip().lower() not in DATA_CENTRES:
            valid = ", ".join(DATA_CENTRES)
            raise UnknownDataCentreError(f"unknown data centre {value!r}; valid keys are: {valid}")

    def register_secrets(self) -> None:
        REDACTOR.add(self.client_secret, self.refresh_token, *proxy_secrets(self.proxy))

    def check_paths(self) -> None:
        """``InvalidInputError`` (one line, exit 2) when the token cache or the SQLite
        shared state cannot be created or written, e.g. a read-only home in a container.

        Called before anything is opened or written (the results file included), so the
        failure leaves nothing behind and says which flag avoids it, instead of a
        traceback from deep inside the first token request.
        """
        hint = "use --no-token-cache or --token-cache PATH"
        spec = self.shared.strip()
        if spec in ("", "local"):
            if self.token_cache is not None:
                _check_writable(self.token_cache, "token cache", hint)
        elif spec.startswith("sqlite:") and spec.removeprefix("sqlite:"):
            if spec != default_shared(self.token_cache):
                hint = "use --shared local or --shared sqlite:PATH"  # chosen, not the default
            path = Path(spec.removeprefix("sqlite:")).expanduser()
            _check_writable(path, "shared state (sqlite)", hint)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AnalyticsSession]:
        """An open session, with its shared coordinator (``--shared``) opened and closed
        around it; ``InvalidInputError`` for bad settings."""
        self.check_paths()
        coordinator = shared_coordinator(self.shared)
        try:
            async with self._session(coordinator) as session:
                yield session
        finally:
            if coordinator is not None:
                await coordinator.aclose()

    def _session(self, coordinator: Coordinator | None) -> AnalyticsSession:
        missing = [
            ENV_VARS[name]
            for name in ("client_id", "client_secret", "refresh_token")
            if not (getattr(self, name) or "").strip()
        ]
        if missing:
            raise MissingCredentialsError(
                "missing credentials: run 'zoho-async auth login' (or set "
                + ", ".join(missing)
                + "); see the README's Credentials section, "
                + CREDENTIALS_DOC
            )
        assert self.client_id
        assert self.client_secret
        assert self.refresh_token
        self.register_secrets()
        store = None
        if coordinator is None and self.token_cache is not None:
            store = FileTokenStore(self.token_cache)
        return AnalyticsSession(
            self.client_id,
            self.client_secret,
            self.refresh_token,
            org_id=self.org_id or None,
            data_center=self.data_center,
            api_url=self.api_url or None,
            accounts_url=self.accounts_url or None,
            token_store=store,
            limits=self.limits,
            coordinator=coordinator,
            timeout=self.timeout,
            proxy=self.proxy,
            trust_env=self.trust_env,
            ssl=self.ca_bundle,
        )


def _check_writable(path: Path, what: str, hint: str) -> None:
    """Create ``path``'s directory (as the stores would) and check it can be written.

    Modes alone cannot tell (root writes through 0500), so creating the directory is the
    real test; ``os.access`` then catches a read-only file system or a foreign directory.
    """
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot create the {what} directory {parent}: {exc.strerror or exc}; {hint}"
        ) from None
    if not parent.is_dir():
        raise InvalidInputError(f"cannot use {parent} for the {what}: not a directory; {hint}")
    if not os.access(parent, os.W_OK | os.X_OK) or (
        path.exists() and (path.is_dir() or not os.access(path, os.R_OK | os.W_OK))
    ):
        raise InvalidInputError(f"cannot write the {what} {path}: permission denied; {hint}")


def default_shared(token_cache: Path | None) -> str:
    """The CLI's default ``--shared``: a SQLite store beside the token cache (so the
    processes of this host share one token, one pace and their claims), or ``local`` when
    tokens are kept in memory only."""
    if token_cache is None:
        return "local"
    return "sqlite:" + str(token_cache.with_name("shared.db"))


def shared_coordinator(spec: str) -> Coordinator | None:
    """``local`` -> None (this process only); ``sqlite:PATH``; ``redis://`` or ``rediss://``
    URLs. ``InvalidInputError`` for anything else."""
    text = spec.strip()
    if text in ("", "local"):
        return None
    if text.startswith("sqlite:"):
        path = text.removeprefix("sqlite:")
        if not path:
            raise InvalidInputError("--shared sqlite:PATH needs a path")
        return SqliteCoordinator(Path(path).expanduser())
    if text.startswith(("redis://", "rediss://", "unix://")):
        # checked here, before any request: the coordinator imports redis-py only when it
        # opens, inside the run, where an ImportError would end in a traceback
        if importlib.util.find_spec("redis") is None:
            raise InvalidInputError(
                "--shared redis://... needs redis-py: pip install 'zoho-async[redis]'"
            )
        return RedisCoordinator(text)
    raise InvalidInputError(
        "--shared must be local, sqlite:PATH or a redis:// / rediss:// URL, got " + redact_url(text)
    )


def proxy_secrets(url: str | None) -> tuple[str, ...]:
    """The password of a proxy URL's user part, as given and URL-decoded (pure string
    work: the URL may be malformed, and the message saying so must not show it)."""
    if not url:
        return ()
    rest = url.partition("://")[2] or url
    authority = rest.split("/", 1)[0]
    if "@" not in authority:
        return ()
    password = authority[: authority.rindex("@")].partition(":")[2]
    return (password, urllib.parse.unquote(password))


def redact_url(text: str) -> str:
    """``text`` with any password in a URL's user part masked."""
    head, sep, rest = text.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return text
    userinfo, _, host = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{head}://{user + ':' if user else ''}***@{host}"


class _RedactingStderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is *now* (rich's live display and Click's test
    runner both swap it), with every secret masked."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = REDACTOR(self.format(record))
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:  # a log line must never break the run
            self.handleError(record)


def setup_logging(verbose: int, quiet: bool) -> None:
    """``-v`` INFO, ``-vv`` DEBUG on the ``zoho_async`` logger; warnings otherwise."""
    logger = logging.getLogger("zoho_async")
    for handler in list(logger.handlers):
        if isinstance(handler, _RedactingStderrHandler):
            logger.removeHandler(handler)
    if verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.ERROR if quiet else logging.WARNING
    handler = _RedactingStderrHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # one copy of each line, whatever the root logger does
