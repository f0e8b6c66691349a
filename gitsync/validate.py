"""Files -> a trusted Tree, or every Problem (path, line, column, message) in every file.

Three layers, each only on what passed the one before: reading (size, UTF-8, YAML), the JSON
Schema, then semantics on the model (``check_workflow``, which the engine reuses on Flow
Structs it is asked to import). Checks that span files (duplicate workflow names) run last.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gitsync import cron, dag, plan_history, references
from gitsync.cache import ValidationCache
from gitsync.codec.document import dependency_of, workflow_from_document
from gitsync.files import (
    Document,
    ReadError,
    decode_document,
    find_workflow_files,
    read_bytes,
    read_document,
)
from gitsync.model import Task, Tree, Workflow
from gitsync.naming import Naming
from gitsync.schema_check import (
    Gate,
    Issue,
    compiled_gate,
    hint,
    issues_of,
    name_problem,
    type_name,
    validator,
)
from gitsync.substitution import Secrets, Substitution


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


@dataclass
class ValidationResult:
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    workflows: list[Workflow] = field(default_factory=list)
    secrets: Secrets = field(default_factory=Secrets)  # from ${env:...}, to mask in outputs

    @property
    def ok(self) -> bool:
        return not self.problems

    def tree(self) -> Tree:
        return Tree.of(self.workflows)


def check_workflow(wf: Workflow) -> list[Issue]:
    """Semantic checks on a schema-valid workflow; paths index the file's (and the model's)
    task list, so the same checks serve files and the engine."""
    first_index: dict[str, int] = {}
    issues: list[Issue] = []
    for i, task in enumerate(wf.tasks):
        if task.name in first_index:
            issues.append(
                Issue(
                    ("tasks", i, "name"),
                    f"duplicate task name '{task.name}' (also tasks[{first_index[task.name]}])",
                )
            )
        else:
            first_index[task.name] = i
    for i, task in enumerate(wf.tasks):
        issues += _dependency_issues(wf, i, task, first_index)
        if task.cron and (reason := cron.validate(task.cron)):
            issues.append(Issue(("tasks", i, "cron"), f"tasks[{i}].cron: {reason}"))
    upstreams = {t.name: [d.task for d in t.depends_on if d.is_local] for t in wf.tasks}
    for cycle in dag.find_cycles(list(first_index), upstreams):
        i = first_index[cycle[0]]
        issues.append(Issue(("tasks", i, "depends_on"), "dependency cycle: " + " -> ".join(cycle)))
    return issues + _schedule_issues(wf)


_GITSYNC_LINES = ("[managed by gitsync", "[gitsync target:")


def _gitsync_lines(wf: Workflow) -> list[Issue]:
    """A line gitsync writes into descriptions (ownership, retirement, target) cannot come
    from a file: it would make the flow look owned, retired or another target's."""
    lines = wf.description.splitlines()
    if any(line.lstrip().startswith(_GITSYNC_LINES) for line in lines):
        return [
            Issue(
                ("description",),
                "description: a line starting '[managed by gitsync' or '[gitsync target:' is "
                "written by gitsync itself and cannot be in a file",
            )
        ]
    return []


def _blank_commands(wf: Workflow) -> list[Issue]:
    """An empty ``command: |`` is valid YAML and a valid string, but a COMMAND task with
    nothing to run is a mistake in a file (the service's own rules are left to the engine)."""
    return [
        Issue(("tasks", i, "command"), f"tasks[{i}].command is empty: nothing to run")
        for i, t in enumerate(wf.tasks)
        if t.type == "COMMAND" and not t.command.strip()
    ]


def _in_document(data: dict[str, Any], wf: Workflow, issue: Issue) -> Issue:
    """The issue with its path in the file's terms: the model sorts a task's upstreams, so a
    ``depends_on`` entry is found in the file by what it says, not by its index."""
    if len(issue.where) != 4 or issue.where[2] != "depends_on":
        return issue
    i, j = issue.where[1], issue.where[3]
    assert isinstance(i, int) and isinstance(j, int)
    deps = wf.tasks[i].depends_on
    nth = deps[:j].count(deps[j])  # equal entries keep the file's order when sorted
    entries = data["tasks"][i].get("depends_on") or []
    found = [k for k, entry in enumerate(entries) if dependency_of(entry) == deps[j]]
    return replace(issue, where=("tasks", i, "depends_on", found[nth])) if found else issue


