"""Saved plans: what ``plan --out FILE`` writes and ``apply FILE`` checks before it applies.

A saved plan holds fingerprints of everything the plan was made from (the files' bytes, each
remote flow read, the directories), the options that shape a plan, and a digest of the
plan's changes. Apply recomputes all of them and refuses, naming what differs, unless every
one is equal: so it applies exactly what was reviewed.

No secret's value reaches the file. The plan shown in it is masked like printed output, and
every hash is taken over data in which each secret value (of any length) is first replaced
by ``***``: a digest is never a hash of a secret.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitsync.changes import Kind
from gitsync.errors import PlanRefused
from gitsync.files import find_workflow_files
from gitsync.plan_types import Path_, Plan, RemoteState
from gitsync.substitution import MASK, Secrets

FORMAT_VERSION = 1
KIND = "gitsync saved plan"
Hide = Callable[[str], str]


def hider(secrets: Secrets) -> Hide:
    """Replaces every secret value, however short, by ``***`` (for hashing only: a short
    value would mask ordinary text in what people read, not in a digest)."""
    values = sorted((v for v in secrets.values if v), key=len, reverse=True)

    def hide(text: str) -> str:
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    return hide


def _plain(value: Any, hide: Hide) -> Any:
    """``value`` as JSON data with every string hidden; dataclasses become objects."""
    if isinstance(value, str):
        return hide(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v, hide) for v in value]
    names = _field_names(type(value))
    if names:
        return {name: _plain(getattr(value, name), hide) for name in names}
    if isinstance(value, enum.Enum):
        return _plain(value.value, hide)
    if isinstance(value, Mapping):
        pairs = ([_plain(k, hide), _plain(v, hide)] for k, v in value.items())
        return sorted(pairs, key=lambda pair: json.dumps(pair[0], sort_keys=True))
    if isinstance(value, set | frozenset):
        return sorted((_plain(v, hide) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return hide(repr(value))


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    """A dataclass's field names (none for any other type), looked up once per type:
    dataclasses.fields on every value was most of the time hashing a thousand flows took."""
    found = _FIELDS.get(kind)
    if found is None:
        is_data = dataclasses.is_dataclass(kind)
        found = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind)) if is_data else ()
    return found


def digest(value: Any, hide: Hide) -> str:
    text = json.dumps(_plain(value, hide), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# -- fingerprints -----------------------------------------------------------------------------


def file_prints(base: Path, flows: Path, config: Path) -> dict[str, str]:
    """Each workflow file's path (from ``base``) -> sha256 of its bytes, and gitsync.yaml's."""
    paths = [*find_workflow_files(flows), config] if flows.is_dir() else [config]
    out = {}
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue  # no gitsync.yaml (the defaults), or gone since the walk: not a file
        out[_relative(path, base)] = hashlib.sha256(data).hexdigest()
    return out


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def flow_prints(state: RemoteState, hide: Hide) -> dict[str, dict[str, Any]]:
    """Each remote flow read: its path in the owned root -> its id and a hash of what was read
    (the decoded workflow, whether gitsync manages it, its retirement)."""
    out: dict[str, dict[str, Any]] = {}
    for flow in state.flows:
        wf = flow.workflow
        read = (wf, flow.managed, flow.retired)
        out["/".join((*wf.directory, wf.name))] = {"id": flow.id, "sha256": digest(read, hide)}
    return out


def dir_prints(state: RemoteState) -> dict[str, str]:
    """Directories inside the owned root -> id. The root and its parents are left out: apply's
    lock makes them when they are missing."""
    n = len(state.root)
    return {
        "/".join(path[n:]): key
        for path, key in state.dirs.items()
        if len(path) > n and path[:n] == state.root
    }


def plan_digest(plan: Plan, root: Path_, hide: Hide, options: Options) -> str:
    """A hash of what the plan sends: each change's kind, path, ids and both workflows, the
    options it is applied with and whether it has changes (so that no hand edit of those
    in the file goes unnoticed).

    Lines, notes and blocks are left out: the guards add fire times and live runs to them,
    which change by the minute, and apply checks those again anyway. Directories on the way
    to the root are left out too: apply's lock makes them before apply plans again."""
    changes = [
        (c.kind, c.path, c.flow_id, c.renamed_from, c.task_renames, c.desired, c.current)
        for c in plan.listed()
        if not (c.kind == Kind.CREATE_DIR and root[: len(c.path)] == c.path)
    ]
    return _digest_of(changes, plan.has_changes, options, hide)


def _digest_of(changes: list[Any], has_changes: bool, options: Options, hide: Hide) -> str:
    return digest({"changes": changes, "has_changes": has_changes, "options": options}, hide)


def empty_digest(options: Options) -> str:
    """The digest of a plan without changes made with ``options``: apply checks a saved
    plan that says it has none against it, without reading the target."""
    return _digest_of([], False, options, lambda text: text)


# -- the document -----------------------------------------------------------------------------


ON_ACTIVE_RUNS = ("stop", "wait", "cancel")  # guards.OnActiveRuns


@dataclass(frozen=True)
class Options:
    """The options that shape a plan: apply FILE uses these, never its own."""

    prune: bool = False
    allow_mass_delete: bool = False
    on_active_runs: str = "stop"


