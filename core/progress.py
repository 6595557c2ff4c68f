"""Progress on long work: a tqdm bar on a terminal, a few plain log lines off one.

Off a terminal (a log file, a pipe, CI, ``nohup``) a tqdm bar still redraws itself with a carriage
return on every update, so ``synthscape run 2> run.log`` grew to hundreds of kilobytes of one
"line". There, ``progress`` logs a plain line at each quarter of the work instead (through the
``synthscape`` logger, so ``-q`` silences it like every other info line). torch-free.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

log = logging.getLogger("synthscape")
Item = TypeVar("Item")
LINES = 4  # plain lines per piece of work off a terminal: at 25, 50, 75 and 100 %


def on_terminal() -> bool:
    """Whether stderr, where progress goes, is a terminal that can redraw a bar in place."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class PlainProgress(Generic[Item]):
    """Iterates like a tqdm bar, but logs one line per ``1 / lines`` of ``total`` (only the last
    when ``total`` is unknown; none when ``lines`` is 0): done/total, percent, time, rate, postfix."""

    def __init__(self, iterable: Iterable[Item], total: int | None, desc: str, unit: str, initial: int = 0,
                 lines: int = LINES):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.done, self.initial, self.lines = initial, initial, lines
        self.postfix: dict[str, Any] = {}
        self.start = time.perf_counter()
        self.logged = 0 if not total else initial * self.lines // total  # marks already passed (a resume)

    def __iter__(self) -> Iterator[Item]:
        for item in self.iterable:
            yield item
            self.done += 1
            if self.lines and self.total and self.done * self.lines // self.total > self.logged:
                self.logged = self.done * self.lines // self.total
                self._line()
        if self.lines and not self.total and self.done > self.initial:
            self._line()

    def set_postfix(self, values: Mapping[str, Any], refresh: bool = False) -> None:
        """Values to show on the next line (tqdm's ``set_postfix``, for training losses)."""
        self.postfix = dict(values)

    def close(self) -> None:
        """Nothing to tear down; here so callers can treat it as a tqdm bar."""

    def _line(self) -> None:
        seconds = time.perf_counter() - self.start
        rate = (self.done - self.initial) / seconds if seconds > 0 else float("inf")
        of = f"/{self.total}" if self.total else ""
        percent = f" ({100 * self.done // self.total}%)" if self.total else ""
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        log.info("%s: %d%s %s%s in %.0f s, %.3g %s/s%s", self.desc, self.done, of, self.unit, percent, seconds,
                 rate, self.unit, extra)


def progress(iterable: Iterable[Item], *, desc: str, unit: str, total: int | None = None, initial: int = 0,
             enabled: bool = True) -> Iterable[Item]:
    """``iterable`` with progress shown: a tqdm bar on a terminal, ``PlainProgress`` lines off one,
    nothing when not ``enabled``. The result has ``set_postfix`` and ``close`` either way."""
    if total is None and hasattr(iterable, "__len__"):
        total = initial + len(iterable)  # type: ignore[arg-type]
    if enabled and on_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit)
    return PlainProgress(iterable, total, desc, unit, initial, lines=LINES if enabled else 0)
