"""What the engine's operations answer with when they refuse: the error, and the paging
rules both the flow and the instance searches share (SPEC §1.7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitsync.protocol import SORT_FIELDS, Code


class ServiceError(Exception):
    """A documented error answer: the envelope's code and message."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def bad(msg: str) -> ServiceError:
    return ServiceError(Code.BAD_PARAMETER, msg)


def paginate(rows: list[Any], pagination: Any, keys: dict[str, Callable[[Any], Any]]) -> list[Any]:
    """Sort and cut one page; pages start at 1, and 0 also means the first (SPEC §1.7)."""
    if pagination is None:
        return rows
    if not isinstance(pagination, dict):
        raise bad("Invalid parameter: pagination must be an object")
    for sorter in reversed(pagination.get("sorters") or []):
        field = SORT_FIELDS.get(str(sorter.get("field"))) if isinstance(sorter, dict) else None
        if field not in keys:
            raise bad("The sorters field parameter is invalid")
        order = str(sorter.get("order") or "ASC").upper()
        rows = sorted(rows, key=keys[field], reverse=order == "DESC")
    try:
        page = max(int(pagination.get("pageNo", 1)), 1)
        size = int(pagination.get("pageSize", 10))
    except (TypeError, ValueError):
        raise bad("Invalid parameter: pagination.pageNo and pageSize must be integers") from None
    if size <= 0:
        raise bad("Invalid parameter: pagination.pageSize must be greater than 0")
    return rows[(page - 1) * size : page * size]
