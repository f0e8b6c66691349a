"""Files -> a trusted Tree, or every Problem (path, line, column, message) in every file.

Three layers, each only on what passed the one before: reading (size, UTF-8, YAML), the JSON
Schema, then semantics on the model (``check_workflow``, which the engine reuses on Flow
Structs it is asked to import). Checks that span files (duplicate workflow names) run last.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs

from gitsync import cron, dag
from gitsync.cache import ValidationCache
from gitsync.codec.document import workflow_from_document
from gitsync.files import (
    Document,
    ReadError,
    decode_document,
    find_workflow_files,
    read_bytes,
    read_document,
)
from gitsync.model import Tree, Workflow

NAME_RULE = "1-128 characters, no '/', '\\' or control characters, no leading or trailing spaces"
USER_RULE = "a user name without ';', spaces or control characters"

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


@dataclass(frozen=True)
class Issue:
    """A semantic problem in a workflow, located by field path (no file positions)."""

    where: FieldPath
    message: str
    key: bool = False


@dataclass
class ValidationResult:
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    workflows: list[Workflow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def tree(self) -> Tree:
        return Tree.of(self.workflows)


@functools.cache
def schema() -> dict[str, Any]:
    text = resources.files("gitsync").joinpath("schemas/workflow.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with every local ``$ref`` replaced by its target. Our schema has no
    recursion, and resolving references is most of jsonschema's time on a valid file."""
    if isinstance(node, dict):
        if set(node) - {"description"} == {"$ref"} and node["$ref"].startswith("#/$defs/"):
            target = _inline(defs[node["$ref"].removeprefix("#/$defs/")], defs)
            return {
                **target,
                **({"description": node["description"]} if "description" in node else {}),
            }
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    return cls(_inline(schema(), schema()["$defs"]))


Gate = Callable[[Any], bool]


def never_sure(data: Any) -> bool:
    """The gate that passes nothing: jsonschema alone checks every document."""
    return False


@functools.cache
def _compiled_gate() -> Gate:
    """A compiled validator that only says "valid": most files are, and it says so about 60
    times faster than jsonschema. jsonschema stays the authority: it writes every message and
    checks again every document the gate does not pass (including any the gate cannot take,
    such as a string with a lone surrogate). So the gate must never pass a document jsonschema
    rejects; tests/test_schema_gate.py holds it to that."""
    compiled = jsonschema_rs.validator_for(_inline(schema(), schema()["$defs"]))

    def gate(data: Any) -> bool:
        try:
            return bool(compiled.is_valid(data))
        except Exception:  # a value it cannot convert: let jsonschema decide
            return False

    return gate


@functools.cache
def _pattern_words() -> dict[str, str]:
    """Pattern -> what it asks for, in words; the name pattern comes from the schema."""
    defs = schema()["$defs"]
    return {
        **_PATTERN_WORDS,
        defs["name"]["pattern"]: NAME_RULE,
        defs["userList"]["items"]["pattern"]: USER_RULE,
    }


