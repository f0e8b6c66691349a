"""gitsync.yaml: its format, read with positions and checked value by value.

Every problem is one ``gitsync.yaml:line:col: message``. The file is committed, yet a secret
pasted into it by mistake must never be shown: messages name keys, never quote a value.
"""

from __future__ import annotations

import difflib
import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitsync.errors import ConfigError
from gitsync.files import Document, ReadError, decode_document
from gitsync.naming import Naming

CONFIG_FILE = "gitsync.yaml"
DEFAULT_ROOT = "gitsync"
EMBEDDED = "embedded"
LOCAL_ORG, LOCAL_USER = "o_local", "u_local"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
MAX_CONFIG_BYTES = 256 * 1024
_TOP_KEYS = ("flows", "targets", "vars")
_TARGET_KEYS = (
    "url",
    "org_id",
    "user_id",
    "root",
    "credentials",
    "timeout",
    "concurrency",
    "retention",
    "vars",
    "name_prefix",
    "name_suffix",
)
_RETENTION_KEYS = ("versions", "days")
DEFAULT_RETENTION = (
    3,
    30,
)  # the newest 3 retired copies of a workflow, and any younger than 30 days
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECRET_KEYS = ("secret", "secret_key", "app_secret", "access_key", "app_key", "password")


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    org_id: str
    user_id: str
    root: tuple[str, ...]
    credentials_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT  # seconds per request
    concurrency: int = DEFAULT_CONCURRENCY  # requests at once: plan's reads, apply's writes
    retention: tuple[int, int] = DEFAULT_RETENTION  # retired copies kept: versions, days
    vars: tuple[tuple[str, str], ...] = ()  # ${var.NAME} values, shared defaults included
    name_prefix: str = ""  # around every workflow name on the service (naming.py)
    name_suffix: str = ""

    def naming(self) -> Naming:
        return Naming(self.name_prefix, self.name_suffix, self.name)

    @property
    def embedded(self) -> bool:
        return self.url == EMBEDDED

    def describe(self) -> str:
        where = "the embedded engine" if self.embedded else self.url
        return f"target '{self.name}' ({where}, root Workflow/{'/'.join(self.root)})"


LOCAL = Target("local", EMBEDDED, LOCAL_ORG, LOCAL_USER, (DEFAULT_ROOT,))


@dataclass(frozen=True)
class ConfigFile:
    """What gitsync.yaml says, checked. An absent file says nothing."""

    flows: str | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    vars: tuple[tuple[str, str], ...] = ()  # the shared defaults (top-level ``vars:``)


class _Reader:
    """Positions for messages: ``fail(path, text)`` raises at the key or value of ``path``."""

    def __init__(self, display: str, doc: Document) -> None:
        self.display = display
        self.doc = doc

    def fail(self, path: tuple[str, ...], message: str, key: bool = False) -> ConfigError:
        line, col = self.doc.locate(path, key=key)
        label = ".".join(path)
        return ConfigError(f"{self.display}:{line}:{col}: {label + ': ' if label else ''}{message}")

    def known_keys(
        self, path: tuple[str, ...], data: dict[str, Any], known: tuple[str, ...]
    ) -> None:
        for key in data:
            if key in _SECRET_KEYS:
                raise self.fail(
                    (*path, key),
                    f"credentials do not belong in {CONFIG_FILE} (it is committed): set "
                    "ENOS_ACCESS_KEY and ENOS_SECRET_KEY, or name a file outside the "
                    "repository with 'credentials:'",
                    key=True,
                )
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise self.fail(
                    (*path, key), f"unknown key (known: {', '.join(known)}){hint}", key=True
                )

    def text(self, path: tuple[str, ...], value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                path,
                f"must be {what} (a non-empty string; quote it if YAML reads it as another type)",
            )
        return value


