"""The engine as a server: restarts, parallel writers, random bodies, gateway auth, `serve`."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitsync import protocol
from gitsync.engine.server import EngineOptions, RunningEngine, User
from tests.conftest import SPEC_ORG, SPEC_USER, Api, simple_flow


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    options = EngineOptions(tmp_path / "data", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine, httpx.Client() as _:
        api = Api(engine.url)
        sales = api.mkdir("sales")
        flow = api.import_flow("etl", simple_flow("a", "b", relations=[("a", "b")]), sales)
        api.data("POST", "flows", "enable", {"flowId": flow})
        before = (
            api.data("GET", "directories", "listWorkFlowDirs"),
            api.data("GET", "flows", "export", flowId=flow),
            api.data("GET", "flows", "get", flowId=flow),
        )
        api.http.close()
    with RunningEngine(EngineOptions(tmp_path / "data")) as engine:
        api = Api(engine.url)
        after = (
            api.data("GET", "directories", "listWorkFlowDirs"),
            api.data("GET", "flows", "export", flowId=flow),
            api.data("GET", "flows", "get", flowId=flow),
        )
        assert after == before
        assert after[2]["active"] == 1
        api.http.close()


def test_many_parallel_writers_lose_nothing(api: Api) -> None:
    root = api.root()

    def writer(i: int) -> tuple[str, int]:
        client = Api(str(api.http.base_url))
        try:
            dir_id = client.mkdir(f"d{i}", root)
            flow = client.import_flow(f"f{i}", simple_flow("a", "b"), dir_id)
            client.data("POST", "flows", "enable", {"flowId": flow})
            return dir_id, flow
        finally:
            client.http.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(writer, range(64)))
    assert len({d for d, _ in results}) == 64
    assert len({f for _, f in results}) == 64
    tree = api.data("GET", "directories", "listWorkFlowDirs")[0]  # type: ignore[index]
    children = {c["title"]: c for c in tree["children"]}
    assert set(children) == {f"d{i}" for i in range(64)}
    for i, (_, flow) in enumerate(results):
        assert [f["key"] for f in children[f"d{i}"]["children"]] == [flow]
        assert api.data("GET", "flows", "get", flowId=flow)["active"] == 1


def test_same_name_raced_by_parallel_importers_is_created_once(api: Api) -> None:
    def attempt(_: int) -> int:
        client = Api(str(api.http.base_url))
        try:
            return int(
                client.call(
                    "POST",
                    "flows",
                    "import",
                    {"flowName": "race", "dirId": client.root(), "flowJson": simple_flow("a")},
                )["code"]
            )
        finally:
            client.http.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(attempt, range(24)))
    assert codes.count(0) == 1 and codes.count(62102) == 23


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Objects made of each operation's own parameter names with random values."""
    names = sorted({p.name for op in protocol.OPERATIONS for p in op.body + op.query})
    return st.dictionaries(st.sampled_from(names) | st.text(max_size=8), json_values, max_size=6)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(op=st.sampled_from(protocol.OPERATIONS), body=_bodies() | json_values)
def test_random_bodies_always_get_an_envelope_and_errors_change_nothing(
    engine: RunningEngine, op: protocol.Operation, body: Any
) -> None:
    store = engine.engine.store.path
    api = Api(engine.url)
    try:
        if not api.data("POST", "flows", "search", {}):
            api.import_flow("seed", simple_flow("a", "b", relations=[("a", "b")]), flow_id=1000)
        before = _dump(store)
        query = body if isinstance(body, dict) and op.method == "GET" else {}
        query = {k: v for k, v in query.items() if k not in ("userId", "orgId", "action")}
        answer = api.call(
            op.method, op.resource, op.action, body if op.method == "POST" else None, **query
        )
        assert set(answer) >= {"code", "msg", "data"}
        assert isinstance(answer["code"], int) and isinstance(answer["msg"], str)
        assert answer["code"] != protocol.Code.INTERNAL, answer
        if answer["code"] != 0:
            assert answer["data"] is None
            assert _dump(store) == before
    finally:
        api.http.close()


# -- the gateway ---------------------------------------------------------------------------------

KEY, SECRET = "5acb82e7-a11e-4300-9164-c8b20b638e8b", "s3cret-canary"


GATEWAY_SHIFT = {"seconds": 0.0}  # the gated engine's clock runs this far ahead of the wall


@pytest.fixture
def gated(tmp_path: Path):  # type: ignore[no-untyped-def]
    GATEWAY_SHIFT["seconds"] = 0.0
    options = EngineOptions(
        tmp_path / "gated",
        app_key=KEY,
        app_secret=SECRET,
        token_lifetime=2,
        users=[User(SPEC_USER, SPEC_ORG, "alice")],
        wall_clock=lambda: time.time() + GATEWAY_SHIFT["seconds"],
    )
    with RunningEngine(options) as engine, httpx.Client(base_url=engine.url) as http:
        yield http


def _token(http: httpx.Client, stamp: int, secret: str = SECRET, key: str = KEY) -> dict[str, Any]:
    body = {
        "appKey": key,
        "timestamp": stamp,
        "encryption": protocol.token_encryption(key, stamp, secret),
    }
    answer: dict[str, Any] = http.post(protocol.TOKEN_PATH, json=body).json()
    return answer


