"""What planning does with each ``renamed_from``: honoured (plan_history.find_renames), noted,
or refused when it is ambiguous, never silently ignored. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from gitsync.errors import PlanRefused
from gitsync.model import Workflow
from gitsync.plan_types import RemoteFlow

TWO_STEPS = "rename in two applies (first to a name no workflow has)"


def check(wanted: Mapping[str, Workflow], live: Mapping[str, RemoteFlow]) -> list[str]:
    """Notes for each ``renamed_from`` that is harmless but unused; PlanRefused naming every
    file whose ``renamed_from`` one Save cannot honour safely (chains, swaps, two files
    continuing one workflow, a file whose own name is taken), so nothing is sent."""
    errors, notes = [], []
    claims: dict[str, list[str]] = {}
    for name, wf in sorted(wanted.items()):
        old, where = wf.renamed_from, "/".join(wf.path)
        if not old:
            continue
        if old == name:  # a new file naming itself is noted by find_renames
            if name in live:
                notes.append(f"{where}: renamed_from names the file itself; nothing to rename")
        elif old not in live:
            continue  # done in an earlier apply, or noted by find_renames
        elif not live[old].managed:
            notes.append(
                f"{where}: renamed_from '{old}' names a workflow not managed by gitsync; "
                "it is left alone"
            )
        elif old in wanted:
            errors.append(
                f"{where}: renamed_from '{old}', but {'/'.join(wanted[old].path)} still has "
                f"that name (a chain or swap of names); {TWO_STEPS}"
            )
        elif name in live:
            errors.append(
                f"{where}: renamed_from '{old}', but a workflow named '{name}' already exists "
                f"and would lose its place; {TWO_STEPS}"
            )
        else:
            claims.setdefault(old, []).append(where)
    for old, files in sorted(claims.items()):
        if len(files) > 1:
            errors.append(
                f"{', '.join(files)}: each says renamed_from '{old}'; one workflow continues "
                "in one file only: keep renamed_from in one of them"
            )
    if errors:
        raise PlanRefused("renamed_from cannot be honoured:\n  " + "\n  ".join(errors))
    return notes
