"""Fires enabled periodic workflows at their cron times, in the engine's time zone (UTC).

Each tick looks at the time since the previous tick: a fire time in that window starts an
instance (its id is the fire time truncated to the cycle, so a fire is never doubled). Fires
missed while the engine was down are not replayed: the first window starts at start-up.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from gitsync import cron
from gitsync.engine.runs import Runs

log = logging.getLogger("gitsync.engine")


class Scheduler:
    def __init__(
        self,
        runs: Runs,
        tick: float = 1.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.runs = runs
        self.tick = tick
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gitsync-scheduler", daemon=True)
        self._last = clock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_due()
            except Exception:  # one bad flow must not stop every schedule
                log.exception("scheduler tick failed")

    def run_due(self) -> list[str]:
        """Start every fire in (last tick, now]; returns the instance ids started."""
        now = self.clock()
        window_start, self._last = self._last, now
        started = []
        store = self.runs.store
        for org in sorted(row["id"] for row in store.orgs()):
            for flow in store.flows(org):
                d = flow.definition
                if flow.active != 1 or int(d["type"]) != 1 or not d.get("cron"):
                    continue
                fire = self._fire_in(d["cron"], d.get("startTime", ""), window_start, now)
                if fire is None:
                    continue
                try:
                    started.append(
                        self.runs.create(flow, int(fire.timestamp() * 1000), scheduled=True)
                    )
                except Exception as e:
                    log.warning("scheduled run of %s failed to start: %s", flow.name, e)
        return started

    @staticmethod
    def _fire_in(
        text: str, start: str, after: dt.datetime, until: dt.datetime
    ) -> dt.datetime | None:
        try:
            parsed = cron.parse(text)
        except cron.CronError:
            return None
        latest = None
        moment = cron.next_fire(parsed, after)
        while moment is not None and moment <= until:
            latest = moment  # only the newest fire in the window: no replay of a backlog
            moment = cron.next_fire(parsed, moment)
        if latest is not None and start and latest.date().isoformat() < start:
            return None
        return latest