@functools.cache
def _name_pattern() -> re.Pattern[str]:
    return re.compile(schema()["$defs"]["name"]["pattern"])


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a workflow or directory name, or None: the service's rule, and
    no leading '.', since such a name is a hidden or special file name ('..') in the tree."""
    if not 1 <= len(name) <= 128 or not _name_pattern().match(name):
        return f"{name!r} is not a name the service accepts ({NAME_RULE})"
    if name.startswith("."):
        return f"{name!r} starts with '.', which the workflow files cannot hold (hidden names)"
    return None


def field_label(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_WANTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true/false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


_INVISIBLE = ("Cc", "Cf", "Zl", "Zp", "Zs")


def _visible(char: str) -> str:
    if char == " " or unicodedata.category(char) not in _INVISIBLE:
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _short(value: Any) -> str:
    """The value as JSON, with characters that do not show (a no-break space, a BOM) escaped:
    a message about them must let the reader see them."""
    text = "".join(map(_visible, json.dumps(value, ensure_ascii=False, default=str)))
    return text if len(text) <= 40 else text[:37] + "..."


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_PATTERN_WORDS = {
    "^[A-Z][A-Z0-9_]*$": "an upper-case token such as COMMAND or DATA_INTEGRATION",
    "^-?[0-9]+$": "a whole number such as 0",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "a date written YYYY-MM-DD",
}


def _schema_issues(error: jsonschema.ValidationError) -> list[Issue]:
    """Readable messages for one schema error; a path and whether it points at a key."""
    where = tuple(error.absolute_path)
    label = field_label(where) or "top level"
    v: Any = error.validator
    inst: Any = error.instance
    arg: Any = error.validator_value
    sub: Any = error.schema
    if v == "additionalProperties" and isinstance(inst, dict):
        known = sub.get("properties", {})
        extras = [k for k in inst if k not in known]
        return [
            Issue(
                (*where, k),
                f"{field_label((*where, k))}: unknown key '{k}'{_hint(k, known)}",
                key=True,
            )
            for k in extras
        ]
    if v == "required":
        missing = [k for k in arg if k not in inst]
        on_key = bool(where) and isinstance(where[-1], str)
        return [Issue(where, f"{label}: missing required key '{k}'", key=on_key) for k in missing]
    if "propertyNames" in error.relative_schema_path:
        return [
            Issue(
                (*where, str(inst)),
                f"{label}: {_short(inst)} is not a valid name "
                "(a letter or '_', then letters, digits, '_', '.' or '-')",
                key=True,
            )
        ]
    if v == "type":
        wanted = [_WANTED[w] for w in ([arg] if isinstance(arg, str) else arg)]
        words = " or ".join(filter(None, (", ".join(wanted[:-1]), wanted[-1])))
        return [
            Issue(
                where,
                f"{label}: expected {words}, got {_type_name(inst)} {_short(inst)}"
                if inst is not None
                else f"{label}: expected {words}, got nothing",
            )
        ]
    if v == "enum":
        choices = ", ".join(str(c) for c in arg)
        hint = _hint(inst, [str(c) for c in arg]) if isinstance(inst, str) else ""
        return [Issue(where, f"{label}: {_short(inst)} is not one of: {choices}{hint}")]
    if v == "minLength" and arg == 1:
        return [Issue(where, f"{label}: must not be empty")]
    if v == "pattern":
        desc = _pattern_words().get(arg, f"must match {arg}")
        return [Issue(where, f"{label}: {_short(inst)} is not valid: {desc}")]
    if v in ("minimum", "maximum"):
        word = "at least" if v == "minimum" else "at most"
        return [Issue(where, f"{label}: must be {word} {arg}, got {_short(inst)}")]
    if v in ("minLength", "maxLength"):
        word = "at least" if v == "minLength" else "at most"
        return [Issue(where, f"{label}: must be {word} {arg} characters long")]
    if v == "uniqueItems":
        return [Issue(where, f"{label}: lists the same item twice")]
    if v == "anyOf" and isinstance(inst, dict) and error.context:
        return [Issue(where, f"{label}: needs 'task' or 'flow'")]
    return [Issue(where, f"{label}: {error.message}")]


def check_workflow(wf: Workflow) -> list[Issue]:
    """Semantic checks on a schema-valid workflow; paths index the file's (and the model's)
    task list, so the same checks serve files and the engine."""
    issues: list[Issue] = []
    first_index: dict[str, int] = {}
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
    names = list(first_index)
    for i, task in enumerate(wf.tasks):
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
                continue
            if dep.task == task.name:
                issues.append(Issue(where, f"task '{task.name}' depends on itself"))
            elif dep.task not in first_index:
                issues.append(
                    Issue(
                        where,
                        f"task '{task.name}' depends on unknown task "
                        f"'{dep.task}'{_hint(dep.task, names)}",
                    )
                )
        if task.cron:
            reason = cron.validate(task.cron)
            if reason:
                issues.append(Issue(("tasks", i, "cron"), f"tasks[{i}].cron: {reason}"))
    upstreams = {t.name: [d.task for d in t.depends_on if d.is_local] for t in wf.tasks}
    for cycle in dag.find_cycles(names, upstreams):
        i = first_index[cycle[0]]
        issues.append(Issue(("tasks", i, "depends_on"), "dependency cycle: " + " -> ".join(cycle)))
    sched = wf.schedule
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
    path: Path
    doc: Document | None  # None when it failed to read, or came from the cache
    workflow: Workflow | None

    def locate_name(self) -> tuple[int, int]:
        doc = self.doc
        if doc is None and self.workflow is not None:  # from the cache: read it for positions
            with contextlib.suppress(ReadError):
                doc, _ = read_document(self.path)
        return doc.locate(("name",), key=True) if doc else (1, 1)


class Validator:
    """Validates trees of workflow files; the schema validator is built once."""

    def __init__(self, cache: ValidationCache | None = None, gate: Gate | None = None) -> None:
        self._schema = _validator()
        self._gate = _compiled_gate() if gate is None else gate
        self._cache = cache

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
                    f"top level must be a mapping of workflow fields, got {_type_name(data)}",
                )
            ]
        if self._gate(data):
            problems = []
        else:
            issues = [i for e in self._schema.iter_errors(data) for i in _schema_issues(e)]
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
        if problems:
            return None, problems
        wf = workflow_from_document(data, name, directory)
        return wf, [at(i) for i in check_workflow(wf)]

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
        try:
            raw = read_bytes(path)
            key = self._cache.key(raw, name, directory) if self._cache else ""
            cached = self._cache.get(key) if self._cache else None
            if cached is not None:
                known = workflow_from_document(cached, name, directory)
                result.workflows.append(known)
                return _File(path, None, known)
            doc, read_problems = decode_document(raw)
        except ReadError as e:
            result.problems.extend(Problem(display, p.line, p.col, p.message) for p in e.problems)
            return _File(path, None, None)
        if read_problems:
            result.problems.extend(
                Problem(display, p.line, p.col, p.message) for p in read_problems
            )
            return _File(path, doc, None)
        wf, problems = self.validate_document(doc, display, name, directory)
        result.problems.extend(problems)
        if wf is not None and not problems:
            result.workflows.append(wf)
            if self._cache is not None:
                self._cache.put(key, doc.data)
        return _File(path, doc, wf)

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


def validate_paths(
    roots: Sequence[Path], base: Path | None = None, cache: ValidationCache | None = None
) -> ValidationResult:
    return Validator(cache).validate_paths(roots, base)
