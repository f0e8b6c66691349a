"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright. Open the tree, trigger a run with the button, watch the task states change on
the page as it updates itself, open a log, cancel a long run.

Skipped, saying so, when no Chromium or no Playwright is installed (.ci/run installs both);
nothing else in the suite depends on them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitsync.engine.server import RunningEngine
from tests.conftest import Api, simple_flow

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 60_000  # every wait on the page has this deadline (a busy 2-core machine)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("browser tests skipped: Playwright for Python is not installed")
    path = chromium_path()
    if path is None:
        pytest.skip("browser tests skipped: no chromium on PATH (.ci/run installs it as root)")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    context.close()
    assert errors == [], errors  # the page's own script never failed


def _task_status(page: Any, task: str) -> Any:
    return page.locator(f'#tasks tr[data-task="{task}"] .task-status')


def test_trigger_watch_the_states_change_and_open_a_log(
    engine: RunningEngine, api: Api, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    gate = tmp_path / "gate"
    flow = simple_flow(
        "extract", "load", "report", relations=[("extract", "load"), ("load", "report")]
    )
    flow["tasks"][1]["cmd"] = f"while [ ! -e {gate} ]; do sleep 0.05; done; echo loaded"
    flow["tasks"][2]["cmd"] = "echo 'report <done>'"
    api.import_flow("nightly", flow)

    page.goto(engine.url + "/")
    page.get_by_role("link", name="nightly").click()
    expect(page.locator("#flow-name")).to_have_text("nightly")
    names = page.locator(".graph svg text").all_text_contents()
    assert sorted(names) == ["extract", "load", "report"]

    page.locator("#trigger").click()
    page.wait_for_url("**/ui/runs/*")
    expect(_task_status(page, "extract")).to_have_text("SUCCESS")
    expect(_task_status(page, "load")).to_have_text("RUNNING")
    expect(_task_status(page, "report")).not_to_have_text("SUCCESS")
    url = page.url

    gate.touch()  # the page updates itself: no reload from here on
    for task in ("extract", "load", "report"):
        expect(_task_status(page, task)).to_have_text("SUCCESS")
    expect(page.locator("#run-status")).to_have_text("SUCCESS")
    assert page.url == url
    expect(page.locator("#live")).to_have_attribute("data-poll", "0")  # it stopped polling

    page.locator('#tasks tr[data-task="report"] a.log').click()
    expect(page.locator("#log")).to_contain_text("report <done>")
    expect(page.locator("#task-status")).to_have_text("SUCCESS")

    page.get_by_role("link", name="nightly").click()
    for task in ("extract", "load", "report"):
        node = page.locator(".graph svg g.node").filter(has_text=re.compile(f"^{task}$"))
        expect(node).to_have_class("node task st-success")


def test_cancel_a_long_run_with_the_button(
    engine: RunningEngine, api: Api, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    gate = tmp_path / "never"
    flow = simple_flow("wait", "after", relations=[("wait", "after")])
    flow["tasks"][0]["cmd"] = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    flow_id = api.import_flow("long", flow)

    page.goto(f"{engine.url}/ui/flows/{flow_id}")
    page.locator("#trigger").click()
    page.wait_for_url("**/ui/runs/*")
    expect(_task_status(page, "wait")).to_have_text("RUNNING")
    instance_id = page.url.rsplit("/", 1)[-1]

    page.locator("#cancel").click()
    expect(page.locator("#run-status")).to_have_text("CANCEL")
    expect(page.locator("#cancel")).to_have_count(0)
    expect(_task_status(page, "after")).not_to_have_text("SUCCESS")
    row = engine.engine.store.instance("o15427722038191", instance_id)
    assert row is not None and row["cancelled"] == 1


def test_hostile_names_show_as_text_and_run_nothing(
    engine: RunningEngine, api: Api, page: Any
) -> None:
    from playwright.sync_api import expect

    name = "<img src=x onerror=window.pwned=1>"
    task = "<script>window.pwned=2</script"  # task names may hold "/"
    api.import_flow(name, simple_flow(task))
    page.goto(engine.url + "/")
    link = page.get_by_role("link", name=name)
    expect(link).to_have_text(name)
    link.click()
    expect(page.locator("#flow-name")).to_have_text(name)
    assert page.locator(".graph svg text").all_text_contents() == [task]
    assert page.evaluate("window.pwned") is None