@dataclass(frozen=True)
class SavedPlan:
    gitsync_version: str
    target: str  # the target's name
    target_description: str
    options: Options
    files: Mapping[str, str]  # path -> sha256
    flows: Mapping[str, Mapping[str, Any]]  # path -> {"id", "sha256"}
    directories: Mapping[str, str]  # path -> id
    plan_digest: str
    has_changes: bool
    plan: Any  # the plan as report.plan_json shows it (masked), for people and tools

    def to_json(self) -> str:
        doc = {"format_version": FORMAT_VERSION, "kind": KIND, **dataclasses.asdict(self)}
        return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def made(
    version: str,
    target: tuple[str, str],
    options: Options,
    files: Mapping[str, str],
    plan: Plan,
    state: RemoteState,
    hide: Hide,
    readable: Any,
) -> SavedPlan:
    """The saved plan of ``plan``, made from ``files`` (file_prints) and ``state``;
    ``target`` is its (name, description), ``readable`` the plan as report.plan_json shows it."""
    return SavedPlan(
        gitsync_version=version,
        target=target[0],
        target_description=target[1],
        options=options,
        files=dict(files),
        flows=flow_prints(state, hide),
        directories=dir_prints(state),
        plan_digest=plan_digest(plan, state.root, hide, options),
        has_changes=plan.has_changes,
        plan=readable,
    )


def check_out(path: Path, flows: Path, config: Path) -> None:
    """PlanRefused unless ``path`` is a place for a saved plan: not in the flows folder (it
    would become a workflow file, or replace one), not gitsync.yaml, and either missing or a
    regular file. A symlink is refused, whatever it points to: the plan replaces the file."""
    where = path.parent.resolve() / path.name
    if path.is_symlink():
        why = "it is a symbolic link"
    elif path.exists() and not path.is_file():
        why = "it exists and is not a regular file"
    elif where == config.resolve():
        why = "it is the configuration file"
    elif where.is_relative_to(flows.resolve()):
        why = f"it is inside the flows folder ({flows})"
    else:
        return
    raise PlanRefused(f"{path}: the saved plan cannot be written there: {why}; choose another path")


def write(saved: SavedPlan, path: Path, secrets: Secrets) -> None:
    """Write ``saved`` to ``path`` (via a new temporary file beside it, so a reader never
    sees half of it); a secret still showing anywhere is masked as the CLI masks what it
    prints."""
    text = secrets.mask(saved.to_json())
    temporary: Path | None = None
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise IsADirectoryError(0, "it exists and is not a regular file")
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        temporary = Path(name)
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        temporary.replace(path)
    except OSError as e:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise PlanRefused(f"{path}: the saved plan cannot be written: {e.strerror or e}") from None


class _Bad(Exception):
    """What is wrong with a saved plan's document (becomes one PlanRefused naming the file)."""


def read(path: Path) -> SavedPlan:
    """The saved plan at ``path``, every field checked; PlanRefused naming the file if it is
    missing, corrupt, truncated, of another format or has a field of the wrong shape."""
    try:
        doc = json.loads(path.read_bytes())
        return _parse(doc)
    except OSError as e:
        why = f"the file cannot be read: {e.strerror or e}"
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        why = "the file is not a JSON document (corrupt or truncated?)"
    except _Bad as e:
        why = str(e)
    raise PlanRefused(f"{path}: not a usable saved plan: {why}; run `gitsync plan --out` again")


def _parse(doc: Any) -> SavedPlan:
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise _Bad(f'it is not a {KIND} (no "kind": "{KIND}")')
    if "format_version" not in doc:
        raise _Bad("format_version is missing")
    version = doc.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _Bad(f"format_version is {_shown(version)}; this gitsync reads {FORMAT_VERSION}")
    version_, target = _field(doc, "gitsync_version", str), _field(doc, "target", str)
    description, options = _field(doc, "target_description", str), _field(doc, "options", dict)
    return SavedPlan(
        gitsync_version=version_,
        target=target,
        target_description=description,
        options=Options(
            _field(options, "prune", bool, "options."),
            _field(options, "allow_mass_delete", bool, "options."),
            _on_active_runs(_field(options, "on_active_runs", str, "options.")),
        ),
        files=_strings(_field(doc, "files", dict), "files"),
        flows=_flows(_field(doc, "flows", dict)),
        directories=_strings(_field(doc, "directories", dict), "directories"),
        plan_digest=_field(doc, "plan_digest", str),
        has_changes=_field(doc, "has_changes", bool),
        plan=doc.get("plan"),
    )


def _field(doc: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    value = doc.get(key)
    if key not in doc:
        raise _Bad(f"{where}{key} is missing")
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _Bad(f"{where}{key} is {_shown(value)}, not {_KINDS[kind]}")
    return value


def _on_active_runs(value: str) -> str:
    if value not in ON_ACTIVE_RUNS:
        allowed = ", ".join(ON_ACTIVE_RUNS)
        raise _Bad(f"options.on_active_runs is {_shown(value)}, not one of {allowed}")
    return value


_KINDS = {str: "a string", bool: "true or false", dict: "an object", int: "an integer"}


def _shown(value: Any) -> str:
    """``value`` as JSON, cut to 40 characters (a huge number too: never hundreds of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"a number of {len(str(abs(value)))} digits"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _strings(doc: dict[str, Any], where: str) -> dict[str, str]:
    for key, value in doc.items():
        if not isinstance(value, str):
            raise _Bad(f"{where}[{json.dumps(key)}] is {_shown(value)}, not a string")
    return dict(doc)


def _flows(doc: dict[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for key, value in doc.items():
        where = f"flows[{json.dumps(key)}]"
        if not isinstance(value, dict):
            raise _Bad(f"{where} is {_shown(value)}, not an object")
        out[key] = {
            "id": _field(value, "id", int, where + "."),
            "sha256": _field(value, "sha256", str, where + "."),
        }
    return out
