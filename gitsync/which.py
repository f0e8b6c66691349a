"""Which workflow or run a command line means: a workflow file's path or name, a name on the
target, or an instance id. Anything else is an error naming the closest known names, so a
typo never reads as a workflow that has no runs."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from gitsync.client import Client
from gitsync.codec.marker import RETIRED_INFIX
from gitsync.errors import GitsyncError
from gitsync.files import WORKFLOW_SUFFIXES, find_workflow_files
from gitsync.naming import Naming

_INSTANCE_ID = re.compile(r"\d+-\d+")  # <flowId>-<suffix> (SPEC §1.8)


def is_instance_id(text: str) -> bool:
    return _INSTANCE_ID.fullmatch(text) is not None


def files_by_name(flows: Path) -> dict[str, Path]:
    """Each workflow file under ``flows`` by its workflow name (the first of a clash)."""
    found: dict[str, Path] = {}
    for path in find_workflow_files(flows) if flows.is_dir() else []:
        found.setdefault(path.stem, path)
    return found


def _is_path(text: str, flows: Path) -> bool:
    if "/" in text or text.endswith(WORKFLOW_SUFFIXES):
        return True
    return Path(text).exists() and text not in files_by_name(flows)  # a name first


def suggestion(text: str, known: list[str]) -> str:
    """ "; did you mean ..." with the closest of ``known``: the close matches, else the three
    nearest (a typo is rarely far from a name, but a user should always see what exists)."""
    close = difflib.get_close_matches(text, known, n=3, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    nearest = difflib.get_close_matches(text, known, n=3, cutoff=0.0)
    if nearest:
        of = f" (the nearest of {len(known)})" if len(known) > len(nearest) else ""
        return "; did you mean one of " + ", ".join(f"'{c}'" for c in nearest) + f"?{of}"
    return ""


def workflow_file(text: str, flows: Path) -> Path | None:
    """The workflow file that ``text`` names as a path; None when it is a name. A path that
    is not a workflow file under ``flows`` is an error."""
    if not text.strip():
        raise GitsyncError("an empty name is no workflow: give a workflow's name or file")
    if not _is_path(text, flows):
        return None
    path = Path(text)
    inside = path.resolve().is_relative_to(flows.resolve())
    if path.is_file() and path.name.endswith(WORKFLOW_SUFFIXES) and inside:
        return path
    raise GitsyncError(
        f"{text} is not a workflow file (those are the .yaml and .yml files under {flows})"
        + suggestion(path.stem, list(files_by_name(flows)))
    )


def remote_names(client: Client, naming: Naming) -> list[str]:
    """The target's workflows under their files' names (not retired copies, not others')."""
    names = []
    for item in client.search_flow_all(""):
        flow_name = item.get("flowName")
        name = naming.file(flow_name) if isinstance(flow_name, str) else None
        if name and RETIRED_INFIX not in name:
            names.append(name)
    return names


def workflow_name(text: str, flows: Path, naming: Naming, client: Client) -> str:
    """The workflow (its files' name) that ``text`` means: a file, or a name in the files or
    on the target; else an error with a did-you-mean."""
    path = workflow_file(text, flows)
    if path is not None:
        return path.stem
    files = files_by_name(flows)
    if text in files:
        return text
    if client.find_flow_id(naming.remote(text)) is not None:
        return text
    known = sorted({*files, *remote_names(client, naming)})
    raise GitsyncError(
        f"no workflow '{text}' in {flows} or on the target" + suggestion(text, known)
    )
