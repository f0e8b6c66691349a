"""Reading one service object leniently, as SPEC.md §1.3 says a client must (ids as numbers
or strings, camelCase or snake_case keys, JSON inside strings or not), naming the field that
cannot be read. Messages show at most a short, escaped excerpt of a value: it is untrusted."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from gitsync.errors import CodecError


def _excerpt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=512)
def snake_case(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


class Reader:
    """Reads one service object, accepting camelCase or snake_case keys, naming bad fields."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise CodecError(f"{where}: expected an object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def raw(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            return self.data[key]
        return self.data.get(snake_case(key), default)

    def _convert(self, key: str, default: Any, convert: Callable[[Any], Any]) -> Any:
        value = self.raw(key)
        if value is None:
            return default
        try:
            return convert(value)
        except (TypeError, ValueError):
            raise CodecError(f"{self.where}.{key}: unexpected value {_excerpt(value)}") from None

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if type(value) is str:  # the usual case, read without the general path
            return value

        def conv(v: Any) -> str:
            if isinstance(v, (dict, list)):
                raise TypeError
            return str(v)

        result: str = self._convert(key, default, conv)
        return result

    def integer(self, key: str, default: int = 0) -> int:
        value = self.data.get(key)
        if type(value) is int:
            return value

        def conv(v: Any) -> int:
            if isinstance(v, (bool, dict, list)):
                raise TypeError
            f = float(v)
            if not f.is_integer():
                raise ValueError
            return int(f)

        result: int = self._convert(key, default, conv)
        return result

    def number(self, key: str, default: float = 0.0) -> float:
        def conv(v: Any) -> float:
            if isinstance(v, (bool, dict, list)):
                raise TypeError
            return float(v)

        result: float = self._convert(key, default, conv)
        return result

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if type(value) is bool:
            return value

        def conv(v: Any) -> bool:
            if isinstance(v, bool):
                return v
            if isinstance(v, (int, float)) and v in (0, 1):
                return bool(v)
            if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
                return v.lower() in ("true", "1")
            raise ValueError

        result: bool = self._convert(key, default, conv)
        return result

    def json(self, key: str, default: Any) -> Any:
        value = self.raw(key)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise CodecError(f"{self.where}.{key}: not valid JSON: {_excerpt(value)}") from None
        return value

    def items(self, key: str) -> list[Any]:
        value = self.json(key, [])
        if not isinstance(value, list):
            raise CodecError(f"{self.where}.{key}: expected a list")
        return value

    def code(self, key: str, codes: Mapping[str, Any], default: str) -> str:
        value = self.raw(key)
        if value is None or value == "":
            return default
        for word, code in codes.items():
            if value == code or str(value) == str(code):
                return word
        raise CodecError(f"{self.where}.{key}: unknown value {_excerpt(value)}")
