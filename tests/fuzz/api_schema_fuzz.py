"""Schemathesis against a real server: every JSON operation of the legacy API's own
`GET /openapi.json`, with generated requests (valid ones and, in negative mode, ones the
document forbids), each signed with q-sign. A 5xx, an undocumented status, content type or
header, or a body the document does not describe fails.

Run by `make api-fuzz` (not collected by `make test`: the file name is not `test_*`):

    python -m pytest -q tests/fuzz/api_schema_fuzz.py

`API_FUZZ_EXAMPLES` (default 250) bounds the cases per operation and generation mode."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess

from cls_shipper.api.legacy.openapi import document
from cls_shipper.auth import qsign

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "250"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
# Protobuf bodies and answers: fuzzed by `make fuzz-upload`, which checks what is stored too.
BINARY = ("post_structuredlog", "get_log")
_DOC = document()


def _known(value: str) -> dict[str, Any]:
    """An id's schema for the fuzzing: valid cases use `value`, a real id, so that they get
    past "not found"; invalid (negative) cases try every other string. (Hypothesis rarely
    draws a `const` next to a string schema, so an `anyOf` of both would hardly test ids
    that exist.)"""
    return {"enum": [value]}


def _steering(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Schemas the fuzzing uses in place of the document's for these fields: real ids, and
    values the service accepts where the document (rightly) admits any JSON value because
    the service, not the body model, judges them; without them nearly every valid case would
    stop at a 400 or a 404."""
    zone = ZoneInfo("Asia/Shanghai")  # the server's default --timezone
    now = datetime.now(zone)
    times = [(now - timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S") for h in (2, 1, 0)]
    return {
        **{name: _known(value) for name, value in ids.items()},
        "start_time": {"enum": times[:2]}, "end_time": {"enum": times[1:]},
        "logset_name": {"type": "string", "pattern": "^[a-z]{1,20}$"},
        "topic_name": {"type": "string", "pattern": "^[a-z]{1,20}$"},
        "shipper_name": {"type": "string", "pattern": "^[a-z]{1,20}$"},
        "period": {"type": "integer", "minimum": 1, "maximum": 3640},
        "bucket": {"enum": ["fuzz-1250000001"]},
        "prefix": {"type": "string", "pattern": "^[a-z/]{0,20}$"},
        "interval": {"type": "integer", "minimum": 300, "maximum": 900},
        "max_size": {"type": "integer", "minimum": 100, "maximum": 256},
        "partition": {"enum": ["%Y/%m/%d/%H/", "%Y%m%d/"]},
        # POST /pull_log: the topic's one partition, offsets within it (one record at 0).
        "PartitionId": {"enum": [1]},
        "StartOffset": {"type": "integer", "minimum": -1, "maximum": 1},
        "Size": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
        "Query": {"type": "null"},
    }


def _with_ids(doc: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    steer = _steering(ids)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            # A real id for DELETE would delete what the other operations are given.
            if method == "delete":
                continue
            for param in op.get("parameters", []):
                if param["name"] in steer:
                    param["schema"] = steer[param["name"]]
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None or path == "/structuredlog":
                continue
            name = body["schema"]["$ref"].rsplit("/", 1)[-1]
            model = doc["components"]["schemas"][name]
            for field in model["properties"]:
                if field in steer:
                    model["properties"][field] = steer[field]
    return doc


# (operationId, status) -> responses, printed at the end: what the run reached.
SEEN: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           pytestconfig: pytest.Config) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("apifuzz")).start()
    yield proc
    proc.stop()
    by_op: dict[str, list[str]] = {}
    for (op, status), n in sorted(SEEN.items()):
        by_op.setdefault(op, []).append(f"{status}x{n}")
    lines = [f"{sum(SEEN.values())} requests, by operation and status:",
             *(f"  {op}: {' '.join(counts)}" for op, counts in by_op.items())]
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    assert capture is not None
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def operations(server: ServerProcess) -> dict[str, Any]:
    """The operations of the served document by operationId, with real ids to draw."""
    client = LegacyClient(server.base_url)
    suffix = uuid.uuid4().hex[:8]
    logset = client.call("POST", "/logset", json={"logset_name": f"fuzz-{suffix}",
                                                 "period": 3})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                "topic_name": "fuzz"})["topic_id"]
    shipper = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "fuzz-1250000001", "prefix": "fuzz/",
        "shipper_name": "fuzz"})["shipper_id"]
    client.call("POST", "/structuredlog", {"topic_id": topic},
                json={"logs": [{"contents": {"msg": "hello"}}]})
    # The document as served, unsigned: the route is part of what is checked.
    resp = httpx.get(server.base_url + "/openapi.json")
    assert resp.status_code == 200, resp.text
    assert resp.json() == _DOC
    doc = _with_ids(resp.json(), {"logset_id": logset, "topic_id": topic,
                                  "shipper_id": shipper})
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=server.base_url)
    schema.config.generation.update(with_security_parameters=False)
    operations: dict[str, Any] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations[result.ok().definition.raw["operationId"]] = result.ok()
    return operations


def _signed(case: Any, host: str) -> dict[str, str]:
    """The Authorization the official SDKs would send: method, path, every query parameter
    (as the transport sends it) and Host."""
    query = {name: _text(value) for name, value in (case.query or {}).items()}
    headers = {"Host": host}
    auth = qsign.sign(SECRET_ID, SECRET_KEY, case.method, case.path, query, headers,
                      int(time.time()) - 60)
    # The signature lists the parameter names as they are: one with a control character
    # cannot be sent in a header (the HTTP server refuses the request before the API sees
    # it), nor could an SDK send it. Such a request goes unsigned, and is refused as that.
    if auth.isascii() and auth.isprintable():
        headers["Authorization"] = auth
    return headers


def _text(value: Any) -> str:
    # As `requests` puts a scalar into the query string.
    return value if isinstance(value, str) else str(value)


# From the document built in process (the fixture checks the served one is the same): each
# operation with valid inputs, and those that take any with invalid ones too.
CASES = [(op["operationId"], mode) for item in _DOC["paths"].values() for op in item.values()
         if op["operationId"] not in BINARY
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or "parameters" in op or "requestBody" in op]


@pytest.mark.parametrize(("operation_id", "mode"), CASES,
                         ids=[f"{op}-{mode.value}" for op, mode in CASES])
def test_legacy_api_conforms(operation_id: str, mode: GenerationMode, server: ServerProcess,
                             operations: dict[str, Any]) -> None:
    operation = operations[operation_id]
    host = server.base_url.split("://", 1)[1]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=_signed(case, host), checks=CHECKS)
        SEEN[(operation_id, response.status_code)] += 1

    run()
