"""Remembers the workflow files that were valid, so an unchanged file is not parsed and
validated again (pre-commit runs, repeated plans, a CI job that keeps the folder).

An entry's key covers everything its outcome depends on: the file's bytes, its name and
folder, and the validator itself (the sources of the modules that read and check a file, the
schema, the versions of Python and of the libraries). Changing any of them misses. The entry is
the file's document as JSON; a hit rebuilds the workflow from it with the same codec a miss
uses. Only valid files are remembered; checks across files run every time.

The cache lives outside the repository (a pull request cannot plant entries) in one JSON file,
never pickle, written whole and atomically. A cache that cannot be read is ignored and one that
cannot be written is skipped: it only ever saves time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

FILE = "validated-v1.json"
MAX_ENTRIES = 5_000  # about 5 MB for files of 10 tasks; the least recently used go first
_SOURCES = (
    "files.py",
    "validate.py",
    "schema_check.py",
    "codec/document.py",
    "model.py",
    "cron.py",
    "dag.py",
    "substitution.py",
)
_LIBRARIES = ("gitsync", "jsonschema", "jsonschema-rs", "pyyaml", "croniter")


@functools.lru_cache(maxsize=1)
def validator_fingerprint() -> str:
    """What the validator is made of: a new gitsync, schema or library version misses."""
    from importlib import metadata  # imported here: 15-40 ms, and plan asks in its child

    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).parent
    for name in _SOURCES:
        digest.update((package / name).read_bytes())
    digest.update((package / "schemas" / "workflow.schema.json").read_bytes())
    for library in _LIBRARIES:
        try:
            digest.update(f"{library}={metadata.version(library)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library}=?".encode())
    return digest.hexdigest()


class ValidationCache:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE
        self._entries: dict[str, Any] | None = None
        self._used: set[str] = set()
        self._added = False

    def key(self, content: bytes, name: str, directory: tuple[str, ...], context: str = "") -> str:
        """``context``: what else the outcome depends on (a target's variables)."""
        digest = hashlib.sha256(validator_fingerprint().encode())
        digest.update(json.dumps([name, list(directory), context]).encode())
        digest.update(content)
        return digest.hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        data = self._load().get(key)
        if isinstance(data, dict):
            self._used.add(key)
            return data
        return None

    def put(self, key: str, data: dict[str, Any]) -> None:
        try:
            text = json.dumps(data, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            return  # not plain JSON (a date, say): validated every time
        if json.loads(text) != data:
            return  # JSON would change it (a tuple, a non-string key): not cached
        self._load()[key] = data
        self._used.add(key)
        self._added = True

    def save(self) -> None:
        """Write the entries if there are new ones; quietly give up where it cannot."""
        if not self._added or self._entries is None:
            return
        # the entries used now move to the end, and the file keeps the last MAX_ENTRIES
        unused = [(k, v) for k, v in self._entries.items() if k not in self._used]
        used = [(k, v) for k, v in self._entries.items() if k in self._used]
        entries = dict((unused + used)[-MAX_ENTRIES:])
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".validated-")
            try:
                # dumps, not dump: only the one-shot call uses the C encoder (about 5x faster here)
                text = json.dumps(entries, ensure_ascii=False, separators=(",", ":"))
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        self._added = False

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = {}
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self._entries = loaded
        return self._entries
