"""The client: gateway authentication for real against the engine, and faults it must survive.

Faults come from httpx.MockTransport wrapped around the real engine: the request can reach
the engine and its answer be lost, which the engine alone would never do.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gitsync import protocol
from gitsync.client import AuthError, Client, Credentials, GatewayAuth
from gitsync.engine.server import EngineOptions, RunningEngine, User
from gitsync.errors import RemoteError, TransportError
from tests.conftest import (
    EXAMPLES,
    SPEC_ORG,
    SPEC_USER,
    refusing_port,
    run_cli,
    simple_flow,
    write_target,
)

CANARY_KEY = "AK-canary-5acb82e7"
CANARY_SECRET = "SK-canary-do-not-print-7f3e9c"


class Faulty(httpx.BaseTransport):
    """Passes requests to the real engine, with scripted faults per request number."""

    def __init__(self, url: str, faults: dict[int, str]) -> None:
        self.real = httpx.HTTPTransport()
        self.url = url
        self.faults = faults
        self.count = 0
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        self.seen.append(request.url.params.get("action", ""))
        fault = self.faults.get(self.count)
        if fault == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "503":
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        if fault == "garbage":
            return httpx.Response(200, json={"unexpected": True})
        response = self.real.handle_request(request)
        response.read()
        if fault == "lost":  # the engine did the work; the answer never arrives
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def faulty(engine: RunningEngine) -> Iterator[Callable[[dict[int, str]], tuple[Client, Faulty]]]:
    made: list[Client] = []

    def make(faults: dict[int, str]) -> tuple[Client, Faulty]:
        transport = Faulty(engine.url, faults)
        client = Client(
            engine.url, SPEC_ORG, SPEC_USER, transport=transport, retries=3, sleep=lambda s: None
        )
        made.append(client)
        return client, transport

    yield make
    for client in made:
        client.close()


def _root(client: Client) -> str:
    return str(client.list_workflow_directories()[0]["key"])


def test_reads_are_retried_on_5xx_timeouts_and_refused_connections(faulty) -> None:  # type: ignore[no-untyped-def]
    client, transport = faulty({1: "503", 2: "lost", 3: "refused"})
    assert client.list_workflow_directories()[0]["title"] == "Workflow"
    assert transport.count == 4


def test_reads_give_up_with_a_clear_error(faulty) -> None:  # type: ignore[no-untyped-def]
    client, transport = faulty({i: "503" for i in range(1, 10)})
    with pytest.raises(
        TransportError, match="List Workflow Directories: HTTP 503 with a body that is not JSON"
    ):
        client.list_workflow_directories()
    assert transport.count == 4  # first try + 3 retries


def test_an_unreachable_service_is_named_without_what_the_url_hides() -> None:
    slept: list[float] = []
    with refusing_port() as port:
        url = f"http://someone:hunter2@127.0.0.1:{port}/"
        with Client(url, "o", "u", retries=2, sleep=slept.append) as client:
            with pytest.raises(TransportError) as raised:
                client.list_workflow_directories()
            assert client.requests == 3  # refused before it left: safe to send again, and sent
    message = str(raised.value)
    assert message.startswith(
        f"List Workflow Directories: the request to http://127.0.0.1:{port} failed: ConnectError"
    )
    assert "refused" in message
    assert "hunter2" not in message and "someone" not in message
    assert len(slept) == 2


def test_a_malformed_envelope_is_an_error_not_data(faulty) -> None:  # type: ignore[no-untyped-def]
    client, _ = faulty({1: "garbage"})
    with pytest.raises(TransportError, match="malformed envelope"):
        client.get_time_zone()


def test_an_import_whose_answer_is_lost_is_not_made_twice(faulty) -> None:  # type: ignore[no-untyped-def]
    client, transport = faulty({2: "lost"})
    root = _root(client)
    flow_id = client.import_flow("once", root, simple_flow("a"))
    assert [f["flowName"] for f in client.search_flow()].count("once") == 1
    assert client.find_flow_id("once") == flow_id
    assert transport.seen[:3] == ["listWorkFlowDirs", "import", "search"]  # read, not re-sent


def test_an_import_that_never_left_is_sent_again(faulty) -> None:  # type: ignore[no-untyped-def]
    client, transport = faulty({2: "refused"})
    flow_id = client.import_flow("twice_sent", _root(client), simple_flow("a"))
    assert client.find_flow_id("twice_sent") == flow_id
    assert transport.seen[:3] == ["listWorkFlowDirs", "import", "import"]


def test_a_directory_and_a_delete_with_lost_answers(faulty) -> None:  # type: ignore[no-untyped-def]
    client, _ = faulty({2: "lost"})
    root = _root(client)
    dir_id = client.create_directory(root, "once")
    assert client.find_directory(root, "once") == dir_id
    other, _ = faulty({1: "lost"})
    flow_id = client.import_flow("doomed", root, simple_flow("a"))
    other.delete_flow(flow_id)
    assert client.find_flow_id("doomed") is None


def test_business_errors_carry_code_and_message(engine: RunningEngine) -> None:
    with Client(engine.url, SPEC_ORG, SPEC_USER) as client:
        with pytest.raises(RemoteError) as e:
            client.delete_flow(424242)
        assert e.value.code == 62102 and "Delete Flow failed (62102): Flow not found" in str(
            e.value
        )
    with Client(engine.url, SPEC_ORG, "u_nobody") as client, pytest.raises(RemoteError) as e:
        client.search_flow()
    assert e.value.code == 62101


def test_every_operation_has_a_method() -> None:
    for op in protocol.OPERATIONS:
        assert callable(getattr(Client, op.name)), op.name


# -- gateway authentication --------------------------------------------------------------------


SHIFT = {"seconds": 0.0}  # how far the gated engine's clock runs ahead of the wall


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[RunningEngine]:
    SHIFT["seconds"] = 0.0
    options = EngineOptions(
        tmp_path / "gated",
        app_key=CANARY_KEY,
        app_secret=CANARY_SECRET,
        token_lifetime=3,
        users=[User(SPEC_USER, SPEC_ORG, "alice")],
        wall_clock=lambda: time.time() + SHIFT["seconds"],
    )
    with RunningEngine(options) as engine:
        yield engine


def test_signed_requests_pass_and_tokens_are_refreshed(gated: RunningEngine) -> None:
    credentials = Credentials(CANARY_KEY, CANARY_SECRET)
    assert CANARY_SECRET not in repr(credentials)
    auth = GatewayAuth(
        credentials, gated.url + protocol.TOKEN_PATH, clock=lambda: time.time() + SHIFT["seconds"]
    )
    with Client(gated.url, SPEC_ORG, SPEC_USER, auth=auth) as client:
        root = _root(client)
        client.import_flow("signed", root, simple_flow("a"))
        token = auth._token
        SHIFT["seconds"] = 3.2  # for both sides: the token expired, the client fetches another
        assert client.find_flow_id("signed") is not None
        assert auth._token != token


def test_a_token_the_gateway_calls_expired_is_renewed(gated: RunningEngine) -> None:
    auth = GatewayAuth(Credentials(CANARY_KEY, CANARY_SECRET), gated.url + protocol.TOKEN_PATH)
    with Client(gated.url, SPEC_ORG, SPEC_USER, auth=auth) as client:
        assert client.get_my_flow() == []
        token = auth._token
        SHIFT["seconds"] = 3.2  # only the gateway's clock: the client thinks its token is fresh
        assert client.get_my_flow() == []  # 1203 from the gateway -> new token -> retried
        assert auth._token != token


def test_a_wrong_secret_fails_clearly_without_showing_it(gated: RunningEngine) -> None:
    wrong = Credentials(CANARY_KEY, "wrong-secret")
    with Client(gated.url, SPEC_ORG, SPEC_USER, wrong) as client, pytest.raises(AuthError) as e:
        client.search_flow()
    message = str(e.value)
    assert "the EnOS gateway refused the access key (status 1003" in message
    assert "ENOS_SECRET_KEY" in message and "wrong-secret" not in message


def test_a_wrong_secret_from_a_credentials_file_names_the_file(
    gated: RunningEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "prod.yaml"
    creds.write_text(f"access_key: {CANARY_KEY}\nsecret_key: wrong-secret\n")
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    write_target(repo, gated.url, "gitsync/prod", name="prod")
    with (repo / "gitsync.yaml").open("a") as config:
        config.write(f"    credentials: '{creds}'\n")
    monkeypatch.chdir(repo)
    monkeypatch.delenv("ENOS_ACCESS_KEY", raising=False)
    monkeypatch.delenv("ENOS_SECRET_KEY", raising=False)
    result = run_cli("plan", "--target", "prod")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "wrong-secret" not in result.output
    assert "refused the access key (status 1003" in result.output
    assert result.output.rstrip().endswith(f"check {creds}")


def test_unsigned_requests_are_refused(gated: RunningEngine) -> None:
    with Client(gated.url, SPEC_ORG, SPEC_USER) as client, pytest.raises(AuthError) as e:
        client.search_flow()
    assert e.value.code == 1202


def test_cli_with_credentials_from_the_environment_never_prints_them(
    gated: RunningEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    write_target(repo, gated.url, "gitsync/prod", name="prod")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("ENOS_ACCESS_KEY", CANARY_KEY)
    monkeypatch.setenv("ENOS_SECRET_KEY", CANARY_SECRET)
    outputs = [
        run_cli("plan", "--target", "prod", "-o", fmt) for fmt in ("text", "json", "markdown")
    ]
    outputs.append(run_cli("apply", "--target", "prod", "--auto-approve"))
    outputs.append(run_cli("plan", "--target", "prod", "--detailed-exitcode"))
    assert [o.exit_code for o in outputs] == [0, 0, 0, 0, 0]
    monkeypatch.setenv("ENOS_SECRET_KEY", CANARY_SECRET + "-wrong")
    failed = run_cli("plan", "--target", "prod")
    assert failed.exit_code == 1 and "refused the access key" in failed.output
    outputs.append(failed)
    (repo / "flows/bad.yaml").write_text("tasks: 1\n")
    outputs.append(run_cli("plan", "--target", "prod"))
    for result in outputs:
        assert CANARY_SECRET not in result.output
    # a credentials file outside the repo works the same
    monkeypatch.delenv("ENOS_ACCESS_KEY")
    monkeypatch.delenv("ENOS_SECRET_KEY")
    (repo / "flows/bad.yaml").unlink()
    creds = tmp_path / "creds.yaml"
    creds.write_text(f"access_key: {CANARY_KEY}\nsecret_key: {CANARY_SECRET}\n")
    with (repo / "gitsync.yaml").open("a") as f:
        f.write(f"    credentials: {creds}\n")
    result = run_cli("plan", "--target", "prod", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
