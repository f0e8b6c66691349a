"""Answers from the service are untrusted input. A proxy in front of the real engine rewrites
one read operation's answer (data null, a field missing, null, of the wrong type, or extra),
and every command ends in a correct result or exit 1 with one `error:` line: never a
traceback, never an unexpected error, and never a write sent after the bad answer (but the
release of apply's own lock)."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from gitsync import protocol
from gitsync.engine.faults import Faults, RunningProxy
from gitsync.engine.server import RunningEngine
from tests.conftest import EXAMPLES, run_cli

READS = {
    f"{op.path}?action={op.action}": op.name for op in protocol.BY_NAME.values() if not op.writes
}
WRITES = {f"{op.path}?action={op.action}" for op in protocol.BY_NAME.values() if op.writes}
WRONG = ["text", 7, 1.5, True, [], {}, [1], {"x": 1}]


@dataclass
class Mood:
    """Which answer to spoil and how; what was sent after it."""

    operation: str = ""
    spoil: Any = None  # (answer data) -> spoilt data
    spoilt: bool = False
    envelope: Any = None  # an answer to send whole instead, error envelopes included
    after: list[str] = field(default_factory=list)  # "<path>?action=" of requests after it

    def rewrite(self, key: str, answer: Any) -> Any:
        if self.envelope is not None and READS.get(key) == self.operation:
            return self.envelope
        if self.spoilt or READS.get(key) != self.operation or answer.get("code") != 0:
            return answer
        self.spoilt = True
        return {**answer, "data": self.spoil(copy.deepcopy(answer.get("data")))}

    def on_request(self, n: int, request: Request) -> None:
        if self.spoilt:
            self.after.append(f"{request.url.path}?action={request.query_params.get('action')}")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mood, Path]]:
    """The examples applied and run once on an engine, behind a proxy that spoils answers."""
    from gitsync.engine.server import EngineOptions

    base = tmp_path_factory.mktemp("answers")
    mood = Mood()
    faults = Faults(on_request=mood.on_request, rewrite=mood.rewrite)
    with (
        RunningEngine(EngineOptions(base / "engine")) as engine,
        RunningProxy(engine.url, faults) as proxy,
        pytest.MonkeyPatch.context() as patch,
    ):
        repo = base / "repo"
        shutil.copytree(EXAMPLES, repo / "flows")
        (repo / "gitsync.yaml").write_text(
            f"flows: flows\ntargets:\n  local:\n    url: {proxy.url}\n    root: gitsync\n"
            "    org_id: o_local\n    user_id: u_local\n"
        )
        patch.chdir(repo)
        patch.setenv("GITSYNC_TARGET", "local")
        assert run_cli("apply", "--auto-approve", "-q").exit_code == 0
        assert run_cli("run", "flows/sales/daily/sales_etl.yaml").exit_code == 0
        yield mood, repo


@st.composite
def spoilers(draw: st.DrawFn) -> tuple[str, Any]:
    """A description (for the failure report) and a function that spoils an answer's data."""
    kind = draw(st.sampled_from(["data", "missing", "null", "wrong", "extra"]))
    if kind == "data":
        value = draw(st.sampled_from([None, *WRONG]))
        return f"data={value!r}", lambda data: value
    depth = draw(st.integers(1, 6))
    picks = draw(st.lists(st.integers(0, 50), min_size=depth, max_size=depth))
    wrong = draw(st.sampled_from(WRONG))

    def spoil(data: Any) -> Any:
        node, parent, key = data, None, None
        for pick in picks:
            if isinstance(node, dict) and node:
                parent, key = node, sorted(node)[pick % len(node)]
            elif isinstance(node, list) and node:
                parent, key = node, pick % len(node)
            else:
                break
            node = parent[key]
        if parent is None:
            return None if kind in ("missing", "null") else wrong
        if kind == "missing" and isinstance(parent, dict):
            del parent[key]
        elif kind == "null":
            parent[key] = None
        elif kind == "extra" and isinstance(parent, dict):
            parent["unexpectedField"] = wrong
        else:
            parent[key] = wrong
        return data

    return f"{kind} at {picks} ({wrong!r})", spoil


COMMANDS = {
    "plan": ("plan", "-o", "json"),
    "pull": ("pull", "--force"),
    "apply": ("apply", "--auto-approve", "-q"),
    "instances": ("instances", "sales_etl"),
}


# One test per command, each with its own 20 drawn examples (Hypothesis seeds each
# parametrized case apart): the 80 examples of one test before, but four tests that parallel
# workers can run at once.
@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(max_examples=20)
@given(operation=st.sampled_from(sorted(set(READS.values()))), spoiler=spoilers())
def test_a_spoilt_answer_ends_in_a_result_or_one_error_line(
    command: str,
    operation: str,
    spoiler: tuple[str, Any],
    service: tuple[Mood, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mood, repo = service
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITSYNC_TARGET", "local")
    mood.operation, mood.spoil, mood.spoilt, mood.after = "", None, False, []
    # only plan's output is compared with an unspoilt run (the service matches the files)
    baseline = run_cli(*COMMANDS[command]) if command == "plan" else None
    mood.operation, mood.spoil = operation, spoiler[1]
    result = run_cli(*COMMANDS[command])
    mood.operation = ""
    said = f"{operation}, {spoiler[0]}, {command}:\n{result.output}"
    assert "Traceback" not in result.output and "unexpected" not in result.output, said
    if result.exit_code != 0:
        assert result.exit_code == 1, said
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, said
        writes = [key for key in mood.after if key in WRITES]
        assert writes in ([], [f"{protocol.BY_NAME['delete_flow'].path}?action=delete"]), said
    elif baseline is not None:
        assert result.output == baseline.output, said
    if command == "pull":
        # pull writes files only, and what it wrote may be a spoilt answer read leniently (a
        # null parameters is no parameters): the files go back to what was applied
        shutil.rmtree(repo / "flows")
        shutil.copytree(EXAMPLES, repo / "flows")
    # whatever happened, the service still matches the files
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0, said


def test_a_null_answer_to_a_read_is_one_error_line(service: tuple[Mood, Path]) -> None:
    mood, repo = service
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        patch.setenv("GITSYNC_TARGET", "local")
        for operation in ("list_workflow_directories", "export_flow"):
            mood.operation, mood.spoil, mood.spoilt, mood.after = (
                operation,
                lambda d: None,
                False,
                [],
            )
            result = run_cli("plan")
            assert result.exit_code == 1
            assert result.output.startswith("error: ") and result.output.count("\n") == 1, (
                result.output
            )
            assert "null" in result.output
        mood.operation = ""
    assert json.loads(run_cli("plan", "-o", "json").output)["has_changes"] is False


def test_a_service_message_never_reaches_the_terminal_raw(service: tuple[Mood, Path]) -> None:
    mood, repo = service
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        patch.setenv("GITSYNC_TARGET", "local")
        mood.operation = "list_workflow_directories"
        mood.envelope = {"code": 62109, "msg": "\u001b[31mboom\u001b]0;x\u0007\nerror: forged"}
        try:
            result = run_cli("plan")
        finally:
            mood.operation, mood.envelope = "", None
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert result.output.count("\n") == 1 and "boom" in result.output
