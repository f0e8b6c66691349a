"""Only local clients, never a web page: the guard in front of the API and the dashboard.

Any page in the user's browser can send requests to a loopback port: a ``no-cors`` POST with
``text/plain``, an ``<img>`` GET (Delete Flow is a GET), or, by DNS rebinding, requests under
its own host name that then count as same-origin. So every request must name in ``Host`` an
address this engine listens on, must not carry another site's ``Origin`` or a cross-site
``Sec-Fetch-Site``, and an API POST must say its body is JSON (a browser cannot send that
cross-site without a CORS preflight, which the engine never grants). gitsync's client, the
SDK and curl send no ``Origin`` and no ``Sec-Fetch-Site``, and always the right ``Host``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gitsync import __version__, protocol
from gitsync.protocol import Code

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_CROSS = ("cross-site", "same-site")
TOKEN_HEADER = "X-Gitsync-Engine-Token"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


class LocalOnly:
    """ASGI middleware refusing what a browser page could send; ``listening`` says where the
    engine is bound, before it serves (until then, every request is refused)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.hosts: set[str] = set()
        self.token = ""  # the start token of engine.json, on every answer once published

    def listening(self, host: str, port: int) -> None:
        """Accept ``Host`` as the loopback names and ``host`` itself, on ``port``."""
        for name in (*LOOPBACK, _bracketed(host)):
            self.hosts.add(f"{name.lower()}:{port}")
            if port == 80:
                self.hosts.add(name.lower())

    def _served(self, scope: Scope, host: str) -> bool:
        """A listed name, or the very address the connection came in on (an engine on every
        address is reached by the machine's IP; a rebound DNS name is never an IP)."""
        if host in self.hosts:
            return True
        server = scope.get("server")
        if not server or server[0] in ("0.0.0.0", "::"):
            return False
        return bool(host == f"{_bracketed(str(server[0])).lower()}:{server[1]}")

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """The status and reason a request is refused for, or None."""
        headers = _headers(scope)
        host = headers.get("host", "").strip().lower()
        if not self._served(scope, host):
            return 421, f"Refused: Host {host or '(none)'!r} is not an address of this engine"
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in _CROSS:
            return 403, "Refused: a request from another site"
        origin = headers.get("origin")
        if origin is not None and origin.strip().lower() != f"http://{host}":
            return 403, f"Refused: a request from another site ({origin[:100]})"
        api = str(scope.get("path", "")).startswith(protocol.PREFIX) or scope.get("path") in (
            protocol.TOKEN_PATH,
            protocol.TOKEN_REFRESH_PATH,
        )
        if api and scope.get("method") == "POST" and not _is_json(headers.get("content-type", "")):
            return 415, "Refused: a POST body must be Content-Type: application/json"
        return None

    def _signed(self, send: Send) -> Send:
        """``send``, adding the start token to the answer's headers: a command compares it
        with engine.json's before trusting the engine at that address (embedded.py)."""
        token = self.token.encode()

        async def signed(message: Message) -> None:
            if token and message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                message["headers"] = [*headers, (TOKEN_HEADER.lower().encode(), token)]
            await send(message)

        return signed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is None:
            await self.app(scope, receive, self._signed(send))
            return
        status, reason = refused
        body = json.dumps(protocol.error(Code.BAD_PARAMETER, reason)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json;charset=UTF-8"),
                    (b"content-length", str(len(body)).encode()),
                    (protocol.ENGINE_HEADER.lower().encode(), __version__.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
