"""The compiled schema gate (schema_check.compiled_gate) may only ever pass what jsonschema passes.

jsonschema is the authority; the gate only spares it the documents that are valid. A gate that
passed a document jsonschema rejects would let an invalid workflow through, so every test here
can fail on exactly that.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitsync.files import ReadError, read_document
from gitsync.schema_check import compiled_gate, never_sure, schema, validator
from gitsync.validate import Validator
from tests.conftest import CASES, EXAMPLES

CASE_FILES = sorted(
    p
    for root in (CASES, EXAMPLES)
    for p in root.rglob("*")
    if p.is_file() and p.suffix in (".yaml", ".yml")
)


def _document(path: Path) -> Any:
    try:
        doc, problems = read_document(path)
    except ReadError:
        return None
    return None if problems else doc.data


DOCUMENTS = [d for d in map(_document, CASE_FILES) if isinstance(d, dict)]
VALID_DOCUMENTS = [d for d in DOCUMENTS if not list(validator().iter_errors(d))]


def _jsonschema_passes(data: Any) -> bool:
    return not any(True for _ in validator().iter_errors(data))


def test_the_corpus_has_documents_on_both_sides() -> None:
    assert len(VALID_DOCUMENTS) >= 10
    assert len(DOCUMENTS) - len(VALID_DOCUMENTS) >= 20


@pytest.mark.parametrize("data", DOCUMENTS, ids=lambda d: str(d.get("name", "?"))[:30])
def test_gate_and_jsonschema_agree_on_every_case(data: dict[str, Any]) -> None:
    assert compiled_gate()(data) == _jsonschema_passes(data)


def test_validation_output_is_the_same_without_the_gate() -> None:
    roots = [CASES / "valid", *sorted((CASES / "invalid").iterdir())]
    roots = [r for r in roots if r.suffix != ".expected"]
    with_gate = Validator().validate_paths(roots)
    without = Validator(gate=never_sure).validate_paths(roots)
    assert with_gate.problems == without.problems
    assert with_gate.workflows == without.workflows
    assert with_gate.problems and with_gate.workflows


# Values chosen where the two libraries' rules could part: regex dialects (\s, $, control and
# format characters), integer width and float integrality, bool versus integer, lone surrogates.
EDGE_STRINGS = [
    "",
    " ",
    "a b",
    "a;b",
    "a\x1cb",
    "a\x85b",
    "a\xa0b",
    "a\ufeffb",
    "a\u2028b",
    "a\u180eb",
    "a\x7fb",
    "a\nb",
    "ab\n",
    "12\n",
    "A\n",
    "COMMAND\n",
    "2024-01-01\n",
    "\ud800",
    "x/y",
    "x\\y",
    " x",
    "x ",
    "\u0663",
    "SHELL",
    "COMMAND",
    "2024-01-01",
    "-7",
    "a" * 129,
]
EDGE_NUMBERS = [
    0,
    -1,
    1.0,
    1.5,
    -0.0,
    2**31 - 1,
    2**31,
    -(2**31),
    2**63,
    2**64,
    -(2**70),
    float("inf"),
    float("nan"),
]

scalars = st.one_of(
    st.sampled_from(EDGE_STRINGS),
    st.sampled_from(EDGE_NUMBERS),
    st.text(st.characters(exclude_categories=()), max_size=8),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if not isinstance(node, dict | list):
        return []
    found = [path]
    for key, child in node.items() if isinstance(node, dict) else enumerate(node):
        found.extend(_containers(child, (*path, key)))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid case document with a few of its values replaced, added or removed."""
    data = copy.deepcopy(draw(st.sampled_from(VALID_DOCUMENTS)))
    for _ in range(draw(st.integers(1, 3))):
        container = _at(data, draw(st.sampled_from(_containers(data))))
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        action = draw(st.sampled_from(["replace", "add", "remove"]))
        if action == "add" or not keys:
            if isinstance(container, dict):
                known = ["name", "command", "type", "cron", "cycle", "timeout", "owners", "x"]
                key = draw(st.sampled_from(known) | st.text(max_size=6))
                container[key] = draw(values)
            else:
                container.append(draw(values))
        elif action == "remove":
            del container[draw(st.sampled_from(keys))]
        else:
            container[draw(st.sampled_from(keys))] = draw(values)
    return data


def _slots() -> dict[tuple[Any, ...], tuple[dict[str, Any], tuple[Any, ...]]]:
    """One (document, path) per place in the schema a value can stand: every leaf, and one
    item past the end of every list."""
    found: dict[tuple[Any, ...], tuple[dict[str, Any], tuple[Any, ...]]] = {}

    def walk(data: dict[str, Any], node: Any, path: tuple[Any, ...]) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, dict | list):
                walk(data, child, (*path, key))
            else:
                shape = tuple(0 if isinstance(p, int) else p for p in (*path, key))
                found.setdefault(shape, (data, (*path, key)))
        if isinstance(node, list):
            shape = tuple(0 if isinstance(p, int) else p for p in (*path, 0))
            found.setdefault(shape, (data, (*path, len(node))))

    for data in VALID_DOCUMENTS:
        walk(data, data, ())
    return found


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for v in node.values() for p in _patterns(v)]
    return [p for v in node for p in _patterns(v)] if isinstance(node, list) else []


@pytest.mark.parametrize("pattern", sorted(set(_patterns(schema()))))
def test_no_schema_pattern_passes_a_character_in_the_gate_that_python_rejects(
    pattern: str,
) -> None:
    """Regex dialects differ (ECMA's and Rust's \\s are not Python's): every character of the
    Basic Multilingual Plane, alone and between letters, is tried against each pattern."""
    gate = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    python = re.compile(pattern)
    wrong = [
        text
        for code in range(0x10000)
        if not 0xD800 <= code < 0xE000
        for text in (chr(code), f"A{chr(code)}B", f"2{chr(code)}")
        if gate.is_valid(text) and not python.search(text)
    ]
    assert wrong == []


def test_the_gate_never_passes_an_edge_value_jsonschema_rejects() -> None:
    slots = _slots()
    assert ("owners", 0) in slots and ("tasks", 0, "timeout") in slots
    passed_wrongly = []
    for data, path in slots.values():
        for value in [*EDGE_STRINGS, *EDGE_NUMBERS, True, None]:
            changed = copy.deepcopy(data)
            parent = _at(changed, path[:-1])
            if isinstance(parent, list) and path[-1] == len(parent):
                parent.append(value)
            else:
                parent[path[-1]] = value
            if compiled_gate()(changed) and not _jsonschema_passes(changed):
                passed_wrongly.append((path, value))
    assert passed_wrongly == []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_the_gate_never_passes_what_jsonschema_rejects(data: Any) -> None:
    if compiled_gate()(data):
        assert _jsonschema_passes(data), data
