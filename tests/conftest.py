"""Shared test configuration."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from importlib.metadata import entry_points

import pytest
from hypothesis import settings

from .helpers import CLI_ENV_NAMES

# The fake's fixtures come from the package's pytest11 entry point once it is installed
# (pip install -e .). Before that, load them here; never both, which pytest refuses.
# Every test talks to servers on loopback. A proxy of the machine's environment (a CI
# runner reaching the package registries through one) must not carry that traffic; the
# proxy tests set these variables themselves.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "ZOHO_PROXY", "ZOHO_CA_BUNDLE"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.lower(), None)
# Nor may a developer's own profiles and credentials reach a test: the CLI and
# AnalyticsSession.from_profile read ZOHO_CONFIG's file (default: the user config
# directory) and the ZOHO_* variables. Tests that want them set them.
for _name in (*CLI_ENV_NAMES, "ZOHO_PROFILE", "ZOHO_SHARED"):
    os.environ.pop(_name, None)
_CONFIG_DIR = tempfile.mkdtemp(prefix="zoho-tests-config-")
atexit.register(shutil.rmtree, _CONFIG_DIR, ignore_errors=True)
os.environ["ZOHO_CONFIG"] = os.path.join(_CONFIG_DIR, "config.toml")

_PLUGIN = "zoho_async.testing.pytest_plugin"
pytest_plugins = (
    [] if any(ep.value == _PLUGIN for ep in entry_points(group="pytest11")) else [_PLUGIN]
)
pytest_plugins = [*pytest_plugins, "tests.redis_server"]

# Hypothesis profiles, picked by ZOHO_ASYNC_HYPOTHESIS_PROFILE. The default "ci" is
# derandomized (examples are a function of the test alone) and ignores the local example
# database, so CI and every developer's run try the same cases and a failure reproduces.
# "fuzz" (``nox -s fuzz``) is random and runs ZOHO_ASYNC_FUZZ_EXAMPLES examples per test.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile(
    "fuzz",
    derandomize=False,
    deadline=None,
    print_blob=True,
    max_examples=int(os.environ.get("ZOHO_ASYNC_FUZZ_EXAMPLES", "5000")),
)
settings.load_profile(os.environ.get("ZOHO_ASYNC_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
