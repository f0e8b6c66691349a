"""A secret the files no longer reference still lives on the service: removing or replacing
its reference, or copying a multi-line secret into another field, shows it in no output
(text, Markdown, JSON, the saved plan, apply's report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

PASSWORD = "Pa55w0rd-CANARY-very-secret"
CERT = "-----BEGIN KEY-----\nMIIEcanaryline\nMIIEcanarysecond"
CANARIES = (PASSWORD, "MIIEcanary")

FLOW = """\
name: etl
description: {description}
parameters:
{password}  CERT: ${{env:GS_LEAK_CERT}}
tasks:
  - name: load
    command: echo load
"""


def _write(repo: Path, password: str | None, description: str = "plain") -> None:
    line = f"  DB_PASSWORD: {password}\n" if password is not None else ""
    text = FLOW.format(description=description, password=line)
    (repo / "flows" / "sales" / "etl.yaml").write_text(text)


@pytest.fixture
def repo(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GS_LEAK_PASSWORD", PASSWORD)
    monkeypatch.setenv("GS_LEAK_CERT", CERT)
    assert run_cli("init").exit_code == 0
    (in_tmp / "flows" / "sales").mkdir(parents=True)
    _write(in_tmp, "${env:GS_LEAK_PASSWORD}")
    applied = run_cli("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    return in_tmp


def _outputs(repo: Path) -> list[str]:
    """Every way a plan is shown, then apply's."""
    out = [run_cli("plan", *args).output for args in ([], ["-o", "json"], ["-o", "markdown"])]
    saved = run_cli("plan", "--out", "p.json")
    assert saved.exit_code == 0, saved.output
    out += [saved.output, (repo / "p.json").read_text()]
    applied = run_cli("apply", "p.json")
    assert applied.exit_code == 0, applied.output
    return [*out, applied.output]


@pytest.mark.parametrize("password", [None, "none", "${env:GS_LEAK_CERT}"])
def test_a_removed_or_replaced_reference_never_shows_the_old_value(
    repo: Path, password: str | None
) -> None:
    _write(repo, password)
    outputs = _outputs(repo)
    assert "parameters.DB_PASSWORD: (sensitive value" in outputs[0]
    for text in outputs:
        assert not any(canary in text for canary in CANARIES), text


def test_a_multi_line_secret_copied_into_another_field_is_masked_in_every_form(
    repo: Path,
) -> None:
    escaped = CERT.replace("\n", "\\n")
    _write(repo, "${env:GS_LEAK_PASSWORD}", f'"see: {escaped} (copied)"')
    outputs = _outputs(repo)
    assert "see: ***" in outputs[0]
    for text in outputs:
        assert not any(canary in text for canary in CANARIES), text
