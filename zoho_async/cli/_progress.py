"""Progress on stderr: a rich bar on a terminal, plain periodic lines in CI logs, or nothing.

Both show the same things: done/total, counts per status, the sync calls of the last
minute and the ETA. The plain form prints a line every ``interval`` seconds (a ticker
task), because a log that only changes when a result arrives looks hung during long
rate-limit pauses.

The rate is a count, not an extrapolation: the results whose sync request was sent in the
last 60 s. Each took a pacing turn inside that window, so the figure can never exceed the
limit the pacer keeps (an average over the run, inflated by the first burst, showed
66/min at 60/min).
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import IO, Protocol

import anyio
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from zoho_async import SyncResult, SyncStatus

from ._config import REDACTOR

__all__ = [
    "RATE_WINDOW",
    "NullProgress",
    "PlainProgress",
    "ProgressDisplay",
    "RichProgress",
    "calls_in_window",
    "make_progress",
]

#: Seconds over which the displayed rate is counted: Zoho's limits are per minute.
RATE_WINDOW = 60.0


def calls_in_window(sent: Sequence[float], now: float, window: float = RATE_WINDOW) -> int:
    """How many of the (sorted) send times ``sent`` fall in ``(now - window, now]``.

    A count over the same window as the limit, so whatever the pacer guarantees for any
    window, this shows no more.
    """
    return bisect.bisect_right(sent, now) - bisect.bisect_right(sent, now - window)


_LABELS = {
    SyncStatus.STARTED: "started",
    SyncStatus.ALREADY_RUNNING: "already running",
    SyncStatus.QUOTA_EXHAUSTED: "no quota",
    SyncStatus.SKIPPED: "skipped",
    SyncStatus.FAILED: "failed",
    SyncStatus.CANCELLED: "cancelled",
    SyncStatus.UNCONFIRMED: "unconfirmed",
    SyncStatus.CLAIMED: "claimed by another run",
}


class ProgressDisplay(Protocol):
    def begin(self, description: str, total: int | None) -> None: ...

    def advance(self, result: SyncResult | None = None) -> None: ...

    def note(self, text: str) -> None: ...

    async def tick(self) -> None: ...

    def close(self) -> None: ...


class _Tally:
    """Done, total, counts per status and the rate, for either display."""

    def __init__(self) -> None:
        self.description = ""
        self.total: int | None = None
        self.done = 0
        self.counts: Counter[SyncStatus] = Counter()
        self.started = time.monotonic()
        # wall-clock send times of the results that made a request, in order: a result
        # carries its send time as a datetime, and only the last minute is kept
        self.sent: deque[float] = deque()

    def begin(self, description: str, total: int | None) -> None:
        self.description, self.total, self.done = description, total, 0
        self.started = time.monotonic()
        self.sent.clear()

    def advance(self, result: SyncResult | None) -> None:
        self.done += 1
        if result is not None:
            self.counts[result.status] += 1
            if result.attempts > 0 and result.started_at is not None:
                sent = result.started_at.timestamp()
                # results mostly end in the order they were sent: append, and search the
                # deque (slow in its middle) only for one that overtook another
                if not self.sent or sent >= self.sent[-1]:
                    self.sent.append(sent)
                else:
                    bisect.insort(self.sent, sent)

    def calls_per_minute(self, now: float | None = None) -> int:
        """Results whose request was sent in the last minute (see the module docstring)."""
        now = time.time() if now is None else now
        while self.sent and self.sent[0] <= now - RATE_WINDOW:
            self.sent.popleft()
        return calls_in_window(self.sent, now)

    def counts_text(self) -> str:
        # .get: a status added to the SDK later must not crash a running display
        return ", ".join(
            f"{n} {_LABELS.get(s, s.value.lower())}" for s in SyncStatus if (n := self.counts[s])
        )

    def _average_per_second(self) -> float:
        # for the ETA only: the whole run's average, results without a request included
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta(self) -> str:
        rate = self._average_per_second()
        if self.total is None or rate <= 0:
            return "?"
        seconds = int(max(self.total - self.done, 0) / rate)
        return f"{seconds // 60}m{seconds % 60:02d}s"


class NullProgress:
    """``--quiet``: no display at all."""

    def begin(self, description: str, total: int | None) -> None:
        return None

    def advance(self, result: SyncResult | None = None) -> None:
        return None

    def note(self, text: str) -> None:
        return None

    async def tick(self) -> None:
        await anyio.sleep_forever()

    def close(self) -> None:
        return None


class PlainProgress:
    """One line every ``interval`` seconds, for logs that are not terminals."""

    def __init__(self, stream: IO[str], interval: float) -> None:
        self._stream = stream
        self._interval = interval
        self._tally = _Tally()

    def _write(self, text: str) -> None:
        self._stream.write(REDACTOR(text) + "\n")
        self._stream.flush()

    def begin(self, description: str, total: int | None) -> None:
        self._tally.begin(description, total)
        self._write(f"{description}: {total if total is not None else '?'} to do")

    def advance(self, result: SyncResult | None = None) -> None:
        self._tally.advance(result)

    def note(self, text: str) -> None:
        self._write(text)

    def line(self) -> str:
        t = self._tally
        total = "?" if t.total is None else str(t.total)
        pct = f" ({t.done * 100 // t.total}%)" if t.total else ""
        counts = f" [{t.counts_text()}]" if t.counts else ""
        return (
            f"{t.description}: {t.done}/{total}{pct}{counts}, "
            f"{t.calls_per_minute()} sent in the last minute, ETA {t.eta()}"
        )

    async def tick(self) -> None:
        while True:
            await anyio.sleep(self._interval)
            self._write(self.line())

    def close(self) -> None:
        if self._tally.done:
            self._write(self.line())


class _BarAndCounts(Progress):
    """The bar on one line and the counts per status under it, so a narrow terminal
    squeezes neither."""

    counts = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.counts:
            yield Text("  " + self.counts)


class RichProgress:
    """A live bar on a terminal: done/total, rate and ETA, then the per-status counts."""

    def __init__(self, console: Console) -> None:
        self._tally = _Tally()
        self._progress = _BarAndCounts(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: TaskID | None = None
        self._progress.start()

    def begin(self, description: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._tally.begin(description, total)
        self._task = self._progress.add_task(description, total=total, rate="")

    def advance(self, result: SyncResult | None = None) -> None:
        self._tally.advance(result)
        if self._task is not None:
            self._progress.counts = self._tally.counts_text()
            rate = f"{self._tally.calls_per_minute()} sent/min"
            self._progress.update(self._task, advance=1, rate=rate)

    def note(self, text: str) -> None:
        self._progress.console.print(REDACTOR(text), highlight=False)

    async def tick(self) -> None:
        await anyio.sleep_forever()  # rich refreshes on its own thread

    def close(self) -> None:
        self._progress.stop()


def make_progress(stderr: IO[str], *, quiet: bool, interval: float) -> ProgressDisplay:
    """Rich on a terminal, plain lines otherwise, nothing with ``--quiet``."""
    if quiet:
        return NullProgress()
    console = Console(file=stderr, highlight=False)
    if console.is_terminal:
        return RichProgress(console)
    return PlainProgress(stderr, interval)
