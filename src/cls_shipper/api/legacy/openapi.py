"""`GET /openapi.json`: the OpenAPI 3.1 document of the legacy surface, built from what the
code declares so that it cannot drift: the routes from the route table, the JSON bodies from
their pydantic models, the answers of shippers and tasks from their field maps, the errors
from the error catalogue. What no other table holds (each route's query parameters, the
answers built by hand) is declared here, and `tests/unit/api/test_openapi.py` checks it
against the handlers. Unsigned: the document holds nothing secret."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import cls_shipper
from cls_shipper.api.fieldschema import JsonSchema, object_schema
from cls_shipper.api.legacy import bodies
from cls_shipper.api.legacy.fields import COUNTED_TASK, SHIPPER, TASK, TASK_DETAIL
from cls_shipper.api.legacy.requests import Body
from cls_shipper.api.legacy.routes import TABLE
from cls_shipper.api.legacy.shipping import NEXT_OFFSET
from cls_shipper.errors import ErrorKind, Kinds
from cls_shipper.model.task import CountedTask, Task, TaskDetail
from cls_shipper.service.logs import MAX_READ_COUNT
from cls_shipper.service.shippers import Shipper
from cls_shipper.service.tasks import MAX_LISTED, MAX_OFFSET

PATH = "/openapi.json"


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter (or, for the binary endpoints, a header) of one route."""

    name: str
    schema: JsonSchema
    description: str
    required: bool = True
    where: str = "query"


@dataclass(frozen=True, slots=True)
class Operation:
    """What the route table does not say about a route. `answer` is the schema of the JSON
    body of a `200` (None: an empty body); the binary endpoints give their OpenAPI request
    body and `200` response objects as they are."""

    summary: str
    params: tuple[Param, ...] = ()
    body: type[Body] | None = None
    answer: JsonSchema | None = None
    binary_request: dict[str, Any] | None = None
    binary_answer: dict[str, Any] | None = None
    # Catalogue kinds the route answers beyond those every route may (405 NotSupported is
    # left out of the others: there it only means a method the path does not have).
    refusals: tuple[ErrorKind, ...] = ()
    answer_headers: dict[str, Any] | None = None  # of a JSON `200`, beside X-Request-Id

    @property
    def reads_body(self) -> bool:
        return self.body is not None or self.binary_request is not None


def _obj(**properties: JsonSchema) -> JsonSchema:
    """An object with exactly these properties, all present."""
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


_STR: JsonSchema = {"type": "string"}
_INT: JsonSchema = {"type": "integer"}
_BOOL: JsonSchema = {"type": "boolean"}
# Legacy datetimes in the server's zone; "" for "not happened yet".
_TIME: JsonSchema = {"type": "string", "pattern": r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})?$"}
_TIME_IN: JsonSchema = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
                        "examples": ["2026-01-01 00:00:00"]}


def _id(name: str, what: str) -> Param:
    return Param(name, {"type": "string", "minLength": 1}, f"the {what}'s id")


_LOGSET_ID = _id("logset_id", "logset")
_TOPIC_ID = _id("topic_id", "topic")
_SHIPPER_ID = _id("shipper_id", "shipper")
_RANGE = (
    _SHIPPER_ID,
    Param("start_time", _TIME_IN, "YYYY-MM-DD HH:MM:SS in the server's zone, within the last "
                                  "three days"),
    Param("end_time", _TIME_IN, "YYYY-MM-DD HH:MM:SS in the server's zone, inclusive to the "
                                "second"),
)

_LOGSET = _obj(logset_id=_STR, logset_name=_STR, period=_INT, create_time=_TIME)
_TOPIC = _obj(
    logset_id=_STR, topic_id=_STR, topic_name=_STR, partition_count=_INT, path=_STR,
    wild_path=_STR, collection=_BOOL, index=_BOOL, log_type=_STR,
    extract_rule={"type": ["object", "null"]},
    machine_group={"type": "array", "maxItems": 0}, create_time=_TIME)
_FINDING = _obj(
    kind={"enum": ["missing", "mismatched", "extra", "gap", "unfinished"]},
    range_start=_TIME, range_end=_TIME, task_id=_STR, key=_STR, detail=_STR)
_AUDIT = _obj(
    shipper_id=_STR, start_time=_TIME, end_time=_TIME, clean=_BOOL, windows=_INT,
    shipped_windows=_INT, objects=_INT, records=_INT, records_rejected=_INT, bytes_out=_INT,
    findings={"type": "array", "items": _FINDING})

