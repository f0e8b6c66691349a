"""Retired copies in a plan: which are past their retention and deleted, and which are kept
because workflows still reference them, in the owned root or outside it. gitsync never
changes a referrer outside the owned root: the plan names it, it keeps pointing at the retired
copy (references are kept by id), and the copy is kept until it no longer does. Pure, like
plan.py, which uses it; sync.make_plan reads the outside referrers only when ``outside_needed``
says that this plan retires or deletes something."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gitsync.changes import Kind
from gitsync.codec import marker
from gitsync.plan_types import Change, Plan, RemoteState

# a flow these changes retire (or delete) may have referrers outside the owned root
RETIRING = frozenset({Kind.REPLACE_FLOW, Kind.MOVE_FLOW, Kind.RETIRE})
CONCERNS = RETIRING | {Kind.DELETE_FLOW}
OUTSIDE = "(outside the owned root)"


@dataclass(frozen=True)
class Retention:
    """How long retired copies are kept (gitsync.yaml, per target): a copy is deleted once it
    is neither among the newest ``versions`` retired copies of its workflow nor younger than
    ``days``. A workflow retired by ``--prune`` has no later version: its copy is kept for
    ``days``."""

    versions: int = 3
    days: int = 30


@dataclass(frozen=True)
class RetiredCopy:
    flow_id: int
    name: str
    path: tuple[str, ...]
    of: str  # the successor, or for a pruned workflow its own retired name
    when: dt.datetime
    held: bool = False
    pruned: bool = False  # retired without a successor: kept for ``days`` only


def retired_copies(state: RemoteState) -> list[RetiredCopy]:
    return [
        RetiredCopy(
            f.id,
            f.workflow.name,
            f.workflow.path,
            f.retired.successor or f.workflow.name,
            f.retired.when,
            f.retired.held,
            not f.retired.successor,
        )
        for f in state.flows
        if f.retired is not None
    ]


def expired(
    copies: Sequence[RetiredCopy], retention: Retention, now: dt.datetime | None
) -> list[RetiredCopy]:
    """The copies past ``retention`` at ``now`` (none without a clock)."""
    if now is None:
        return []
    groups: dict[str, list[RetiredCopy]] = {}
    for copy in copies:
        groups.setdefault(copy.of, []).append(copy)
    out = []
    for group in groups.values():
        group.sort(key=lambda c: (c.when, c.flow_id), reverse=True)
        for index, copy in enumerate(group):
            counted = index < retention.versions and not copy.pruned
            if not counted and now - copy.when > dt.timedelta(days=retention.days):
                out.append(copy)
    return sorted(out, key=lambda c: c.path)


def outside_needed(
    plan: Plan, state: RemoteState, retention: Retention, now: dt.datetime | None
) -> bool:
    """Whether the flows outside the owned root must be read for this plan: it retires or
    deletes a flow, or holds a retired copy past its retention. A plan of updates reads
    nothing more. With no flow outside, reading them sends nothing and says that none refers."""
    if state.outside_referrers is not None:
        return False
    if any(c.kind in CONCERNS for c in plan.changes):
        return True
    return any(c.held for c in expired(retired_copies(state), retention, now))


def outside_notes(changes: Sequence[Change], state: RemoteState) -> list[str]:
    """A note for each referrer outside the owned root of a flow this plan retires (a
    replace, a move, a ``--prune``): it is not changed and keeps the retired copy."""
    outside = state.outside_referrers or {}
    notes: list[str] = []
    for change in changes:
        if change.kind not in RETIRING or change.flow_id is None:
            continue
        old = change.renamed_from or change.path[-1]
        copy = marker.retired_name(change.path[-1], change.flow_id)
        notes.extend(
            f"{where} {OUTSIDE} references {old}: it is not changed and keeps pointing at the "
            f"retired copy {copy}, which is kept until it no longer does"
            for where in sorted(outside.get(old, ()))
        )
    return notes


def retention_deletes(
    state: RemoteState, retention: Retention, now: dt.datetime | None
) -> tuple[list[Change], list[str]]:
    """Deletes of retired copies past their retention; a note for each one still referenced
    (it is kept until its referrers move). A copy marked held (a Delete was refused: 62104)
    is deleted once the flows outside the owned root were read and none references it."""
    gone = expired(retired_copies(state), retention, now)
    names = _deletable(gone, state)
    out, notes = [], []
    for copy in gone:
        users = _users(copy, state, names)
        if copy.held and state.outside_referrers is None:
            notes.append(
                f"{'/'.join(copy.path)}: retired copy past its retention, held: workflows "
                "outside the owned root referenced it; a later apply deletes it once they "
                "no longer do"
            )
            continue
        if users:
            notes.append(
                f"{'/'.join(copy.path)}: retired copy past its retention, kept: "
                f"{', '.join(users)} still {'references' if len(users) == 1 else 'reference'} it"
            )
            continue
        when = copy.when.strftime("%Y-%m-%d")
        of = copy.name.rpartition(marker.RETIRED_INFIX)[0] if copy.pruned else copy.of
        note = f"retired copy past its retention (retired {when}, of {of or copy.name})"
        out.append(Change(Kind.DELETE_FLOW, copy.path, note=note, flow_id=copy.flow_id))
    return out, notes


def _deletable(gone: list[RetiredCopy], state: RemoteState) -> set[str]:
    """The expired copies that go: a copy kept (held, or still referenced) keeps the copies
    it references too, down a chain (an outside flow -> a kept copy -> the copy it uses)."""
    names = {c.name for c in gone}
    changed = True
    while changed:
        changed = False
        for copy in gone:
            held = copy.held and state.outside_referrers is None
            if copy.name in names and (held or _users(copy, state, names)):
                names.discard(copy.name)
                changed = True
    return names


def _users(copy: RetiredCopy, state: RemoteState, deleted: set[str]) -> list[str]:
    """Who references a copy: owned flows not deleted with it, then flows outside the root."""
    inside = sorted({r for r in state.referrers.get(copy.name, ()) if r not in deleted})
    outside: Mapping[str, tuple[str, ...]] = state.outside_referrers or {}
    return inside + [f"{where} {OUTSIDE}" for where in sorted(set(outside.get(copy.name, ())))]
