"""Remote -> files: write the owned subtree in the repo format, never clobbering local edits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitsync import codec
from gitsync.files import ReadError, dump_document, parse_yaml, read_document
from gitsync.plan import REPLACE_SUFFIX, RemoteState
from gitsync.validate import Validator

SCHEMA_URL = "https://gitsync.dev/schemas/workflow.schema.json"


@dataclass
class PullResult:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    refused: list[Path] = field(default_factory=list)


def schema_ref(file: Path, repo: Path) -> str:
    """A relative path to the repo's copy of the schema when it has one, else its URL."""
    local = repo / "schemas" / "workflow.schema.json"
    if local.exists():
        return os.path.relpath(local.resolve(), file.parent.resolve())
    return SCHEMA_URL


def render(state: RemoteState, flows_root: Path, repo: Path) -> dict[Path, str]:
    """File path -> text for every workflow in the owned root (leftover copies excluded)."""
    files = {}
    for flow in state.flows:
        wf = flow.workflow
        if wf.name.endswith(REPLACE_SUFFIX):
            continue
        path = flows_root.joinpath(*wf.directory, f"{wf.name}.yaml")
        files[path] = dump_document(codec.document_from_workflow(wf), schema_ref(path, repo))
    return files


def _same_meaning(path: Path, text: str) -> bool:
    """The local file already says what ``text`` says (formatting and comments aside)."""
    if path.read_text("utf-8", errors="replace") == text:
        return True
    try:
        doc, problems = read_document(path)
    except ReadError:
        return False
    directory = ()
    local, local_problems = Validator().validate_document(doc, str(path), path.stem, directory)
    remote, _ = Validator().validate_document(parse_yaml(text)[0], str(path), path.stem, directory)
    if problems or local_problems or local is None or remote is None:
        return False
    strip = replace(local, tasks=tuple(replace(t, local=None) for t in local.tasks))
    return strip == remote


def pull(state: RemoteState, flows_root: Path, repo: Path, force: bool = False) -> PullResult:
    result = PullResult()
    for path, text in sorted(render(state, flows_root, repo).items()):
        if path.exists():
            if _same_meaning(path, text):
                result.unchanged.append(path)
                continue
            if not force:
                result.refused.append(path)
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        result.written.append(path)
    return result
