"""substitution.py on its own: odd inputs, escapes, what is never touched, masking."""

from __future__ import annotations

import pytest

from gitsync.files import parse_yaml
from gitsync.substitution import MASK, Secrets, Substitution

TEXT = """\
description: ${var.A}-${var.A} $${var.A} ${cal_dt} ${A} $${var.} $${cal_dt} $${env:}
parameters:
  ${var.A}: ${env:PW}
  N: 5
  B: true
tasks:
  - name: t
    command: run --pw=${env:PW} ${var.A}
    timeout: 60
"""


def _run(env: dict[str, str] | None) -> tuple[dict[str, object], Secrets, list[str]]:
    doc, problems = parse_yaml(TEXT)
    assert not problems
    undefined, secrets = Substitution("dev", {"A": "a$1\\g<0>"}, env).document(doc, "wf")
    return doc.data, secrets, [u.message for u in undefined]


def test_only_our_references_in_string_values_are_substituted() -> None:
    data, secrets, undefined = _run({"PW": "s3cr3t-value"})
    assert undefined == []
    description = "a$1\\g<0>-a$1\\g<0> ${var.A} ${cal_dt} ${A} $${var.} $${cal_dt} $${env:}"
    assert data["description"] == description  # a value is inserted as it is, never re-read
    params = data["parameters"]
    assert isinstance(params, dict)
    assert params == {"${var.A}": "s3cr3t-value", "N": 5, "B": True}  # keys and numbers kept
    assert secrets.labels == {"wf": frozenset({"parameters.${var.A}", "tasks[t].command"})}
    assert secrets.values == {"s3cr3t-value": "${env:PW}"}


def test_offline_leaves_secrets_as_written_and_unset_ones_are_named() -> None:
    data, secrets, undefined = _run(None)
    assert data["parameters"]["${var.A}"] == "${env:PW}"  # type: ignore[index]
    assert not secrets.values and undefined == []
    _, secrets, undefined = _run({})
    assert secrets.missing == {"PW"}
    assert len(undefined) == 2 and "'PW' is not set (target 'dev')" in undefined[0]


def test_an_undefined_variable_names_the_target() -> None:
    doc, _ = parse_yaml("description: ${var.NOPE}\n")
    undefined, _ = Substitution("prod", {}, {}).document(doc, "wf")
    assert [u.where for u in undefined] == [("description",)]
    assert "variable 'NOPE' is not defined for target 'prod'" in undefined[0].message


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('parameters.PW: "old" -> "new"', "parameters.PW: (sensitive value changed)"),
        ('parameters.PW: added "x"', "parameters.PW: (sensitive value added)"),
        ('parameters.PW: removed "x"', "parameters.PW: (sensitive value removed)"),
        ('parameters.PWX: "a" -> "b"', 'parameters.PWX: "a" -> "b"'),  # another field
        ('description: "long-secret" -> "x"', f'description: "{MASK}" -> "x"'),  # last line
    ],
)
def test_plan_lines_are_masked_by_field_then_by_value(line: str, shown: str) -> None:
    secrets = Secrets(labels={"wf": frozenset({"parameters.PW"})}, values={"long-secret": "r"})
    assert secrets.mask_lines("wf", (line,)) == (shown,)


def test_short_values_are_left_to_the_structural_masking() -> None:
    assert Secrets(values={"abc": "r"}).mask("abc abcd") == "abc abcd"


def test_restore_writes_references_back_and_escapes_literals() -> None:
    secrets = Secrets(
        values={"s3cr3t-value": "${env:PW}"}, fields={"a s3cr3t-value": "a ${env:PW}"}
    )
    data = {"x": ["a s3cr3t-value", "b s3cr3t-value", "${var.A} ${cal_dt}", 3]}
    assert secrets.restore(data) == {"x": ["a ${env:PW}", "b ${env:PW}", "$${var.A} ${cal_dt}", 3]}


@pytest.mark.parametrize(
    "text", ["${var.}", "${var.1X}", "${env:}", "${env:X:-d}", "${var.A", "ok ${var.A} ${env:"]
)
def test_a_reference_that_is_not_well_formed_is_a_problem(text: str) -> None:
    """A typo in a reference must not ship the placeholder to the service unnoticed."""
    doc, problems = parse_yaml(f"description: '{text}'\n")
    assert not problems
    undefined, _ = Substitution("dev", {"A": "a"}, {"X": "x"}).document(doc, "wf")
    assert [u.where for u in undefined] == [("description",)]
    assert "not well formed" in undefined[0].message
