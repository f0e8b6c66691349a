"""The service's answers as the client reads them: the response envelope (SPEC §1.2) turned
into its data or a typed error, and transport failures told apart by whether the request was
surely never sent (which decides whether a write may be retried blindly)."""

from __future__ import annotations

from typing import Any

import httpx

from gitsync import protocol
from gitsync.errors import RemoteError, TransportError
from gitsync.gateway_auth import AuthError
from gitsync.printable import printable
from gitsync.protocol import Operation

RETRY_STATUSES = {429, 500, 502, 503, 504}


class Retryable(Exception):
    """A failure worth another try; ``unsent``: the request surely never reached the server."""

    def __init__(self, error: RemoteError, unsent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.unsent = unsent


def unwrap(op: Operation, response: httpx.Response) -> Any:
    """The envelope's data, or the error it carries as an exception (one place for codes)."""
    try:
        answer = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past what can be read
        error = TransportError(
            f"{op.title}: HTTP {response.status_code} with a body that is not JSON",
            operation=op.title,
        )
        if response.status_code in RETRY_STATUSES:
            raise Retryable(error, unsent=False) from None
        raise error from None
    if not isinstance(answer, dict) or not ({"code", "status"} & set(answer)):
        raise TransportError(
            f"{op.title}: malformed envelope (no 'code'): {printable(str(answer)[:120])}",
            operation=op.title,
        )
    code = answer["code"] if "code" in answer else answer["status"]  # gateway, V2.0: status
    message = printable(str(answer.get("msg", "")).strip())
    if not isinstance(code, int):
        raise TransportError(f"{op.title}: malformed envelope (code {code!r})", operation=op.title)
    if code == 0:
        if response.status_code >= 500:
            raise Retryable(
                TransportError(f"{op.title}: HTTP {response.status_code}", operation=op.title),
                unsent=False,
            )
        return answer.get("data")
    if "status" in answer and "code" not in answer:
        raise AuthError(
            f"{op.title}: the EnOS gateway refused the request (status {code}: {message})",
            code=code,
            operation=op.title,
        )
    failure = RemoteError(f"{op.title} failed ({code}): {message}", code=code, operation=op.title)
    if response.status_code in RETRY_STATUSES or code == protocol.Code.INTERNAL:
        raise Retryable(failure, unsent=False)
    raise failure


def wrap_transport(exc: httpx.HTTPError, op: Operation, base: httpx.URL) -> Retryable:
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    detail = str(exc).strip()
    error = TransportError(
        f"{op.title}: the request to {origin(base)} {kind}: {type(exc).__name__}"
        + (f" ({detail})" if detail else ""),
        operation=op.title,
    )
    return Retryable(error, unsent=unsent)


def origin(url: httpx.URL) -> str:
    """Scheme, host and port only: never a user name or password written into the URL."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}" + (f":{url.port}" if url.port else "")
