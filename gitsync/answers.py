"""Checked reading of the service's answers: the data of a success is untrusted input.

Each helper returns the value in the type the caller needs, or raises AnswerError naming the
operation and the field, so that a ``null`` where data should be ends in one clear message
and never in a TypeError deep inside plan or pull. Messages never quote the answer.
"""

from __future__ import annotations

import math
from typing import Any

from gitsync.errors import AnswerError


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _fail(what: str, expected: str, value: Any) -> AnswerError:
    return AnswerError(
        f"{what}: the service answered {_kind(value)} where the API documents {expected}",
        operation=what.split(":")[0],
    )


def mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(what, "an object", value)
    return value


def objects(value: Any, what: str) -> list[dict[str, Any]]:
    """A list of objects (an empty list is fine; null is not)."""
    if not isinstance(value, list):
        raise _fail(what, "a list", value)
    for i, item in enumerate(value):
        mapping(item, f"{what}[{i}]")
    return value


def integer(value: Any, what: str) -> int:
    """An id or a count: a JSON integer, or a string or whole float holding one."""
    if isinstance(value, bool):
        raise _fail(what, "an integer", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number) and number.is_integer():
                return int(number)
    raise _fail(what, "an integer", value)


def text(value: Any, what: str) -> str:
    """A string; numbers are accepted as their decimal text (ids are sent either way)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _fail(what, "a string", value)
