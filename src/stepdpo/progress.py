"""Messages and progress: the library logs to the ``stepdpo`` logger and reports the progress of long
work through :func:`progress`; the command line decides how both look (rich), or whether they show.

Used from Python with logging unconfigured, the library prints nothing. The command line installs
a rich handler and one live display (:func:`set_display`): every stage, training run and
evaluation adds its bar (items, rate, ETA) to it, and a finished bar leaves one log line behind.
Where no live display can draw (output to a file, CI, a notebook), :func:`log_progress_every`
logs a line per open bar instead (done/total, rate, ETA): a few seconds after the work starts,
then at a steady pace (``stepdpo --progress-every SECONDS``, default 30), even while an item is
still running, so a long run is never silent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("stepdpo")
_display: Any = None
_open: list[Bar] = []  # the bars of work in progress, for the periodic lines
_heartbeat: threading.Event | None = None


class Bar:
    """One unit of long work: ``update(n)`` as items finish, ``note(**kv)`` for a live figure."""

    def __init__(self, desc: str, total: int | None, initial: int = 0, unit: str = "item", enabled: bool = True):
        self.desc, self.total, self.done, self.unit, self.t0 = desc, total, initial, unit, time.time()
        self._start, self.enabled = initial, enabled
        show = enabled and _display is not None
        self._task = _display.add_task(desc, total=total, completed=initial) if show else None
        self._note = ""
        if enabled:
            _open.append(self)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._task is not None:
            _display.update(self._task, advance=n)

    def note(self, **values: Any) -> None:
        self._note = " ".join(f"{k} {v}" for k, v in values.items())
        if self._task is not None:
            _display.update(self._task, description=f"{self.desc} ({self._note})")

    def line(self) -> str:
        """Where the work stands: done/total, rate, elapsed and ETA."""
        elapsed = time.time() - self.t0
        done = self.done - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total}" if self.total else ""
        left = (self.total - self.done) / rate if rate > 0 and self.total else None
        eta = f", ETA {_duration(left)}" if left is not None else ""
        note = f" ({self._note})" if self._note else ""
        return f"{self.desc}: {self.done}{total} {self.unit}s, {rate:.3g} {self.unit}s/s, {_duration(elapsed)} elapsed{eta}{note}"

    def close(self) -> None:
        if self in _open:
            _open.remove(self)
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


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


FIRST_LINE_S = 3.0
"""Seconds after a bar opens at which its first periodic line is logged (a rate to read already)."""


def log_progress_every(seconds: float | None) -> None:
    """Log :meth:`Bar.line` of every open bar from a background thread: first
    :data:`FIRST_LINE_S` seconds after the bar opens, then every ``seconds`` (None: stop)."""
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.set()
        _heartbeat = None
    if not seconds:
        return
    stop = _heartbeat = threading.Event()
    last: dict[int, float] = {}  # id of a bar -> when its last line was logged

    def beat() -> None:
        while not stop.wait(min(1.0, seconds)):
            now = time.time()
            for bar in list(_open):
                due = last[id(bar)] + seconds if id(bar) in last else bar.t0 + min(FIRST_LINE_S, seconds)
                if now >= due:
                    log.info("%s", bar.line())
                    last[id(bar)] = now

    threading.Thread(target=beat, name="stepdpo-progress", daemon=True).start()


def set_display(display: Any) -> None:
    """Route every bar from now on to ``display`` (a started ``rich.progress.Progress``; None: none)."""
    global _display
    _display = display
