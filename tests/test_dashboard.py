"""The engine's web dashboard over real HTTP: pages, escaping, the trigger and cancel forms,
and read-only mode under gateway authentication. (tests/test_dashboard_browser.py drives
the same pages in a real browser.)"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from gitsync.engine.server import EngineOptions, RunningEngine
from tests.conftest import SPEC_ORG, Api, simple_flow

EVIL_FLOW = "<script>alert(1)"
EVIL_TASK = "<img src=x onerror=alert(2)>"


def _page(engine: RunningEngine, path: str) -> httpx.Response:
    answer = httpx.get(engine.url + path, timeout=30)
    assert answer.headers["content-type"].startswith("text/html"), answer.text[:200]
    return answer


def _post(engine: RunningEngine, path: str, **headers: str) -> httpx.Response:
    return httpx.post(engine.url + path, headers=headers, timeout=30)


def _flow(api: Api, name: str, *tasks: str, relations: list[tuple[str, str]] = ()) -> int:
    return api.import_flow(name, simple_flow(*tasks, relations=relations))


def _trigger(engine: RunningEngine, flow_id: int) -> str:
    answer = _post(engine, f"/ui/flows/{flow_id}/trigger")
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/ui/runs/")
    return location.removeprefix("/ui/runs/")


def _finish(engine: RunningEngine, instance_id: str) -> None:
    assert engine.engine.runner.wait(instance_id, 60), f"{instance_id} did not finish"


def test_the_root_page_lists_the_workflow_tree(engine: RunningEngine, api: Api) -> None:
    sub = api.mkdir("daily")
    api.import_flow("loader", simple_flow("a"), dir_id=sub)
    _flow(api, "top", "a")
    answer = _page(engine, "/")
    assert answer.status_code == 200
    text = answer.text
    assert "daily/" in text and "loader" in text and "top" in text
    # the workflow in 'daily' is listed inside that directory's list, not at the root
    assert text.index("daily/") < text.index("loader")
    assert re.search(r'href="/ui/flows/\d+">loader<', text)
    assert _page(engine, "/ui/").text == text


def test_names_render_as_text_never_as_markup(engine: RunningEngine, api: Api) -> None:
    root = api.root()
    store = engine.engine.store
    dotdot = store.create_directory(SPEC_ORG, root, "..")  # refused by the API, not by the store
    assert dotdot is not None
    flow_id = api.import_flow(
        EVIL_FLOW, simple_flow(EVIL_TASK, "b", relations=[(EVIL_TASK, "b")]), dir_id=dotdot
    )
    tree = _page(engine, "/").text
    assert "<script>alert(1)" not in tree and "&lt;script&gt;alert(1)" in tree
    assert '<li class="dir"><span>../</span>' in tree
    page = _page(engine, f"/ui/flows/{flow_id}").text
    assert EVIL_TASK not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script>alert(1)" not in page
    run = _trigger(engine, flow_id)
    _finish(engine, run)
    run_page = _page(engine, f"/ui/runs/{run}").text
    assert EVIL_TASK not in run_page and "&lt;img src=x onerror=alert(2)&gt;" in run_page


def test_a_workflow_page_draws_every_task_and_colours_them_by_the_latest_run(
    engine: RunningEngine,
    api: Api,
) -> None:
    tasks = ("extract", "transform", "load", "report")
    relations = [("extract", "transform"), ("transform", "load"), ("extract", "report")]
    flow_id = _flow(api, "etl", *tasks, relations=relations)
    before = _page(engine, f"/ui/flows/{flow_id}").text
    svg = before[before.index("<svg") : before.index("</svg>")]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert sorted(texts) == sorted(tasks)
    assert "st-" not in svg and "No runs yet." in before
    run = _trigger(engine, flow_id)
    _finish(engine, run)
    after = _page(engine, f"/ui/flows/{flow_id}").text
    svg = after[after.index("<svg") : after.index("</svg>")]
    nodes = re.findall(r'<g class="node task ?([^"]*)">.*?<text[^>]*>([^<]*)</text>', svg)
    assert {name: state for state, name in nodes} == dict.fromkeys(tasks, "st-success")
    row = re.search(rf'<tr data-run="{run}">(.*?)</tr>', after, re.S)
    assert row is not None and "SUCCESS" in row.group(1)
    assert re.search(r"<td>\d+ s</td>", row.group(1)), row.group(1)  # its duration


def test_runs_are_listed_newest_first(engine: RunningEngine, api: Api) -> None:
    flow_id = _flow(api, "twice", "a")
    first = _trigger(engine, flow_id)
    _finish(engine, first)
    second = _trigger(engine, flow_id)
    _finish(engine, second)
    page = _page(engine, f"/ui/flows/{flow_id}").text
    assert first != second and page.index(second) < page.index(first)


def test_a_run_page_shows_each_task_status_and_links_its_log(
    engine: RunningEngine, api: Api
) -> None:
    flow = simple_flow("ok", "bad", "after", relations=[("bad", "after")])
    flow["tasks"][1]["cmd"] = "echo '<b>not bold</b>'; exit 3"
    flow_id = api.import_flow("mixed", flow)
    run = _trigger(engine, flow_id)
    _finish(engine, run)
    page = _page(engine, f"/ui/runs/{run}").text
    states = dict(
        re.findall(r'<tr data-task="([^"]+)">.*?task-status [^"]*">([A-Z_]+)<', page, re.S)
    )
    assert states["ok"] == "SUCCESS"
    assert states["bad"] == "FAIL"
    assert states["after"] != "SUCCESS"
    assert 'id="cancel"' not in page  # a finished run has nothing to cancel
    links = dict(re.findall(r'<tr data-task="([^"]+)">.*?href="(/ui/tasks/[^"]+/log)"', page, re.S))
    log = _page(engine, links["bad"]).text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in log and "<b>not bold" not in log
    assert 'id="task-status" class="badge st-fail">FAIL<' in log


def test_the_live_part_alone_is_what_the_page_script_fetches(
    engine: RunningEngine, api: Api
) -> None:
    flow_id = _flow(api, "parts", "a")
    run = _trigger(engine, flow_id)
    _finish(engine, run)
    part = _page(engine, f"/ui/runs/{run}?part=live").text
    assert part.startswith('<div id="live" data-poll="0">') and "<html" not in part
    assert "SUCCESS" in part


def test_cancel_stops_a_live_run(engine: RunningEngine, api: Api, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    flow = simple_flow("wait")
    flow["tasks"][0]["cmd"] = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    flow_id = api.import_flow("long", flow)
    run = _trigger(engine, flow_id)
    page = _page(engine, f"/ui/runs/{run}").text
    assert 'id="cancel"' in page and 'data-poll="1"' in page
    answer = _post(engine, f"/ui/runs/{run}/cancel")
    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/runs/{run}"
    _finish(engine, run)
    page = _page(engine, f"/ui/runs/{run}").text
    assert 'id="run-status" class="badge st-cancel">CANCEL<' in page
    assert _post(engine, f"/ui/runs/{run}/cancel").status_code == 303  # again: nothing to do


def test_a_form_from_another_site_is_refused(engine: RunningEngine, api: Api) -> None:
    flow_id = _flow(api, "guarded", "a")
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        answer = _post(engine, f"/ui/flows/{flow_id}/trigger", **headers)
        assert answer.status_code == 403, headers
    assert engine.engine.store.instances(SPEC_ORG) == []
    same = _post(engine, f"/ui/flows/{flow_id}/trigger", Origin=engine.url)
    assert same.status_code == 303


@pytest.mark.parametrize(
    "path",
    ["/ui/flows/999999", "/ui/runs/1-1", "/ui/tasks/nope/log", "/ui/nothing/here", "/ui/runs/"],
)
def test_unknown_pages_answer_an_html_404(engine: RunningEngine, path: str) -> None:
    answer = _page(engine, path)
    assert answer.status_code == 404


def test_the_api_answers_as_before(engine: RunningEngine, api: Api) -> None:
    answer = httpx.get(engine.url + "/no/such/path", timeout=30)
    assert answer.status_code == 404 and answer.json()["code"] == 62102
    assert isinstance(api.root(), str)


def test_a_workflow_without_tasks_cannot_be_triggered_and_says_why(
    engine: RunningEngine, api: Api
) -> None:
    flow_id = api.import_flow("empty", simple_flow())
    answer = _post(engine, f"/ui/flows/{flow_id}/trigger")
    assert answer.status_code == 409 and "no task" in answer.text
    assert _post(engine, "/ui/flows/424242/trigger").status_code == 404


def test_with_gateway_auth_the_dashboard_is_read_only(tmp_path: Path) -> None:
    options = EngineOptions(tmp_path / "engine", app_key="K", app_secret="S")
    with RunningEngine(options) as engine:
        store, service = engine.engine.store, engine.engine.service
        caller = service.access.caller("u_local", "o_local")  # the API wants signatures
        root = store.directories("o_local")[0]["id"]
        made = service.import_flow(
            caller, {"flowName": "f", "dirId": root, "flowJson": simple_flow("a", owners="local")}
        )
        flow_id = made["flowId"]
        tree = _page(engine, "/")
        assert tree.status_code == 200 and "read-only" in tree.text and ">f</a>" in tree.text
        page = _page(engine, f"/ui/flows/{flow_id}").text
        assert "<svg" in page and 'id="trigger"' not in page and "<form" not in page
        answer = _post(engine, f"/ui/flows/{flow_id}/trigger")
        assert answer.status_code == 403 and "read-only" in answer.text
        assert store.instances("o_local") == []
        run = engine.engine.runs.create(store.flow("o_local", flow_id), 1_700_000_000_000)
        assert _post(engine, f"/ui/runs/{run}/cancel").status_code == 403
        engine.engine.runner.wait(run, 60)
        assert 'id="cancel"' not in _page(engine, f"/ui/runs/{run}").text


def test_odd_stored_values_still_render(engine: RunningEngine, api: Api) -> None:
    """A status code SPEC does not list, a task run never started, a missing log file."""
    flow_id = _flow(api, "odd", "a", "b", relations=[("a", "b")])
    run = _trigger(engine, flow_id)
    _finish(engine, run)
    store = engine.engine.store
    store.update_instance(run, status=42, start_time="not a time", end_time="")
    task = store.task_instances(run)[1]
    store.update_tasks([(task["id"], {"status": 77, "start_time": ""})])
    engine.engine.runner.log_path(run, task["id"]).unlink(missing_ok=True)
    page = _page(engine, f"/ui/runs/{run}")
    assert page.status_code == 200 and 'class="badge st-42">42<' in page.text
    assert 'data-poll="0"' in page.text  # an unknown status is not polled for ever
    log = _page(engine, f"/ui/tasks/{task['id']}/log")
    assert log.status_code == 200 and "No log yet." in log.text
    assert _post(engine, f"/ui/runs/{run}/cancel").status_code == 303  # nothing to cancel
    assert store.instance(SPEC_ORG, run)["status"] == 42  # type: ignore[index]
    assert _page(engine, f"/ui/flows/{flow_id}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/ui/tasks/..%2F..%2Fengine.sqlite3/log",
        "/ui/tasks/%00/log",
        "/ui/runs/..%2F..",
        "/ui/flows/-1",
        "/ui/flows/99999999999999999999999",
        "/ui/runs/" + "x" * 5000,
    ],
)
def test_odd_paths_find_nothing(engine: RunningEngine, path: str) -> None:
    answer = httpx.get(engine.url + path, timeout=30)
    assert answer.status_code == 404
    assert "SQLite" not in answer.text


def test_a_long_log_shows_its_tail(engine: RunningEngine, api: Api) -> None:
    flow = simple_flow("chatty")
    flow["tasks"][0]["cmd"] = "head -c 1100000 /dev/zero | tr '\\0' x; echo; echo THE-END"
    flow_id = api.import_flow("chatty", flow)
    run = _trigger(engine, flow_id)
    _finish(engine, run)
    task = engine.engine.store.task_instances(run)[0]
    log = _page(engine, f"/ui/tasks/{task['id']}/log").text
    assert "THE-END" in log and "Only the last part of the log is shown." in log


def test_node_classes_are_escaped_and_given_only_to_tasks_of_that_name() -> None:
    from gitsync.engine.dashboard_svg import dag_svg
    from gitsync.model import Dependency, Task, Workflow

    workflow = Workflow(
        "w",
        tasks=(
            Task("a"),
            Task("b", depends_on=(Dependency(task="a"), Dependency(flow="a", task="a"))),
        ),
    )
    picture = dag_svg(workflow, {"a": '"><script>x</script>', "zzz": "st-success"})
    assert picture.startswith("<svg") and "<script>" not in picture
    assert picture.count("&quot;&gt;&lt;script&gt;") == 1  # task a, not the reference a.a
    assert "st-success" not in picture


def test_a_binary_log_shows_its_control_bytes_escaped(engine: RunningEngine, api: Api) -> None:
    flow = simple_flow("bin")
    flow["tasks"][0]["cmd"] = r"printf 'one\033]0;title\007\nbell\001\tend\n'"
    run = _trigger(engine, api.import_flow("binary", flow))
    _finish(engine, run)
    page = _page(engine, f"/ui/runs/{run}").text
    link = re.search(r'href="(/ui/tasks/[^"]+/log)"', page)
    assert link is not None, page
    log = _page(engine, link.group(1)).text
    assert "one\\x1b]0;title\\x07" in log and "bell\\x01\\tend" in log
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", log)


@pytest.mark.parametrize("path", ["/ui/flows/{flow}/trigger", "/ui/runs/1-1/cancel"])
def test_a_button_address_opened_as_a_page_is_405(
    engine: RunningEngine, api: Api, path: str
) -> None:
    answer = httpx.get(engine.url + path.format(flow=_flow(api, "f", "a")), timeout=30)
    assert answer.status_code == 405 and "POST" in answer.text
    assert engine.engine.store.instances(SPEC_ORG) == []
