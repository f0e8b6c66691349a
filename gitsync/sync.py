"""The main job's steps, each a function the CLI calls: connect, desired tree, plan, apply."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gitsync import guards, inspection, plan_retired, references, remote, report, steps
from gitsync import plan as planner
from gitsync.applying import ApplyResult
from gitsync.client import Client, Credentials
from gitsync.collecting import collecting_rarely
from gitsync.config import Settings, Target
from gitsync.embedded import LocalEngine, local_engine
from gitsync.errors import ConfigError, InvalidFilesError
from gitsync.forked import ChildFailed, Forked
from gitsync.guards import OnActiveRuns
from gitsync.model import Tree, Workflow
from gitsync.substitution import Secrets
from gitsync.validate import Problem, ValidationResult, name_problems, validate_paths

log = logging.getLogger("gitsync.sync")


@contextmanager
def connect(settings: Settings, target: Target) -> Iterator[Client]:
    """A client for ``target``; for the embedded target, the engine live on the data folder
    (one is started for as long as it is used when none is)."""
    with connect_engine(settings, target) as (client, _):
        yield client


@contextmanager
def connect_engine(
    settings: Settings, target: Target
) -> Iterator[tuple[Client, LocalEngine | None]]:
    """``connect``, and the embedded target's engine (None for a remote target): whether it
    ends with this command says what becomes of a run when the command is stopped."""
    if target.embedded:
        with (
            local_engine(settings.engine_dir, settings.engine_extensions) as engine,
            Client(
                engine.url, target.org_id, target.user_id, max_concurrency=target.concurrency
            ) as client,
        ):
            yield client, engine
        return
    found = settings.credentials(target)
    credentials = Credentials(*found) if found else None
    with Client(
        target.url,
        target.org_id,
        target.user_id,
        credentials,
        timeout=target.timeout,
        max_concurrency=target.concurrency,
    ) as client:
        yield client, None


def desired_tree(settings: Settings, target: Target | None = None) -> Tree:
    """The validated files' tree for ``target`` (default: the chosen one), as desired_files."""
    return desired_files(settings, target or settings.target()).tree()


def desired_files(settings: Settings, target: Target) -> ValidationResult:
    """The files validated for ``target`` (its variables and secrets resolved), or
    InvalidFilesError carrying every problem (nothing is sent)."""
    result = _validate_files(settings, target)
    _stop_if_invalid(result, "nothing was sent")
    return result


def secrets_of_files(settings: Settings, target: Target, strict: bool = True) -> Secrets:
    """The secrets the files reference for ``target`` (for pull, which writes them back as
    references); when ``strict``, ConfigError if one is not in the environment."""
    if not settings.flows.is_dir():
        return Secrets()
    secrets = _validate_files(settings, target).secrets
    if strict and secrets.missing:
        names = ", ".join(sorted(secrets.missing))
        raise ConfigError(
            f"the files reference environment variables that are not set ({names}); pull "
            "needs them to write secret values back as references, so nothing was written"
        )
    return secrets


def _require_flows_folder(settings: Settings) -> None:
    if not settings.flows.is_dir():
        raise InvalidFilesError(
            f"no flows folder at {settings.flows} (set 'flows' in "
            "gitsync.yaml, or run `gitsync init`)",
            [],
        )


def _validate_files(settings: Settings, target: Target) -> ValidationResult:
    _require_flows_folder(settings)
    with collecting_rarely():  # every file's workflow lives on: nothing for the collector
        cache = settings.validation_cache()
        substitution = settings.substitution(target)
        result = validate_paths([settings.flows], settings.flows, cache, substitution)
    result.secrets.suspects = substitution.suspects()
    named = name_problems(target.naming(), result.workflows, settings.flows)
    result.problems = sorted({*result.problems, *named})
    return result


def _stop_if_invalid(result: ValidationResult, after: str) -> None:
    if not result.ok:
        raise InvalidFilesError(
            f"{report.plural(len(result.problems), 'problem')} in the workflow files; {after}",
            result.problems,
        )


_NO_PLAN = "no plan was made"


