"""Messages and progress: the library logs to the ``stepdpo`` logger and reports the progress of long
work through :func:`progress`; the command line decides how both look (rich), or whether they show.

Used from Python with logging unconfigured, the library prints nothing. The command line installs
a rich handler and one live display (:func:`set_display`): every stage, training run and
evaluation adds its bar (items, rate, ETA) to it, and a finished bar leaves one log line behind.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("stepdpo")
_display: Any = None


class Bar:
    """One unit of long work: ``update(n)`` as items finish, ``note(**kv)`` for a live figure."""

    def __init__(self, desc: str, total: int | None, initial: int = 0, unit: str = "item", enabled: bool = True):
        self.desc, self.total, self.done, self.unit, self.t0 = desc, total, initial, unit, time.time()
        self._start, self.enabled = initial, enabled
        show = enabled and _display is not None
        self._task = _display.add_task(desc, total=total, completed=initial) if show else None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._task is not None:
            _display.update(self._task, advance=n)

    def note(self, **values: Any) -> None:
        if self._task is not None:
            text = " ".join(f"{k} {v}" for k, v in values.items())
            _display.update(self._task, description=f"{self.desc} ({text})")

    def close(self) -> None:
        if self._task is not None:
            _display.remove_task(self._task)
            self._task = None
        done = self.done - self._start
        if done and self.enabled:
            log.info(
                "%s: %d %s%s in %.0f s", self.desc, done, self.unit, "" if done == 1 else "s", time.time() - self.t0
            )


@contextlib.contextmanager
def progress(desc: str, total: int | None, initial: int = 0, unit: str = "item", enabled: bool = True) -> Iterator[Bar]:
    """A progress bar for ``total`` items (``initial`` already done, e.g. by a resumed run);
    ``enabled`` False (another process of a multi-process run) shows nothing."""
    bar = Bar(desc, total, initial, unit, enabled)
    try:
        yield bar
    finally:
        bar.close()


def set_display(display: Any) -> None:
    """Route every bar from now on to ``display`` (a started ``rich.progress.Progress``; None: none)."""
    global _display
    _display = display
