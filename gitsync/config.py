"""Settings from flags > environment > gitsync.yaml > defaults. The only environment reader.

Credentials never come from gitsync.yaml (it is committed): only from ENOS_ACCESS_KEY /
ENOS_SECRET_KEY or a credentials file outside the repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from gitsync.cache import ValidationCache
from gitsync.config_file import (
    CONFIG_FILE,
    DEFAULT_ROOT,
    DEFAULT_TIMEOUT,
    EMBEDDED,
    LOCAL,
    ConfigFile,
    Target,
)
from gitsync.config_file import read as read_config_file
from gitsync.errors import ConfigError
from gitsync.substitution import Substitution

__all__ = ["CONFIG_FILE", "DEFAULT_ROOT", "DEFAULT_TIMEOUT", "EMBEDDED", "Settings", "Target"]

DEFAULT_FLOWS = "flows"
DEFAULT_TARGET = LOCAL.name
ENV_CREDENTIALS = "ENOS_ACCESS_KEY and ENOS_SECRET_KEY"
_TRUE = ("1", "true", "yes", "on")

STARTER_HEADER = "# yaml-language-server: $schema=schemas/gitsync.schema.json\n"
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
class Settings:
    base: Path
    flows: Path
    env: Mapping[str, str]
    file: ConfigFile = field(default_factory=ConfigFile)

    @property
    def engine_dir(self) -> Path:
        return self.base / ".gitsync" / "engine"

    @property
    def engine_extensions(self) -> bool:
        """GITSYNC_ENGINE_EXTENSIONS=1: the bundled engine answers more than SPEC documents
        (docs/engine.md, Extensions); by default it is strict, like EnOS."""
        return self.env.get("GITSYNC_ENGINE_EXTENSIONS", "").strip().lower() in _TRUE

    @property
    def cache_dir(self) -> Path | None:
        """Where validated files are remembered (cache.py); None when GITSYNC_NO_CACHE is
        set. Outside the repository on purpose: a pull request cannot plant entries."""
        if self.env.get("GITSYNC_NO_CACHE"):
            return None
        return _cache_folder(self.env)

    def validation_cache(self) -> ValidationCache | None:
        directory = self.cache_dir
        return ValidationCache(directory) if directory is not None else None

    def target(self, name: str | None = None) -> Target:
        chosen = name or self.env.get("GITSYNC_TARGET") or DEFAULT_TARGET
        targets = self.file.targets
        if chosen not in targets:
            if chosen == DEFAULT_TARGET:
                return replace(LOCAL, vars=self.file.vars)
            known = ", ".join(sorted({DEFAULT_TARGET, *targets}))
            raise ConfigError(f"{CONFIG_FILE}: no target '{chosen}' (known: {known})")
        return targets[chosen]

    def substitution(self, target: Target, secrets: bool = True) -> Substitution:
        """``target``'s variables; with ``secrets``, ``${env:NAME}`` read from the environment."""
        return Substitution(target.name, dict(target.vars), self.env if secrets else None)

    def all_targets(self) -> list[Target]:
        """Every target of gitsync.yaml (the embedded 'local' when it names none)."""
        return list(self.file.targets.values()) or [self.target(DEFAULT_TARGET)]

    def credentials(self, target: Target) -> tuple[str, str, str] | None:
        """(access key, secret key, where they came from) for a remote target, or None for
        the embedded engine."""
        if target.embedded:
            return None
        key, secret = self.env.get("ENOS_ACCESS_KEY"), self.env.get("ENOS_SECRET_KEY")
        if key and secret:
            return key, secret, ENV_CREDENTIALS
        if target.credentials_file is not None:
            return (*_read_credentials(target.credentials_file), str(target.credentials_file))
        if key or secret:
            raise ConfigError(f"set both {ENV_CREDENTIALS}")
        return None


def _read_credentials(path: Path) -> tuple[str, str]:
    """The two keys of a credentials file; the message never quotes the file's contents."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: credentials file not found (the target's credentials)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a credentials file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    key, secret = (
        (data.get("access_key"), data.get("secret_key")) if isinstance(data, dict) else (None, None)
    )
    if not (isinstance(key, str) and key.strip() and isinstance(secret, str) and secret.strip()):
        raise ConfigError(f"{path}: expected a YAML file with access_key and secret_key (strings)")
    return key, secret


def load(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings of the repository around ``cwd``: gitsync.yaml is looked for there and in
    each parent, as git looks for its repository, so every command works from a subfolder.
    Every path it names (flows, credentials, the engine's ``.gitsync/``) is relative to it."""
    start = Path() if cwd is None else cwd
    base = find_base(start)
    environ = dict(os.environ if env is None else env)
    file = read_config_file(base / CONFIG_FILE, str(base / CONFIG_FILE))
    file = replace(file, targets={n: _anchored(t, base) for n, t in file.targets.items()})
    flows = environ.get("GITSYNC_FLOWS") or file.flows or DEFAULT_FLOWS
    return Settings(base=base, flows=base / flows, env=environ, file=file)


def find_base(start: Path) -> Path:
    """The folder of the nearest gitsync.yaml at or above ``start``, written relative to
    ``start``; ``start`` itself when none is found. The walk stops at the filesystem root and
    after a folder holding ``.git`` (the repository's top: a parent belongs to someone else)."""
    try:
        here = start.absolute()
        for folder in (here, *here.parents):
            if (folder / CONFIG_FILE).is_file():
                if folder == here:
                    return start
                return folder if start.is_absolute() else Path(os.path.relpath(folder))
            if (folder / ".git").exists():
                break
    except OSError:  # the current folder was deleted, or a parent cannot be read: stop there
        pass
    return start


def _anchored(target: Target, base: Path) -> Target:
    """``target`` with a relative credentials file read from gitsync.yaml's folder."""
    creds = target.credentials_file
    if creds is None or creds.is_absolute():
        return target
    return replace(target, credentials_file=base / creds)


def _cache_folder(env: Mapping[str, str]) -> Path | None:
    """gitsync's folder in the user's cache; None when no home directory can be found."""
    if env.get("GITSYNC_CACHE_DIR"):
        return Path(env["GITSYNC_CACHE_DIR"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "gitsync"
    try:
        return Path("~/.cache/gitsync").expanduser()
    except RuntimeError:
        return None


def crash_log(env: Mapping[str, str] | None = None) -> Path:
    """Where an unexpected error's details go: the user's cache folder, never the repository
    (the system's temporary folder when there is no home directory)."""
    import tempfile

    folder = _cache_folder(os.environ if env is None else env)
    return (folder or Path(tempfile.gettempdir())) / "gitsync.log"


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
