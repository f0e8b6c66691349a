"""DAG pictures in Markdown plans: what a change does to the tasks and edges, marked."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from gitsync import report
from gitsync.changes import Kind
from gitsync.graph_plan import difference, markdown, picture
from gitsync.model import Dependency, Task, Workflow
from gitsync.plan_types import Change, Plan
from tests.conftest import run_cli
from tests.test_graph import file_tasks, parse_mermaid


def wf(*tasks: Task) -> Workflow:
    return Workflow("w", tasks=tasks)


def t(name: str, *ups: str, **settings: object) -> Task:
    return Task(name, depends_on=tuple(Dependency(task=u) for u in ups), **settings)  # type: ignore[arg-type]


def marked(block: str) -> dict[str, set[str]]:
    """mark -> the labels of the nodes the Mermaid block gives that class."""
    labels, _ = parse_mermaid(block)
    out: dict[str, set[str]] = {}
    for m in re.finditer(r"^  class ([\w,]+) (\w+)$", block, re.M):
        out[m.group(2)] = {labels[i] for i in m.group(1).split(",")}
    return out


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, re.S)


BEFORE = wf(t("a"), t("b", "a"), t("c", "b"), t("gone", "a"))


def test_added_removed_and_changed_tasks_and_edges_are_marked() -> None:
    after = wf(t("a"), t("b", "a", command="new"), t("c", "a"), t("new", "c"))
    graph = difference(BEFORE, after, {})
    assert graph is not None
    by_id = {n.id: n for n in graph.nodes}
    nodes = {n.label: n.mark for n in graph.nodes}
    assert nodes == {"a": "", "b": "changed", "c": "", "new": "added", "gone": "removed"}
    edges = {(by_id[e.source].label, by_id[e.target].label): e.mark for e in graph.edges}
    assert edges == {
        ("a", "b"): "",
        ("a", "c"): "added",
        ("c", "new"): "added",
        ("b", "c"): "removed",
        ("a", "gone"): "removed",
    }


def test_a_renamed_task_is_one_changed_node_and_keeps_its_edges() -> None:
    after = wf(t("a"), t("b2", "a"), t("c", "b2"), t("gone", "a"))
    graph = difference(BEFORE, after, {"b": "b2"})
    assert graph is not None
    assert {n.label: n.mark for n in graph.nodes} == {
        "a": "",
        "b2 (was b)": "changed",
        "c": "",
        "gone": "",
    }
    assert all(not e.mark for e in graph.edges) and len(graph.edges) == 3


def test_a_rerun_flag_is_a_changed_edge_and_references_are_nodes() -> None:
    before = wf(t("a"), Task("b", depends_on=(Dependency(task="a"), Dependency(flow="up"))))
    after = wf(
        t("a"),
        Task("b", depends_on=(Dependency(task="a", rerun=False), Dependency("x", "up"))),
    )
    graph = difference(before, after, {})
    assert graph is not None
    assert {n.label: (n.kind, n.mark) for n in graph.nodes} == {
        "a": ("task", ""),
        "b": ("task", ""),
        "up.x": ("ref", "added"),
        "up (workflow)": ("flow", "removed"),
    }
    assert sorted(e.mark for e in graph.edges) == ["added", "changed", "removed"]


def test_no_picture_when_tasks_and_edges_agree() -> None:
    assert difference(BEFORE, replace(BEFORE, description="other"), {}) is None
    update = Change(Kind.UPDATE_FLOW, ("w",), desired=BEFORE, current=BEFORE)
    assert picture(update) is None and markdown(update, 10_000) == ""
    assert picture(Change(Kind.DELETE_FLOW, ("w",), current=BEFORE)) is None


def test_a_create_is_drawn_whole_and_unmarked() -> None:
    create = Change(Kind.CREATE_FLOW, ("w",), desired=BEFORE)
    block = mermaid_blocks(markdown(create, 10_000))[0]
    labels, edges = parse_mermaid(block)
    assert sorted(labels.values()) == ["a", "b", "c", "gone"] and len(edges) == 3
    assert marked(block) == {}


def test_a_picture_that_does_not_fit_is_left_out_saying_so() -> None:
    big = wf(*(t(f"task_{i}", *([f"task_{i - 1}"] if i else [])) for i in range(300)))
    change = Change(Kind.CREATE_FLOW, ("w",), desired=big)
    assert "```mermaid" in markdown(change, 100_000)
    left_out = markdown(change, 2_000)
    assert "```" not in left_out and "left out" in left_out and "300 nodes" in left_out
    text = report.plan_markdown(Plan((change,)), "t", limit=3_000)
    assert len(text) <= 3_000 and "left out" in text and "```mermaid" not in text
    assert "```mermaid" in report.plan_markdown(Plan((change,)), "t")
    # past Mermaid's own limits GitHub would draw an error instead: left out, saying why
    fan = wf(t("root"), *(t(f"t{i}", "root") for i in range(501)))
    too_many = markdown(Change(Kind.CREATE_FLOW, ("w",), desired=fan), 100_000)
    assert "```" not in too_many and "501 edges" in too_many and "than Mermaid draws" in too_many


def test_plan_markdown_marks_an_added_task_against_the_engine(example_repo: Path) -> None:
    """The acceptance test: a change that adds a task shows it marked, in a Mermaid block."""
    first = run_cli("plan", "-o", "markdown")
    etl = example_repo / "flows" / "sales" / "daily" / "sales_etl.yaml"
    tasks, edges = file_tasks(etl)
    whole = [parse_mermaid(b) for b in mermaid_blocks(first.output)]
    assert (dict(enumerate(sorted(tasks))), edges) in [
        (dict(enumerate(sorted(labels.values()))), e) for labels, e in whole
    ]  # each create drawn whole, this one among them
    applied = run_cli("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output

    etl.write_text(
        etl.read_text() + "  - name: notify\n    command: echo done\n    depends_on: [report]\n"
    )
    result = run_cli("plan", "-o", "markdown", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    (block,) = mermaid_blocks(result.output)
    labels, drawn = parse_mermaid(block)
    assert sorted(labels.values()) == sorted([*tasks, "notify"])
    assert drawn == {*edges, ("report", "notify")}
    assert marked(block) == {"added": {"notify"}}
    assert re.search(r"^  t\d+ ==> t\d+$", block, re.M) and "linkStyle" in block
    assert "Legend: green = added (edges: thick)</sub>" in result.output


def test_plan_markdown_shows_a_renamed_task_as_one_changed_node(example_repo: Path) -> None:
    """The plan compares the remote under the new task names; the picture names the old one."""
    applied = run_cli("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    etl = example_repo / "flows" / "sales" / "daily" / "sales_etl.yaml"
    tasks, edges = file_tasks(etl)
    etl.write_text(etl.read_text().replace("- name: report\n", "- name: publish\n"))
    result = run_cli("plan", "-o", "markdown")
    assert "task renamed: report -&gt; publish" in result.output, result.output
    (block,) = mermaid_blocks(result.output)
    labels, drawn = parse_mermaid(block)
    assert sorted(labels.values()) == sorted([*(tasks - {"report"}), "publish (was report)"])
    assert marked(block) == {"changed": {"publish (was report)"}}
    assert "linkStyle" not in block and len(drawn) == len(edges)
