"""Run steps that wait for each other, a few at a time: apply's writes (applying.py).

A step starts once every step it waits for has ended, however that went: whether a failure
upstream stops a step is the step's own business (apply skips an enable whose import failed,
and says so). Of the steps that are ready, those earlier in the list start first, at most
``workers`` at once, so a slow step holds up only the steps that wait for it, never a whole
phase. The threads only wait on the network; the bookkeeping is done here, on the calling
thread.

An exception out of a step, or Ctrl-C (any exception) on the calling thread while it waits,
stops new steps from starting; the steps already running are waited for (so that the caller
knows nothing is in flight when it releases its lock) and ``ended`` hears of those that
returned, then the exception is raised.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

Progress = Callable[[str, int, int], None]  # (what is being done, how many done, of how many)


def no_progress(label: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class Step(Generic[T]):
    run: Callable[[], T]
    after: tuple[int, ...] = ()  # the indexes of the steps that must end before this one


def run(
    steps: Sequence[Step[T]],
    workers: int,
    ended: Callable[[int, T], None] | None = None,
    stopping: Callable[[], None] | None = None,
) -> list[T]:
    """Every step's result, in the steps' order. ``ended(index, result)`` is called on this
    thread as each step ends. ValueError for a step that waits for itself or for one that
    does not exist, and, once everything else has ended, for steps waiting in a cycle.
    ``stopping()`` is called when an exception stops the run, before the steps in flight are
    waited for: a step that waits on something (apply waiting for runs) ends early."""
    followers = _followers(steps)
    waiting = [len(set(s.after)) for s in steps]
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    results: dict[int, T] = {}
    running: dict[Future[T], int] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="gitsync") as pool:
        try:
            while ready or running:
                while ready and len(running) < max(1, workers):
                    i = heapq.heappop(ready)
                    running[pool.submit(steps[i].run)] = i
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=running.__getitem__):
                    i = running.pop(future)
                    results[i] = future.result()  # a step's exception is raised here
                    if ended is not None:
                        ended(i, results[i])
                    for after in followers[i]:
                        waiting[after] -= 1
                        if waiting[after] == 0:
                            heapq.heappush(ready, after)
        except BaseException:
            if stopping is not None:
                stopping()
            wait(running)  # no new step starts; the ones in flight end first, and are told
            for future, i in sorted(running.items(), key=lambda item: item[1]):
                if ended is not None and future.exception() is None:
                    ended(i, future.result())
            raise
    if len(results) < len(steps):
        raise ValueError("some steps wait for each other in a cycle; they were not run")
    return [results[i] for i in range(len(steps))]


def _followers(steps: Sequence[Step[T]]) -> list[list[int]]:
    followers: list[list[int]] = [[] for _ in steps]
    for i, step in enumerate(steps):
        for before in set(step.after):
            if not 0 <= before < len(steps) or before == i:
                raise ValueError(f"step {i} waits for step {before}, which cannot be")
            followers[before].append(i)
    return followers
