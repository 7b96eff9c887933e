"""``zoho-async sync``: its options, checked and read before any request.

Every input file is read here, so a bad line fails the command before a token is
requested; the run itself is :func:`~._run.run_sync` (or :func:`~._plan.run_plan` for
``--dry-run``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from zoho_async import InvalidInputError, Journal, Limits

from ._app import (
    CREDENTIALS_HELP,
    EXIT_CODES_HELP,
    connection_options,
    errors_to_exit_codes,
    output_options,
    settings_from,
)
from ._config import REDACTOR, setup_logging
from ._output import FORMATS
from ._profiles_cli import profile_workspaces
from ._run import SyncOptions, run_sync
from ._targets import Key, previous_run, read_results, read_targets, spec_from_arguments

__all__ = ["sync"]


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None or "-" in (a, b):
        return False
    return os.path.abspath(a) == os.path.abspath(b)


def _warn(quiet: bool) -> Callable[[str], None]:
    def warn(text: str) -> None:
        if not quiet:
            click.echo(f"Warning: {REDACTOR(text)}", err=True)

    return warn


@click.command(epilog=EXIT_CODES_HELP + "\n" + CREDENTIALS_HELP)
@click.argument("ids", nargs=-1, metavar="[WORKSPACE_ID [DATASOURCE_ID ...]]")
@click.option(
    "-w", "--workspace", "workspaces", multiple=True, metavar="ID",
    help="Sync every syncable datasource of this workspace (repeatable).",
)  # fmt: skip
@click.option(
    "-t", "--targets", "targets_file", metavar="FILE",
    help="Read targets from CSV (workspace_id,datasource_id[,org_id,sync_interval_id], "
    "header optional) or JSON Lines; '-' reads stdin.",
)  # fmt: skip
@click.option("--wait", is_flag=True, help="Wait for each sync to finish; report the outcome.")
@click.option(
    "--wait-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="With --wait: give up waiting for an outcome after this long (default 3600).",
)  # fmt: skip
@click.option(
    "--poll-interval", type=click.FloatRange(min=0, min_open=True), default=30.0,
    show_default=True, metavar="SECONDS", help="With --wait: how often to poll for outcomes.",
)  # fmt: skip
@click.option(
    "--deadline", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="Stop sending syncs after this long; the rest are CANCELLED.",
)  # fmt: skip
@click.option(
    "--rate", type=click.IntRange(min=1), default=100, show_default=True, metavar="N",
    help="Requests a minute per org, in all (Zoho's limit: 100).",
)  # fmt: skip
@click.option(
    "--metadata-rate", type=click.IntRange(min=1), default=60, show_default=True, metavar="N",
    help="Metadata calls (Sync Data, listings) a minute per org (Zoho's limit: 60).",
)  # fmt: skip
@click.option(
    "--max-in-flight", type=click.IntRange(min=1), default=8, show_default=True, metavar="N",
    help="Requests in flight at once.",
)  # fmt: skip
@click.option(
    "--sync-interval-id", metavar="ID",
    help="Interval to sync, for the datasources named on the command line or in --targets "
    "rows without one.",
)  # fmt: skip
@click.option(
    "--dry-run", is_flag=True,
    help="Show the plan and the quota it would spend; send no sync.",
)  # fmt: skip
@click.option(
    "-o", "--output", metavar="FILE",
    help="Write results as JSON Lines as they arrive, with the run's baselines and an "
    "intent line before each sync request: a journal that --resume FILE settles after a "
    "crash without a second sync. Creates or replaces FILE; appends when FILE is the "
    "--only-failed file. One run at a time per FILE (a lock).",
)  # fmt: skip
@click.option(
    "--resume", metavar="FILE",
    help="Resume the run journaled in FILE (it must exist: start with -o FILE) and append "
    "to it: targets already STARTED/ALREADY_RUNNING or UNCONFIRMED are skipped; requests "
    "a killed run may have sent are settled from Get Datasources first (started: "
    "STARTED, not sent again; not started: sent; cannot tell: UNCONFIRMED). Refused "
    "while another run still has FILE open.",
)  # fmt: skip
@click.option(
    "--only-failed", metavar="FILE",
    help="Re-run the targets of this results file that are not ok: FAILED, CANCELLED, or "
    "(--wait) ended with a failed outcome. UNCONFIRMED targets are never re-sent (they may "
    "have started, and a re-send may spend a second manual sync); a warning counts them.",
)  # fmt: skip
@click.option("--progress-interval", type=float, default=10.0, hidden=True)
@click.option("--grace", type=float, default=3.0, hidden=True)
@output_options(FORMATS)
@connection_options
def sync(**kwargs: Any) -> None:
    """Start Sync Data for a workspace's datasources, or for a list of targets.

    With a WORKSPACE_ID alone, every syncable datasource of the workspace is synced
    (Local Drive and Snapshot entries are SKIPPED; spent quotas are QUOTA_EXHAUSTED
    without a call). With DATASOURCE_IDs, only those. Combine with --workspace and
    --targets freely. Calls are paced within Zoho's per-minute limits and retried only
    when that cannot start a second sync.
    """
    fmt, quiet, verbose = kwargs.pop("fmt"), kwargs.pop("quiet"), kwargs.pop("verbose")
    setup_logging(verbose, quiet)
    with errors_to_exit_codes():
        limits = Limits(
            requests_per_minute=kwargs.pop("rate"),
            metadata_per_minute=kwargs.pop("metadata_rate"),
            max_in_flight=kwargs.pop("max_in_flight"),
        )
        dry_run = kwargs.pop("dry_run")
        # the settings and their paths first: a token cache that cannot be written must not
        # leave an empty results file behind
        settings = settings_from(kwargs, limits)
        settings.check_paths()
        options = _sync_options(kwargs, fmt, quiet, dry_run)
        if dry_run:
            from ._plan import run_plan

            code = run_plan(
                settings,
                options.spec,
                skip=options.skip,
                fmt=fmt,
                quiet=quiet,
                metadata_rate=limits.metadata_per_minute,
            )
        else:
            code = run_sync(settings, options)
    raise SystemExit(code)


def _warn_unconfirmed(keys: tuple[Key, ...], path: str, quiet: bool) -> None:
    if keys:
        _warn(quiet)(
            f"{path}: {len(keys)} UNCONFIRMED target{'s' if len(keys) != 1 else ''} not "
            "re-sent (the sync may have started; check it in Zoho Analytics, then name it "
            "explicitly to sync it again)"
        )


def _given(name: str) -> bool:
    """Whether the option was given (on the command line or in the environment), not
    left at its default."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    source = ctx.get_parameter_source(name)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _check_combinations(
    kwargs: dict[str, Any],
    *,
    dry_run: bool,
    datasources_named: bool,
    targets_file: str | None,
    interval: str | None,
) -> None:
    """Options that would be silently ignored in this combination: refused (exit 2), so
    the user learns before the run that it will not do what they asked."""
    wait = kwargs["wait"]
    if dry_run:
        for flag, given in (("--wait", wait), ("--deadline", kwargs["deadline"] is not None)):
            if given:
                raise InvalidInputError(f"--dry-run sends no sync; drop {flag}")
    # (--poll-interval alone is left alone: scripts pass it to every run, waiting or not)
    if not wait and _given("wait_timeout"):
        raise InvalidInputError("--wait-timeout only applies with --wait")
    if interval and not datasources_named and not targets_file:
        raise InvalidInputError(
            "--sync-interval-id applies to DATASOURCE_IDs or --targets rows; a whole "
            "workspace syncs every interval of each datasource"
        )