def _dependency_issues(
    wf: Workflow, i: int, task: Task, first_index: dict[str, int]
) -> list[Issue]:
    issues = []
    seen: set[tuple[str, str]] = set()
    for j, dep in enumerate(task.depends_on):
        where = ("tasks", i, "depends_on", j)
        if (dep.flow, dep.task) in seen:
            issues.append(
                Issue(where, f"task '{task.name}' lists '{dep.label()}' twice in depends_on")
            )
        seen.add((dep.flow, dep.task))
        if not dep.is_local:
            if dep.flow == wf.name:
                issues.append(
                    Issue(
                        where,
                        f"task '{task.name}' depends on its own "
                        f"workflow '{wf.name}'; name the task instead",
                    )
                )
        elif dep.task == task.name:
            issues.append(Issue(where, f"task '{task.name}' depends on itself"))
        elif dep.task not in first_index:
            issues.append(
                Issue(
                    where,
                    f"task '{task.name}' depends on unknown task "
                    f"'{dep.task}'{hint(dep.task, list(first_index))}",
                )
            )
    return issues


def _schedule_issues(wf: Workflow) -> list[Issue]:
    sched = wf.schedule
    issues = []
    if sched.type == "periodic" and not sched.cron:
        issues.append(
            Issue(("schedule", "cron"), "schedule.cron: a periodic workflow needs a cron")
        )
    elif sched.cron:
        reason = cron.validate(sched.cron, sched.cycle if sched.type == "periodic" else None)
        if reason:
            issues.append(Issue(("schedule", "cron"), f"schedule.cron: {reason}"))
    if not cron.is_date(sched.start):
        issues.append(
            Issue(("schedule", "start"), f"schedule.start: '{sched.start}' is not a real date")
        )
    return issues


@dataclass
class _File:
    """What the tree checks need of a file once it is read: not its document, which for
    10,000 files would all be held at once (their positions alone, some 200 MB)."""

    path: Path
    name_at: tuple[int, int] | None  # its 'name' key; None when it failed to read, or was cached
    workflow: Workflow | None

    def locate_name(self) -> tuple[int, int]:
        if self.name_at is not None:
            return self.name_at
        if self.workflow is not None:  # from the cache: read it for positions
            with contextlib.suppress(ReadError):
                doc, _ = read_document(self.path)
                return doc.locate(("name",), key=True)
        return (1, 1)


