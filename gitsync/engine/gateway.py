"""The EnOS API gateway's authentication, for parity (SPEC §1.5).

Issues access tokens for one app key, then accepts only requests whose ``apim-signature``
matches. Replays (a token request with a used ``encryption``, or the same signed request
twice) are refused with 1001, as the gateway does.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gitsync import protocol
from gitsync.protocol import GatewayCode

TOKEN_LIFETIME = 7200


class GatewayError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class Gateway:
    def __init__(
        self,
        app_key: str,
        app_secret: str,
        token_lifetime: int = TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_key = app_key
        self._secret = app_secret
        self.lifetime = token_lifetime
        self.clock = clock
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None
        self._expiry: dict[str, float] = {}
        self._used_encryptions: set[str] = set()
        self._used_signatures: set[str] = set()

    def _check_encryption(self, body: Mapping[str, Any]) -> None:
        for key in ("appKey", "encryption", "timestamp"):
            if protocol.blank(body.get(key)):
                raise GatewayError(GatewayCode.EMPTY_PARAMETER, f"{key} cannot be empty")
        if body["appKey"] != self.app_key:
            raise GatewayError(GatewayCode.UNKNOWN_APP_KEY, "appKey does not exist")
        expected = protocol.token_encryption(self.app_key, body["timestamp"], self._secret)
        if body["encryption"] != expected:
            raise GatewayError(GatewayCode.BAD_ENCRYPTION, "encryption is not valid")
        if body["encryption"] in self._used_encryptions:
            raise GatewayError(
                GatewayCode.REPLAYED, "repeated request: this encryption was already used"
            )
        self._used_encryptions.add(body["encryption"])

    def _answer(self, token: str, expiry: float) -> dict[str, Any]:
        remaining = max(0, int(expiry - self.clock()))
        return {
            "status": 0,
            "msg": "SUCCESS",
            "business": "apim-token-service",
            "data": {"accessToken": token, "expire": remaining},
        }

    def issue(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Token get: the same token while it is valid, a new one after it expires."""
        with self._lock:
            self._check_encryption(body)
            now = self.clock()
            if self._token and self._token[1] > now:
                return self._answer(*self._token)
            return self._answer(*self._new_token(now))

    def refresh(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._check_encryption(body)
            if body.get("accessToken") not in self._expiry:
                raise GatewayError(
                    GatewayCode.REFRESH_FAILED, "refreshing the access token failed: unknown token"
                )
            return self._answer(*self._new_token(self.clock()))

    def _new_token(self, now: float) -> tuple[str, float]:
        token = secrets.token_hex(16)
        self._token = (token, now + self.lifetime)
        self._expiry[token] = now + self.lifetime
        return self._token

    def verify(self, headers: Mapping[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        token = headers.get(protocol.HEADER_TOKEN, "")
        stamp = headers.get(protocol.HEADER_TIMESTAMP, "")
        signature = headers.get(protocol.HEADER_SIGNATURE, "")
        for name, value in (
            (protocol.HEADER_TOKEN, token),
            (protocol.HEADER_TIMESTAMP, stamp),
            (protocol.HEADER_SIGNATURE, signature),
        ):
            if not value:
                raise GatewayError(GatewayCode.EMPTY_PARAMETER, f"header {name} cannot be empty")
        with self._lock:
            expiry = self._expiry.get(token)
            if expiry is None:
                raise GatewayError(GatewayCode.BAD_PARAMETER, "invalid access token")
            if expiry <= self.clock():
                raise GatewayError(GatewayCode.TOKEN_EXPIRED, "access token expired")
            try:
                expected = protocol.request_signature(token, query, body, stamp, self._secret)
            except UnicodeDecodeError:
                expected = ""
            if not secrets.compare_digest(signature, expected):
                raise GatewayError(GatewayCode.BAD_ENCRYPTION, "signature is not valid")
            if signature in self._used_signatures:
                raise GatewayError(
                    GatewayCode.REPLAYED, "repeated request: this signed request was already used"
                )
            self._used_signatures.add(signature)
