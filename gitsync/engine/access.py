"""Who may do what, and the flows as the operations see them: the parts that the flow
operations (service.py) and the run operations (runs.py) share.

A caller is a user of an organization (SPEC §1.4); an owner (or the creator) may edit a flow,
and only an unlocked owner of an unlocked flow may operate it (enable, trigger, cancel). A
flow's model is decoded once per version: a 1,000-task flow takes a noticeable time to
decode, and every trigger needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitsync.codec import flow_struct
from gitsync.engine import definitions
from gitsync.engine.answers import ServiceError, bad
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow
from gitsync.model import Workflow
from gitsync.protocol import Code

NO_PRIVILEGE = "User has no privilege."


@dataclass(frozen=True)
class Caller:
    user_id: str
    org_id: str
    name: str
    locked: bool


def users(text: str) -> set[str]:
    """``";alice;bob;"`` -> {"alice", "bob"}."""
    return {u for u in text.split(";") if u}


class Access:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._models: dict[int, tuple[tuple[int, str, str], Workflow]] = {}

    def caller(self, user_id: str, org_id: str) -> Caller:
        user = self.store.user(user_id)
        if user is None or not self.store.is_member(org_id, user_id):
            raise ServiceError(
                Code.BAD_USER, "userId does not exist, or it does not match to orgId."
            )
        return Caller(user_id, org_id, str(user["name"]), bool(user["locked"]))

    def flow(self, caller: Caller, flow_id: int) -> FlowRow:
        row = self.store.flow(caller.org_id, flow_id)
        if row is None:
            raise bad(f"Flow not found: {flow_id}")
        return row

    @staticmethod
    def is_owner(caller: Caller, row: FlowRow) -> bool:
        return caller.name in users(row.definition.get("owners", "")) or caller.name == row.creator

    def editable(self, caller: Caller, flow_id: int) -> FlowRow:
        row = self.flow(caller, flow_id)
        if not self.is_owner(caller, row):
            raise ServiceError(Code.NO_PRIVILEGE, NO_PRIVILEGE)
        return row

    def operable(self, caller: Caller, flow_id: int) -> FlowRow:
        row = self.editable(caller, flow_id)
        if caller.locked or row.locked:
            raise ServiceError(Code.NO_PRIVILEGE, NO_PRIVILEGE)
        return row

    def do_as(self, org_id: str) -> str:
        """The organization's execution account (doAs), as the service reports it."""
        org = self.store.org(org_id)
        return str(org["do_as"]) if org else ""

    def submitter(self, row: FlowRow) -> str:
        """The flow's big-data account (Export's submitter, Get Flow's doAs); runs use it."""
        return definitions.submitter(row.definition, self.do_as(row.org_id))

    def model(self, row: FlowRow) -> Workflow:
        """The stored flow as a model, decoded once per version."""
        key = (row.id, row.update_time, row.name)
        cached = self._models.get(row.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        wf = flow_struct.workflow_from_flow_struct(row.definition, name=row.name)
        self._models[row.id] = (key, wf)
        return wf

    def remember(self, flow_id: int, update_time: str, name: str, wf: Workflow) -> None:
        """What ``model`` would decode for the version just written."""
        self._models[flow_id] = ((flow_id, update_time, name), wf)
