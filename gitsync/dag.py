"""Dependency graphs: cycle detection for validation, topological order for the runner."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping


def find_cycles(order: Iterable[str], upstreams: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per strongly connected group, each as [a, b, ..., a] in run order.

    ``upstreams[x]`` names what must run before ``x``; unknown names and self-loops are ignored
    (validation reports those separately). Deterministic: follows ``order``.
    """
    nodes = list(dict.fromkeys(order))
    known = set(nodes)
    down: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes:
        for up in upstreams.get(node, ()):
            if up in known and up != node:
                down[up].append(node)

    # Tarjan's algorithm, iterative so deep graphs do not hit the recursion limit.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = down[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    position = {n: i for i, n in enumerate(nodes)}
    cycles = [_cycle_in(set(g), down, position) for g in groups]
    return sorted(cycles, key=lambda c: position[c[0]])


def _cycle_in(
    group: set[str], down: Mapping[str, list[str]], position: Mapping[str, int]
) -> list[str]:
    start = min(group, key=position.__getitem__)
    path = [start]
    seen = {start}
    node = start
    while True:
        nexts = sorted((c for c in down[node] if c in group), key=position.__getitem__)
        if start in nexts:
            return [*path, start]
        node = next((c for c in nexts if c not in seen), nexts[0])
        if node in seen:  # walked into a loop not through start: report that loop
            loop = path[path.index(node) :]
            return [*loop, node]
        path.append(node)
        seen.add(node)


def topological_order(order: Iterable[str], upstreams: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes with every upstream before them, ties kept in ``order``. Raises on a cycle."""
    nodes = list(dict.fromkeys(order))
    position = {n: i for i, n in enumerate(nodes)}
    waiting = {n: {u for u in upstreams.get(n, ()) if u in position and u != n} for n in nodes}
    down: dict[str, list[str]] = {n: [] for n in nodes}
    for node, ups in waiting.items():
        for up in ups:
            down[up].append(node)
    ready = [(position[n], n) for n in nodes if not waiting[n]]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        result.append(node)
        for child in down[node]:
            waiting[child].discard(node)
            if not waiting[child]:
                heapq.heappush(ready, (position[child], child))
    if len(result) < len(nodes):
        stuck = [n for n in nodes if waiting[n]]
        raise ValueError("dependency cycle among: " + ", ".join(stuck))
    return result