# The JSON form of an upload (docs/api-legacy.md "JSON form"); decoded by ingest/decode.py.
_JSON_UPLOAD: JsonSchema = {
    "type": "object",
    "properties": {
        "logs": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "properties": {"time": {"type": "integer", "minimum": 0},
                           "contents": {"type": "object",
                                        "additionalProperties": {"type": "string"}}},
            "required": ["contents"], "additionalProperties": False}},
        "source": _STR, "filename": _STR, "hostname": _STR,
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["logs"], "additionalProperties": False,
}
_PROTOBUF = {"schema": {"type": "string", "format": "binary"}}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/structuredlog"): Operation(
        "Upload logs: a protobuf LogGroupList or the JSON form, optionally compressed",
        params=(
            _TOPIC_ID,
            Param("x-cls-compress-type", {"enum": ["lz4", "zstd", "deflate", "none", ""]},
                  "the body's codec; absent: none", required=False, where="header"),
            Param("Content-MD5", _STR, "the body's MD5 (hex or base64); checked when sent",
                  required=False, where="header"),
            Param("x-cls-hashkey", {"type": "string", "maxLength": 1024},
                  "routes the upload to the partition whose key range holds it (32 hex "
                  "digits, or any text, which is hashed with MD5); absent: the partitions "
                  "in turn", required=False, where="header"),
        ),
        binary_request={"required": True, "content": {
            "application/x-protobuf": _PROTOBUF,
            "application/json": {"schema": _JSON_UPLOAD}}}),
    ("GET", "/cursor"): Operation(
        "The cursor of the first record ingested at or after `start`",
        params=(_TOPIC_ID, Param(
            "start", {"type": "string", "examples": ["2026-01-01 00:00:00", "1767225600"]},
            "YYYY-mm-dd HH:MM:SS in the server's zone, or epoch seconds or milliseconds")),
        answer=_obj(cursor=_STR)),
    ("GET", "/log"): Operation(
        "Records from a cursor on, exactly as uploaded, as a protobuf LogGroupList",
        params=(_TOPIC_ID, Param("cursor", _STR, "from `GET /cursor` or `x-cls-cursor`"),
                Param("count", {"type": "integer", "minimum": 1, "maximum": MAX_READ_COUNT},
                      f"at most this many records (default {MAX_READ_COUNT})",
                      required=False)),
        binary_answer={
            "description": "a LogGroupList (fewer records than `count` past 16 MiB)",
            "headers": {
                "x-cls-cursor": {"required": True, "schema": _STR,
                                 "description": "the cursor to read on from"},
                "x-cls-count": {"required": True,
                                "schema": {"type": "string", "pattern": r"^\d+$"},
                                "description": "the number of records returned"}},
            "content": {"application/x-protobuf": _PROTOBUF}}),
    ("POST", "/pull_log"): Operation(
        "Records of one partition from an offset, for consumers (the SDK's pull_logs)",
        params=(_TOPIC_ID,), body=bodies.PullLog, refusals=(Kinds.NOT_SUPPORTED,),
        binary_answer={
            "description": "`{\"Response\": {\"NextOffset\", \"Message\"}}` as JSON, "
                           "compressed as CompressType asks (raw snappy by default)",
            "headers": {
                "x-cls-compress-type": {"required": True,
                                        "schema": {"enum": ["snappy", "lz4", "none"]},
                                        "description": "how the body is compressed"},
                "x-cls-body-raw-size": {"required": True,
                                        "schema": {"type": "string", "pattern": r"^\d+$"},
                                        "description": "the body's size uncompressed"},
                "x-cls-count": {"required": True,
                                "schema": {"type": "string", "pattern": r"^\d+$"},
                                "description": "the number of records returned"},
                "x-cls-next-offset": {"required": True,
                                      "schema": {"type": "string", "pattern": r"^-?\d+$"},
                                      "description": "the offset to pull on from (-1: "
                                                     "EndTime reached)"}},
            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                "format": "binary"}},
                        "application/json": {"schema": _obj(Response=_obj(
                            NextOffset=_INT, Message={"type": "array", "items": _STR}))}}}),
    ("POST", "/logset"): Operation("Create a logset", body=bodies.NewLogset,
                                   answer=_obj(logset_id=_STR)),
    ("GET", "/logset"): Operation("A logset", (_LOGSET_ID,), answer=_LOGSET),
    ("GET", "/logsets"): Operation("Every logset",
                                   answer=_obj(logsets={"type": "array", "items": _LOGSET})),
    ("PUT", "/logset"): Operation("Rename a logset or change its retention",
                                  body=bodies.LogsetChanges),
    ("DELETE", "/logset"): Operation("Delete a logset without topics", (_LOGSET_ID,)),
    ("POST", "/topic"): Operation("Create a topic", body=bodies.NewTopic,
                                  answer=_obj(topic_id=_STR)),
    ("GET", "/topic"): Operation("A topic", (_TOPIC_ID,), answer=_TOPIC),
    ("GET", "/topics"): Operation("The topics of a logset", (_LOGSET_ID,),
                                  answer=_obj(topics={"type": "array", "items": _TOPIC})),
    ("PUT", "/topic"): Operation("Change a topic; `collection: false` closes it to uploads",
                                 body=bodies.TopicChanges),
    ("DELETE", "/topic"): Operation("Delete a topic without shippers, and its log",
                                    (_TOPIC_ID,)),
    ("POST", "/shipper"): Operation("Create a shipper", body=bodies.NewShipper,
                                    answer=_obj(shipper_id=_STR)),
    ("GET", "/shipper"): Operation("A shipper and its progress", (_SHIPPER_ID,),
                                   answer=object_schema(SHIPPER, Shipper)),
    ("PUT", "/shipper"): Operation("Change a shipper; `effective` switches it off or on",
                                   body=bodies.ShipperChanges),
    ("DELETE", "/shipper"): Operation("Delete a shipper and its ledger", (_SHIPPER_ID,)),
    ("GET", "/shippers"): Operation(
        "The shippers of a topic",
        (_TOPIC_ID,
         Param("offset", {"type": "integer", "minimum": 0, "maximum": 1 << 31},
               "shippers to skip (default 0)", required=False),
         Param("count", {"type": "integer", "minimum": 1, "maximum": 1000},
               "at most this many (default 50)", required=False)),
        answer=_obj(shippers={"type": "array", "items": object_schema(SHIPPER, Shipper)})),
    ("GET", "/tasks"): Operation(
        "The tasks of a shipper whose runs started in a range, by window; paged (extension)",
        (*_RANGE,
         Param("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
               "extension: tasks to skip (default 0)", required=False),
         Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LISTED},
               f"extension: at most this many (default and most {MAX_LISTED})",
               required=False),
         Param("detail", _BOOL,
               "extension: `true` adds to each task its counters as GET /task shows them "
               "(records, records_filtered_out, records_rejected, bytes_in, bytes_out, "
               "attempts) and `object_count`, the number of its objects; `false` or absent: "
               "the CLS fields only", required=False)),
        # Without `detail` the first form, with `detail=true` the second.
        answer=_obj(tasks={"type": "array", "maxItems": MAX_LISTED, "items": {"anyOf": [
            object_schema(TASK, Task), object_schema(COUNTED_TASK, CountedTask)]}}),
        answer_headers={NEXT_OFFSET: {
            "required": False, "schema": {"type": "string", "pattern": r"^\d+$"},
            "description": "extension: present when more tasks follow; the `offset` of the "
                           "next page"}}),
    ("GET", "/task"): Operation(
        "Extension: one task with everything the ledger knows",
        (_SHIPPER_ID, _id("task_id", "task")), answer=object_schema(TASK_DETAIL, TaskDetail)),
    ("PUT", "/task"): Operation("Retry a failed task", body=bodies.TaskRetry),
    ("PUT", "/tasks"): Operation("Extension: retry every failed task of a shipper",
                                 body=bodies.FailedTasksRetry,
                                 answer=_obj(retried={"type": "integer", "minimum": 0})),
    ("GET", "/audit"): Operation(
        "Extension: the ledger checked against the bucket for windows starting in a range",
        _RANGE, answer=_AUDIT),
}

