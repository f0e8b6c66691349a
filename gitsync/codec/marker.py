"""The ownership marker: the line ``[managed by gitsync]`` at the end of the description of
every flow gitsync imports or saves, added and removed without touching the user's text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MANAGED_MARKER = "[managed by gitsync]"
_MARKER_GAP = "\n\n"


def with_marker(description: str) -> str:
    """The description as sent for a flow gitsync manages: the marker on its own last line,
    after a blank line, so the user's text (trailing newlines included) comes back exactly."""
    return f"{description}{_MARKER_GAP}{MANAGED_MARKER}" if description else MANAGED_MARKER


def split_marker(description: str) -> tuple[str, bool]:
    """The user's text and whether the marker was there. Removes exactly what ``with_marker``
    added; a marker someone re-typed in the console loses one line break before it at most."""
    if not description.endswith(MANAGED_MARKER):
        return description, False
    text = description[: -len(MANAGED_MARKER)]
    if text.endswith(_MARKER_GAP):
        return text[: -len(_MARKER_GAP)], True
    return text.removesuffix("\n"), True


def is_managed(struct: Mapping[str, Any]) -> bool:
    return split_marker(str(struct.get("desc") or ""))[1]


# -- retired copies ------------------------------------------------------------------------
# A flow a replace or prune retired keeps its user text; its last line says it was gitsync's,
# when it was retired, whether a retention delete found it still referenced (``held``: kept
# for good), and which workflow took its place (none for a pruned one):
#   [managed by gitsync; retired 2026-12-01T03:20:00Z; successor: sales_etl]
#   [managed by gitsync; retired 2026-12-01T03:20:00Z; held; successor: sales_etl]

_RETIRED = "[managed by gitsync; retired "
_SUCCESSOR = "; successor: "
_HELD = "; held"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
RETIRED_INFIX = "__retired_"
NAME_LIMIT = 128  # the service's longest name (schema's $defs/name)


@dataclass(frozen=True)
class Retired:
    text: str  # the user's description
    when: dt.datetime  # UTC
    successor: str  # "" when pruned
    held: bool = False  # still referenced when its retention ended: never deleted by gitsync


def retired_description(text: str, when: dt.datetime, successor: str, held: bool = False) -> str:
    stamp = when.astimezone(dt.UTC).strftime(_STAMP) + (_HELD if held else "")
    line = _RETIRED + stamp + (_SUCCESSOR + successor if successor else "") + "]"
    return f"{text}{_MARKER_GAP}{line}" if text else line


def retirement(description: str) -> Retired | None:
    """What ``retired_description`` wrote, or None for any other description."""
    start = description.rfind(_RETIRED)
    if start < 0 or not description.endswith("]") or "\n" in description[start:]:
        return None
    body = description[start + len(_RETIRED) : -1]
    stamp, _, successor = body.partition(_SUCCESSOR)
    held = stamp.endswith(_HELD)
    stamp = stamp.removesuffix(_HELD)
    try:
        when = dt.datetime.strptime(stamp, _STAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    text = description[:start]
    text = text[: -len(_MARKER_GAP)] if text.endswith(_MARKER_GAP) else text.removesuffix("\n")
    return Retired(text, when, successor, held)


def retired_name(name: str, flow_id: int) -> str:
    """The name a retired flow takes: recognisable, unique (its id), within the service's
    length limit (the workflow's name is cut, never the id)."""
    suffix = f"{RETIRED_INFIX}{flow_id}"
    return name[: NAME_LIMIT - len(suffix)].rstrip() + suffix


def is_retired_copy(name: str, flow_id: int, retired: Retired) -> bool:
    """Whether a flow whose marker says retired still is the copy gitsync retired: its name
    has the retired form with its own id (``<successor>__retired_<id>``). A copy someone
    renamed (back to the live name, or to anything else) is an ordinary managed flow, never
    deleted by retention."""
    if retired.successor:
        return name == retired_name(retired.successor, flow_id)
    stem, infix, tail = name.rpartition(RETIRED_INFIX)
    return bool(stem and infix) and tail == str(flow_id)