class FilesBeingChecked:
    """The files, validated in a forked child (forked.py) while plan reads the service: the
    two then use both cores instead of taking turns at one GIL. Where forking is not possible
    the files are validated here, at once, as ``desired_tree`` does.

    Only plan does this: reading is all it ever sends, and it stops reading as soon as the
    files turn out invalid. Apply validates before it sends anything, its lock included.

    The files' problems come first: when anything inside the ``with`` block fails (connecting,
    credentials, a read) and the files are invalid, their problems are raised instead.
    """

    def __init__(self, settings: Settings, target: Target | None = None) -> None:
        _require_flows_folder(settings)
        target = target or settings.target()
        self._settings = settings
        self._target = target
        self._child: Forked[ValidationResult] | None = None
        self._result: ValidationResult | None = None
        if Forked.possible():
            try:
                self._child = Forked(lambda: _validate_files(settings, target))
            except OSError as e:
                log.debug("files checked here: no process could be forked (%s)", e)
        if self._child is None:
            self._result = _validate_files(settings, target)
        else:
            log.debug("files checked in a forked child while the service is read")

    @property
    def forked(self) -> bool:
        """Whether a forked child checks the files (else they were checked at once, here)."""
        return self._child is not None

    def stop_if_invalid(self) -> None:
        """InvalidFilesError if the files are known to be invalid by now; never waits."""
        if self._result is not None or (self._child is not None and self._child.ready()):
            _stop_if_invalid(self._outcome(), _NO_PLAN)

    def tree(self) -> Tree:
        """The desired tree (waits for the child), or InvalidFilesError."""
        result = self._outcome()
        _stop_if_invalid(result, _NO_PLAN)
        return result.tree()

    def secrets(self) -> Secrets:
        """What came from the environment (waits for the child)."""
        return self._outcome().secrets

    def _outcome(self) -> ValidationResult:
        if self._result is None:
            assert self._child is not None
            try:
                self._result = self._child.result()
            except ChildFailed as e:
                log.debug("the files' child failed, so they are checked here: %s", e)
                self._result = _validate_files(self._settings, self._target)  # the real outcome
            finally:
                self._child.close()
        return self._result

    def close(self) -> None:
        if self._child is not None:
            self._child.close()

    def __enter__(self) -> FilesBeingChecked:
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        try:
            if isinstance(error, Exception) and not isinstance(error, InvalidFilesError):
                _stop_if_invalid(self._outcome(), _NO_PLAN)  # replaces the error, if invalid
        finally:
            self.close()


@dataclass(frozen=True)
class Planned:
    plan: planner.Plan
    state: planner.RemoteState


def make_plan(
    client: Client,
    target: Target,
    desired: Tree | FilesBeingChecked,
    prune: bool = False,
    allow_mass_delete: bool = False,
    progress: steps.Progress = steps.no_progress,
    checks: Checks | None = None,
    secrets: Secrets | None = None,
) -> Planned:
    """Read the target and compare. Files still being checked stop the reading as soon as
    they are known to be invalid, and the comparison waits for them. Then the guards
    (guards.py) look at the flows that change."""
    if isinstance(desired, Tree):
        state = remote.read_state(client, target.root, progress)
        tree = desired
    else:

        def watch(label: str, done: int, total: int) -> None:
            desired.stop_if_invalid()
            progress(label, done, total)

        desired.stop_if_invalid()
        state = remote.read_state(client, target.root, watch)
        tree = desired.tree()
        secrets = desired.secrets()
    naming = target.naming()
    tree = naming.to_remote(tree)
    state = naming.own(state)
    checks = checks or Checks()
    retention, now = planner.Retention(*target.retention), checks.now()
    plan = planner.compute(tree, state, prune, allow_mass_delete, retention, now)
    if plan_retired.outside_needed(plan, state, retention, now):  # it retires or deletes
        found, unread = inspection.outside_referrers(client, state, progress)
        state = replace(state, outside_referrers=found)
        plan = planner.compute(tree, state, prune, allow_mass_delete, retention, now)
        plan = replace(plan, notes=(*plan.notes, *unread))
    plan = _guarded(client, plan, tree, state, checks)
    return Planned(masked(plan, secrets, naming.file) if secrets is not None else plan, state)


def masked(
    plan: planner.Plan, secrets: Secrets, file_name: Callable[[str], str | None] = lambda n: n
) -> planner.Plan:
    """The plan with no secret's value in its change lines: a sensitive field's change says
    so, and any other line loses the values (substitution.py)."""
    if not secrets.values and not secrets.suspects:
        return plan
    changes = tuple(
        _masked_change(c, secrets, _file_name(c, file_name))
        if secrets.values or any(_suspect(f.before, secrets) for f in c.fields)
        else c  # untouched: a create's document is made only when asked
        for c in plan.changes
    )
    return replace(plan, changes=changes, notes=tuple(secrets.mask(n) for n in plan.notes))