# Answered before a request reaches a handler, so not in the error catalogue: the HTTP
# server's limit on request heads (cli/http_limits.py), which closes the connection.
_HEAD_TOO_LARGE = 431
# Statuses only a request with a body can get: too large, too slow, no room to read it.
_BODY_ONLY = {Kinds.BODY_TOO_LARGE.status, Kinds.BODY_TIMEOUT.status,
              Kinds.SPEED_QUOTA_EXCEED.status}


def _kinds() -> list[ErrorKind]:
    return [k for k in vars(Kinds).values() if isinstance(k, ErrorKind)]


def error_statuses(op: Operation) -> list[int]:
    """The error statuses a documented route may answer: those of the catalogue, less the
    ones only a body can cause when it reads none, less 405 (a method the path does not have,
    so never a documented operation) unless the route refuses a feature with it, plus the
    HTTP server's 431."""
    statuses = {k.status for k in _kinds()} - {Kinds.NOT_SUPPORTED.status}
    if not op.reads_body:
        statuses -= _BODY_ONLY
    return sorted(statuses | {k.status for k in op.refusals} | {_HEAD_TOO_LARGE})


_REQUEST_ID = {"x-cls-requestid": {"required": True, "schema": {"type": "string"},
                                   "description": "the request's id, also in the server log"}}


