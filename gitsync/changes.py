"""The kinds of change a plan holds, and every fact about each kind in one place: its order
in a listing (deletions first, so nobody misses them), its symbol, verb and summary words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class _Facts:
    symbol: str
    verb: str
    summary: str  # "<count> <summary>" in a plan's first line


class Kind(StrEnum):
    DELETE_FLOW = "delete_flow"
    RETIRE = "retire"
    NO_FILE = "no_file"
    CLEANUP = "cleanup"
    CONFLICT = "conflict"
    CREATE_DIR = "create_dir"
    CREATE_FLOW = "create_flow"
    RENAME = "rename"
    REPLACE_FLOW = "replace_flow"
    MOVE_FLOW = "move_flow"
    UPDATE_FLOW = "update_flow"
    ADOPT = "adopt"
    REPOINT = "repoint"
    ENABLE = "enable"
    DISABLE = "disable"

    @property
    def symbol(self) -> str:
        return _FACTS[self].symbol

    @property
    def verb(self) -> str:
        return _FACTS[self].verb

    @property
    def summary(self) -> str:
        return _FACTS[self].summary

    @property
    def order(self) -> int:
        return _ORDER[self]

    @property
    def imports(self) -> bool:
        """Applied with an Import (a new flow id)."""
        return self in (Kind.CREATE_FLOW, Kind.REPLACE_FLOW, Kind.MOVE_FLOW)

    @property
    def saves(self) -> bool:
        """Applied with one Save Flow of the workflow's file over its existing flow."""
        return self in (Kind.UPDATE_FLOW, Kind.RENAME, Kind.ADOPT, Kind.REPOINT)

    @property
    def sent(self) -> bool:
        """Whether apply sends anything for it: a workflow without a file is only listed
        (``--prune`` makes it a retire)."""
        return self != Kind.NO_FILE

    @property
    def disturbs_runs(self) -> bool:
        """Ends or stops the flow's waiting and running instances (its old flow is deleted, or
        its scheduling paused: a retire does both): apply checks for them first (guards.py)."""
        return self in (
            Kind.REPLACE_FLOW,
            Kind.MOVE_FLOW,
            Kind.DELETE_FLOW,
            Kind.DISABLE,
            Kind.RETIRE,
        )


_FACTS = {
    Kind.DELETE_FLOW: _Facts("-", "delete", "to delete"),
    Kind.RETIRE: _Facts("-", "retire", "to retire"),
    Kind.NO_FILE: _Facts("?", "no file", "without a file"),
    Kind.CLEANUP: _Facts("-", "clean up", "leftover to clean up"),
    Kind.CONFLICT: _Facts("!", "conflict", "in conflict"),
    Kind.CREATE_DIR: _Facts("+", "mkdir", "directories to create"),
    Kind.CREATE_FLOW: _Facts("+", "create", "to create"),
    Kind.RENAME: _Facts("~", "rename", "to rename"),
    Kind.REPLACE_FLOW: _Facts("±", "replace", "to replace"),
    Kind.MOVE_FLOW: _Facts("±", "move", "to move"),
    Kind.UPDATE_FLOW: _Facts("~", "update", "to update"),
    Kind.ADOPT: _Facts("~", "adopt", "to adopt"),
    Kind.REPOINT: _Facts("~", "repoint", "to re-point"),
    Kind.ENABLE: _Facts(">", "enable", "to enable"),
    Kind.DISABLE: _Facts("‖", "disable", "to disable"),
}
_ORDER = {kind: i for i, kind in enumerate(Kind)}
