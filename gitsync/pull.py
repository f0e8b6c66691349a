"""Remote -> files: write the owned subtree in the repo format, never clobbering local edits.

Names come from the service and are untrusted: a workflow whose directory or name could not
be a file of the tree (``..``, a separator, a control character, a leading '.', two names
that differ only in case) is skipped with the reason, and nothing is written outside the
flows folder, not even through a symbolic link inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitsync.codec import document
from gitsync.files import ReadError, dump_document, parse_yaml, read_document
from gitsync.model import Workflow
from gitsync.plan import REPLACE_SUFFIX, RemoteState
from gitsync.printable import printable
from gitsync.schema_check import name_problem
from gitsync.substitution import Secrets, Substitution
from gitsync.validate import Validator

SCHEMA_URL = "https://gitsync.dev/schemas/workflow.schema.json"


@dataclass
class PullResult:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    refused: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why), printable


def schema_ref(file: Path, repo: Path) -> str:
    """A relative path to the repo's copy of the schema when it has one, else its URL."""
    local = repo / "schemas" / "workflow.schema.json"
    if local.exists():
        return os.path.relpath(local.resolve(), file.parent.resolve())
    return SCHEMA_URL


def _where(wf: Workflow) -> str:
    return printable("/".join((*wf.directory, wf.name)))


def _unsafe(wf: Workflow) -> str | None:
    for part, kind in [(d, "directory") for d in wf.directory] + [(wf.name, "workflow")]:
        reason = name_problem(part)
        if reason:
            return f"its {kind} name {printable(reason)}"
    return None


def _case_clashes(flows: list[Workflow]) -> dict[str, str]:
    """Workflow name -> why it is skipped, for paths that only differ in case (or a file that
    would stand where a folder must), which one case-insensitive file system cannot hold."""
    files: dict[tuple[str, ...], list[Workflow]] = {}
    dirs: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for wf in flows:
        files.setdefault(_folded((*wf.directory, f"{wf.name}.yaml")), []).append(wf)
        for i in range(1, len(wf.directory) + 1):
            dirs.setdefault(_folded(wf.directory[:i]), set()).add(wf.directory[:i])
    clashes: dict[str, str] = {}
    for wf in flows:
        for i in range(1, len(wf.directory) + 1):
            spellings = dirs[_folded(wf.directory[:i])]
            if len(spellings) > 1:
                names = " and ".join(sorted(printable("/".join(s)) for s in spellings))
                clashes[wf.name] = f"the folders {names} differ only in case"
        same = files[_folded((*wf.directory, f"{wf.name}.yaml"))]
        if len(same) > 1:
            names = " and ".join(sorted(_where(w) for w in same))
            clashes[wf.name] = f"the workflows {names} differ only in case"
        if _folded((*wf.directory, f"{wf.name}.yaml")) in dirs:
            clashes[wf.name] = f"a folder of the same name ({wf.name}.yaml) is in the way"
    return clashes


def _folded(parts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p.casefold() for p in parts)


def render(
    state: RemoteState,
    flows_root: Path,
    repo: Path,
    skipped: list[tuple[str, str]] | None = None,
    secrets: Secrets | None = None,
) -> dict[Path, str]:
    """File path -> text for every workflow in the owned root that a file can hold (leftover
    and retired copies excluded); the others go to ``skipped`` with the reason. A secret's
    value is written as its reference, never as itself."""
    secrets = secrets or Secrets()
    candidates = []
    for flow in state.flows:
        wf = flow.workflow
        if wf.name.endswith(REPLACE_SUFFIX) or flow.retired is not None:
            continue
        reason = _unsafe(wf)
        if reason is None:
            candidates.append(wf)
        elif skipped is not None:
            skipped.append((_where(wf), reason))
    clashes = _case_clashes(candidates)
    files = {}
    for wf in candidates:
        if wf.name in clashes:
            if skipped is not None:
                skipped.append((_where(wf), clashes[wf.name]))
            continue
        path = flows_root.joinpath(*wf.directory, f"{wf.name}.yaml")
        doc = secrets.restore_document(document.document_from_workflow(wf), wf.name)
        files[path] = dump_document(doc, schema_ref(path, repo))
    return files


def _same_meaning(path: Path, text: str, substitution: Substitution | None = None) -> bool:
    """The local file already says what ``text`` says (formatting and comments aside), once
    both have the target's variables and secrets substituted."""
    if path.read_text("utf-8", errors="replace") == text:
        return True
    try:
        doc, problems = read_document(path)
    except ReadError:
        return False
    pulled = parse_yaml(text)[0]
    if substitution is not None:
        for one in (doc, pulled):
            if substitution.document(one, path.stem)[0]:
                return False
    directory = ()
    local, local_problems = Validator().validate_document(doc, str(path), path.stem, directory)
    remote, _ = Validator().validate_document(pulled, str(path), path.stem, directory)
    if problems or local_problems or local is None or remote is None:
        return False
    strip = replace(local, tasks=tuple(replace(t, local=None) for t in local.tasks))
    return strip == remote


def _escapes(path: Path, flows_root: Path) -> bool:
    """Whether writing ``path`` would land outside the flows folder (a link on the way)."""
    target = path.parent.resolve()
    return not target.is_relative_to(flows_root.resolve())


def pull(
    state: RemoteState,
    flows_root: Path,
    repo: Path,
    force: bool = False,
    substitution: Substitution | None = None,
    secrets: Secrets | None = None,
) -> PullResult:
    """Write the files; ``secrets`` (the files' own, resolved) are written back as references."""
    result = PullResult()
    rendered = render(state, flows_root, repo, result.skipped, secrets)
    for path, text in sorted(rendered.items()):
        if _escapes(path, flows_root):
            where = printable(str(path.relative_to(flows_root)))
            result.skipped.append((where, "a link in its folder leads outside the flows folder"))
            continue
        if path.is_symlink() or (path.exists() and not path.is_file()):
            where = printable(str(path.relative_to(flows_root)))
            result.skipped.append((where, "the file there is a link or not a plain file"))
            continue
        if path.exists():
            if _same_meaning(path, text, substitution):
                result.unchanged.append(path)
                continue
            if not force:
                result.refused.append(path)
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        result.written.append(path)
    return result
