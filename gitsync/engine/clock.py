"""The time as the engine writes it: in store columns (``stamp``) and in log headers
(``java_date``, as the service's Java does)."""

from __future__ import annotations

import datetime as dt
import time


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def java_date(moment: dt.datetime) -> str:
    """``Date.toString()``: Tue Feb 02 17:35:00 UTC 2021."""
    return moment.strftime("%a %b %d %H:%M:%S UTC %Y")


class Clock:
    """Now, formatted once per second: a run of short tasks asks for it several times per
    task. Threads share it: one tuple, swapped whole."""

    def __init__(self) -> None:
        self._now: tuple[int, str, str] = (-1, "", "")

    def _tick(self) -> tuple[int, str, str]:
        second = int(time.time())
        now = self._now
        if second != now[0]:
            moment = dt.datetime.fromtimestamp(second, dt.UTC)
            now = self._now = (second, stamp(moment), java_date(moment))
        return now

    def stamp(self) -> str:
        return self._tick()[1]

    def java(self) -> str:
        return self._tick()[2]
