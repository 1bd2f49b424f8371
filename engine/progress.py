"""Progress of long work, reported to whoever is watching (the CLI draws a rich bar).

Enrolment and ticks call `advance(stage, count)`; with nobody watching it does nothing.
A ContextVar carries the watcher, so flow runs started by the CLI in the same process
report to its progress bar without the flows taking a callback parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Watcher = Callable[[str, int, int | None], None]

_watcher: ContextVar[Watcher | None] = ContextVar("scenarist_progress", default=None)


def advance(stage: str, count: int, total: int | None = None) -> None:
    """Report `count` more units of `stage` done (of `total`, when known)."""
    watcher = _watcher.get()
    if watcher is not None:
        watcher(stage, count, total)


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    token = _watcher.set(watcher)
    try:
        yield
    finally:
        _watcher.reset(token)
