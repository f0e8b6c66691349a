"""What a plan is made of: the remote state it starts from, its changes, the plan itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitsync.changes import Kind
from gitsync.codec import marker
from gitsync.codec.document import document_from_workflow
from gitsync.model import Workflow

Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Rights:
    """The caller's rights on one flow, as Get Flow states them."""

    edit: bool = True
    locked: bool = False  # the workflow is locked
    user_locked: bool = False  # the caller is locked

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> Rights:
        """From a Get Flow answer; a flag it leaves out is no obstacle (the service decides)."""
        return cls(
            edit=answer.get("hasEditPri") not in (False, "false"),
            locked=answer.get("locked") in (True, "true"),
            user_locked=answer.get("isUserLocked") in (True, "true"),
        )


@dataclass(frozen=True)
class RemoteFlow:
    id: int
    workflow: Workflow  # directory relative to the owned root
    managed: bool
    retired: marker.Retired | None = None  # a copy a replace or prune retired
    rights: Rights | None = None  # when the plan's reads already stated them (Get Flow)


@dataclass(frozen=True)
class RemoteState:
    """The owned subtree as read, plus what planning needs to know about the rest."""

    root: Path_  # the owned root, from the top "Workflow" directory
    dirs: Mapping[Path_, str]  # every directory path from the top -> id ("" top = ())
    flows: tuple[RemoteFlow, ...]  # flows inside the owned root
    outside: Mapping[str, str]  # name -> location of flows outside the root
    flow_ids: Mapping[str, int]  # every flow of the org by name
    referrers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # in-root links
    # upstream name -> locations of the flows outside the root that reference it; None: not
    # read (only plans that retire or delete read them: plan_retired.outside_needed)
    outside_referrers: Mapping[str, tuple[str, ...]] | None = None
    extensions: bool = False  # the bundled engine: it keeps ``local`` commands too


@dataclass(frozen=True)
class FieldChange:
    """One changed field in the file's terms: ``path`` as ``schedule.cron``,
    ``tasks[load].command`` or ``parameters.REGION``; ``before``/``after`` are the values as the
    file writes them (None: the field or task is not there on that side)."""

    path: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class Change:
    kind: Kind
    path: Path_  # from the owned root; a directory's path for create_dir
    lines: tuple[str, ...] = ()
    note: str = ""
    desired: Workflow | None = None
    flow_id: int | None = None
    blocked: str = ""  # why apply will not send it
    renamed_from: str = ""  # the remote workflow a rename (or renaming replace) continues
    task_renames: tuple[tuple[str, str], ...] = ()  # (old, new) task names of a rename
    current: Workflow | None = None  # the remote workflow as the plan compared it (before)
    # each changed field, structurally (the lines above say the same for people)
    fields: tuple[FieldChange, ...] = field(default=(), hash=False)
    reason: str = ""  # why a replace or move cannot be a Save
    details: Mapping[str, Any] | None = field(default=None, hash=False)  # set when masked

    @property
    def name(self) -> str:
        return "/".join(self.path)

    def created(self) -> Mapping[str, Any] | None:
        """A create's workflow as its file writes it (``details`` once masked): made when
        asked, since a plan of thousands of creates is often only counted."""
        if self.kind != Kind.CREATE_FLOW or self.desired is None:
            return None
        return self.details if self.details is not None else document_from_workflow(self.desired)


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()
    owned: int = 0

    @property
    def has_changes(self) -> bool:
        return any(c.kind != Kind.CONFLICT for c in self.changes) or self.has_conflicts

    @property
    def has_conflicts(self) -> bool:
        return any(c.kind == Kind.CONFLICT for c in self.changes)

    def count(self, *kinds: str) -> int:
        return sum(1 for c in self.changes if c.kind in kinds)

    def listed(self) -> list[Change]:
        return sorted(self.changes, key=lambda c: (c.kind.order, c.path))