def _error_responses() -> dict[str, Any]:
    """One response per status, its `errorcode` one of the catalogue's codes of that
    status."""
    codes: dict[int, set[str]] = {}
    for kind in _kinds():
        codes.setdefault(kind.status, set()).add(kind.legacy_code)
    codes[_HEAD_TOO_LARGE] = {"InvalidParam"}
    out: dict[str, Any] = {}
    for status, names in sorted(codes.items()):
        schema = {"allOf": [{"$ref": "#/components/schemas/Error"},
                            {"properties": {"errorcode": {"enum": sorted(names)}}}]}
        out[f"E{status}"] = {
            "description": f"an error: {', '.join(sorted(names))}",
            # The 431 is sent by the HTTP server before a request id is given.
            "headers": {} if status == _HEAD_TOO_LARGE else _REQUEST_ID,
            "content": {"application/json": {"schema": schema}},
        }
    return out


def _operation(method: str, path: str, op: Operation, defs: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": f"{method.lower()}{path.replace('/', '_')}",
        "summary": op.summary,
    }
    if op.params:
        doc["parameters"] = [{"name": p.name, "in": p.where, "required": p.required,
                              "description": p.description, "schema": p.schema}
                             for p in op.params]
    if op.body is not None:
        schema = op.body.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[op.body.__name__] = schema
        doc["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}}}
    elif op.binary_request is not None:
        doc["requestBody"] = op.binary_request
    ok: dict[str, Any]
    if op.binary_answer is not None:
        ok = {**op.binary_answer, "headers": {**_REQUEST_ID, **op.binary_answer["headers"]}}
    elif op.answer is not None:
        ok = {"description": "done", "headers": {**_REQUEST_ID, **(op.answer_headers or {})},
              "content": {"application/json": {"schema": op.answer}}}
    else:
        ok = {"description": "done (an empty body)", "headers": _REQUEST_ID}
    doc["responses"] = {"200": ok, **{str(s): {"$ref": f"#/components/responses/E{s}"}
                                      for s in error_statuses(op)}}
    return doc


def document() -> dict[str, Any]:
    """The OpenAPI document of the legacy surface, in the route table's order."""
    defs: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, _handler in TABLE:
        op = OPERATIONS[(method, path)]
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, defs)
    paths[PATH] = {"get": {
        "operationId": "get_openapi.json", "summary": "This document (unsigned)",
        "security": [],
        "responses": {
            "200": {"description": "the OpenAPI document", "headers": _REQUEST_ID,
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "500": {"$ref": "#/components/responses/E500"},
            "431": {"$ref": f"#/components/responses/E{_HEAD_TOO_LARGE}"}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cls-shipper legacy CLS API",
            "version": cls_shipper.__version__,
            "description": "The legacy CLS REST API (q-sign, snake_case JSON) as cls-shipper "
                           "answers it; API 3.0 (POST / with X-TC-Action) is described in "
                           "docs/api-v3.md.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"qsign": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "a q-sign signature (spec §3) over the method, the path, "
                               "every query parameter and the Host header; "
                               "`cls-shipper sign` prints one"}},
            "schemas": {
                "Error": _obj(errorcode=_STR, errormessage=_STR),
                **dict(sorted(defs.items())),
            },
            "responses": _error_responses(),
        },
        "security": [{"qsign": []}],
    }


@cache
def _document_bytes() -> bytes:
    return orjson.dumps(document())


async def serve(_request: Request) -> Response:
    return Response(_document_bytes(), media_type="application/json")


ROUTE = Route(PATH, serve, methods=["GET"])
