"""The main job's steps, each a function the CLI calls: connect, desired tree, plan, apply."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gitsync import plan as planner
from gitsync import remote
from gitsync.client import Client, Credentials
from gitsync.config import Settings, Target
from gitsync.errors import InvalidFilesError
from gitsync.model import Tree
from gitsync.validate import validate_paths


@contextmanager
def connect(settings: Settings, target: Target) -> Iterator[Client]:
    """A client for ``target``; the embedded engine is started for as long as it is used."""
    if target.embedded:
        from gitsync.engine.server import EngineOptions, RunningEngine

        with (
            RunningEngine(EngineOptions(settings.engine_dir)) as engine,
            Client(engine.url, target.org_id, target.user_id) as client,
        ):
            yield client
        return
    pair = settings.credentials(target)
    credentials = Credentials(*pair) if pair else None
    with Client(target.url, target.org_id, target.user_id, credentials) as client:
        yield client


def desired_tree(settings: Settings) -> Tree:
    """The validated files, or InvalidFilesError carrying every problem (nothing is sent)."""
    if not settings.flows.is_dir():
        raise InvalidFilesError(
            f"no flows folder at {settings.flows} (set 'flows' in "
            "gitsync.yaml, or run `gitsync init`)",
            [],
        )
    result = validate_paths([settings.flows], base=settings.flows)
    if not result.ok:
        raise InvalidFilesError(
            f"{len(result.problems)} problems in the workflow files; nothing was sent",
            result.problems,
        )
    return result.tree()


@dataclass(frozen=True)
class Planned:
    plan: planner.Plan
    state: planner.RemoteState


def make_plan(
    client: Client,
    target: Target,
    tree: Tree,
    prune: bool = False,
    allow_mass_delete: bool = False,
    progress: remote.Progress = remote._noop,
) -> Planned:
    state = remote.read_state(client, target.root, progress)
    return Planned(planner.compute(tree, state, prune, allow_mass_delete), state)


@contextmanager
def locked(
    client: Client,
    target: Target,
    owner: str,
    force_unlock: bool = False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Iterator[None]:
    """Hold the target's apply lock for the duration; released even on failure."""
    if force_unlock:
        remote.force_unlock(client, target.root)
    lock_id = remote.acquire_lock(client, target.root, owner, now())
    try:
        yield
    finally:
        remote.release_lock(client, lock_id)
