"""A task attempt's process group, signalled as one.

Each attempt runs in a process group of its own, so a time-out or a cancel kills everything it
started: SIGTERM, then SIGKILL after a grace. What a leader leaves in its group when it exits
is killed the same way before the task counts as ended.
"""

from __future__ import annotations

import os
import signal
import time

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
SETTLE_POLL = 0.02  # how often a process group being killed is checked for emptiness
SETTLE_LIMIT = 2.0  # after SIGKILL, stop waiting for a group that will not empty (zombies)


def signal_group(pgid: int, signum: int) -> bool:
    """Send a signal to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def empty_group(pgid: int, kill_at: float) -> None:
    """Wait, outside the runner's lock, until what a leader left in its group (already sent
    SIGTERM) is gone; SIGKILL it at ``kill_at``."""
    killed = False
    while signal_group(pgid, 0):
        now = time.monotonic()
        if now >= kill_at and not killed:
            signal_group(pgid, signal.SIGKILL)
            killed = True
        elif killed and now >= kill_at + SETTLE_LIMIT:
            return  # zombies an init does not reap: stop waiting for them
        time.sleep(SETTLE_POLL)