def read(path: Path, display: str = CONFIG_FILE) -> ConfigFile:
    """The checked contents of ``path``, or ConfigError at ``display:line:col``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ConfigFile()
    except OSError as e:
        raise ConfigError(f"{display}: cannot read: {e.strerror or type(e).__name__}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{display}: {len(raw):,} bytes is too large for a configuration file")
    try:
        doc, problems = decode_document(raw, echo_values=False, allow_empty=True)
    except ReadError as e:
        first = e.problems[0]
        raise ConfigError(f"{display}:{first.line}:{first.col}: {first.message}") from None
    if problems:
        first = problems[0]
        raise ConfigError(f"{display}:{first.line}:{first.col}: {first.message}")
    if doc.data is None:
        return ConfigFile()
    reader = _Reader(display, doc)
    if not isinstance(doc.data, dict):
        raise reader.fail((), "expected a mapping with 'flows' and 'targets' at the top level")
    reader.known_keys((), doc.data, _TOP_KEYS)
    shared = _vars(reader, ("vars",), doc.data.get("vars"))
    return ConfigFile(_flows(reader, doc.data.get("flows")), _targets(reader, doc, shared), shared)


def _flows(reader: _Reader, value: Any) -> str | None:
    if value is None:
        return None
    folder = reader.text(("flows",), value, "a folder inside the repository")
    normal = posixpath.normpath(folder.replace("\\", "/"))
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../") or ":" in normal:
        raise reader.fail(("flows",), "must be a folder inside the repository (a relative path)")
    return folder


def _targets(
    reader: _Reader, doc: Document, shared: tuple[tuple[str, str], ...]
) -> dict[str, Target]:
    value = doc.data.get("targets")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise reader.fail(("targets",), "must be a mapping of target name to its settings")
    targets = {}
    for name, data in value.items():
        written = doc.typed_keys.get(("targets", name))
        if written is not None:
            raise reader.fail(
                ("targets", name),
                f"the target name {written} is read by YAML as {name}: quote it ('{written}':)",
                key=True,
            )
        targets[name] = _target(reader, name, data, shared)
        _not_twice(reader, targets, name)
    return targets


def _not_twice(reader: _Reader, targets: dict[str, Target], name: str) -> None:
    """Two targets that would write the same workflows would undo each other's applies."""
    new = targets[name]
    place = (new.url, new.org_id, new.root, new.name_prefix, new.name_suffix)
    for other in targets.values():
        if (
            other is not new
            and (
                other.url,
                other.org_id,
                other.root,
                other.name_prefix,
                other.name_suffix,
            )
            == place
        ):
            raise reader.fail(
                ("targets", name),
                f"writes the same workflows as target '{other.name}' (same service, "
                "organization, root and names): each apply would undo the other's; give one "
                "a name_prefix or another root",
                key=True,
            )


def _target(
    reader: _Reader, name: str, data: Any, shared: tuple[tuple[str, str], ...] = ()
) -> Target:
    where = ("targets", name)
    if not isinstance(data, dict):
        raise reader.fail(where, "expected a mapping with url, org_id, user_id, root")
    reader.known_keys(where, data, _TARGET_KEYS)
    url = _url(reader, (*where, "url"), data.get("url", EMBEDDED))
    embedded = url == EMBEDDED
    ids = []
    for key, default in (("org_id", LOCAL_ORG), ("user_id", LOCAL_USER)):
        if data.get(key) is None:
            if not embedded:
                raise reader.fail(where, "org_id and user_id are required for a remote target")
            ids.append(default)
        else:
            ids.append(reader.text((*where, key), data[key], "an id"))
    creds = data.get("credentials")
    credentials = None
    if creds is not None:
        credentials = Path(reader.text((*where, "credentials"), creds, "a file path")).expanduser()
    return Target(
        name,
        url,
        ids[0],
        ids[1],
        _root(reader, (*where, "root"), data.get("root", DEFAULT_ROOT)),
        credentials,
        _timeout(reader, (*where, "timeout"), data.get("timeout", DEFAULT_TIMEOUT)),
        _concurrency(reader, (*where, "concurrency"), data.get("concurrency", DEFAULT_CONCURRENCY)),
        _retention(reader, (*where, "retention"), data.get("retention", {})),
        merged_vars(shared, _vars(reader, (*where, "vars"), data.get("vars"))),
        *(_affix(reader, (*where, key), data.get(key)) for key in ("name_prefix", "name_suffix")),
    )


