"""A picture model (graph.py) laid out and drawn as an SVG document, with no external program.

The layout is grandalf's Sugiyama (layered) layout, the one Graphviz's dot draws: upstreams
above, each edge pointing down to what waits for it. grandalf breaks cycles itself (by
reversing feedback edges), so even a graph validation would refuse is drawn and never loops.
Each connected part is laid out alone; the parts are packed in rows so a workflow of many
unconnected tasks stays readable instead of one very wide line.
"""

from __future__ import annotations

import contextlib
import html
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from grandalf.graphs import Edge as GEdge
from grandalf.graphs import Graph as GGraph
from grandalf.graphs import Vertex
from grandalf.layouts import SugiyamaLayout

from gitsync.graph import ADDED, CHANGED, REMOVED, TASK, Graph
from gitsync.printable import printable

Point = tuple[float, float]

FONT = 12
CHAR = 7.4  # width of one character of a 12 px monospace font; a wide (CJK) one counts twice
HEIGHT = 30.0
PAD = 20.0  # around the picture and between parts
ROW_WIDTH = 1200.0  # parts are packed left to right, a new row past this width

_FILL = {"": "#f6f8fa", ADDED: "#dafbe1", REMOVED: "#ffebe9", CHANGED: "#fff8c5"}
_STROKE = {"": "#57606a", ADDED: "#1a7f37", REMOVED: "#cf222e", CHANGED: "#9a6700"}


@dataclass
class _Box:
    """grandalf's view of a vertex: its size in, its centre out."""

    w: float
    h: float
    xy: Point = (0.0, 0.0)


@dataclass
class _Route:
    """grandalf's view of an edge: the points it passes through, centre to centre."""

    points: list[Point] = field(default_factory=list)

    def setpath(self, points: list[Any]) -> None:
        self.points = [(float(x), float(y)) for x, y in points]


def text_width(text: str) -> float:
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")
    return (len(text) + wide) * CHAR


def svg(graph: Graph, title: str = "", classes: Mapping[str, str] | None = None) -> str:
    """The SVG document of ``graph``: one <g class="node"> with a <text> per node, one
    <path class="edge"> with an arrowhead per edge. ``classes`` adds a CSS class to nodes by
    id (the dashboard colours tasks by their state so)."""
    extra = classes or {}
    labels = [printable(n.label) for n in graph.nodes]
    boxes = [_Box(max(40.0, text_width(label) + 20.0), HEIGHT) for label in labels]
    index = {n.id: i for i, n in enumerate(graph.nodes)}
    ends = [(index[e.source], index[e.target]) for e in graph.edges]
    routes = _layout(boxes, ends)
    width = max((b.xy[0] + b.w / 2 for b in boxes), default=0.0) + PAD
    height = max((b.xy[1] + b.h / 2 for b in boxes), default=0.0) + PAD
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="{FONT}">',
        f"<title>{_x(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/>'
        "</marker></defs>",
        '<g class="edges" fill="none">',
    ]
    for edge, (a, b), route in zip(graph.edges, ends, routes, strict=True):
        dash = ' stroke-dasharray="5 4"' if edge.mark == REMOVED else ""
        d = _path(route, boxes[a], boxes[b], a == b)
        out.append(
            f'<path class="{_classes("edge", edge.mark)}" d="{d}" '
            f'stroke="{_STROKE[edge.mark]}"{dash} marker-end="url(#arrow)"/>'
        )
    out += ["</g>", '<g class="nodes">']
    for node, box, label in zip(graph.nodes, boxes, labels, strict=True):
        x, y = box.xy
        dash = ' stroke-dasharray="5 4"' if node.mark == REMOVED or node.kind != TASK else ""
        radius = 4 if node.kind == TASK else 14
        css = _x(_classes("node", node.kind, node.mark, extra.get(node.id, "")))
        out.append(
            f'<g class="{css}"><rect x="{x - box.w / 2:.1f}" '
            f'y="{y - box.h / 2:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="{radius}" '
            f'fill="{_FILL[node.mark]}" stroke="{_STROKE[node.mark]}"{dash}/>'
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" dominant-baseline="central">'
            f"{_x(label)}</text></g>"
        )
    out += ["</g>", "</svg>"]
    return "\n".join(out) + "\n"


def _classes(*names: str) -> str:
    return " ".join(n for n in names if n)


def _x(text: str) -> str:
    return html.escape(printable(text), quote=True)


