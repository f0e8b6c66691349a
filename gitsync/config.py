"""Settings from flags > environment > gitsync.yaml > defaults. The only environment reader.

Credentials never come from gitsync.yaml (it is committed): only from ENOS_ACCESS_KEY /
ENOS_SECRET_KEY or a credentials file outside the repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitsync.cache import ValidationCache
from gitsync.errors import ConfigError

CONFIG_FILE = "gitsync.yaml"
DEFAULT_FLOWS = "flows"
DEFAULT_TARGET = "local"
DEFAULT_ROOT = "gitsync"
EMBEDDED = "embedded"
LOCAL_ORG, LOCAL_USER = "o_local", "u_local"
_KNOWN_KEYS = {"flows", "targets"}
_TARGET_KEYS = {"url", "org_id", "user_id", "root", "credentials", "timeout", "concurrency"}
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64

STARTER = """\
# gitsync configuration. Commit this file; never put credentials in it.
# Credentials for EnOS targets come from ENOS_ACCESS_KEY / ENOS_SECRET_KEY, or from the
# file named by a target's `credentials:` (outside the repository), holding
#   access_key: ...
#   secret_key: ...

# Folder that holds the workflow files; its tree mirrors the remote directories.
flows: flows

targets:
  # The bundled engine, started in-process with its data in .gitsync/engine/.
  local:
    url: embedded
    root: gitsync          # the remote directory gitsync owns (under "Workflow")

  # An EnOS deployment (choose it with --target prod or GITSYNC_TARGET=prod):
  # prod:
  #   url: https://apim-your-env.envisioniot.com
  #   org_id: o15427722038191
  #   user_id: u15426865866571
  #   root: gitsync/prod
  #   credentials: ~/.config/gitsync/prod.yaml
  #   concurrency: 8       # requests at once, reads and writes (default 8)
"""


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

    @property
    def embedded(self) -> bool:
        return self.url == EMBEDDED

    def describe(self) -> str:
        where = "the embedded engine" if self.embedded else self.url
        return f"target '{self.name}' ({where}, root Workflow/{'/'.join(self.root)})"


@dataclass(frozen=True)
class Settings:
    base: Path
    flows: Path
    raw: Mapping[str, Any]
    env: Mapping[str, str]

    @property
    def engine_dir(self) -> Path:
        return self.base / ".gitsync" / "engine"

    @property
    def cache_dir(self) -> Path | None:
        """Where validated files are remembered (cache.py); None when GITSYNC_NO_CACHE is
        set. Outside the repository on purpose: a pull request cannot plant entries."""
        if self.env.get("GITSYNC_NO_CACHE"):
            return None
        if self.env.get("GITSYNC_CACHE_DIR"):
            return Path(self.env["GITSYNC_CACHE_DIR"]).expanduser()
        if self.env.get("XDG_CACHE_HOME"):
            return Path(self.env["XDG_CACHE_HOME"]) / "gitsync"
        try:
            return Path("~/.cache/gitsync").expanduser()
        except RuntimeError:  # no home directory to be found: no cache
            return None

    def validation_cache(self) -> ValidationCache | None:
        directory = self.cache_dir
        return ValidationCache(directory) if directory is not None else None

    def target(self, name: str | None = None) -> Target:
        chosen = name or self.env.get("GITSYNC_TARGET") or DEFAULT_TARGET
        targets = self.raw.get("targets") or {}
        if chosen not in targets:
            if chosen == DEFAULT_TARGET:
                return Target(DEFAULT_TARGET, EMBEDDED, LOCAL_ORG, LOCAL_USER, (DEFAULT_ROOT,))
            known = ", ".join(sorted({DEFAULT_TARGET, *targets}))
            raise ConfigError(f"{CONFIG_FILE}: no target '{chosen}' (known: {known})")
        return _target(chosen, targets[chosen])

    def credentials(self, target: Target) -> tuple[str, str] | None:
        """(access key, secret key) for a remote target, or None for the embedded engine."""
        if target.embedded:
            return None
        key, secret = self.env.get("ENOS_ACCESS_KEY"), self.env.get("ENOS_SECRET_KEY")
        if key and secret:
            return key, secret
        if target.credentials_file is not None:
            return _read_credentials(target.credentials_file)
        if key or secret:
            raise ConfigError("set both ENOS_ACCESS_KEY and ENOS_SECRET_KEY")
        return None


def _reject_unknown(where: str, data: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})"
        )


def _target(name: str, data: Any) -> Target:
    where = f"{CONFIG_FILE}: targets.{name}"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with url, org_id, user_id, root")
    _reject_unknown(where, data, _TARGET_KEYS)
    for secretish in ("secret", "secret_key", "app_secret", "access_key"):
        if secretish in data:
            raise ConfigError(f"{where}: credentials do not belong in {CONFIG_FILE}")
    url = str(data.get("url") or EMBEDDED)
    embedded = url == EMBEDDED
    org = str(data.get("org_id") or (LOCAL_ORG if embedded else ""))
    user = str(data.get("user_id") or (LOCAL_USER if embedded else ""))
    if not org or not user:
        raise ConfigError(f"{where}: org_id and user_id are required for a remote target")
    root = tuple(p for p in str(data.get("root") or DEFAULT_ROOT).split("/") if p)
    if not root:
        raise ConfigError(f"{where}: root must name a directory under 'Workflow'")
    creds = data.get("credentials")
    timeout = data.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{where}: timeout must be a number of seconds")
    concurrency = data.get("concurrency", DEFAULT_CONCURRENCY)
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise ConfigError(
            f"{where}: concurrency must be a whole number of requests from 1 to {MAX_CONCURRENCY}"
        )
    credentials = Path(str(creds)).expanduser() if creds else None
    return Target(name, url.rstrip("/"), org, user, root, credentials, float(timeout), concurrency)


def _read_credentials(path: Path) -> tuple[str, str]:
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        return str(data["access_key"]), str(data["secret_key"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise ConfigError(f"{path}: expected a YAML file with access_key and secret_key") from None


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
    _reject_unknown(str(path), data, _KNOWN_KEYS)
    if "flows" in data and not isinstance(data["flows"], str):
        raise ConfigError(f"{path}: 'flows' must be a folder path")
    if "targets" in data and not isinstance(data["targets"], dict):
        raise ConfigError(f"{path}: 'targets' must be a mapping of name to target")
    return data


def load(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    base = Path() if cwd is None else cwd
    environ = dict(os.environ if env is None else env)
    raw = _read_config(base / CONFIG_FILE)
    flows = environ.get("GITSYNC_FLOWS") or raw.get("flows") or DEFAULT_FLOWS
    return Settings(base=base, flows=base / flows, raw=raw, env=environ)


def is_ci(env: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if env is None else env
    return bool(environ.get("CI"))


def who() -> str:
    """Who is applying, for the lock: user@host (pid)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"
