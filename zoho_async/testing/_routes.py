"""Which endpoint a request is for. Route names are what ``FakeZoho.script`` takes."""

from __future__ import annotations

import re

_PREFIX = "/restapi/v2"
_TABLE: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"/oauth/v2/token/?"), "token"),
    ("GET", re.compile(_PREFIX + r"/orgs/?"), "orgs"),
    ("GET", re.compile(_PREFIX + r"/workspaces/?"), "workspaces"),
    ("GET", re.compile(_PREFIX + r"/workspaces/(?P<which>owned|shared)/?"), "workspaces"),
    ("GET", re.compile(_PREFIX + r"/workspaces/(?P<ws>[^/]+)/?"), "workspace"),
    ("GET", re.compile(_PREFIX + r"/workspaces/(?P<ws>[^/]+)/datasources/?"), "datasources"),
    (
        # Plural "datasources" only: the singular path in Zoho's OpenAPI file is a spec error.
        "POST",
        re.compile(_PREFIX + r"/workspaces/(?P<ws>[^/]+)/datasources/(?P<ds>[^/]+)/sync/?"),
        "sync",
    ),
    ("GET", re.compile(_PREFIX + r"/resources/?"), "resources"),
)

# Routes Zoho counts as METADATA calls for the per-minute limit (inferred from their scopes).
METADATA_ROUTES = frozenset({"orgs", "workspaces", "workspace", "datasources", "sync", "resources"})


def resolve(method: str, path: str) -> tuple[str, dict[str, str]]:
    """(route name, path arguments); "unknown" when nothing matches.

    Example::

        >>> resolve("POST", "/restapi/v2/workspaces/1/datasources/2/sync")
        ('sync', {'ws': '1', 'ds': '2'})
    """
    for verb, pattern, name in _TABLE:
        match = pattern.fullmatch(path)
        if match and verb == method:
            return name, {k: v for k, v in match.groupdict().items() if v is not None}
    return "unknown", {}
