"""The repo side: find workflow files, read YAML keeping positions, write YAML for pull.

Reading composes the node tree with libyaml when present and builds plain values from it in
one pass, recording where every key and value stands, so that any later check can point at
``path:line:col``. Timestamps stay strings; duplicate keys, alias bombs and deep nesting are
reported as problems instead of being silently accepted or exhausting memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

WORKFLOW_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000
SCHEMA_HEADER = "# yaml-language-server: $schema={schema}\n"

Path_ = tuple[str | int, ...]
Mark = tuple[int, int]


@dataclass
class Located:
    """A problem found while reading, at a 1-based line and column."""

    line: int
    col: int
    message: str


@dataclass
class Document:
    """Plain data plus where each part of it stands in the file."""

    data: Any
    values: dict[Path_, Mark] = field(default_factory=dict)
    keys: dict[Path_, Mark] = field(default_factory=dict)
    # keys that YAML read as another type (``no:`` is false in YAML 1.1) -> as written
    typed_keys: dict[Path_, str] = field(default_factory=dict)

    def locate(self, path: Path_, key: bool = False) -> Mark:
        """The position of ``path`` (its key when ``key``), else of its nearest ancestor."""
        table = self.keys if key else self.values
        if path in table:
            return table[path]
        while path:
            path = path[:-1]
            if path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
        return (1, 1)


class ReadError(Exception):
    """The file cannot be read as a document at all."""

    def __init__(self, problems: list[Located]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


def find_workflow_files(root: Path) -> list[Path]:
    """Every workflow file below ``root``, sorted; hidden folders are skipped."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            Path(dirpath, f)
            for f in sorted(filenames)
            if f.endswith(WORKFLOW_SUFFIXES) and not f.startswith(".")
        )
    return found


def _mark(node: yaml.Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


_SCALARS = yaml.SafeLoader.yaml_constructors
# PyYAML's scalar constructors only read the node they are given: one instance serves all files
_CONSTRUCTOR = yaml.SafeLoader("")
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Builder:
    def __init__(self, echo_values: bool = True, finite: bool = False) -> None:
        self.doc = Document(None)
        self.finite = finite  # a workflow's numbers go to the service as JSON: no NaN, no inf
        self.problems: list[Located] = []
        self.count = 0
        self.echo_values = echo_values  # off for files that may hold a misplaced secret

    def problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Located(*_mark(node), message))

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise ReadError(
                [
                    Located(
                        *_mark(node),
                        f"document has more than {MAX_VALUES:,} "
                        "values (an alias bomb?); refusing to expand it",
                    )
                ]
            )
        if depth > MAX_DEPTH:
            raise ReadError([Located(*_mark(node), f"nesting deeper than {MAX_DEPTH} levels")])
        self.doc.values[path] = _mark(node)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            self.problem(node, f"unsupported YAML tag '{node.tag}'")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == "tag:yaml.org,2002:str" or tag == "tag:yaml.org,2002:timestamp":
            return node.value
        constructor = _SCALARS.get(tag)
        if constructor is None or not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"unsupported YAML tag '{tag}'")
            return node.value if isinstance(node.value, str) else None
        try:
            value = constructor(_CONSTRUCTOR, node)
        except (yaml.YAMLError, ValueError) as e:
            shown = f" {node.value!r}" if self.echo_values else ""
            self.problem(node, f"cannot read value{shown}: {e if self.echo_values else tag}")
            return None
        if self.finite and isinstance(value, float) and not math.isfinite(value):
            self.problem(node, "not a finite number (.nan and .inf cannot be sent)")
            return None
        return value

    def _pairs(self, node: yaml.MappingNode, depth: int) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """Key/value node pairs, with YAML merge keys (``<<: *base``) expanded, explicit first."""
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        self.problem(src, "a merge key ('<<') needs a mapping or list of mappings")
                        continue
                    merged.extend(self._pairs(src, depth + 1))
                    self.count += len(src.value)
                    if self.count > MAX_VALUES:
                        raise ReadError([Located(*_mark(src), "too many merged values")])
            else:
                yield key, value
        explicit = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
        seen: set[Any] = set()
        for key, value in merged:
            if key.value not in explicit and key.value not in seen:
                seen.add(key.value)
                yield key, value

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Mark] = {}
        for key_node, value_node in self._pairs(node, depth):
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "a mapping key must be a plain value, not a list or mapping")
                continue
            key = self._scalar(key_node)
            if not isinstance(key, str):
                name = str(key).lower() if key is not None else "null"
                self.doc.typed_keys[(*path, name)] = str(key_node.value)
                key = name
            if key in first:
                line, _ = first[key]
                self.problem(key_node, f"duplicate key '{key}' (first defined on line {line})")
                continue
            first[key] = _mark(key_node)
            self.doc.keys[(*path, key)] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out


