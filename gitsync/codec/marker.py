"""The ownership marker: the line ``[managed by gitsync]`` at the end of the description of
every flow gitsync imports or saves, added and removed without touching the user's text."""

from __future__ import annotations

from collections.abc import Mapping
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
