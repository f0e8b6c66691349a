"""A data folder this user cannot write (a root-owned engine.lock, a read-only mount) is a
clear error naming it, not an unexpected PermissionError; a live engine serving it is still
used read-only over HTTP. The tests run as root too, so the refusal is a fault fake on
``os.open``: writing under the folder fails as the kernel would say."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from gitsync.embedded import local_engine
from gitsync.engine import address
from gitsync.engine.server import EngineOptions, RunningEngine
from tests.conftest import Api


def _no_writes_under(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    real_open = os.open

    def fake(path: Any, flags: int, *rest: Any, **kw: Any) -> int:
        writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writes and Path(path).resolve().is_relative_to(folder.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *rest, **kw)

    monkeypatch.setattr(os, "open", fake)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: mode != os.W_OK)


def test_a_folder_that_cannot_be_written_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "engine"
    data.mkdir()
    _no_writes_under(monkeypatch, data)
    with pytest.raises(address.CannotWrite, match=f"cannot write {data}: Permission denied"):
        address.claim_or_use(data)


def test_a_lock_that_exists_but_cannot_be_written_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "engine"
    data.mkdir()
    (data / address.LOCK_FILE).write_text("")  # root's, say; no engine holds it
    _no_writes_under(monkeypatch, data)
    with pytest.raises(address.CannotWrite, match=f"cannot write {data}"):
        address.claim_or_use(data)


def test_a_live_engine_on_a_folder_this_user_only_reads_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "engine"
    with RunningEngine(EngineOptions(data)) as engine:
        (data / address.USERS_FILE).unlink(missing_ok=True)  # never made: cannot be now
        _no_writes_under(monkeypatch, data)
        with local_engine(data) as found:
            assert found.url == engine.url and not found.owned
            api = Api(found.url, "u_local", "o_local")
            try:
                assert api.root()
            finally:
                api.http.close()
        monkeypatch.undo()
