"""Developer sessions: ``nox`` runs tests (on each Python present), lint and typecheck;
``nox -s minimums`` / ``bench`` / ``fuzz`` on demand."""

from __future__ import annotations

import nox
from packaging.requirements import Requirement

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
# Locally a missing interpreter is skipped; .ci/run checks that at least two are present.
nox.options.error_on_missing_interpreters = False

PYTHONS = ["3.11", "3.12", "3.13"]
PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")


def _pinned_minimums() -> list[str]:
    """Each runtime, ``cli``, ``redis`` and ``otel`` dependency pinned to its declared lower bound.

    Read from pyproject.toml so the floors tested here cannot drift from the ones published.
    """
    project = PYPROJECT["project"]
    pins = []
    extras = project["optional-dependencies"]
    for line in [*project["dependencies"], *extras["cli"], *extras["redis"], *extras["otel"]]:
        req = Requirement(line)
        floors = [spec.version for spec in req.specifier if spec.operator == ">="]
        if len(floors) != 1:
            raise ValueError(f"{line!r}: expected exactly one '>=' lower bound")
        pins.append(f"{req.name}=={floors[0]}")
    return pins


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite, against the embedded FakeZoho over loopback (and a real
    redis-server for the Redis coordinator, skipped when it is not installed)."""
    session.install("-e", ".[cli,redis,otel]", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def minimums(session: nox.Session) -> None:
    """The test suite with every dependency at its declared minimum (oldest Python)."""
    # one resolver call: it fails loudly if a pin contradicts another requirement
    session.install("-e", ".[cli,redis,otel]", *_pinned_minimums(), *TEST_DEPS)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the benchmarks."""
    session.install("-e", ".[cli,redis,otel]", *TEST_DEPS, "mypy", "nox")
    session.run("mypy")


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Benchmarks; ``nox -s bench -- --quick`` for the reduced CI size. The redis extra
    is for scenarios 7-9, which run each shared store (SQLite and a real redis-server).
    OpenTelemetry is left out: the figures are those of a default install."""
    deps = [dep for dep in TEST_DEPS if not dep.startswith("opentelemetry")]
    session.install("-e", ".[cli,redis]", *deps)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHONS[0])
def fuzz(session: nox.Session) -> None:
    """The decoder fuzz tests under the random, many-example ``fuzz`` Hypothesis profile
    (ZOHO_ASYNC_FUZZ_EXAMPLES sets how many)."""
    session.install("-e", ".[cli]", *TEST_DEPS)
    session.run(
        "pytest",
        "tests/test_fuzz.py",
        *session.posargs,
        env={"ZOHO_ASYNC_HYPOTHESIS_PROFILE": "fuzz"},
    )
