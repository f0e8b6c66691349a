"""Text from the service (names, messages) is untrusted: before it reaches a terminal, a
file name or a pull-request comment, every character that could move the cursor, change the
title, start a new line or hide text is shown escaped instead."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\x1b``, ``\\n``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def printable_lines(text: str) -> str:
    """Like ``printable``, but the line breaks of a message written by gitsync itself stay."""
    return "\n".join(printable(line) for line in text.split("\n"))
