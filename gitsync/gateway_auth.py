"""Signing requests as the EnOS API gateway requires (SPEC §1.5): a token from the token
service, refreshed before it expires or when the gateway says it has, and a SHA-256
signature over the query and the exact body bytes. The secret never appears in any output."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from gitsync import protocol
from gitsync.errors import RemoteError
from gitsync.printable import printable


class AuthError(RemoteError):
    """The gateway refused the credentials or a signature."""


@dataclass(frozen=True)
class Credentials:
    app_key: str
    app_secret: str
    source: str = "ENOS_ACCESS_KEY and ENOS_SECRET_KEY"  # named when the gateway refuses them

    def __repr__(self) -> str:  # never show the secret, even in a debugger or a log
        return f"Credentials(app_key={self.app_key!r}, app_secret='***')"


class GatewayAuth(httpx.Auth):
    """EnOS API gateway signing (SPEC §1.5): a token from the token service, refreshed before
    it expires or when the gateway says it has, and a signature over each request."""

    requires_response_body = True
    REFRESH_MARGIN = 0.1  # refresh when less than this share of the lifetime is left

    def __init__(
        self, credentials: Credentials, token_url: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._credentials = credentials
        self._token_url = token_url
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._lifetime = 0.0
        self._last_stamp = 0

    def _stamp(self) -> int:
        with self._lock:
            self._last_stamp = max(int(self._clock() * 1000), self._last_stamp + 1)
            return self._last_stamp

    def _token_request(self) -> httpx.Request:
        stamp = self._stamp()
        key, secret = self._credentials.app_key, self._credentials.app_secret
        body = {
            "appKey": key,
            "timestamp": stamp,
            "encryption": protocol.token_encryption(key, stamp, secret),
        }
        return httpx.Request("POST", self._token_url, json=body)

    def _take_token(self, response: httpx.Response) -> None:
        try:
            answer = response.json()
            status = int(answer.get("status", answer.get("code", -1)))
        except (ValueError, AttributeError, TypeError, RecursionError):
            raise AuthError(
                f"the token service answered HTTP {response.status_code} without a readable body"
            ) from None
        if status != 0:
            raise AuthError(
                f"the EnOS gateway refused the access key (status {status}: "
                f"{printable(str(answer.get('msg', '')))}); check {self._credentials.source}",
                code=status,
            )
        data = answer.get("data")
        token = data.get("accessToken") if isinstance(data, dict) else None
        expire = data.get("expire", 7200) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("the token service answered without an accessToken")
        if isinstance(expire, bool) or not isinstance(expire, (int, float)) or not expire > 0:
            expire = 7200  # an unreadable lifetime: assume the documented default
        self._token = token
        self._lifetime = float(min(expire, 7 * 86_400))
        self._expires = self._clock() + self._lifetime

    def _fresh(self) -> bool:
        left = self._expires - self._clock()
        return self._token is not None and left > self._lifetime * self.REFRESH_MARGIN

    def _sign(self, request: httpx.Request) -> None:
        assert self._token is not None
        stamp = self._stamp()
        query = list(request.url.params.multi_items())
        signature = protocol.request_signature(
            self._token, query, request.content, stamp, self._credentials.app_secret
        )
        request.headers[protocol.HEADER_TOKEN] = self._token
        request.headers[protocol.HEADER_TIMESTAMP] = str(stamp)
        request.headers[protocol.HEADER_SIGNATURE] = signature

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._fresh():
            self._take_token((yield self._token_request()))
        self._sign(request)
        response = yield request
        if _gateway_status(response) == protocol.GatewayCode.TOKEN_EXPIRED:
            self._take_token((yield self._token_request()))
            self._sign(request)
            yield request


def _gateway_status(response: httpx.Response) -> int | None:
    if response.status_code != 401:
        return None
    try:
        return int(response.json().get("status"))
    except (ValueError, AttributeError, TypeError, RecursionError):
        return None