def _affix(reader: _Reader, path: tuple[str, ...], value: Any) -> str:
    """A name prefix or suffix: what it adds must itself be allowed in a workflow name."""
    from gitsync.schema_check import name_problem

    if value is None or value == "":
        return ""
    text = reader.text(path, value, "text added to every workflow name")
    if name_problem(f"x{text}x") or len(text) > 64:
        raise reader.fail(
            path,
            "must be at most 64 characters, each one a workflow name accepts "
            "(letters, digits, '_' and '-')",
        )
    return text


def _url(reader: _Reader, path: tuple[str, ...], value: Any) -> str:
    url = reader.text(path, value, f"'{EMBEDDED}' or an http(s) address").strip()
    if url == EMBEDDED:
        return url
    import httpx  # only for a remote target: it is what will send to that address

    try:
        parsed = httpx.URL(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (httpx.InvalidURL, ValueError, TypeError):
        ok = False
    if not ok:
        raise reader.fail(path, f"must be '{EMBEDDED}' or an address such as https://host[:port]")
    return url.rstrip("/")


def _root(reader: _Reader, path: tuple[str, ...], value: Any) -> tuple[str, ...]:
    from gitsync.schema_check import name_problem

    text = reader.text(path, value, "a directory path under 'Workflow'")
    parts = tuple(p for p in text.split("/") if p)
    if not parts or any(name_problem(p) for p in parts):
        raise reader.fail(
            path,
            "must be a directory path under 'Workflow' whose parts are names the "
            "service and the files accept (no '..', '\\' or control characters)",
        )
    return parts


def _timeout(reader: _Reader, path: tuple[str, ...], value: Any) -> float:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not 0 < number <= 86_400:
        raise reader.fail(path, "must be a number of seconds, above 0 and at most 86400")
    return float(number)


def _concurrency(reader: _Reader, path: tuple[str, ...], value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise reader.fail(
            path, f"must be a whole number of requests at once, from 1 to {MAX_CONCURRENCY}"
        )
    return value


def _retention(reader: _Reader, path: tuple[str, ...], value: Any) -> tuple[int, int]:
    """``{versions: N, days: D}``: retired copies kept (each key optional)."""
    if not isinstance(value, dict):
        raise reader.fail(path, "expected a mapping with versions and days")
    reader.known_keys(path, value, _RETENTION_KEYS)
    out = []
    for key, default in zip(_RETENTION_KEYS, DEFAULT_RETENTION, strict=True):
        number = value.get(key, default)
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 100_000:
            raise reader.fail((*path, key), "must be a whole number from 0 to 100000")
        out.append(number)
    return out[0], out[1]


def merged_vars(
    shared: tuple[tuple[str, str], ...], own: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """The shared defaults overridden by a target's own values, sorted by name."""
    return tuple(sorted({**dict(shared), **dict(own)}.items()))


def _vars(reader: _Reader, path: tuple[str, ...], value: Any) -> tuple[tuple[str, str], ...]:
    """``NAME: value`` pairs; numbers become their text. Messages never quote a value."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise reader.fail(path, "must be a mapping of variable name to a string or number")
    out = []
    for name, item in value.items():
        if not _VAR_NAME.match(name):
            raise reader.fail(
                (*path, name),
                "a variable name is letters, digits and '_', not starting with a digit",
                key=True,
            )
        number = isinstance(item, (int, float)) and not isinstance(item, bool)
        if not (isinstance(item, str) or number):
            raise reader.fail(
                (*path, name),
                "must be a string or a number (quote it if YAML reads it as another type)",
            )
        if isinstance(item, str) and ("${env:" in item or "${var." in item):
            raise reader.fail(
                (*path, name),
                "a variable's value is inserted as it is, never read again: write the "
                "${env:...} or ${var....} reference in the workflow file instead",
            )
        out.append((name, str(item)))
    return tuple(out)