_QUOTE_HINT = "; a ${...} reference inside [ ] or { } must be quoted: '${var.NAME}'"


def parse_yaml(
    text: str, echo_values: bool = True, allow_empty: bool = False, finite: bool = False
) -> tuple[Document, list[Located]]:
    """Parse one YAML document. Raises ReadError when there is no usable document. Without
    ``echo_values`` no message quotes a value of the file."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(p for p in (e.context, e.problem) if p) or "unreadable"
        if mark and text[mark.index : mark.index + 1] == "\t":
            reason = "a tab character; YAML indentation must use spaces"
        elif mark and "${" in text[text.rfind("\n", 0, mark.index) + 1 : mark.index + 1]:
            reason += _QUOTE_HINT
        raise ReadError([Located(*where, f"invalid YAML: {reason}")]) from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, at an offset
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        char = e.character if isinstance(e.character, str) else chr(e.character)
        raise ReadError(
            [
                Located(
                    line,
                    col,
                    f"invalid YAML: the character U+{ord(char):04X} "
                    "is not allowed (control characters must be escaped)",
                )
            ]
        ) from None
    except yaml.YAMLError as e:
        raise ReadError([Located(1, 1, f"invalid YAML: {e}")]) from None
    except RecursionError:
        raise ReadError([Located(1, 1, f"nesting deeper than {MAX_DEPTH} levels")]) from None
    if node is None:
        if allow_empty:
            return Document(None), []
        raise ReadError([Located(1, 1, "file is empty: expected a workflow mapping")])
    builder = _Builder(echo_values, finite)
    builder.doc.data = builder.build(node, (), 0)
    return builder.doc, builder.problems


def read_document(path: Path) -> tuple[Document, list[Located]]:
    """Read a workflow file: size limit, strict UTF-8, then YAML."""
    return decode_document(read_bytes(path), finite=True)


def read_bytes(path: Path) -> bytes:
    """A workflow file's bytes, within the size limit."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ReadError(
                [Located(1, 1, f"file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} (1 MiB)")]
            )
        return path.read_bytes()
    except OSError as e:
        raise ReadError([Located(1, 1, f"cannot read file: {e.strerror or e}")]) from None


def decode_document(
    raw: bytes, echo_values: bool = True, allow_empty: bool = False, finite: bool = False
) -> tuple[Document, list[Located]]:
    """A workflow file's document: strict UTF-8, then YAML."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        reason = f"file is not valid UTF-8 (byte 0x{raw[e.start]:02x}); save it as UTF-8"
        raise ReadError([Located(line, col, reason)]) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ReadError([Located(line, 1, "file contains a NUL character")])
    return parse_yaml(text, echo_values, allow_empty, finite)


class _BlockDumper(_Dumper):
    """Multi-line text as ``|`` blocks, as people write commands and SQL (the emitter still
    quotes a text that a block cannot hold exactly, such as one with trailing spaces)."""


def _text(dumper: _BlockDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


_BlockDumper.add_representer(str, _text)


def dump_document(doc: dict[str, Any], schema_ref: str | None = None) -> str:
    """YAML text for a workflow document: keys in the given order, block style, UTF-8."""
    body = yaml.dump(
        doc,
        Dumper=_BlockDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    header = SCHEMA_HEADER.format(schema=schema_ref) if schema_ref else ""
    return header + body
