"""The wire contract of the EnOS Batch Data Processing Service V2.1 (SPEC.md §1, §3).

Only this module knows URL paths, ``action`` values, parameter names, the envelope and the
error codes. The engine builds its routes from ``OPERATIONS``; the client builds its methods
from the same table, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

PREFIX = "/batch-processing-service/v2.1"
RESOURCES = ("flows", "directories", "flowInstances", "taskInstances", "time")
TOKEN_PATH = "/apim-token-service/v2.0/token/get"
TOKEN_REFRESH_PATH = "/apim-token-service/v2.0/token/refresh"
MAX_BODY_BYTES = 10 * 1024 * 1024

HEADER_TOKEN = "apim-accesstoken"
HEADER_TIMESTAMP = "apim-timestamp"
HEADER_SIGNATURE = "apim-signature"
# The bundled engine names itself in every response, so gitsync can send it extensions
# (``localCmd``) that a real EnOS endpoint never receives.
ENGINE_HEADER = "x-gitsync-engine"


class Code(IntEnum):
    """Business codes in the ``code`` key of the envelope (SPEC §1.4)."""

    OK = 0
    BAD_USER = 62101
    BAD_PARAMETER = 62102
    NO_PRIVILEGE = 62103
    IN_USE = 62104
    ACCOUNT_LOCKED = 62105
    INTERNAL = 62109


class GatewayCode(IntEnum):
    """Codes of the API gateway and its token service, in the ``status`` key."""

    OK = 0
    REPLAYED = 1001
    UNKNOWN_APP_KEY = 1002
    BAD_ENCRYPTION = 1003
    BAD_PARAMETER = 1004
    INTERNAL = 1005
    EMPTY_PARAMETER = 1202
    TOKEN_EXPIRED = 1203
    REFRESH_FAILED = 1204


@dataclass(frozen=True)
class Param:
    name: str
    # as the docs give it: str, int, long (numeric strings too, SPEC §1.3), bool, object,
    # list, json
    type: str
    required: bool = True
    empty_ok: bool = False  # an empty string is a value (owners ""), not a missing parameter


@dataclass(frozen=True)
class Operation:
    name: str  # the client's method name
    title: str  # as SPEC.md names it
    method: str
    resource: str
    action: str
    query: tuple[Param, ...] = ()
    body: tuple[Param, ...] = ()
    needs_user: bool = True

    @property
    def path(self) -> str:
        return f"{PREFIX}/{self.resource}"

    @property
    def writes(self) -> bool:
        """True when the call changes something (repeating it may not be safe)."""
        return self.action not in _READ_ACTIONS


_READ_ACTIONS = frozenset(
    {
        "export",
        "get",
        "getMyFlow",
        "getLog",
        "getCurrentTime",
        "getTimeZone",
        "listWorkFlowDirs",
        "loadForEdit",
        "search",
    }
)

_FLOW_ID = Param("flowId", "int")
_TRIGGER_TIME = Param("triggerTime", "long")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "cancel_flow_instance",
        "Cancel Flow Instance",
        "POST",
        "flowInstances",
        "cancel",
        body=(Param("flowInstId", "str"),),
    ),
    Operation(
        "create_directory",
        "Create Directory",
        "POST",
        "directories",
        "create",
        body=(Param("parentId", "str"), Param("dirName", "str")),
    ),
    Operation("delete_flow", "Delete Flow", "GET", "flows", "delete", query=(_FLOW_ID,)),
    Operation("disable_flow", "Disable Flow", "POST", "flows", "disable", body=(_FLOW_ID,)),
    Operation("enable_flow", "Enable Flow", "POST", "flows", "enable", body=(_FLOW_ID,)),
    Operation("export_flow", "Export Flow", "GET", "flows", "export", query=(_FLOW_ID,)),
    Operation(
        "get_current_time", "Get Current Time", "GET", "time", "getCurrentTime", needs_user=False
    ),
    Operation("get_flow", "Get Flow", "GET", "flows", "get", query=(_FLOW_ID,)),
    Operation(
        "get_flow_instance",
        "Get Flow Instance",
        "GET",
        "flowInstances",
        "get",
        query=(Param("flowInstId", "str"),),
    ),
    Operation(
        "get_my_flow",
        "Get My Flow",
        "GET",
        "flows",
        "getMyFlow",
        query=(Param("expression", "str", required=False, empty_ok=True),),
    ),
    Operation(
        "get_task_instance",
        "Get Task Instance",
        "GET",
        "taskInstances",
        "get",
        query=(Param("taskInstId", "str"),),
    ),
    Operation(
        "get_task_instance_log",
        "Get Task Instance Log",
        "GET",
        "taskInstances",
        "getLog",
        query=(Param("taskInstId", "str"), Param("maxLength", "int", required=False)),
    ),
    Operation("get_time_zone", "Get Time Zone", "GET", "time", "getTimeZone", needs_user=False),
    Operation(
        "import_flow",
        "Import Flow",
        "POST",
        "flows",
        "import",
        body=(
            Param("flowId", "int", required=False),
            Param("flowName", "str"),
            Param("desc", "str", required=False, empty_ok=True),
            Param("dirId", "str"),
            Param("flowJson", "object"),
        ),
    ),
    Operation(
        "list_flow_instances",
        "List Flow Instances",
        "POST",
        "flowInstances",
        "search",
        body=(
            Param("type", "int"),
            Param("expression", "str", required=False, empty_ok=True),
            Param("owner", "str", required=False, empty_ok=True),
            Param("fromTriggerTime", "long"),
            Param("toTriggerTime", "long"),
            Param("status", "json"),
            Param("pagination", "object", required=False),
        ),
    ),
    Operation(
        "list_workflow_directories",
        "List Workflow Directories",
        "GET",
        "directories",
        "listWorkFlowDirs",
    ),
    Operation(
        "load_flow_for_edit", "Load Flow For Edit", "GET", "flows", "loadForEdit", query=(_FLOW_ID,)
    ),
    Operation(
        "save_flow",
        "Save Flow",
        "POST",
        "flows",
        "save",
        body=(
            Param("id", "int"),
            Param("type", "int"),
            Param("name", "str"),
            Param("freq", "str", empty_ok=True),
            Param("cycle", "str"),
            Param("alertMode", "int"),
            Param("doAs", "str", required=False, empty_ok=True),
            Param("owners", "str", empty_ok=True),
            Param("visitors", "str", empty_ok=True),
            Param("startTime", "str", required=False, empty_ok=True),
            Param("active", "int"),
            Param("parameters", "json", required=False),
            Param("desc", "str", required=False, empty_ok=True),
            Param("queue", "str", required=False, empty_ok=True),
            Param("tasks", "list", required=False),
            Param("flows", "list", required=False),
            Param("relations", "list", required=False),
        ),
    ),
    Operation(
        "search_flow",
        "Search Flow",
        "POST",
        "flows",
        "search",
        body=(
            Param("expression", "str", required=False, empty_ok=True),
            Param("pagination", "object", required=False),
        ),
    ),
    Operation(
        "trigger_flow", "Trigger Flow", "POST", "flows", "trigger", body=(_FLOW_ID, _TRIGGER_TIME)
    ),
    Operation(
        "trigger_flow_from_task",
        "Trigger Flow From Task",
        "POST",
        "flows",
        "triggerFromTask",
        body=(_FLOW_ID, Param("taskId", "int"), _TRIGGER_TIME),
    ),
    Operation(
        "update_and_trigger_flow",
        "Update And Trigger Flow",
        "POST",
        "flows",
        "updateAndTrigger",
        body=(_FLOW_ID, _TRIGGER_TIME, Param("parameters", "json")),
    ),
)

BY_NAME = {op.name: op for op in OPERATIONS}
BY_ROUTE = {(op.method, op.resource, op.action): op for op in OPERATIONS}

# Sort fields accepted by Search Flow and List Flow Instances, both spellings (SPEC §1.7).
SORT_FIELDS = {
    "createTime": "create_time",
    "create_time": "create_time",
    "updateTime": "update_time",
    "update_time": "update_time",
    "startTime": "start_time",
    "start_time": "start_time",
    "triggerTime": "trigger_time",
    "trigger_time": "trigger_time",
    "endTime": "end_time",
    "end_time": "end_time",
}


# Instance status codes (SPEC §2.1).
class ParamError(ValueError):
    """A request parameter is missing or of the wrong type; the message names it."""


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _whole_number(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def coerce(param: Param, value: Any) -> Any:
    """Check one parameter value against its declared type, leniently as SPEC §1.3 asks."""
    kind = param.type
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif kind in ("int", "long"):
        number = None if isinstance(value, bool) else value if isinstance(value, int) else None
        if number is None and _whole_number(value):
            number = int(value)
        if number is not None:
            if not INT64_MIN <= number <= INT64_MAX:  # SQLite's integers are 64-bit
                raise ParamError(f"Invalid parameter: {param.name} must be an integer in range")
            return number
    elif kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "object":
        if isinstance(value, dict):
            return value
        if isinstance(value, str):
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                return decoded
    elif kind == "list":
        if isinstance(value, list):
            return value
    else:
        return value
    wanted = {
        "str": "a string",
        "int": "an integer",
        "long": "an integer (epoch ms)",
        "bool": "a boolean",
        "object": "an object",
        "list": "a list",
    }[kind]
    raise ParamError(f"Invalid parameter: {param.name} must be {wanted}")


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def ok(data: Any = "") -> dict[str, Any]:
    return {"code": int(Code.OK), "msg": "OK", "data": data}


def error(code: int, msg: str) -> dict[str, Any]:
    return {"code": int(code), "msg": msg, "data": None}


def gateway_error(code: int, msg: str) -> dict[str, Any]:
    return {"status": int(code), "msg": msg, "business": "apim-gateway", "data": None}


def params_data(query: list[tuple[str, str]]) -> str:
    """The signed form of the query: names sorted, ``name`` + ``value`` with no separators."""
    return "".join(k + v for k, v in sorted(query, key=lambda kv: kv[0]))


def token_encryption(app_key: str, timestamp: int | str, app_secret: str) -> str:
    """``encryption`` of a token request: sha256(appKey + timestamp + appSecret)."""
    return hashlib.sha256(f"{app_key}{timestamp}{app_secret}".encode()).hexdigest()


def request_signature(
    token: str, query: list[tuple[str, str]], body: bytes, timestamp: int | str, app_secret: str
) -> str:
    """``apim-signature``: sha256(token + sorted query + raw body + timestamp + secret)."""
    text = token + params_data(query) + body.decode("utf-8") + str(timestamp) + app_secret
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