def _suspect(value: Any, secrets: Secrets) -> bool:
    """Whether ``value`` holds, whole or in a mapping or list, a value that may be a secret."""
    if isinstance(value, Mapping):
        return any(_suspect(v, secrets) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_suspect(v, secrets) for v in value)
    return secrets.sensitive(value)


def _masked_change(change: planner.Change, secrets: Secrets, name: str) -> planner.Change:
    """One change with its lines, fields and a create's document masked: a field is
    sensitive when the files mark it so, or either side holds a secret's whole value, or
    the target's side a suspect one (a reference removed or replaced leaves the old value
    on the service)."""
    more = frozenset(
        f.path
        for f in change.fields
        if secrets.sensitive(f.before) or secrets.sensitive(f.after, remote=False)
    )

    def value(name: str, path: str, value: Any, remote: bool = False) -> Any:
        return secrets.mask_value(name, path, value, more, remote)

    return replace(
        change,
        lines=secrets.mask_lines(name, change.lines, more),
        note=secrets.mask(change.note),
        blocked=secrets.mask(change.blocked),
        reason=secrets.mask(change.reason),
        fields=tuple(
            replace(
                f,
                before=value(name, f.path, f.before, remote=True),
                after=value(name, f.path, f.after),
            )
            for f in change.fields
        ),
        details=None if (created := change.created()) is None else value(name, "", created),
    )


def _file_name(change: planner.Change, file_name: Callable[[str], str | None]) -> str:
    """The workflow's name in the files (the secrets know fields by it), not the target's."""
    name = change.path[-1] if change.path else ""
    return file_name(name) or name


@dataclass(frozen=True)
class Checks:
    """How plan and apply check a plan before it is shown (guards.py)."""

    flows: Path | None = None  # the flows folder, to say where a dangling reference is
    on_active_runs: OnActiveRuns = OnActiveRuns.STOP
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


def _guarded(
    client: Client, plan: planner.Plan, tree: Tree, state: planner.RemoteState, checks: Checks
) -> planner.Plan:
    """The plan checked by guards.py: InvalidFilesError for references that point nowhere
    (nothing is sent), blocked changes, run and fire-time lines."""
    found = inspection.dangling(client, plan, tree, state)
    if found:
        problems = [_located(d, checks.flows) for d in found]
        raise InvalidFilesError(
            f"{report.plural(len(problems), 'reference')} to workflows or tasks that are "
            f"neither in the files nor on the target; {_NO_PLAN}",
            sorted(problems),
        )
    if not plan.changes:
        return plan
    facts = inspection.read_facts(client, plan, state, checks.now())
    return guards.guard(plan, state, facts, checks.on_active_runs)


def _located(dangling: references.Dangling, flows: Path | None) -> Problem:
    if flows is None:
        return Problem("/".join(dangling.workflow.path) + ".yaml", 1, 1, dangling.message)
    path = references.file_of(flows, dangling.workflow)
    line, col = references.position(path, dangling)
    return Problem(str(path), line, col, dangling.message)


@contextmanager
def locked(
    client: Client,
    target: Target,
    owner: str,
    force_unlock: bool = False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Iterator[None]:
    """Hold the target's apply lock for the duration; released even on failure."""
    tag = target.naming().tag
    if force_unlock:
        remote.force_unlock(client, target.root, tag)
    lock_id = remote.acquire_lock(client, target.root, owner, now(), tag)
    try:
        yield
    finally:
        remote.release_lock(client, lock_id)


def apply_one(
    client: Client, target: Target, workflow: Workflow, owner: str, force_unlock: bool = False
) -> ApplyResult:
    """Make the target hold exactly this one workflow as its file says; nothing else changes."""
    with locked(client, target, owner, force_unlock):
        naming = target.naming()
        state = naming.own(remote.read_state(client, target.root))
        plan = planner.compute(naming.to_remote(Tree.of([workflow])), state, guess_renames=False)
        runs = inspection.RunGuard(client, state, inspection.RunPolicy())  # never kills a run
        return remote.apply(client, plan, state, runs=runs)
