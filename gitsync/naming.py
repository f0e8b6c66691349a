"""A target's names on the service: the file's name with the target's ``name_prefix`` and
``name_suffix``. One tree then deploys to dev and prod in one organization, where workflow
names are unique. The files never carry the affixes: plan and apply add them (references
between workflows included), pull removes them. This module is the only place that maps."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from gitsync.model import Dependency, Tree, Workflow
from gitsync.plan_types import RemoteFlow, RemoteState

_TAG = re.compile(r"(?:\A|\n\n)\[gitsync target: ([^\]\n]+)\]\Z")


@dataclass(frozen=True)
class Naming:
    prefix: str = ""
    suffix: str = ""
    target: str = ""  # whose flows carry the tag line (only a target with affixes tags)

    @property
    def tag(self) -> str:
        """The target named in its flows' descriptions and lock; "" for plain names."""
        return "" if self.plain else self.target

    @property
    def plain(self) -> bool:
        return not (self.prefix or self.suffix)

    def remote(self, name: str) -> str:
        """The service's name of the file's workflow ``name``."""
        return f"{self.prefix}{name}{self.suffix}" if name else name

    def file(self, name: str) -> str | None:
        """The file's name of the service's ``name``; None when it lacks the affixes (it is
        not this target's: another target's flow, or one made by hand)."""
        if self.plain:
            return name
        fits = name.startswith(self.prefix) and name.endswith(self.suffix)
        if not fits or len(name) <= len(self.prefix) + len(self.suffix):
            return None
        return name[len(self.prefix) : len(name) - len(self.suffix)]

    def name_problem(self, name: str) -> str | None:
        """Why the service would refuse the file's ``name`` under this target's affixes."""
        from gitsync.schema_check import name_problem

        if self.plain:
            return None
        why = name_problem(self.remote(name))
        return f"on target '{self.target}' (its name affixes) {why}" if why else None

    def to_remote(self, tree: Tree) -> Tree:
        """The files' tree under the service's names, references renamed alike."""
        if self.plain:
            return tree
        workflows = tuple(
            replace(self._renamed(w, self.remote), description=self._tagged(w.description))
            for w in tree.workflows
        )
        return replace(tree, workflows=workflows)

    def own(self, state: RemoteState) -> RemoteState:
        """The state without the root's flows another target manages, so a plan never
        changes nor prunes them: a target with affixes keeps the flows with its names whose
        description carries its tag (or no tag: a flow from before tags, or made by hand); a
        plain target leaves out every tagged flow."""
        flows = tuple(f for f in state.flows if self._mine(f))
        if len(flows) == len(state.flows):
            return state
        others = {  # their names are taken: a file of that name is a conflict, not a create
            f.workflow.name: "Workflow/"
            + "/".join((*state.root, *f.workflow.directory))
            + f" ({self._why_not_mine(f)})"
            for f in state.flows
            if not self._mine(f)
        }
        return replace(state, flows=flows, outside={**state.outside, **others})

    def _mine(self, flow: RemoteFlow) -> bool:
        found = _TAG.search(flow.retired.text if flow.retired else flow.workflow.description)
        if self.plain:
            return found is None
        named = self.file(flow.workflow.name) is not None
        return named and (found is None or found.group(1) == self.tag)

    def to_files(self, state: RemoteState) -> tuple[RemoteState, list[tuple[str, str]]]:
        """The state under the files' names, and the flows left out with the reason (flows
        in the root without this target's affixes)."""
        kept: list[RemoteFlow] = []
        skipped: list[tuple[str, str]] = []
        for flow in state.flows:
            if not self._mine(flow):
                where = "/".join(flow.workflow.path)
                skipped.append((where, self._why_not_mine(flow)))
                continue
            wf = self._renamed(flow.workflow, self._back)
            kept.append(
                replace(flow, workflow=replace(wf, description=self._untagged(wf.description)))
            )
        return replace(state, flows=tuple(kept)), skipped

    def _tagged(self, description: str) -> str:
        line = f"[gitsync target: {self.tag}]"
        return f"{description}\n\n{line}" if description else line

    def _untagged(self, description: str) -> str:
        found = _TAG.search(description)
        return description[: found.start()] if found else description

    def _back(self, name: str) -> str:
        return self.file(name) or name  # a reference outside this target's names stays

    def _why_not_mine(self, flow: RemoteFlow) -> str:
        if self.plain or self.file(flow.workflow.name) is not None:
            return "another target manages it (its description names that target)"
        parts = [f"prefix '{self.prefix}'"] if self.prefix else []
        parts += [f"suffix '{self.suffix}'"] if self.suffix else []
        return f"not this target's: its name lacks the {' and '.join(parts)}"

    @staticmethod
    def _renamed(wf: Workflow, rename: Callable[[str], str]) -> Workflow:
        tasks = tuple(
            replace(t, depends_on=tuple(_dep(d, rename) for d in t.depends_on)) for t in wf.tasks
        )
        old = rename(wf.renamed_from) if wf.renamed_from else ""
        return replace(wf, name=rename(wf.name), tasks=tasks, renamed_from=old)


def _dep(dep: Dependency, rename: Callable[[str], str]) -> Dependency:
    return replace(dep, flow=rename(dep.flow)) if dep.flow else dep
