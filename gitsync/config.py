"""Settings from flags > environment > gitsync.yaml > defaults. The only environment reader."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitsync.errors import ConfigError

CONFIG_FILE = "gitsync.yaml"
DEFAULT_FLOWS = "flows"
_KNOWN_KEYS = {"flows", "targets"}


@dataclass(frozen=True)
class Settings:
    base: Path
    flows: Path
    raw: Mapping[str, Any]

    @property
    def engine_dir(self) -> Path:
        return self.base / ".gitsync" / "engine"

    @property
    def flows_configured(self) -> bool:
        return "flows" in self.raw


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key '{unknown[0]}' (known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    if "flows" in data and not isinstance(data["flows"], str):
        raise ConfigError(f"{path}: 'flows' must be a folder path")
    return data


def load(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    base = Path() if cwd is None else cwd
    environ = os.environ if env is None else env
    raw = _read_config(base / CONFIG_FILE)
    flows = environ.get("GITSYNC_FLOWS") or raw.get("flows") or DEFAULT_FLOWS
    return Settings(base=base, flows=base / flows, raw=raw)
