"""Shared test configuration."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

# The fake's fixtures come from the package's pytest11 entry point once it is installed
# (pip install -e .). Before that, load them here; never both, which pytest refuses.
_PLUGIN = "zoho_async.testing.pytest_plugin"
pytest_plugins = (
    [] if any(ep.value == _PLUGIN for ep in entry_points(group="pytest11")) else [_PLUGIN]
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
