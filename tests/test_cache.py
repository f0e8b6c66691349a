"""The validation cache only ever saves time: a hit gives the same workflow a miss gives, and
anything that could change the outcome misses."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gitsync import validate
from gitsync.cache import FILE, ValidationCache
from gitsync.validate import validate_paths
from tests.conftest import EXAMPLES, run_cli

GOOD = "description: d\ntasks:\n  - name: a\n    command: echo a\n"


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the files that are really parsed (a cache hit is not)."""
    seen: list[str] = []
    real = validate.decode_document

    def counting(raw: bytes, **options: bool) -> object:
        seen.append(raw.decode(errors="replace")[:20])
        return real(raw, **options)

    monkeypatch.setattr(validate, "decode_document", counting)
    return seen


def test_a_hit_gives_the_same_tree_without_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(EXAMPLES, flows)
    uncached = validate_paths([flows], base=flows)
    first = validate_paths([flows], base=flows, cache=ValidationCache(tmp_path / "c"))
    parsed = _decodes(monkeypatch)
    second = validate_paths([flows], base=flows, cache=ValidationCache(tmp_path / "c"))
    assert uncached.ok and first.ok and second.ok
    assert second.tree() == first.tree() == uncached.tree()
    assert parsed == []  # every file came from the cache
    assert len(second.workflows) == len(list(flows.rglob("*.yaml")))


def test_a_changed_file_is_validated_again(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "one.yaml").write_text(GOOD)
    cache_dir = tmp_path / "c"
    assert validate_paths([flows], base=flows, cache=ValidationCache(cache_dir)).ok
    (flows / "one.yaml").write_text(GOOD.replace("echo a", "echo a\n    timeout: 0"))
    again = validate_paths([flows], base=flows, cache=ValidationCache(cache_dir))
    assert [str(p) for p in again.problems] == [
        f"{flows / 'one.yaml'}:5:14: tasks[0].timeout: must be at least 1, got 0"
    ]


def test_a_moved_file_gets_its_new_directory(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    (flows / "a").mkdir(parents=True)
    (flows / "a" / "one.yaml").write_text(GOOD)
    cache_dir = tmp_path / "c"
    validate_paths([flows], base=flows, cache=ValidationCache(cache_dir))
    (flows / "b").mkdir()
    (flows / "a" / "one.yaml").rename(flows / "b" / "one.yaml")
    moved = validate_paths([flows], base=flows, cache=ValidationCache(cache_dir))
    assert [w.directory for w in moved.workflows] == [("b",)]


def test_a_renamed_file_is_validated_again(tmp_path: Path) -> None:
    """The file name is part of what is checked (a `name:` must equal it)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "one.yaml").write_text("name: one\n" + GOOD)
    cache_dir = tmp_path / "c"
    assert validate_paths([flows], base=flows, cache=ValidationCache(cache_dir)).ok
    (flows / "one.yaml").rename(flows / "two.yaml")
    renamed = validate_paths([flows], base=flows, cache=ValidationCache(cache_dir))
    assert [p.message for p in renamed.problems] == [
        "name: 'one' must equal the file name 'two' (or be left out)"
    ]


def test_a_new_validator_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "one.yaml").write_text(GOOD)
    validate_paths([flows], base=flows, cache=ValidationCache(tmp_path / "c"))
    monkeypatch.setattr("gitsync.cache.validator_fingerprint", lambda: "another gitsync")
    parsed = _decodes(monkeypatch)
    assert validate_paths([flows], base=flows, cache=ValidationCache(tmp_path / "c")).ok
    assert len(parsed) == 1


def test_a_broken_or_unwritable_cache_is_ignored(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "one.yaml").write_text(GOOD)
    cache_dir = tmp_path / "c"
    cache_dir.mkdir()
    (cache_dir / FILE).write_text('{"not": "closed"')
    assert validate_paths([flows], base=flows, cache=ValidationCache(cache_dir)).ok
    assert len(json.loads((cache_dir / FILE).read_text())) == 1  # rewritten whole
    (cache_dir / FILE).write_text("[1, 2]")
    assert validate_paths([flows], base=flows, cache=ValidationCache(cache_dir)).ok
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would go")
    assert validate_paths([flows], base=flows, cache=ValidationCache(blocked / "c")).ok


def test_invalid_files_are_never_remembered(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "bad.yaml").write_text("tasks: [}\n")
    cache_dir = tmp_path / "c"
    for _ in range(2):
        assert not validate_paths([flows], base=flows, cache=ValidationCache(cache_dir)).ok
    assert not (cache_dir / FILE).exists()


def test_duplicates_from_the_cache_still_point_at_the_name(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for d in ("sales", "ops"):
        (in_tmp / "flows" / d).mkdir(parents=True)
        (in_tmp / "flows" / d / "daily.yaml").write_text(
            "description: d\nname: daily\n" + GOOD[15:]
        )
    first = run_cli("validate")  # each file is valid on its own: both are remembered
    parsed = _decodes(monkeypatch)
    second = run_cli("validate")
    assert parsed == []
    assert first.exit_code == second.exit_code == 1
    assert second.output == first.output
    assert second.output.splitlines()[0] == (
        "flows/sales/daily.yaml:2:1: workflow 'daily' is also defined by flows/ops/daily.yaml "
        "(workflow names must be unique in the tree)"
    )


def test_the_cli_uses_the_configured_cache_or_none(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(EXAMPLES, in_tmp / "flows")
    cache_dir = Path(os.environ["GITSYNC_CACHE_DIR"])
    assert run_cli("validate").exit_code == 0
    assert (cache_dir / FILE).exists()
    (cache_dir / FILE).unlink()
    monkeypatch.setenv("GITSYNC_NO_CACHE", "1")
    assert run_cli("validate").exit_code == 0
    assert not (cache_dir / FILE).exists()


def test_where_the_cache_lives(tmp_path: Path) -> None:
    from gitsync import config

    def where(env: dict[str, str]) -> Path | None:
        return config.load(tmp_path, env).cache_dir

    assert where({"GITSYNC_CACHE_DIR": str(tmp_path / "x")}) == tmp_path / "x"
    assert where({"XDG_CACHE_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "gitsync"
    assert where({}) == Path("~/.cache/gitsync").expanduser()
    assert where({"GITSYNC_NO_CACHE": "1", "GITSYNC_CACHE_DIR": str(tmp_path)}) is None
    assert tmp_path not in (where({}) or tmp_path).parents  # never inside the repository