def _sync_options(kwargs: dict[str, Any], fmt: str, quiet: bool, dry_run: bool) -> SyncOptions:
    """Validate the target options and read every input file before any request.

    The results file is a journal (``zoho_async.Journal``): a run that writes it holds its
    lock from here to the end, so a second run on the same file fails here (exit 2), and
    ``--resume`` reads what it skips and what it must settle under that lock.
    """
    interval = kwargs.pop("sync_interval_id")
    resume, only_failed = kwargs.pop("resume"), kwargs.pop("only_failed")
    output = kwargs.pop("output")
    ids = kwargs.pop("ids")
    targets_file = kwargs.pop("targets_file")
    _check_combinations(kwargs, dry_run=dry_run, datasources_named=len(ids) > 1,
                        targets_file=targets_file, interval=interval)  # fmt: skip
    spec = spec_from_arguments(ids, kwargs.pop("workspaces"), sync_interval_id=interval)
    if targets_file:
        spec = spec + read_targets(targets_file, sync_interval_id=interval)
    if resume and only_failed:
        raise InvalidInputError("use either --resume or --only-failed, not both")
    if dry_run and output:
        raise InvalidInputError("--dry-run writes no results; drop --output")
    if resume and output and not _same_file(output, resume):
        raise InvalidInputError(
            "--resume FILE appends to FILE, the journal it resumes; drop --output "
            "(or copy FILE first)"
        )
    if only_failed and not spec.empty:
        raise InvalidInputError("--only-failed takes its targets from FILE; name no others")
    if spec.empty and not only_failed:  # none given: the profile's workspaces, if any
        spec = spec_from_arguments((), profile_workspaces(), sync_interval_id=interval)
    if spec.empty and not only_failed:
        raise InvalidInputError(
            "nothing to sync: give a WORKSPACE_ID, --workspace or --targets (see --help)"
        )
    warn = _warn(quiet)
    skip: frozenset[Key] = frozenset()
    journal: Journal | None = None
    # Both files must exist and be readable (exit 2 otherwise, before any request): a
    # typo in --resume used to sync everything again and create the misspelt file.
    previous_file = only_failed or resume
    if previous_file:
        if not dry_run and (resume or _same_file(output, only_failed)):
            # the run appends to the file it reads: take it (and its lock) now
            journal = Journal(previous_file, create=False, redact=REDACTOR, warn=warn)
            previous = previous_run(journal.open())
        else:
            previous = read_results(previous_file, warn=warn)
        _warn_unconfirmed(previous.unconfirmed(), previous_file, quiet)
        if only_failed:
            try:
                spec = previous.failed()
            except BaseException:
                if journal is not None:
                    journal.close()
                raise
            if spec.empty:
                warn(
                    f"{only_failed}: nothing to re-run (no FAILED, CANCELLED or failed-outcome "
                    "targets)"
                )
        else:
            skip = previous.done()
            output = resume
    fresh = False
    if output and journal is None and not dry_run:
        journal = Journal(output, fresh=True, redact=REDACTOR, warn=warn)
        journal.open()
        fresh = True
    return SyncOptions(
        spec=spec,
        skip=skip,
        wait=kwargs.pop("wait"),
        wait_timeout=kwargs.pop("wait_timeout"),
        deadline=kwargs.pop("deadline"),
        poll_interval=kwargs.pop("poll_interval"),
        output=output,
        journal=journal,
        fresh_output=fresh,
        fmt=fmt,
        quiet=quiet,
        progress_interval=kwargs.pop("progress_interval"),
        grace=kwargs.pop("grace"),
    )
