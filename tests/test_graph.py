"""``gitsync graph``: Mermaid, dot and SVG of a workflow file, checked against the file."""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gitsync.codec.document import workflow_from_document
from gitsync.graph import Graph, dot, graph_of, mermaid
from gitsync.graph_svg import svg
from gitsync.model import Dependency, Task, Workflow
from tests.conftest import EXAMPLES, run_cli

SALES_ETL = EXAMPLES / "sales" / "daily" / "sales_etl.yaml"
SVG = "{http://www.w3.org/2000/svg}"
ODD_NAMES = [
    'say "hi"',
    "a]b[c",
    "x --> y",
    "```mermaid",
    "日本語 ✓ ñ",
    "a..b",
    "#quot; #35;",
    "<img src=x onerror=alert(1)>",
    "%% not a comment",
    "end",
    "{curly} (round) |pipe|",
    "a;b:c&d",
    "\u202eevil",
]
# as shown: the one unprintable character (a right-to-left override) escaped, as everywhere
# gitsync prints a name, so it cannot reorder what a reviewer reads
SHOWN = [*ODD_NAMES[:-1], "\\u202eevil"]


def file_tasks(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The task names and (upstream, task) edges the file itself states."""
    import yaml

    wf = workflow_from_document(yaml.safe_load(path.read_text()), path.stem)
    edges = {(d.label(), t.name) for t in wf.tasks for d in t.depends_on}
    return {t.name for t in wf.tasks}, edges


def unescape_mermaid(text: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


def parse_mermaid(text: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Node id -> label and edges as (label, label); fails on any line it does not expect."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    labels: dict[str, str] = {}
    ids: list[tuple[str, str]] = []
    for line in lines[1:]:
        node = re.fullmatch(r"  ([tfr]\d+)(\[\[|\(\[|\[)\"([\w .#;-]*)\"(\]\]|\]\)|\])", line)
        edge = re.fullmatch(r"  ([tfr]\d+) (-->|==>|-\.->) ([tfr]\d+)", line)
        if node:
            labels[node.group(1)] = unescape_mermaid(node.group(3))
        elif edge:
            ids.append((edge.group(1), edge.group(3)))
        else:
            assert re.fullmatch(r"  (classDef|class|linkStyle) [\w ,:#.;-]+", line), line
    return labels, {(labels[a], labels[b]) for a, b in ids}


def parse_dot(text: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    quoted = r'"((?:[^"\\]|\\.)*)"'

    def unquote(s: str) -> str:
        return re.sub(r"\\(.)", r"\1", s)

    outside = re.sub(quoted, "", text)  # braces and brackets balanced outside strings
    assert '"' not in outside and outside.count("{") == outside.count("}") == 1
    assert outside.count("[") == outside.count("]")
    labels = {
        m.group(1): unquote(m.group(2))
        for m in re.finditer(rf"^  {quoted} \[label={quoted}", text, re.M)
    }
    edges = {
        (labels[m.group(1)], labels[m.group(2)])
        for m in re.finditer(rf"^  {quoted} -> {quoted}", text, re.M)
    }
    return labels, edges


def svg_parts(text: str) -> tuple[list[str], int]:
    root = ET.fromstring(text.encode())
    assert root.tag == f"{SVG}svg"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    edges = [p for p in root.iter(f"{SVG}path") if "edge" in (p.get("class") or "").split()]
    assert all(p.get("marker-end") == "url(#arrow)" for p in edges)
    return texts, len(edges)


def workflow(names: list[str], edges: list[tuple[str, str]]) -> Workflow:
    ups: dict[str, list[Dependency]] = {n: [] for n in names}
    for a, b in edges:
        ups[b].append(Dependency(task=a))
    return Workflow("w", tasks=tuple(Task(n, depends_on=tuple(ups[n])) for n in names))


# -- the example file through the command ------------------------------------------------------


def test_mermaid_names_every_task_and_edge_of_the_file() -> None:
    result = run_cli("graph", str(SALES_ETL))
    assert result.exit_code == 0, result.output
    labels, edges = parse_mermaid(result.output)
    tasks, file_edges = file_tasks(SALES_ETL)
    assert sorted(labels.values()) == sorted(tasks)
    assert edges == file_edges and len(result.output.splitlines()) == 1 + len(tasks) + len(edges)


def test_svg_has_every_task_name_and_an_edge_element_per_edge() -> None:
    result = run_cli("graph", "--format", "svg", str(SALES_ETL))
    assert result.exit_code == 0, result.output
    texts, edge_count = svg_parts(result.output)
    tasks, file_edges = file_tasks(SALES_ETL)
    assert sorted(texts) == sorted(tasks)
    assert edge_count == len(file_edges)


def test_dot_is_balanced_and_has_every_edge() -> None:
    result = run_cli("graph", "--format", "dot", str(SALES_ETL))
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith('digraph "sales_etl" {') and text.rstrip().endswith("}")
    labels, edges = parse_dot(text)
    tasks, file_edges = file_tasks(SALES_ETL)
    assert sorted(labels.values()) == sorted(tasks) and edges == file_edges


def test_bad_input_is_reported_as_validate_reports_it(in_tmp: Path) -> None:
    bad = in_tmp / "flows" / "loop.yaml"
    bad.parent.mkdir()
    bad.write_text(
        "tasks:\n  - name: a\n    command: x\n    depends_on: [b]\n"
        "  - name: b\n    command: x\n    depends_on: [a]\n"
    )
    graphed, validated = run_cli("graph", str(bad)), run_cli("validate", str(bad))
    assert graphed.exit_code == validated.exit_code == 1
    assert graphed.output == validated.output and "dependency cycle: a -> b -> a" in graphed.output
    missing = run_cli("graph", str(in_tmp / "nope.yaml"))
    assert missing.exit_code == 1 and "no such file or folder" in missing.output
    folder = run_cli("graph", str(bad.parent))
    assert folder.exit_code == 1 and "is a folder" in folder.output
    usage = run_cli("graph", "--format", "png", str(bad))
    assert usage.exit_code == 1 and "png" in usage.output


def test_odd_names_and_references_render_in_every_format(in_tmp: Path) -> None:
    path = in_tmp / "flows" / "odd.yaml"
    path.parent.mkdir()
    tasks = [{"name": n, "command": "true"} for n in ODD_NAMES]
    for before, after in itertools.pairwise(tasks):
        after["depends_on"] = [before["name"]]
    tasks[0]["depends_on"] = [{"flow": 'other "flow"'}, {"flow": "o]ther", "task": "t-->x"}]
    path.write_text(json.dumps({"tasks": tasks}))  # JSON is YAML: every name quoted safely
    mermaid_out = run_cli("graph", str(path))
    assert mermaid_out.exit_code == 0, mermaid_out.output
    labels, edges = parse_mermaid(mermaid_out.output)
    refs = ['other "flow" (workflow)', "o]ther.t-->x"]
    assert sorted(labels.values()) == sorted([*SHOWN, *refs])
    assert (ODD_NAMES[2], ODD_NAMES[3]) in edges and (refs[0], ODD_NAMES[0]) in edges
    assert "```" not in mermaid_out.output and "<" not in mermaid_out.output

    dot_out = run_cli("graph", "--format", "dot", str(path)).output
    dot_labels, dot_edges = parse_dot(dot_out)
    assert sorted(dot_labels.values()) == sorted([*SHOWN, *refs])
    assert len(dot_edges) == len(edges)

    svg_out = run_cli("graph", "--format", "svg", str(path)).output
    texts, edge_count = svg_parts(svg_out)
    assert sorted(texts) == sorted([*SHOWN, *refs])
    assert edge_count == len(edges) and "<img" not in svg_out


# -- shapes of graph ---------------------------------------------------------------------------


def test_one_task() -> None:
    graph = graph_of(workflow(["only"], []))
    assert parse_mermaid(mermaid(graph)) == ({"t0": "only"}, set())
    assert svg_parts(svg(graph, "w")) == (["only"], 0)
    assert parse_dot(dot(graph, "w")) == ({"t0": "only"}, set())


def test_no_tasks() -> None:
    graph = graph_of(Workflow("empty"))
    assert svg_parts(svg(graph, "empty")) == ([], 0)
    assert mermaid(graph) == "flowchart TD\n"


@pytest.mark.parametrize("shape", ["chain", "fan", "layers", "apart"])
def test_200_tasks_are_laid_out(shape: str) -> None:
    names = [f"task_{i:03}" for i in range(200)]
    edges = {
        "chain": [(names[i], names[i + 1]) for i in range(199)],
        "fan": [(names[0], n) for n in names[1:]],
        "layers": [(names[i], names[j]) for j in range(10, 200) for i in (j - 10, (j * 7) % j)],
        "apart": [],
    }[shape]
    edges = list(dict.fromkeys(edges))
    graph = graph_of(workflow(names, edges))
    texts, edge_count = svg_parts(svg(graph, "big"))
    assert sorted(texts) == names and edge_count == len(edges)
    root = ET.fromstring(svg(graph, "big").encode())
    assert float(root.get("width") or 0) > 0 and float(root.get("height") or 0) > 0


def test_a_cycle_is_still_drawn() -> None:
    """Validation refuses a cycle; the renderers are given one anyway and must finish."""
    for edges in (
        [("a", "b"), ("b", "c"), ("c", "a")],
        [("a", "b"), ("b", "a"), ("c", "a")],
        [("a", "a"), ("a", "b")],
    ):
        graph = graph_of(workflow(["a", "b", "c"], edges))
        assert svg_parts(svg(graph, "loop")) == (["a", "b", "c"], len(edges))
        assert parse_mermaid(mermaid(graph))[1] == set(edges)
        assert parse_dot(dot(graph, "loop"))[1] == set(edges)


def test_same_graph_same_picture() -> None:
    """Deterministic output: a picture in a pull request changes only when the DAG does."""
    names = [f"n{i}" for i in range(30)]
    graph: Graph = graph_of(workflow(names, [(names[i // 2], names[i]) for i in range(1, 30)]))
    assert svg(graph, "w") == svg(graph, "w")
