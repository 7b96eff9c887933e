"""The source of a run: targets pulled lazily, one at a time, each checked as it comes.

Nothing here holds more than the item being pulled: the input is never materialised,
so a generator of a million targets costs what one target costs.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sized
from typing import Any

import anyio
import attrs

from .._errors import InvalidInputError
from .._results import InvalidTarget, PlannedTarget, coerce_target

__all__ = ["Item", "Rejected", "Source", "check_sequence", "prepare"]


@attrs.frozen
class Rejected:
    """An input item that is not a target: it gets a FAILED result and is never sent."""

    target: InvalidTarget
    reason: str


Item = PlannedTarget | Rejected


def prepare(item: object) -> Item:
    """A planned target from a target, a tuple or a :class:`PlannedTarget`; else Rejected."""
    if isinstance(item, PlannedTarget):
        return item
    try:
        return PlannedTarget(coerce_target(item))
    except (InvalidInputError, TypeError, ValueError) as exc:
        return Rejected(InvalidTarget.from_item(item), f"invalid target: {exc}")


def check_sequence(targets: object) -> None:
    """A list or tuple is already in memory: validate all of it before any request."""
    if isinstance(targets, list | tuple):
        for position, item in enumerate(targets):
            if isinstance(item, PlannedTarget):
                continue
            try:
                coerce_target(item)
            except InvalidInputError as exc:
                raise type(exc)(f"target {position}: {exc}") from None


class Source:
    """Pulls from an iterable or async iterable, one item at a time, numbering them."""

    def __init__(self, targets: Iterable[Any] | AsyncIterable[Any]) -> None:
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        # A sized input (a list, a tuple, anything with ``len()``) says it ends, so its
        # rest can be enumerated when the run ends early; anything else may be endless or
        # slow, and is never pulled beyond what the workers themselves ask for.
        self.finite = isinstance(targets, Sized) and not isinstance(targets, AsyncIterable)
        if isinstance(targets, AsyncIterable):
            self._async = aiter(targets)
        elif isinstance(targets, Iterable) and not isinstance(targets, str | bytes):
            self._sync = iter(targets)
        else:
            raise InvalidInputError("targets must be an iterable or async iterable of targets")
        # fast_acquire: an uncontended pull does not yield to the loop (a yield per target
        # cost ~15 us); the run's workers yield instead after a target that sent nothing.
        self._lock = anyio.Lock(fast_acquire=True)
        self._index = 0
        self.exhausted = False

    @property
    def awaits(self) -> bool:
        """Whether a pull may await (an async iterable), and so take any time at all."""
        return self._async is not None

    async def next(self) -> tuple[int, Item] | None:
        """The next item and its index, or ``None`` once the input is exhausted."""
        if self._async is None:
            # A plain iterator is pulled without an await, so no other task can interleave:
            # no lock needed. (A generator that is already running raises ValueError; it
            # cannot be, since nothing here awaits while one is being advanced.)
            return self._pull_sync()
        async with self._lock:
            if self.exhausted:
                return None
            try:
                raw = await anext(self._async)
            except StopAsyncIteration:
                self.exhausted = True
                return None
            return self._numbered(raw)

    def _numbered(self, raw: object) -> tuple[int, Item]:
        index = self._index
        self._index += 1
        return index, prepare(raw)

    def _pull_sync(self) -> tuple[int, Item] | None:
        if self.exhausted:
            return None
        assert self._sync is not None
        try:
            raw = next(self._sync)
        except StopIteration:
            self.exhausted = True
            return None
        return self._numbered(raw)

    def drain_sync(self) -> Iterator[tuple[int, Item]]:
        """The rest of a sized input (a list, a tuple), without awaiting (safe while
        cancelled).

        Yields nothing for any other source: a generator may never end, and pulling it dry
        after cancellation would hang the run (its unpulled targets get no result).
        """
        if self._sync is None or self.exhausted or not self.finite:
            return
        for raw in self._sync:
            yield self._numbered(raw)
        self.exhausted = True

    async def aclose(self) -> None:
        """Close an async generator source (bounded: a stuck ``aclose`` is abandoned)."""
        closer = getattr(self._async, "aclose", None)
        if closer is not None:
            with anyio.move_on_after(2, shield=True):
                await closer()