def _signed(
    http: httpx.Client, token: str, stamp: int, body: bytes = b"", secret: str = SECRET
) -> httpx.Response:
    query = [("action", "listWorkFlowDirs"), ("userId", SPEC_USER), ("orgId", SPEC_ORG)]
    headers = {
        protocol.HEADER_TOKEN: token,
        protocol.HEADER_TIMESTAMP: str(stamp),
        protocol.HEADER_SIGNATURE: protocol.request_signature(token, query, body, stamp, secret),
    }
    return http.get(f"{protocol.PREFIX}/directories", params=query, headers=headers)


def test_gateway_token_and_signed_requests(gated: httpx.Client) -> None:
    now = int(time.time() * 1000)
    issued = _token(gated, now)
    assert issued["status"] == 0 and issued["business"] == "apim-token-service"
    token = issued["data"]["accessToken"]
    assert 0 < issued["data"]["expire"] <= 2
    assert _token(gated, now + 1)["data"]["accessToken"] == token  # same until it expires
    assert _token(gated, now + 1)["status"] == 1001  # replayed encryption
    assert _token(gated, now + 2, key="nope")["status"] == 1002
    assert _token(gated, now + 3, secret="wrong")["status"] == 1003

    ok = _signed(gated, token, now + 10)
    assert ok.json()["code"] == 0
    replay = _signed(gated, token, now + 10)
    assert replay.status_code == 401 and replay.json()["status"] == 1001
    forged = _signed(gated, token, now + 11, secret="wrong")
    assert forged.json()["status"] == 1003
    unsigned = gated.get(
        f"{protocol.PREFIX}/directories",
        params={"action": "listWorkFlowDirs", "userId": SPEC_USER, "orgId": SPEC_ORG},
    )
    assert unsigned.status_code == 401 and unsigned.json()["status"] == 1202
    assert SECRET not in ok.text + forged.text + unsigned.text

    GATEWAY_SHIFT["seconds"] = 2.1  # the token's 2 s are over
    expired = _signed(gated, token, now + 12)
    assert expired.json()["status"] == 1203
    fresh = _token(gated, now + 13)["data"]["accessToken"]
    assert fresh != token
    assert _signed(gated, fresh, now + 14).json()["code"] == 0


def test_gateway_checks_the_body_bytes(gated: httpx.Client) -> None:
    stamp = int(time.time() * 1000)
    token = _token(gated, stamp)["data"]["accessToken"]
    body = json.dumps({"expression": ""}).encode()
    query = [("action", "search"), ("userId", SPEC_USER), ("orgId", SPEC_ORG)]
    sign = protocol.request_signature(token, query, body, stamp, SECRET)
    headers = {
        protocol.HEADER_TOKEN: token,
        protocol.HEADER_TIMESTAMP: str(stamp),
        protocol.HEADER_SIGNATURE: sign,
        "Content-Type": "application/json;charset=UTF-8",
    }
    tampered = gated.post(
        f"{protocol.PREFIX}/flows",
        params=query,
        headers=headers,
        content=json.dumps({"expression": "x"}).encode(),
    )
    assert tampered.json()["status"] == 1003
    good = gated.post(f"{protocol.PREFIX}/flows", params=query, headers=headers, content=body)
    assert good.json() == {"code": 0, "msg": "OK", "data": []}


# -- gitsync serve -------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_runs_in_the_foreground_and_stops_cleanly(tmp_path: Path, stop: int) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitsync",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "d"),
            "--org-id",
            "o_team",
            "--user-id",
            "u_dev",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url) as http:
            answer = http.get(
                f"{protocol.PREFIX}/directories",
                params={"action": "listWorkFlowDirs", "userId": "u_dev", "orgId": "o_team"},
            ).json()
        assert answer["code"] == 0 and answer["data"][0]["title"] == "Workflow"
        proc.send_signal(stop)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, err = proc.communicate()
    assert "Traceback" not in err
    assert (tmp_path / "d" / "engine.sqlite3").exists()


def test_users_file_in_the_data_dir_adds_identities(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "users.yaml").write_text("users:\n  - {id: u_carol, name: carol, orgs: [o_a, o_b]}\n")
    with RunningEngine(EngineOptions(data)) as engine:
        for org in ("o_a", "o_b"):
            api = Api(engine.url, user="u_carol", org=org)
            assert api.call("GET", "flows", "getMyFlow")["code"] == 0
            api.http.close()
        default = Api(engine.url, user="u_local", org="o_local")
        assert default.call("GET", "flows", "getMyFlow")["code"] == 0
        assert default.call("GET", "flows", "getMyFlow", org="o_a")["code"] == 62101
        default.http.close()


def test_a_broken_users_file_is_a_clear_error(tmp_path: Path) -> None:
    from gitsync.errors import ConfigError

    data = tmp_path / "d"
    data.mkdir()
    (data / "users.yaml").write_text("users:\n  - {name: nobody}\n")
    with pytest.raises(ConfigError, match=r"users\.yaml: expected"):
        RunningEngine(EngineOptions(data))


def test_an_unexpected_fault_in_a_handler_is_62109_and_one_log_line(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gitsync.engine.store_flows import FlowTables

    def broken(self: FlowTables, org_id: str) -> list[Any]:
        raise sqlite3.IntegrityError("UNIQUE constraint failed:\nsomewhere")

    monkeypatch.setattr(FlowTables, "flows", broken)
    with caplog.at_level("ERROR", logger="gitsync.engine"):
        answer = api.call("POST", "flows", "search", {})
    assert answer["code"] == protocol.Code.INTERNAL, answer
    records = [r for r in caplog.records if r.name == "gitsync.engine"]
    assert len(records) == 1 and records[0].exc_info is None, records
    line = records[0].getMessage()
    assert "\n" not in line and "IntegrityError: UNIQUE constraint failed" in line, line
