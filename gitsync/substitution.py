"""``${var.NAME}`` and ``${env:NAME}`` in a workflow file's string values, for one target.

Done once, on the document's values after YAML reading and before the schema and the model,
so every later check sees what will be sent. Only string values are substituted (a number
field stays a number: ``timeout: "${var.T}"`` is a string, which the schema refuses) and
keys never are. Any other ``${...}`` (``${cal_dt}``, a flow parameter) is the service's own
and passes through untouched; ``$${var.X}`` and ``$${env:X}`` write ``${var.X}`` and
``${env:X}`` literally.

A value read from the environment is a secret: the fields it lands in are remembered (as
the plan's change labels name them) so that outputs can mask them, and the values
themselves so that a last filter can replace them wherever they still show.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitsync.files import Document, Path_
from gitsync.printable import printable

MASK = "***"
SENSITIVE = "(sensitive value)"  # a sensitive field's whole value, in a plan's fields
MIN_MASKED = 4  # shorter values would mask ordinary text everywhere
MIN_SUSPECT = 8  # an environment value this long, as a whole field, may be a former secret
_LITERAL = re.compile(r"\$(\{(?:var\.|env:))")
_REFERENCE = re.compile(r"\$(\$?)\{(var\.|env:)([A-Za-z_][A-Za-z0-9_]*)\}")
_STARTED = re.compile(r"(?<!\$)\$\{(?:var\.|env:)")  # begins a reference (not an escaped one)


@dataclass(frozen=True)
class Undefined:
    """A reference that cannot be resolved, at its value's path in the document."""

    where: Path_
    message: str


