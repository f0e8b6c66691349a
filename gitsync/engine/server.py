"""Serve the engine on loopback: in the foreground (`gitsync serve`) or in a thread.

The thread form is the embedded default target and what the tests use: it binds a free port
on 127.0.0.1 before starting, so the URL is known and nothing races for the port.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from gitsync.engine import address
from gitsync.engine.access import Access
from gitsync.engine.app import create_app
from gitsync.engine.dashboard import Dashboard
from gitsync.engine.gateway import TOKEN_LIFETIME, Gateway
from gitsync.engine.guard import LocalOnly
from gitsync.engine.operations import Operations
from gitsync.engine.runner import Runner
from gitsync.engine.runs import Runs
from gitsync.engine.scheduler import Scheduler
from gitsync.engine.service import Service
from gitsync.engine.store import Store
from gitsync.errors import ConfigError

DEFAULT_ORG = "o_local"
DEFAULT_USER = "u_local"
DEFAULT_USER_NAME = "local"
USERS_FILE = "users.yaml"
STORE_FILE = "engine.sqlite3"


@dataclass(frozen=True)
class User:
    id: str
    org: str
    name: str = ""
    locked: bool = False


@dataclass
class EngineOptions:
    data_dir: Path
    app_key: str | None = None
    app_secret: str | None = None
    token_lifetime: int = TOKEN_LIFETIME
    users: list[User] = field(default_factory=list)
    parallelism: int | None = None  # tasks at once; default: the CPU count
    schedule: bool = False  # fire periodic workflows (gitsync serve); off when embedded
    request_log: Path | None = None  # one JSON line per API request (``RequestFile``)
    wall_clock: Callable[[], float] = time.time  # the gateway's tokens expire by it (tests move it)
    extensions: bool = False  # answer more than SPEC documents (docs/engine.md, Extensions)


def read_users(path: Path) -> list[User]:
    """``users.yaml`` in the data dir: ``users: [{id, name, orgs: [..], locked}]``."""
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        users = []
        for item in data.get("users", []):
            for org in item["orgs"]:
                users.append(
                    User(
                        str(item["id"]),
                        str(org),
                        str(item.get("name") or item["id"]),
                        bool(item.get("locked", False)),
                    )
                )
        return users
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: expected 'users: [{{id, name, orgs: [...]}}]' ({e})") from None


class RequestFile:
    """The request log: one JSON line per API request, written as it is answered, in the
    order of the answers: method, resource, action, the names and ids it was about (flowName,
    dirName, parentId, dirId, flowId, id, name), the ids it ``made``, the envelope's ``code``,
    ``answered`` (its place in that order, from 1) and ``seen`` (how many requests had been
    answered when it arrived). A request B was sent after the answer to A only if
    ``B.seen >= A.answered``: that is how tests check the order of a client's requests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._answered = 0

    def arrived(self) -> int:
        with self._lock:
            return self._answered

    def answered(self, entry: dict[str, Any]) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            self._answered += 1
            f.write(json.dumps({**entry, "answered": self._answered}, ensure_ascii=False) + "\n")


class Engine:
    """The engine's parts, wired: store, identities, service, gateway, ASGI app. It holds
    its data folder alone (``address.py``): EngineBusy if another engine does."""

    def __init__(self, options: EngineOptions, claim: address.Claim | None = None) -> None:
        self.claim = claim or address.claim(options.data_dir)
        try:
            self._wire(options)
        except BaseException:
            self.claim.release()
            raise

    def _wire(self, options: EngineOptions) -> None:
        self.options = options
        self.store = Store(options.data_dir / STORE_FILE)
        self.store.ensure_user(DEFAULT_USER, DEFAULT_USER_NAME, DEFAULT_ORG)
        for user in read_users(options.data_dir / USERS_FILE) + options.users:
            self.store.ensure_user(user.id, user.name or user.id, user.org, user.locked)
        access = Access(self.store)
        self.service = Service(self.store, access, extensions=options.extensions)
        self.runner = Runner(self.store, options.data_dir, options.parallelism)
        self.runner.recover()  # alone on the folder: what is unfinished is a killed engine's
        self.runs = Runs(self.store, access, self.runner)
        self.service.on_delete = self.runs.cancel_all
        self.scheduler = Scheduler(self.runs) if options.schedule else None
        if self.scheduler is not None:
            self.service.on_change = self.scheduler.changed
            self.scheduler.start()
        self.gateway = None
        if options.app_key and options.app_secret:
            self.gateway = Gateway(
                options.app_key, options.app_secret, options.token_lifetime, options.wall_clock
            )
        log = RequestFile(options.request_log) if options.request_log else None
        dashboard = Dashboard(self.store, self.runs, read_only=self.gateway is not None)
        self.guard = LocalOnly(
            create_app(
                Operations(self.service, self.runs),
                self.gateway,
                record=log,
                pages=dashboard.routes(),
            )
        )
        self.app = self.guard  # what is served: the API and dashboard, for local clients only

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.runner.close()
        self.store.close()
        self.claim.release()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # answers are small and written in pieces: without this, Nagle's algorithm meets the
    # client's delayed ACK and every request waits ~40 ms (accepted sockets inherit it)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {e.strerror or e}; "
            "choose another port with --port, or --port 0 for any free one"
        ) from None
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, but a stop signal ends ``run`` normally instead of being raised again after
    shutdown, so `gitsync serve` closes its store and exits 0 on Ctrl-C and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _server(app: Any) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # nothing sits in front of a local engine
    )
    return _Server(config)


class RunningEngine:
    """A live engine on 127.0.0.1 in a background thread; ``url`` is its base URL."""

    def __init__(
        self,
        options: EngineOptions,
        host: str = "127.0.0.1",
        port: int = 0,
        claim: address.Claim | None = None,
    ) -> None:
        self.engine = Engine(options, claim)
        try:
            self._sock = _bind(host, port)
        except BaseException:
            self.engine.close()
            raise
        self.host, self.port = self._sock.getsockname()[:2]
        self.engine.guard.listening(host, self.port)
        self.url = f"http://{self.host}:{self.port}"
        self._server = _server(self.engine.app)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="gitsync-engine",
            daemon=True,
        )

    def start(self) -> RunningEngine:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the engine did not start")
            time.sleep(0.01)
        self.engine.guard.token = token = address.new_token()  # answered before it is told
        self.engine.claim.publish(self.url, "embedded", self.engine.gateway is not None, token)
        return self

    def stop(self) -> None:
        self.engine.claim.withdraw()  # first: no new command comes to an engine that stops
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()
        self.engine.close()

    def __enter__(self) -> RunningEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    options: EngineOptions, host: str, port: int, on_ready: Callable[[str], None]
) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM (uvicorn handles both gracefully).
    EngineBusy, before anything is served, when another engine holds the data folder."""
    engine = Engine(options)
    try:
        sock = _bind(host, port)
    except BaseException:
        engine.close()
        raise
    try:
        bound_host, bound_port = sock.getsockname()[:2]
        engine.guard.listening(host, bound_port)
        url = f"http://{bound_host}:{bound_port}"
        engine.guard.token = token = address.new_token()  # answered before it is told
        engine.claim.publish(
            _reachable(url, bound_host), "serve", engine.gateway is not None, token
        )
        on_ready(url)
        _server(engine.app).run(sockets=[sock])
    finally:
        engine.claim.withdraw()
        sock.close()
        engine.close()


def _reachable(url: str, host: str) -> str:
    """The URL a local command connects to: loopback for an engine on every address."""
    return url.replace("0.0.0.0", "127.0.0.1", 1) if host == "0.0.0.0" else url
