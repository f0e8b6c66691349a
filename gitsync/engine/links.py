"""References between flows, kept by id as the service keeps them (reference nodes carry a
``flowId``, SPEC §2.3): a stored link holds the upstream's flow id (and task id for a task
link) beside the name it had when written, and every read names it by its id, so that
renaming the upstream (or one of its tasks) neither re-points nor breaks its referrers."""

from __future__ import annotations

import json
from typing import Any

from gitsync.engine.store import Store

FLOW_ID = "sourceFlowId"
TASK_ID = "sourceTaskId"


def with_ids(store: Store, org_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    """``definition`` (links by name, as just checked) with each link's ids added."""
    for link in definition.get("flowLinks", []) + definition.get("taskLinks", []):
        upstream = store.flow_by_name(org_id, link["sourceFlowName"])
        if upstream is None:
            continue
        link[FLOW_ID] = upstream.id
        if "sourceTaskName" in link:
            task = next(
                (t for t in store.tasks(upstream.id) if t.name == link["sourceTaskName"]), None
            )
            if task is not None:
                link[TASK_ID] = task.id
    return definition


def current(
    store: Store, org_id: str, definition: dict[str, Any], with_ids: bool = True
) -> dict[str, Any]:
    """``definition`` with every link named by the current names of the ids it holds (a link
    stored before ids were kept is left as it is); without the ids for Export, whose Flow
    Struct names links only (SPEC §2.2)."""
    links = definition.get("flowLinks", []) + definition.get("taskLinks", [])
    if not any(FLOW_ID in link for link in links):
        return definition
    out = dict(definition)
    for kind in ("flowLinks", "taskLinks"):
        named = [_named(store, org_id, link) for link in definition.get(kind, [])]
        if not with_ids:
            named = [{k: v for k, v in n.items() if k not in (FLOW_ID, TASK_ID)} for n in named]
        out[kind] = named
    return out


def _named(store: Store, org_id: str, link: dict[str, Any]) -> dict[str, Any]:
    if FLOW_ID not in link:
        return link
    upstream = store.flow(org_id, int(link[FLOW_ID]))
    if upstream is None:
        return link
    named = dict(link, sourceFlowName=upstream.name)
    if TASK_ID in link:
        task = store.task(int(link[TASK_ID]))
        if task is not None and task.flow_id == upstream.id:
            named["sourceTaskName"] = task.name
    return named


def referrers(store: Store, org_id: str, flow_id: int, exclude: int) -> list[str]:
    """The names of the flows whose links hold ``flow_id``. Only the flows whose stored text
    contains the id's key and value are read (SQLite looks through the stored JSON), as
    reading every flow of the org made Delete quadratic with many of them."""
    key = json.dumps(FLOW_ID) + ": " + str(flow_id)
    found = []
    for row in store.flows_containing(org_id, [key + ",", key + "}"]):
        if row.id == exclude:
            continue
        links = row.definition.get("flowLinks", []) + row.definition.get("taskLinks", [])
        if any(link.get(FLOW_ID) == flow_id for link in links):
            found.append(row.name)
    return found
