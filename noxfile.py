"""Developer sessions: ``nox`` runs tests, lint and typecheck; ``nox -s bench`` / ``fuzz``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, against the embedded FakeZoho over loopback."""
    session.install("-e", ".[cli]", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the benchmarks."""
    session.install("-e", ".[cli]", *TEST_DEPS, "mypy", "nox")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; ``nox -s bench -- --quick`` for the reduced CI size."""
    session.install("-e", ".[cli]", *TEST_DEPS)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The decoder fuzz tests with many more examples."""
    session.install("-e", ".[cli]", *TEST_DEPS)
    session.run("pytest", "tests/test_fuzz.py", env={"ZOHO_ASYNC_FUZZ_EXAMPLES": "5000"})
