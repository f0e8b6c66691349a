"""Text fields survive the whole loop exactly: apply -> plan (empty) -> pull (same value).

The ownership marker is added to and removed from the description; neither may touch the
user's own text, trailing newlines and blank lines included."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitsync.codec import marker
from gitsync.engine.server import RunningEngine
from tests.conftest import run_cli, write_target

# every character a YAML file can carry (escaped where it must be); no surrogates
_CHARS = st.characters(blacklist_categories=("Cs",))
texts = st.one_of(
    st.text(_CHARS, max_size=40),
    st.lists(st.sampled_from(["", " ", "a", "line two", "\t", "# x", "'q'", '"d"']), max_size=6)
    .map("\n".join)
    .flatmap(lambda s: st.sampled_from([s, s + "\n", s + "\n\n", "\n" + s])),
    st.sampled_from([marker.MANAGED_MARKER, "x\n\n" + marker.MANAGED_MARKER, "\n", "\n\n"]),
)


def _write(repo: Path, description: str, command: str, value: str) -> None:
    doc = {
        "description": description,
        "parameters": {"P": value},
        "tasks": [{"name": "t", "command": command}],
    }
    path = repo / "flows" / "d" / "texts.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")


@pytest.mark.parametrize(
    "description", ["Hello\n", "Hello\n\n", "\nHello", "a\n\nb\n", marker.MANAGED_MARKER]
)
def test_marker_is_removed_exactly(description: str) -> None:
    assert marker.split_marker(marker.with_marker(description)) == (description, True)


@settings(max_examples=25)
@given(description=texts, command=texts.filter(lambda s: s.strip() != ""), value=texts)
def test_text_survives_apply_plan_pull(
    description: str,
    command: str,
    value: str,
    tmp_path_factory: pytest.TempPathFactory,
    engine: RunningEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path_factory.mktemp("repo")
    write_target(repo, engine.url, "texts")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITSYNC_TARGET", "test")
    _write(repo, description, command, value)
    valid = run_cli("validate")
    if valid.exit_code != 0:  # a text the workflow format refuses (said at path:line:col)
        assert "flows/d/texts.yaml:" in valid.output
        return
    applied = run_cli("apply", "--auto-approve", "-q")
    assert applied.exit_code == 0, applied.output
    plan = run_cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    pulled_into = tmp_path_factory.mktemp("pulled")
    write_target(pulled_into, engine.url, "texts")
    monkeypatch.chdir(pulled_into)
    pulled = run_cli("pull")
    assert pulled.exit_code == 0, pulled.output
    doc = yaml.safe_load((pulled_into / "flows" / "d" / "texts.yaml").read_text("utf-8"))
    assert doc.get("description", "") == description
    assert doc["tasks"][0]["command"] == command
    assert doc["parameters"]["P"] == value