@dataclass
class Secrets:
    """What came from the environment: change labels per workflow, and value -> reference."""

    labels: dict[str, frozenset[str]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)  # resolved value -> ``${env:NAME}``
    fields: dict[str, str] = field(default_factory=dict)  # a whole resolved field -> as written
    missing: set[str] = field(default_factory=set)  # referenced, but not in the environment
    # workflow -> field (tasks by name) -> the text as written, for every field that holds a
    # reference to a secret: pull writes those back as written, whatever the service holds
    written: dict[str, dict[Path_, str]] = field(default_factory=dict)
    # the environment's longer values: a remote field holding one whole is shown as sensitive
    # (a secret reference the files no longer have leaves its value on the service)
    suspects: frozenset[str] = frozenset()

    def merge(self, other: Secrets) -> None:
        self.labels.update(other.labels)
        self.values.update(other.values)
        self.fields.update(other.fields)
        self.missing |= other.missing
        self.written.update(other.written)
        self.suspects |= other.suspects

    def sensitive(self, value: Any, remote: bool = True) -> bool:
        """Whether ``value`` is a secret's whole value, now, or (a ``remote`` value, which a
        removed reference may have left) perhaps before: one of the ``suspects``."""
        if not isinstance(value, str):
            return False
        return value in self.values or (remote and value in self.suspects)

    def restore_document(self, data: Any, workflow: str) -> Any:
        """A pulled document as the file writes it (``restore``), and every field the file
        fills from a secret as the file wrote it: after a rotation the service still holds
        the old value, which must not land in git."""
        data = self.restore(data)
        fields = self.written.get(workflow, {})
        if fields:
            for path, _ in list(_strings(data, ())):
                written = fields.get(_stable(data, path))
                if written is not None:
                    _set(data, path, written)
        return data

    def restore(self, data: Any) -> Any:
        """``data`` (a pulled document) as a file writes it: a secret's value as its reference
        (a whole field as the file wrote it), and a literal ``${var.X}`` escaped."""
        if isinstance(data, dict):
            return {k: self.restore(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.restore(v) for v in data]
        if not isinstance(data, str):
            return data
        if data in self.fields:
            return self.fields[data]
        data = _LITERAL.sub(r"$$\1", data)
        for value in sorted(self.values, key=len, reverse=True):
            if len(value) >= MIN_MASKED or value == data:
                data = data.replace(value, self.values[value])
        return data

    def mask(self, text: str) -> str:
        """``text`` with every secret value of at least MIN_MASKED characters as ``***``, in
        each form it may be written in (JSON, Python or HTML escaped: a multi-line one)."""
        for value in sorted(self.values, key=len, reverse=True):
            if len(value) >= MIN_MASKED:
                for form in _forms(value):
                    if form in text:
                        text = text.replace(form, MASK)
        return text

    def mask_lines(
        self, workflow: str, lines: tuple[str, ...], more: frozenset[str] = frozenset()
    ) -> tuple[str, ...]:
        """A plan's change lines with a sensitive field's values never shown (``more``: the
        fields found sensitive by their values)."""
        labels = self.labels.get(workflow, frozenset()) | more
        return tuple(self.mask(_masked_line(line, labels)) for line in lines)

    def mask_value(
        self,
        workflow: str,
        path: str,
        value: Any,
        more: frozenset[str] = frozenset(),
        remote: bool = False,
    ) -> Any:
        """A field's value as a plan holds it (``path`` as the change lines name fields, a
        create's whole document at ``""``): a sensitive field's value hidden, whatever it
        is now (a rotated secret's old value is no longer known), and the rest masked.
        ``remote``: the value the target holds (``sensitive``)."""
        labels = self.labels.get(workflow, frozenset()) | more
        return self._value(labels, path, value, remote)

    def _value(self, labels: frozenset[str], path: str, value: Any, remote: bool) -> Any:
        if value is None:
            return None
        if self.sensitive(value, remote):
            return SENSITIVE
        if any(path == x or path.startswith((x + ".", x + "[")) for x in labels):
            return SENSITIVE
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {
                k: self._value(labels, f"{path}.{k}" if path else k, v, remote)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self._value(labels, _item(path, v), v, remote) for v in value]
        return value


@functools.lru_cache(maxsize=256)
def _forms(value: str) -> tuple[str, ...]:
    """``value`` as outputs may write it: itself, JSON-escaped (ASCII or not), printable
    (as Python escapes), and each of those HTML-escaped (a Markdown comment); longest first."""
    escaped = {
        value,
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(value)[1:-1],
        printable(value),
        repr(value)[1:-1],
    }
    found = escaped | {html.escape(form) for form in escaped}
    return tuple(sorted(found, key=len, reverse=True))


def _item(path: str, value: Any) -> str:
    """A list item's path: a task of a document by its name, anything else as its list."""
    if path == "tasks" and isinstance(value, Mapping):
        return f"tasks[{value.get('name')}]"
    return path


def _masked_line(line: str, labels: frozenset[str]) -> str:
    for label in labels:
        if line.startswith((label + ":", label + ".", label + "[")):
            rest = line[len(label) :].partition(": ")[2]
            word = rest.split(" ", 1)[0] if rest.startswith(("added", "removed")) else "changed"
            return f"{label}: (sensitive value {word})"
    return line


class Substitution:
    """One target's variables, and the environment when secrets are resolved (plan, apply,
    run, pull); without it (validate) ``${env:...}`` is left as written and only checked."""

    def __init__(
        self, target: str, variables: Mapping[str, str], env: Mapping[str, str] | None = None
    ) -> None:
        self.target = target
        self.variables = dict(variables)
        self.env = env
        self._missing: list[str] = []

    def suspects(self) -> frozenset[str]:
        """The environment's values of MIN_SUSPECT characters or more (Secrets.suspects)."""
        env = self.env or {}
        return frozenset(v for v in env.values() if len(v) >= MIN_SUSPECT)

    def key(self) -> str:
        """What a file's outcome depends on besides its bytes (the validation cache's key)."""
        mode = "secrets" if self.env is not None else "offline"
        return repr((self.target, sorted(self.variables.items()), mode))

    def document(self, doc: Document, workflow: str) -> tuple[list[Undefined], Secrets]:
        """Substitute ``doc.data`` in place; the references that failed, and the secrets."""
        problems: list[Undefined] = []
        secrets = Secrets()
        self._missing = []
        labels: set[str] = set()
        for path, text in list(_strings(doc.data, ())):
            value, names = self._text(text, path, problems)
            if value == text:
                continue
            _set(doc.data, path, value)
            if names:
                labels.add(_label(doc.data, path))
                secrets.written.setdefault(workflow, {})[_stable(doc.data, path)] = text
                secrets.fields[value] = text
                for name in names:
                    secrets.values[self.env[name] if self.env else ""] = "${env:" + name + "}"
        secrets.values.pop("", None)
        secrets.missing.update(self._missing)
        if labels:
            secrets.labels[workflow] = frozenset(labels)
        return problems, secrets

    def _text(self, text: str, path: Path_, problems: list[Undefined]) -> tuple[str, list[str]]:
        if "${" not in text:
            return text, []
        secret_names: list[str] = []
        missing = self._missing

        def one(match: re.Match[str]) -> str:
            escaped, kind, name = match.groups()
            if escaped:
                return match.group(0)[1:]
            if kind == "var.":
                if name in self.variables:
                    return self.variables[name]
                problems.append(
                    Undefined(
                        path,
                        f"${{var.{name}}}: variable '{name}' is not defined for "
                        f"target '{self.target}' (add it to targets.{self.target}.vars "
                        "or the shared vars in gitsync.yaml)",
                    )
                )
                return match.group(0)
            if self.env is None:
                return match.group(0)
            if name not in self.env:
                missing.append(name)
                problems.append(
                    Undefined(
                        path,
                        f"${{env:{name}}}: the environment variable '{name}' is not set "
                        f"(target '{self.target}'); nothing was sent",
                    )
                )
                return match.group(0)
            secret_names.append(name)
            return self.env[name]

        references = [m for m in _REFERENCE.finditer(text) if not m.group(1)]
        if len(_STARTED.findall(text)) != len(references):
            problems.append(
                Undefined(
                    path,
                    "a reference that is not well formed: write ${var.NAME} or ${env:NAME} "
                    "(NAME: letters, digits and '_'); $${var.NAME} writes the text ${var.NAME}",
                )
            )
            return text, []
        return _REFERENCE.sub(one, text), secret_names


def _strings(data: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, (*path, i))


def _set(data: Any, path: Path_, value: str) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _label(data: Any, path: Path_) -> str:
    """The field as a plan's change lines name it (diff.py): ``tasks[load].command``."""
    head = path[0]
    if head == "tasks" and len(path) >= 3 and isinstance(data.get("tasks"), list):
        task = data["tasks"][path[1]]
        name = task.get("name") if isinstance(task, dict) else None
        return f"tasks[{name}].{path[2]}"
    if head in ("parameters", "schedule") and len(path) >= 2:
        return f"{head}.{path[1]}"
    return str(head)


def _stable(data: Any, path: Path_) -> Path_:
    """A field's path with its task named rather than numbered (the order may differ)."""
    if len(path) >= 2 and path[0] == "tasks" and isinstance(data.get("tasks"), list):
        task = data["tasks"][path[1]] if isinstance(path[1], int) else None
        if isinstance(task, dict) and isinstance(task.get("name"), str):
            return ("tasks", task["name"], *path[2:])
    return path