def _layout(boxes: list[_Box], ends: list[tuple[int, int]]) -> list[_Route]:
    """Centres in ``boxes``; the route of each edge, in order."""
    vertices = [Vertex(i) for i in range(len(boxes))]
    for vertex, box in zip(vertices, boxes, strict=True):
        vertex.view = box
    edges = [GEdge(vertices[a], vertices[b]) for a, b in ends]
    routes = [_Route() for _ in edges]
    for edge, route in zip(edges, routes, strict=True):
        edge.view = route
    feedback = {id(edges[i]) for i in _feedback(len(boxes), ends)}
    x0 = y0 = PAD
    row_height = 0.0
    for part in GGraph(vertices, edges).C:
        layout = SugiyamaLayout(part)
        layout.xspace, layout.yspace = 24, 36
        # our own roots and cycle-breaking edges: grandalf's search for them recurses once
        # per task of a chain, past Python's limit on a long one
        roots = [v for v in part.sV if not v.e_in()]
        layout.init_all(roots=roots, inverted_edges=[e for e in part.sE if id(e) in feedback])
        with _recursion_room(sum(len(layer) for layer in layout.layers)):
            layout.draw()
        members: list[_Box] = [v.view for v in part.sV]
        left = min(b.xy[0] - b.w / 2 for b in members)
        top = min(b.xy[1] - b.h / 2 for b in members)
        right = max(b.xy[0] + b.w / 2 for b in members)
        bottom = max(b.xy[1] + b.h / 2 for b in members)
        if x0 > PAD and x0 + right - left > ROW_WIDTH:
            x0, y0, row_height = PAD, y0 + row_height + PAD, 0.0
        dx, dy = x0 - left, y0 - top
        for box in members:
            box.xy = (box.xy[0] + dx, box.xy[1] + dy)
        for e in part.sE:
            e.view.points = [(x + dx, y + dy) for x, y in e.view.points]
        x0 += right - left + PAD
        row_height = max(row_height, bottom - top)
    return routes


def _feedback(count: int, ends: list[tuple[int, int]]) -> set[int]:
    """The edges (by index) a depth-first search finds closing a cycle: reversed, the rest is
    a DAG. Iterative, so no graph is too deep for it."""
    out: dict[int, list[tuple[int, int]]] = {v: [] for v in range(count)}
    for i, (a, b) in enumerate(ends):
        out[a].append((i, b))
    state = [0] * count  # 0 unseen, 1 on the current path, 2 done
    back: set[int] = set()
    for start in range(count):
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, iter(out[start]))]
        while stack:
            node, todo = stack[-1]
            step = next(todo, None)
            if step is None:
                state[node] = 2
                stack.pop()
            elif state[step[1]] == 1:
                back.add(step[0])
            elif state[step[1]] == 0:
                state[step[1]] = 1
                stack.append((step[1], iter(out[step[1]])))
    return back


@contextlib.contextmanager
def _recursion_room(depth: int) -> Iterator[None]:
    """grandalf places blocks recursively, up to one call per node of the layout (dummy
    nodes of long edges included): room for that above the current depth, then as it was.
    Python-to-Python calls use no C stack (3.11+), so a deep limit is safe here."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, limit + depth))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def _path(route: _Route, start: _Box, end: _Box, loop: bool) -> str:
    """The edge from the border of ``start`` to the border of ``end``."""
    if loop:  # a task that waits for itself: a small loop on its right side
        x, y = start.xy[0] + start.w / 2, start.xy[1]
        return f"M{x:.1f},{y - 6:.1f} C{x + 24:.1f},{y - 20:.1f} {x + 24:.1f},{y + 20:.1f} " + (
            f"{x:.1f},{y + 6:.1f}"
        )
    points = route.points or [start.xy, end.xy]
    if len(points) < 2:
        points = [start.xy, end.xy]
    points = [
        _border(start, points[1]),
        *points[1:-1],
        _border(end, points[-2]),
    ]
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _border(box: _Box, toward: Point) -> Point:
    """Where the line from the centre of ``box`` to ``toward`` leaves the box."""
    (cx, cy), (tx, ty) = box.xy, toward
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return box.xy
    scale = min(
        (box.w / 2) / abs(dx) if dx else float("inf"),
        (box.h / 2) / abs(dy) if dy else float("inf"),
    )
    scale = min(scale, 1.0)
    return (cx + dx * scale, cy + dy * scale)
