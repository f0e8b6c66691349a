from __future__ import annotations

import contextlib
import functools
import itertools
import json
import shutil
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from gitsync.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "flows"
CASES = Path(__file__).resolve().parent / "cases"
SPEC_SAMPLES = Path(__file__).resolve().parent / "data" / "spec"
PLAN_SCHEMA = ROOT / "schemas" / "plan.schema.json"

# A busy 2-core machine (CI runs beside other work): no per-example deadline, no health check
# that fails a test for being slow, and examples drawn from a fixed seed so a run is repeatable.
settings.register_profile(
    "gitsync",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("gitsync")


def _ignore(signum: int, frame: object) -> None:
    """Does nothing: the test run's own stand-in for an ignored signal."""


# A test run started in the background (`cmd &` in a script, nohup) ignores SIGINT and SIGHUP,
# and a process it starts inherits that: the gitsync commands that the signal tests stop
# would ignore the stop. A handler that does nothing ignores them here just the same, but is
# not inherited (exec resets it), so every command starts with the usual defaults.
for _sig in (signal.SIGINT, signal.SIGHUP):
    if signal.getsignal(_sig) is signal.SIG_IGN:
        signal.signal(_sig, _ignore)


def eventually(check: Callable[[], object], what: str, limit: float = 15.0) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``limit`` seconds."""
    import time

    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"still not so after {limit} s: {what}"
        time.sleep(0.02)


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections while the block runs: bound but never
    listening. Held, not closed at once, so that an engine another test starts meanwhile (the
    suite runs in parallel workers) cannot be given the same port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@functools.cache
def _plan_validator() -> Any:
    import jsonschema

    schema = json.loads(PLAN_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def checked_plan(text: str) -> dict[str, Any]:
    """A JSON plan, parsed as strict JSON (no NaN) and valid against schemas/plan.schema.json."""

    def no_constant(name: str) -> None:
        raise AssertionError(f"not JSON: {name}")

    plan = json.loads(text, parse_constant=no_constant)
    problems = [
        f"{list(e.absolute_path)}: {e.message}" for e in _plan_validator().iter_errors(plan)
    ]
    assert not problems, problems
    return plan  # type: ignore[no-any-return]


def asks_for_a_json_plan(args: Sequence[str] | str | None) -> bool:
    words = [args] if isinstance(args, str) else list(args or ())
    pairs = set(itertools.pairwise(words))
    asked = bool({("-o", "json"), ("--output", "json")} & pairs) or any(
        w in ("--output=json", "-ojson") for w in words
    )
    return "plan" in words and asked


@pytest.fixture(autouse=True)
def _every_json_plan_follows_its_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``plan -o json`` a test runs through the CLI runner is checked against the
    schema, whatever the test itself looks at."""
    invoke = CliRunner.invoke

    def checked(self: CliRunner, cli: Any, args: Any = None, *more: Any, **kw: Any) -> Result:
        result = invoke(self, cli, args, *more, **kw)
        if asks_for_a_json_plan(args) and result.exit_code in (0, 2):
            checked_plan(result.stdout)
        return result

    monkeypatch.setattr(CliRunner, "invoke", checked)


@pytest.fixture(autouse=True)
def _own_validation_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test gets its own, empty validation cache (never the user's ~/.cache)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITSYNC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("GITSYNC_NO_CACHE", raising=False)
        # the embedded engine stays strict, as EnOS is, whatever the shell that runs the suite
        patch.delenv("GITSYNC_ENGINE_EXTENSIONS", raising=False)
        yield


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- a real engine over HTTP ---------------------------------------------------------------

SPEC_USER, SPEC_ORG = "u15426865866571", "o15427722038191"


class Api:
    """Plain httpx calls to the engine: no gitsync client in between."""

    def __init__(self, url: str, user: str = SPEC_USER, org: str = SPEC_ORG) -> None:
        import httpx

        self.http = httpx.Client(base_url=url, timeout=30)
        self.user, self.org = user, org

    def call(
        self,
        method: str,
        resource: str,
        action: str,
        body: object = None,
        raw: bytes | None = None,
        user: str | None = None,
        org: str | None = None,
        **query: object,
    ) -> dict:
        params = {
            "action": action,
            "userId": user or self.user,
            "orgId": org or self.org,
            **{k: str(v) for k, v in query.items()},
        }
        path = f"/batch-processing-service/v2.1/{resource}"
        if method == "GET":
            response = self.http.get(path, params=params)
        else:
            import json

            content = raw if raw is not None else json.dumps(body).encode()
            response = self.http.post(
                path,
                params=params,
                content=content,
                headers={"Content-Type": "application/json;charset=UTF-8"},
            )
        assert response.headers["content-type"].startswith("application/json")
        return response.json()

    def data(
        self, method: str, resource: str, action: str, body: object = None, **query: object
    ) -> object:
        answer = self.call(method, resource, action, body, **query)
        assert answer["code"] == 0, answer
        return answer["data"]

    def root(self) -> str:
        return self.data("GET", "directories", "listWorkFlowDirs")[0]["key"]  # type: ignore[index]

    def mkdir(self, name: str, parent: str | None = None) -> str:
        data = self.data(
            "POST", "directories", "create", {"dirName": name, "parentId": parent or self.root()}
        )
        return data["dirId"]  # type: ignore[index]

    def import_flow(
        self, name: str, flow_json: dict, dir_id: str | None = None, flow_id: int | None = None
    ) -> int:
        body = {"flowName": name, "dirId": dir_id or self.root(), "flowJson": flow_json}
        if flow_id is not None:
            body["flowId"] = flow_id
        return self.data("POST", "flows", "import", body)["flowId"]  # type: ignore[index]


def simple_flow(
    *tasks: str, relations: list[tuple[str, str]] = (), owners: str = "alice", **extra: object
) -> dict:
    return {
        "cycle": "D",
        "cron": "0 0 0 * * ? *",
        "type": 1,
        "owners": owners,
        "visitors": "",
        "parameters": "[]",
        "alertMode": 1,
        "syncType": 1,
        "desc": "",
        "startTime": "2024-01-01",
        "tasks": [
            {"name": t, "type": "COMMAND", "cmd": f"echo {t}", "asLink": True, "runMode": "{}"}
            for t in tasks
        ],
        "relations": [
            {"sourceTaskName": a, "targetTaskName": b, "rerun": True} for a, b in relations
        ],
        "flowLinks": [],
        "taskLinks": [],
        "linkRelations": [],
        **extra,
    }


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    from gitsync.engine.server import EngineOptions, RunningEngine, User

    options = EngineOptions(
        tmp_path / "engine",
        users=[
            User(SPEC_USER, SPEC_ORG, "alice"),
            User("u_bob", SPEC_ORG, "bob"),
            User("u_locked", SPEC_ORG, "lenny", locked=True),
            User("u_mallory", "o_other", "mallory"),
        ],
    )
    with RunningEngine(options) as running:
        yield running


@pytest.fixture
def api(engine):  # type: ignore[no-untyped-def]
    client = Api(engine.url)
    yield client
    client.http.close()


def write_target(repo: Path, url: str, root: str, name: str = "test") -> None:
    """A gitsync.yaml whose target ``name`` is the engine at ``url``, owning ``root``."""
    (repo / "gitsync.yaml").write_text(
        f"flows: flows\ntargets:\n  {name}:\n    url: {url}\n    org_id: {SPEC_ORG}\n"
        f"    user_id: {SPEC_USER}\n    root: {root}\n"
    )


@pytest.fixture
def example_repo(tmp_path: Path, engine, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """A repo with the examples and a target 'test' on the fixture engine, owning gitsync/."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    write_target(repo, engine.url, "gitsync")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITSYNC_TARGET", "test")
    return repo