class Validator:
    """Validates trees of workflow files; the schema validator is built once."""

    def __init__(
        self,
        cache: ValidationCache | None = None,
        gate: Gate | None = None,
        substitution: Substitution | None = None,
    ) -> None:
        self._given_gate = gate
        self._cache = cache
        self._substitution = substitution

    @functools.cached_property
    def _gate(self) -> Gate:
        """Built when a file needs it: files found in the cache need no schema at all."""
        return compiled_gate() if self._given_gate is None else self._given_gate

    def validate_document(
        self, doc: Document, display: str, name: str, directory: tuple[str, ...]
    ) -> tuple[Workflow | None, list[Problem]]:
        def at(issue: Issue) -> Problem:
            line, col = doc.locate(issue.where, key=issue.key)
            return Problem(display, line, col, issue.message)

        data = doc.data
        if not isinstance(data, dict):
            return None, [
                Problem(
                    display,
                    1,
                    1,
                    f"top level must be a mapping of workflow fields, got {type_name(data)}",
                )
            ]
        if self._gate(data):
            problems = []
        else:
            issues = [i for e in validator().iter_errors(data) for i in issues_of(e)]
            problems = [at(i) for i in issues]
        if "name" in data and isinstance(data["name"], str) and data["name"] != name:
            problems.append(
                at(
                    Issue(
                        ("name",),
                        f"name: '{data['name']}' must equal the file "
                        f"name '{name}' (or be left out)",
                    )
                )
            )
        for path, written in sorted(doc.typed_keys.items(), key=lambda kv: str(kv[0])):
            if path[:1] == ("parameters",) and len(path) == 2:  # a name YAML read as a value
                message = (
                    f"parameters: the name {written} is read by YAML as {path[1]}: "
                    f"quote it ('{written}':)"
                )
                problems.append(at(Issue(path, message, key=True)))
        if problems:
            return None, problems
        wf = workflow_from_document(data, name, directory)
        issues = [_in_document(data, wf, i) for i in check_workflow(wf)]
        return wf, [at(i) for i in issues + _gitsync_lines(wf) + _blank_commands(wf)]

    def validate_paths(self, roots: Sequence[Path], base: Path | None = None) -> ValidationResult:
        """Validate each root: a folder (its whole tree) or one file.

        A file's remote directory is its folder relative to ``base`` (the flows root) when it
        lies inside it, else relative to its own folder.
        """
        result = ValidationResult()
        seen_files: list[_File] = []
        for root in roots:
            if root.is_dir():
                pairs = [(p, p.parent.relative_to(root).parts) for p in find_workflow_files(root)]
            else:
                parent = root.parent
                directory: tuple[str, ...] = ()
                if base is not None:
                    try:
                        directory = parent.resolve().relative_to(base.resolve()).parts
                    except ValueError:
                        directory = ()
                pairs = [(root, directory)]
            for path, directory in pairs:
                seen_files.append(self._one(path, tuple(directory), result))
        self._check_tree(seen_files, result)
        if result.secrets.values:  # a problem may quote a value a secret gave: never shown
            result.problems = [
                replace(p, message=result.secrets.mask(p.message)) for p in result.problems
            ]
        result.problems.sort()
        if self._cache is not None:
            self._cache.save()
        return result

    def _one(self, path: Path, directory: tuple[str, ...], result: ValidationResult) -> _File:
        display = str(path)
        result.files.append(display)
        name = path.stem
        for part in (*directory, name):
            reason = name_problem(part)
            if reason:
                kind = "workflow" if part == name else "directory"
                result.problems.append(Problem(display, 1, 1, f"{kind} name {reason}"))
        taken = plan_history.reserved(name)
        if taken:
            result.problems.append(
                Problem(display, 1, 1, f"workflow name {taken}: reserved for gitsync")
            )
        try:
            raw = read_bytes(path)
            context = self._substitution.key() if self._substitution else ""
            key = self._cache.key(raw, name, directory, context) if self._cache else ""
            cached = self._cache.get(key) if self._cache else None
            if cached is not None:
                known = workflow_from_document(cached, name, directory)
                result.workflows.append(known)
                return _File(path, None, known)
            doc, read_problems = decode_document(raw, finite=True)
        except ReadError as e:
            result.problems.extend(Problem(display, p.line, p.col, p.message) for p in e.problems)
            return _File(path, None, None)
        if read_problems:
            result.problems.extend(
                Problem(display, p.line, p.col, p.message) for p in read_problems
            )
            return _File(path, doc.locate(("name",), key=True), None)
        secrets = Secrets()
        if self._substitution is not None:
            undefined, secrets = self._substitution.document(doc, name)
            result.secrets.merge(secrets)
            if undefined:
                result.problems.extend(
                    Problem(display, *doc.locate(u.where), u.message) for u in undefined
                )
                return _File(path, doc.locate(("name",), key=True), None)
        wf, problems = self.validate_document(doc, display, name, directory)
        result.problems.extend(problems)
        if wf is not None and not problems:
            result.workflows.append(wf)
            if self._cache is not None and not secrets.fields:  # never a secret on disk
                self._cache.put(key, doc.data)
        return _File(path, doc.locate(("name",), key=True), wf)

    def _check_tree(self, files: list[_File], result: ValidationResult) -> None:
        first: dict[str, str] = {}
        for f in files:
            name, display = f.path.stem, str(f.path)
            if name in first:
                line, col = f.locate_name()
                result.problems.append(
                    Problem(
                        display,
                        line,
                        col,
                        f"workflow '{name}' is also defined by {first[name]} "
                        "(workflow names must be unique in the tree)",
                    )
                )
                if f.workflow is not None and f.workflow in result.workflows:
                    result.workflows.remove(f.workflow)
            else:
                first[name] = display
        self._check_references(files, result)

    @staticmethod
    def _check_references(files: list[_File], result: ValidationResult) -> None:
        """Task references to a workflow of these files that has no such task."""
        file_of = {id(f.workflow): f for f in files if f.workflow is not None}
        for dangling in references.in_files(result.workflows):
            path = file_of[id(dangling.workflow)].path
            line, col = references.position(path, dangling)
            result.problems.append(Problem(str(path), line, col, dangling.message))


def validate_paths(
    roots: Sequence[Path],
    base: Path | None = None,
    cache: ValidationCache | None = None,
    substitution: Substitution | None = None,
) -> ValidationResult:
    return Validator(cache, substitution=substitution).validate_paths(roots, base)


def name_problems(naming: Naming, workflows: list[Workflow], flows: Path) -> list[Problem]:
    """The workflows whose names the target's prefix or suffix makes too long or invalid."""
    found = []
    for wf in workflows:
        why = naming.name_problem(wf.name)
        if why:
            found.append(Problem(str(references.file_of(flows, wf)), 1, 1, why))
    return found
