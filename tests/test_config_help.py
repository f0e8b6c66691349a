"""gitsync.yaml helps (issue 15 point 4): found from any subfolder, paths relative to it, a
JSON Schema that agrees with the checker, init's .gitignore, messages at line:col."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gitsync import config, config_file
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "gitsync" / "schemas" / "gitsync.schema.json"


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA.read_text())
    return data


def test_the_schema_and_the_checker_know_the_same_keys() -> None:
    schema = _schema()
    target = schema["properties"]["targets"]["additionalProperties"]
    assert tuple(schema["properties"]) == config_file._TOP_KEYS
    assert tuple(target["properties"]) == config_file._TARGET_KEYS
    assert tuple(target["properties"]["retention"]["properties"]) == config_file._RETENTION_KEYS
    for props in (schema["properties"], target["properties"]):
        assert all(p.get("description") for p in props.values())  # editors show them
    assert (ROOT / "schemas" / "gitsync.schema.json").read_text() == SCHEMA.read_text()


@pytest.mark.parametrize(
    "text",
    [
        "flows: flows\n",
        "targets:\n  dev:\n    name_prefix: dev_\n    vars: {A: 1}\n  prod: {}\n",
        "targets:\n  p:\n    url: https://x\n    org_id: o\n    user_id: u\n"
        "    retention: {versions: 2}\n    concurrency: 4\n    name_suffix: _p\n",
        "targets:\n  dev: {name_prefx: dev_}\n",
        "target:\n  dev: {}\n",
        "targets:\n  dev: {retention: {version: 2}}\n",
        "targets:\n  dev: {concurrency: 0}\n",
        "vars: {A: [1]}\n",
    ],
)
def test_the_schema_and_the_checker_agree(tmp_path: Path, text: str) -> None:
    (tmp_path / "gitsync.yaml").write_text(text)
    try:
        config_file.read(tmp_path / "gitsync.yaml")
        checker_ok = True
    except config.ConfigError:
        checker_ok = False
    schema_ok = jsonschema.Draft202012Validator(_schema()).is_valid(yaml.safe_load(text))
    assert checker_ok == schema_ok


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "flows" / "sales").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / "gitsync.yaml").write_text(
        "flows: flows\ntargets:\n  p:\n    url: https://x\n    org_id: o\n    user_id: u\n"
        "    credentials: keys.yaml\n"
    )
    return repo


def test_gitsync_yaml_is_found_from_a_subfolder_and_paths_are_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path)
    monkeypatch.chdir(repo / "flows" / "sales")
    settings = config.load(env={})
    assert settings.base.resolve() == repo.resolve()
    assert settings.flows.resolve() == (repo / "flows").resolve()
    assert settings.engine_dir.resolve() == (repo / ".gitsync/engine").resolve()
    creds = settings.target("p").credentials_file
    assert creds is not None and creds.resolve() == (repo / "keys.yaml").resolve()
    assert config.load(repo / "flows" / "sales", env={}).base == repo


def test_the_walk_stops_at_the_repository_top(tmp_path: Path) -> None:
    """A gitsync.yaml above the folder that holds .git belongs to someone else."""
    (tmp_path / "gitsync.yaml").write_text("flows: elsewhere\n")
    inner = tmp_path / "project"
    (inner / ".git").mkdir(parents=True)
    (inner / "sub").mkdir()
    settings = config.load(inner / "sub", env={})
    assert settings.base == inner / "sub" and settings.file == config_file.ConfigFile()
    assert config.load(tmp_path / "other", env={}).base == tmp_path  # no .git: found above


def test_a_broken_gitsync_yaml_is_named_at_its_place_from_a_subfolder_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path)
    monkeypatch.chdir(repo / "flows" / "sales")
    (repo / "gitsync.yaml").write_text("targets:\n  dev: [\n")
    syntax = run_cli("plan", "--target", "dev")
    (repo / "gitsync.yaml").write_text("targets:\n  dev:\n    name_prefx: dev_\n")
    key = run_cli("validate")
    assert syntax.exit_code == key.exit_code == 1
    assert syntax.output.startswith("error: ../../gitsync.yaml:3:1: invalid YAML")
    assert key.output.startswith("error: ../../gitsync.yaml:3:5: targets.dev.name_prefx: ")
    assert "did you mean 'name_prefix'?" in key.output
    assert "Traceback" not in syntax.output + key.output


def test_credentials_in_gitsync_yaml_get_their_own_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gitsync.yaml").write_text("targets:\n  p:\n    secret_key: SKCANARY\n")
    result = run_cli("validate")
    assert result.exit_code == 1 and "credentials do not belong in gitsync.yaml" in result.output
    assert "SKCANARY" not in result.output


@pytest.mark.parametrize("existing", [None, "*.pyc", "*.pyc\n", ".gitsync/\n"])
def test_init_ignores_the_engine_data_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    if existing is not None:
        (tmp_path / ".gitignore").write_text(existing)
    assert run_cli("init").exit_code == 0
    assert run_cli("init", "--force").exit_code == 0
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines.count(".gitsync/") == 1
    if existing is not None:
        assert lines[: len(existing.splitlines())] == existing.splitlines()
    header = (tmp_path / "gitsync.yaml").read_text().splitlines()[0]
    assert header == "# yaml-language-server: $schema=schemas/gitsync.schema.json"
    assert (tmp_path / "schemas/gitsync.schema.json").read_text() == SCHEMA.read_text()
    config_file.read(tmp_path / "gitsync.yaml")  # the starter passes its own checks


def test_the_embedded_engine_of_a_subfolder_is_the_repositorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "flows" / "sales").mkdir(parents=True)
    (repo / "gitsync.yaml").write_text("flows: flows\n")
    (repo / "flows/sales/etl.yaml").write_text("tasks:\n  - name: a\n    command: echo a\n")
    monkeypatch.chdir(repo / "flows" / "sales")
    result = run_cli("run", "etl.yaml")
    assert result.exit_code == 0, result.output
    assert (repo / ".gitsync/engine").is_dir()
    assert not (repo / "flows/sales/.gitsync").exists()
    assert run_cli("plan", "--detailed-exitcode", "-q").exit_code == 0


def test_a_deleted_current_folder_ends_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)  # and back to the worker's folder afterwards
    gone.rmdir()
    assert config.load(env={}).base == Path()  # no config: defaults, no traceback
    assert run_cli("validate").output.startswith("error: no such file or folder")
