"""The ``zoho-async`` command line, built on the public SDK only.

Needs the ``cli`` extra (click, rich; platformdirs optional). ``zoho_async.__main__`` is
the entry point that explains a missing extra; this package assumes it is installed.

Layout: ``_app`` (the command group and the options and error handling its commands
share), one module per command (``_sync``, ``_listings``, ``_demo``), the run behind
``sync`` and ``demo`` (``_discover``, ``_run``, ``_plan``), and input and output
(``_config``, ``_targets``, ``_output``, ``_progress``, ``_summary``).
"""

from __future__ import annotations

from ._app import cli
from ._auth_cmd import auth
from ._demo import demo, fake_server
from ._listings import datasources, orgs, workspaces
from ._profiles_cli import config
from ._summary import EXIT_INTERRUPTED
from ._sync import sync

__all__ = ["cli", "main"]

for _command in (sync, orgs, workspaces, datasources, demo, fake_server, auth, config):
    cli.add_command(_command)


def main() -> None:
    """Run the command line (``zoho-async``); exits with the documented exit code."""
    try:
        cli(prog_name="zoho-async")
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run handles its own)
        raise SystemExit(EXIT_INTERRUPTED) from None
