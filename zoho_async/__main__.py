"""``python -m zoho_async`` and the ``zoho-async`` script.

The command line needs the ``cli`` extra (click, rich; platformdirs optional); the SDK
does not, so a missing extra is a one-line hint, not a traceback. ``zoho_async.cli`` is
imported only once the extra is known to be there.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

MISSING_EXTRA = "zoho-async's command line needs the cli extra: pip install 'zoho-async[cli]'"


def main() -> None:
    """Entry point: run the command line, or explain how to install it."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        raise SystemExit(2) from None
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
