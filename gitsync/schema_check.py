"""The JSON Schema of a workflow file, and its verdicts in the file's own words.

A compiled gate (jsonschema-rs) answers "valid or not" fast; only documents it rejects (or
cannot judge) go through jsonschema, whose errors are turned into one message per problem,
with "did you mean" for unknown keys and the pattern's rule in words.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

NAME_RULE = "1-128 characters, no '/', '\\' or control characters, no leading or trailing spaces"
USER_RULE = "a user name without ';', spaces or control characters"

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """A semantic problem in a workflow, located by field path (no file positions)."""

    where: FieldPath
    message: str
    key: bool = False


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
def validator() -> jsonschema.protocols.Validator:
    # imported here: only documents the gate does not pass need it, and its import was a
    # fifth of every command's start (a plan or apply of unchanged files needs neither)
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    return cls(_inline(schema(), schema()["$defs"]))


Gate = Callable[[Any], bool]


def never_sure(data: Any) -> bool:
    """The gate that passes nothing: jsonschema alone checks every document."""
    return False


@functools.cache
def compiled_gate() -> Gate:
    """A compiled validator that only says "valid": most files are, and it says so about 60
    times faster than jsonschema. jsonschema stays the authority: it writes every message and
    checks again every document the gate does not pass (including any the gate cannot take,
    such as a string with a lone surrogate). So the gate must never pass a document jsonschema
    rejects; tests/test_schema_gate.py holds it to that."""
    import jsonschema_rs

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


def type_name(value: Any) -> str:
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


def hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_PATTERN_WORDS = {
    "^[A-Z][A-Z0-9_]*$": "an upper-case token such as COMMAND or DATA_INTEGRATION",
    "^-?[0-9]+$": "a whole number such as 0",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "a date written YYYY-MM-DD",
}


# Each rule turns one kind of schema error into messages, or returns None when the error is
# not its kind; ``issues_of`` tries them in order (a bad key name is told before its type).
_Rule = Callable[["jsonschema.ValidationError", FieldPath, str], "list[Issue] | None"]


def _unknown_keys(
    error: jsonschema.ValidationError, where: FieldPath, _: str
) -> list[Issue] | None:
    inst: Any = error.instance
    if error.validator != "additionalProperties" or not isinstance(inst, dict):
        return None
    sub: Any = error.schema
    known = sub.get("properties", {})
    return [
        Issue(
            (*where, k), f"{field_label((*where, k))}: unknown key '{k}'{hint(k, known)}", key=True
        )
        for k in inst
        if k not in known
    ]


def _missing_keys(
    error: jsonschema.ValidationError, where: FieldPath, label: str
) -> list[Issue] | None:
    if error.validator != "required":
        return None
    arg: Any = error.validator_value
    inst: Any = error.instance
    on_key = bool(where) and isinstance(where[-1], str)
    missing = [k for k in arg if k not in inst]
    return [Issue(where, f"{label}: missing required key '{k}'", key=on_key) for k in missing]


def _bad_key_name(
    error: jsonschema.ValidationError, where: FieldPath, label: str
) -> list[Issue] | None:
    if "propertyNames" not in error.relative_schema_path:
        return None
    inst = error.instance
    return [
        Issue(
            (*where, str(inst)),
            f"{label}: {_short(inst)} is not a valid name "
            "(a letter or '_', then letters, digits, '_', '.' or '-')",
            key=True,
        )
    ]


def _wrong_type(
    error: jsonschema.ValidationError, where: FieldPath, label: str
) -> list[Issue] | None:
    if error.validator != "type":
        return None
    arg: Any = error.validator_value
    inst = error.instance
    wanted = [_WANTED[w] for w in ([arg] if isinstance(arg, str) else arg)]
    words = " or ".join(filter(None, (", ".join(wanted[:-1]), wanted[-1])))
    if inst is None:
        return [Issue(where, f"{label}: expected {words}, got nothing")]
    return [Issue(where, f"{label}: expected {words}, got {type_name(inst)} {_short(inst)}")]


def _not_a_choice(
    error: jsonschema.ValidationError, where: FieldPath, label: str
) -> list[Issue] | None:
    if error.validator != "enum":
        return None
    arg: Any = error.validator_value
    inst = error.instance
    choices = ", ".join(str(c) for c in arg)
    close = hint(inst, [str(c) for c in arg]) if isinstance(inst, str) else ""
    return [Issue(where, f"{label}: {_short(inst)} is not one of: {choices}{close}")]


def _out_of_bounds(
    error: jsonschema.ValidationError, where: FieldPath, label: str
) -> list[Issue] | None:
    """Lengths, numeric limits and the pattern's rule in words."""
    v: Any = error.validator
    arg: Any = error.validator_value
    if v == "minLength" and arg == 1:
        return [Issue(where, f"{label}: must not be empty")]
    if v == "pattern":
        desc = _pattern_words().get(arg, f"must match {arg}")
        return [Issue(where, f"{label}: {_short(error.instance)} is not valid: {desc}")]
    if v in ("minimum", "maximum"):
        word = "at least" if v == "minimum" else "at most"
        return [Issue(where, f"{label}: must be {word} {arg}, got {_short(error.instance)}")]
    if v in ("minLength", "maxLength"):
        word = "at least" if v == "minLength" else "at most"
        return [Issue(where, f"{label}: must be {word} {arg} characters long")]
    return None


def _list_or_choice(
    error: jsonschema.ValidationError, where: FieldPath, label: str
) -> list[Issue] | None:
    if error.validator == "uniqueItems":
        return [Issue(where, f"{label}: lists the same item twice")]
    if error.validator == "anyOf" and isinstance(error.instance, dict) and error.context:
        return [Issue(where, f"{label}: needs 'task' or 'flow'")]
    return None


_RULES: tuple[_Rule, ...] = (
    _unknown_keys,
    _missing_keys,
    _bad_key_name,
    _wrong_type,
    _not_a_choice,
    _out_of_bounds,
    _list_or_choice,
)


def issues_of(error: jsonschema.ValidationError) -> list[Issue]:
    """Readable messages for one schema error; a path and whether it points at a key."""
    where = tuple(error.absolute_path)
    label = field_label(where) or "top level"
    for rule in _RULES:
        found = rule(error, where, label)
        if found is not None:
            return found
    return [Issue(where, f"{label}: {error.message}")]
