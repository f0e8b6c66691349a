"""Checking a saved plan (saved_plan.py) against what apply finds now: each refusal names
what differs, before anything is written."""

from __future__ import annotations

from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

from gitsync.errors import PlanRefused
from gitsync.plan_types import Path_, Plan, RemoteState
from gitsync.saved_plan import (
    Hide,
    SavedPlan,
    dir_prints,
    empty_digest,
    flow_prints,
    plan_digest,
)


def differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between two maps of fingerprints, by key: 'changed', 'added', 'removed'."""
    changed = sorted(k for k in saved.keys() & now.keys() if saved[k] != now[k])
    added = sorted(now.keys() - saved.keys())
    removed = sorted(saved.keys() - now.keys())
    parts = [(changed, "changed"), (added, "added"), (removed, "removed")]
    return [f"{word}: {', '.join(keys)}" for keys, word in parts if keys]


class Refusal(PlanRefused):
    """The saved plan is not what apply would do now; the message says why."""


def _refuse(path: Path, what: str, target: str) -> Refusal:
    return Refusal(
        f"{path}: {what}; nothing was sent. Run `gitsync plan --target {target} --out {path}` "
        "again and review it"
    )


def check_made_for(saved: SavedPlan, path: Path, target: str, version: str) -> None:
    """Refusal unless the plan was saved for this target by this version of gitsync."""
    if saved.target != target:
        raise _refuse(
            path, f"the plan was saved for target '{saved.target}', not '{target}'", target
        )
    if saved.gitsync_version != version:
        raise _refuse(
            path,
            f"the plan was saved by gitsync {saved.gitsync_version}, this is {version}",
            target,
        )


def check_files(saved: SavedPlan, path: Path, now: Mapping[str, str]) -> None:
    """Refusal naming each file added, removed or changed since the plan was saved."""
    found = differences(saved.files, now)
    if found:
        raise _refuse(
            path, f"the files changed since the plan was saved ({'; '.join(found)})", saved.target
        )


def check_remote(
    saved: SavedPlan, path: Path, state: RemoteState, hide: Hide, secret_holders: Set[str]
) -> None:
    """Refusal naming each remote workflow and directory changed, new or gone since.

    A flow holding a secret is hashed with the secret's value hidden: when the environment
    gives another value than the plan was made with, the old one shows, and the flow reads
    as changed. ``secret_holders`` (remote names) lets the message say so."""
    now = flow_prints(state, hide)
    flows = differences(saved.flows, now)
    dirs = differences(saved.directories, dir_prints(state))
    found = [f"workflows {d}" for d in flows] + [f"directories {d}" for d in dirs]
    if not found:
        return
    holders = _rotated(saved, state, now, hide, secret_holders)
    why = (
        f"; {', '.join(holders)} hold secrets from the environment but none of their values "
        "now: a secret whose value is not the one the plan was made with may explain it"
        if holders
        else ""
    )
    raise _refuse(
        path,
        f"the target changed since the plan was saved ({'; '.join(found)}){why}",
        saved.target,
    )


def _rotated(
    saved: SavedPlan,
    state: RemoteState,
    now: Mapping[str, Any],
    hide: Hide,
    secret_holders: Set[str],
) -> list[str]:
    """The changed flows a rotated secret could explain: they hold secrets, and none of the
    environment's values now (a flow that holds the current value changed for another
    reason, a disabled flow say)."""
    out = []
    for flow in state.flows:
        key = "/".join((*flow.workflow.directory, flow.workflow.name))
        if key not in saved.flows or saved.flows[key] == now.get(key):
            continue
        text = repr(flow.workflow)
        if _name(key) in secret_holders and hide(text) == text:
            out.append(key)
    return sorted(out)


def _name(flow_path: str) -> str:
    return flow_path.rsplit("/", 1)[-1]


def check_unedited_empty(saved: SavedPlan, path: Path) -> None:
    """Refusal when a plan that says it has no changes was not saved so (a hand edit)."""
    if saved.plan_digest != empty_digest(saved.options):
        raise _refuse(
            path,
            "the file was edited: its plan_digest is not that of a plan with no changes",
            saved.target,
        )


def check_plan(saved: SavedPlan, path: Path, plan: Plan, root: Path_, hide: Hide) -> None:
    """Refusal when the plan made now is not the saved one though what it was made from is
    the same (the environment's values, or what the service answers besides the flows), or
    when the saved options or has_changes were edited by hand (the digest covers them)."""
    if plan_digest(plan, root, hide, saved.options) != saved.plan_digest:
        raise _refuse(
            path,
            "the plan made now differs from the saved one, though the files and the target's "
            "workflows are the same (the file's options or has_changes were edited, or an "
            "environment variable or secret, or a workflow outside the owned root, changed)",
            saved.target,
        )
