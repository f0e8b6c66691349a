"""The one exception tree. The CLI maps it to exit codes; nothing else catches broadly.

GitsyncError                 any failure with a message meant for the user (exit 1)
├── ConfigError              gitsync.yaml, targets, credentials
├── InvalidFilesError        workflow files failed validation (carries the problems)
├── CodecError               a service document that cannot be mapped to the model
├── RemoteError              the service answered with an error envelope (carries the code)
│   ├── TransportError       no usable answer: connection, timeout, malformed envelope
│   └── AnswerError          a success whose data is not in the documented shape
├── LockError                another apply holds the target's lock
└── PlanRefused              a safety check stopped the plan (mass delete, no terminal)

Interrupted (a KeyboardInterrupt, so every clean-up that handles Ctrl-C handles it too) is
raised in the main thread by SIGINT, SIGTERM and SIGHUP; it carries the signal's exit code.
"""

from __future__ import annotations

from typing import Any


class GitsyncError(Exception):
    """A failure whose message is fit to show the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(GitsyncError):
    pass


class InvalidFilesError(GitsyncError):
    def __init__(self, message: str, problems: list[Any]) -> None:
        super().__init__(message)
        self.problems = problems


class CodecError(GitsyncError):
    pass


class RemoteError(GitsyncError):
    def __init__(self, message: str, code: int | None = None, operation: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation


class TransportError(RemoteError):
    pass


class AnswerError(RemoteError):
    pass


class LockError(GitsyncError):
    pass


class PlanRefused(GitsyncError):
    pass


class Interrupted(KeyboardInterrupt):
    """A signal asked the command to stop: it unwinds like Ctrl-C, releasing what it holds."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
