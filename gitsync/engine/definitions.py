"""The stored definition of a flow: the canonical Flow Struct the model writes, plus what the
service documents but the model does not hold, kept as it was sent (docs/engine.md, "What
survives a round trip"). Export gives it back as a Flow Struct without the engine's own keys.

Kept as sent: the flow's ``submitter`` (Save's ``doAs``), ``owners`` and ``visitors`` text
(separators and order, ``";alice;bob;"``), each task's ``submitter`` and ``waitCode``; and from
Save, each relation's ``cycleGap``, each reference node's ``x``/``y``, and reference nodes no
relation uses yet. The model would drop or normalise each of these."""

from __future__ import annotations

from typing import Any

from gitsync.codec import flow_struct
from gitsync.engine import links
from gitsync.model import Workflow

LINK_KINDS = ("flowLinks", "taskLinks")
RELATION_KINDS = ("relations", "linkRelations")
GAP = "cycleGap"  # on a stored relation, when Save gave one other than the cycle's own
POSITION = ("x", "y")  # on a stored link, when Save placed its reference node
_PRIVATE_LINK_KEYS = (links.FLOW_ID, links.TASK_ID, *POSITION)


def stored(wf: Workflow, sent: dict[str, Any], graph: bool = False) -> dict[str, Any]:
    """What the engine stores for ``wf``, read from ``sent`` (Import's flowJson, or the
    struct Save's body was read into; ``graph``: Save's cycle gaps and reference nodes)."""
    d = flow_struct.flow_struct_from_workflow(wf, extensions=True)
    d["desc"] = str(sent.get("desc") or "")  # exactly as sent: gitsync's marker lives there
    for key in ("owners", "visitors"):
        if isinstance(sent.get(key), str):
            d[key] = sent[key]
    if isinstance(sent.get("submitter"), str) and sent["submitter"]:
        d["submitter"] = sent["submitter"]
    given = sent.get("tasks")
    for task, item in zip(d["tasks"], given if isinstance(given, list) else [], strict=False):
        for key in ("submitter", "waitCode"):
            if isinstance(item, dict) and isinstance(item.get(key), str):
                task[key] = item[key]
    if graph:
        _keep_graph(d, sent)
    return d


def _link_key(link: dict[str, Any]) -> tuple[str, str]:
    return str(link.get("sourceFlowName", "")), str(link.get("sourceTaskName", ""))


def _keep_graph(d: dict[str, Any], sent: dict[str, Any]) -> None:
    """Save's reference-node positions, its unused reference nodes and its cycle gaps."""
    have = {_link_key(link): link for kind in LINK_KINDS for link in d[kind]}
    sent_keys = {}
    for kind in LINK_KINDS:
        for link in sent.get(kind) or []:
            key = _link_key(link)
            sent_keys[str(link.get("linkId"))] = key
            mine = have.get(key)
            if mine is None:  # a reference node no relation uses: the model has no place for it
                mine = {"linkId": str(len(have)), "sourceFlowName": key[0]}
                if kind == "taskLinks":
                    mine["sourceTaskName"] = key[1]
                d[kind].append(mine)
                have[key] = mine
            mine.update({axis: link[axis] for axis in POSITION if axis in link})
    own = f"{d['cycle']}0"
    gaps = {
        (r["sourceTaskName"], r["targetTaskName"]): r[GAP]
        for r in sent.get("relations") or []
        if r.get(GAP, own) != own
    }
    for r in d["relations"]:
        gap = gaps.get((r["sourceTaskName"], r["targetTaskName"]))
        if gap is not None:
            r[GAP] = gap
    link_gaps = {
        (sent_keys.get(str(r["linkId"])), r["targetTaskName"]): r[GAP]
        for r in sent.get("linkRelations") or []
        if r.get(GAP, own) != own
    }
    key_of = {link["linkId"]: key for key, link in have.items()}
    for r in d["linkRelations"]:
        gap = link_gaps.get((key_of.get(r["linkId"]), r["targetTaskName"]))
        if gap is not None:
            r[GAP] = gap


def submitter(definition: dict[str, Any], do_as: str) -> str:
    """The flow's big-data account: as sent, else the organization's."""
    return str(definition.get("submitter") or do_as)


def portable(definition: dict[str, Any], name: str, do_as: str) -> dict[str, Any]:
    """The Flow Struct of SPEC §2.2 (Export's ``data``): the stored definition without the
    engine's own keys, links named as stored (``links.current`` names them by id first)."""
    data = dict(definition, name=name, submitter=submitter(definition, do_as))
    data["tasks"] = [dict(t, submitter=t.get("submitter", "")) for t in definition["tasks"]]
    for kind in LINK_KINDS:
        data[kind] = [
            {k: v for k, v in link.items() if k not in _PRIVATE_LINK_KEYS}
            for link in definition.get(kind, [])
        ]
    for kind in RELATION_KINDS:
        data[kind] = [{k: v for k, v in r.items() if k != GAP} for r in definition.get(kind, [])]
    return data
