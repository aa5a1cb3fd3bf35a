"""The legacy OpenAPI document: what it declares by hand is what the handlers do, what it
derives follows the code, and it is served unsigned."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from schemathesis.core.result import Ok
from starlette.requests import Request

from cls_shipper.api.app import create_app
from cls_shipper.api.fieldmap import Field, FieldMap, each, nested, shown_as, wrapped
from cls_shipper.api.fieldschema import object_schema
from cls_shipper.api.legacy import consume, control, logs, openapi, shipping
from cls_shipper.api.legacy.openapi import OPERATIONS, document, error_statuses
from cls_shipper.api.legacy.routes import TABLE
from cls_shipper.errors import Kinds
from cls_shipper.settings import Settings

# Described by hand (protobuf): they read no query through `query()`.
BINARY = {("POST", "/structuredlog")}


def test_every_route_is_described_once() -> None:
    assert set(OPERATIONS) == {(m, p) for m, p, _ in TABLE}
    doc = document()
    described = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert described == {(m, p) for m, p, _ in TABLE} | {("GET", "/openapi.json")}


def test_the_document_loads_as_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(doc)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results
    assert len(results) == len(TABLE) + 1
    # Every schema in it is a valid JSON Schema (refs resolved within the document).
    for name, body in doc["components"]["schemas"].items():
        jsonschema_rs.validator_for({**body, "components": doc["components"]})
        assert name


class _Stop(Exception):
    """Raised where a handler would reach the service: what it read is recorded by then."""


@dataclass
class _Seen:
    allowed: set[str] | None = None
    required: set[str] = field(default_factory=set)
    ints: dict[str, tuple[int, int]] = field(default_factory=dict)
    bools: set[str] = field(default_factory=set)
    body: type | None = None


def _what_handler_reads(monkeypatch: pytest.MonkeyPatch, handler: Any) -> _Seen:
    seen = _Seen()

    def query(_request: Request, allowed: set[str]) -> dict[str, str]:
        seen.allowed = set(allowed)
        return {}

    def required(_params: dict[str, str], name: str) -> str:
        seen.required.add(name)
        return "2026-01-01 00:00:00"  # also a valid legacy time, for the time ranges

    def query_int(_params: dict[str, str], name: str, default: int, low: int,
                  high: int) -> int:
        seen.ints[name] = (low, high)
        return default

    def query_bool(_params: dict[str, str], name: str) -> bool:
        seen.bools.add(name)
        return False

    async def read_json(_request: Request, model: type) -> Any:
        seen.body = model
        raise _Stop

    async def run(*_args: Any, **_kwargs: Any) -> Any:
        raise _Stop

    ctx = SimpleNamespace(zone=dt.UTC, settings=Settings())
    module: ModuleType
    for module in (control, shipping, logs, consume):
        for name, fake in (("query", query), ("required", required),
                           ("query_int", query_int), ("query_bool", query_bool),
                           ("read_json", read_json),
                           ("run", run), ("context", lambda _r: ctx)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, fake)
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                       "headers": []})
    with pytest.raises(_Stop):
        asyncio.run(handler(request))
    return seen


@pytest.mark.parametrize(("method", "path", "handler"),
                         [row for row in TABLE if row[:2] not in BINARY],
                         ids=[f"{m} {p}" for m, p, _ in TABLE if (m, p) not in BINARY])
def test_declared_inputs_are_what_the_handler_reads(
        monkeypatch: pytest.MonkeyPatch, method: str, path: str, handler: Any) -> None:
    op = OPERATIONS[(method, path)]
    seen = _what_handler_reads(monkeypatch, handler)
    query = [p for p in op.params if p.where == "query"]
    assert seen.body is op.body
    if op.body is None:
        assert seen.allowed == {p.name for p in query}
    assert seen.required <= {p.name for p in query if p.required}
    for name, (low, high) in seen.ints.items():
        (param,) = [p for p in query if p.name == name]
        assert (param.schema["type"], param.schema["minimum"], param.schema["maximum"]) == (
            "integer", low, high)
    for name in seen.bools:
        (param,) = [p for p in query if p.name == name]
        assert param.schema == {"type": "boolean"} and not param.required


def test_error_responses_come_from_the_catalogue() -> None:
    doc = document()
    responses = doc["components"]["responses"]
    for kind in vars(Kinds).values():
        if hasattr(kind, "legacy_code"):
            enum = responses[f"E{kind.status}"]["content"]["application/json"]["schema"][
                "allOf"][1]["properties"]["errorcode"]["enum"]
            assert kind.legacy_code in enum
    get = doc["paths"]["/shipper"]["get"]["responses"]
    put = doc["paths"]["/shipper"]["put"]["responses"]
    assert {"400", "401", "403", "404", "409", "431", "500"} <= set(get)
    # A body too large, too slow or without room to read it: only where a body is read.
    assert {"408", "413", "429"} <= set(put) and not {"408", "413", "429"} & set(get)
    assert "405" not in get
    assert error_statuses(OPERATIONS[("GET", "/logsets")]) == sorted(
        {k.status for k in vars(Kinds).values() if hasattr(k, "status")}
        - {405, 408, 413, 429} | {431})


# ---- the schemas derived from field maps ----

@dataclass
class _Inner:
    n: int
    words: list[str]


@dataclass
class _Outer:
    name: str
    when: int | None
    inner: _Inner | None
    items: list[_Inner]
    kind: str


def _label(value: int | None) -> str:
    return "" if value is None else str(value)


_INNER: FieldMap[Any] = FieldMap(fields=[Field("n"), Field("words", "all_words")])
_OUTER: FieldMap[Any] = FieldMap(fields=[
    Field("name"),
    Field("when", conv=shown_as(_label)),
    Field("inner", conv=nested(_INNER), omit=lambda v: v is None),
    Field("items", conv=each(nested(_INNER))),
    Field("kind", conv=wrapped("format")),
])


@pytest.mark.parametrize("obj", [
    _Outer("a", None, None, [], "gzip"),
    _Outer("b", 5, _Inner(1, ["x"]), [_Inner(2, []), _Inner(3, ["y", "z"])], "none"),
])
def test_a_derived_schema_describes_what_the_map_renders(obj: _Outer) -> None:
    schema = object_schema(_OUTER, _Outer)
    assert list(schema["properties"]) == ["name", "when", "inner", "items", "kind"]
    assert schema["required"] == ["name", "when", "items", "kind"]
    rendered = _OUTER.render(obj, dt.UTC)
    jsonschema_rs.validate(schema, rendered)
    # And it is strict: a value of another type, or a field the map does not render, fails.
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validate(schema, {**rendered, "name": 1})
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validate(schema, {**rendered, "extra": 1})


def test_a_row_over_an_unknown_attribute_is_refused() -> None:
    with pytest.raises(KeyError):
        object_schema(FieldMap(fields=[Field("nowhere")]), _Outer)


# ---- served ----

def _get(method: str, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Settings()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path)

    return asyncio.run(go())


def test_served_unsigned_and_as_built() -> None:
    resp = _get("GET", openapi.PATH)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-cls-requestid"]
    assert resp.json() == document()
    assert _get("POST", openapi.PATH).status_code == Kinds.NOT_SUPPORTED.status
    # The other routes still need their signature.
    assert _get("GET", "/logsets").json()["errorcode"] == "MissingAuthorization"
