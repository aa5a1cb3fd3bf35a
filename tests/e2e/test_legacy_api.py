"""The legacy control plane over HTTP against the real server: happy paths, documented
shapes, and every error code of the foundation issue."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cls_shipper.auth import qsign
from tests.helpers.server import SECRET_ID, SECRET_KEY, ApiError, LegacyClient, ServerProcess
from tests.helpers.shipping import legacy as legacy_time


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _shipper_body(topic: str, **over: Any) -> dict[str, Any]:
    return {"topic_id": topic, "bucket": "test-1250000001", "prefix": "test",
            "shipper_name": _name("s"), **over}


def _error(excinfo: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return excinfo.value.status, str(excinfo.value.code)


# ---- logsets and topics -----------------------------------------------------------------


def test_logset_lifecycle(client: LegacyClient) -> None:
    name = _name("ls")
    logset_id = client.call("POST", "/logset", json={"logset_name": name, "period": 30})[
        "logset_id"]
    got = client.call("GET", "/logset", {"logset_id": logset_id})
    assert list(got) == ["logset_id", "logset_name", "period", "create_time"]
    assert got["logset_name"] == name and got["period"] == 30
    time.strptime(got["create_time"], "%Y-%m-%d %H:%M:%S")
    assert logset_id in [ls["logset_id"] for ls in client.call("GET", "/logsets")["logsets"]]
    assert client.call("PUT", "/logset", json={"logset_id": logset_id, "period": 7}) is None
    assert client.call("GET", "/logset", {"logset_id": logset_id})["period"] == 7
    assert client.call("DELETE", "/logset", {"logset_id": logset_id}) is None
    with pytest.raises(ApiError) as err:
        client.call("GET", "/logset", {"logset_id": logset_id})
    assert _error(err) == (404, "LogsetNotExist")


def test_logset_errors(client: LegacyClient) -> None:
    name = _name("ls")
    client.call("POST", "/logset", json={"logset_name": name, "period": 30})
    cases: list[tuple[dict[str, Any], tuple[int, str]]] = [
        ({"logset_name": name, "period": 30}, (409, "LogsetConflict")),
        ({"logset_name": _name("ls")}, (400, "InvalidParam")),
        ({"logset_name": _name("ls"), "period": "30"}, (400, "InvalidParam")),
        ({"logset_name": _name("ls"), "period": 0}, (400, "InvalidParam")),
        ({"logset_name": "", "period": 3}, (400, "InvalidParam")),
        ({"logset_name": _name("ls"), "period": 3, "color": "red"}, (400, "InvalidParam")),
    ]
    for body, expected in cases:
        with pytest.raises(ApiError) as err:
            client.call("POST", "/logset", json=body)
        assert _error(err) == expected, body
    with pytest.raises(ApiError) as err:
        client.call("PUT", "/logset", json={"logset_id": "nope", "period": 3})
    assert _error(err) == (404, "LogsetNotExist")


def test_topic_lifecycle_and_logset_not_empty(client: LegacyClient) -> None:
    logset_id = client.call("POST", "/logset", json={"logset_name": _name("ls"), "period": 7})[
        "logset_id"]
    topic_id = client.call("POST", "/topic", json={"logset_id": logset_id, "topic_name": "web",
                                                   "partition_count": "1"})["topic_id"]
    got = client.call("GET", "/topic", {"topic_id": topic_id})
    assert got["topic_name"] == "web" and got["collection"] is True
    assert got["logset_id"] == logset_id and got["partition_count"] == 1
    listed = client.call("GET", "/topics", {"logset_id": logset_id})["topics"]
    assert [t["topic_id"] for t in listed] == [topic_id]
    with pytest.raises(ApiError) as err:
        client.call("POST", "/topic", json={"logset_id": logset_id, "topic_name": "web"})
    assert _error(err) == (409, "TopicConflict")
    with pytest.raises(ApiError) as err:
        client.call("DELETE", "/logset", {"logset_id": logset_id})
    assert _error(err) == (400, "LogsetNotEmpty")
    client.call("PUT", "/topic", json={"topic_id": topic_id, "collection": False})
    assert client.call("GET", "/topic", {"topic_id": topic_id})["collection"] is False
    client.call("DELETE", "/topic", {"topic_id": topic_id})
    with pytest.raises(ApiError) as err:
        client.call("GET", "/topic", {"topic_id": topic_id})
    assert _error(err) == (404, "TopicNotExist")
    with pytest.raises(ApiError) as err:
        client.call("POST", "/topic", json={"logset_id": "missing", "topic_name": "x"})
    assert _error(err) == (404, "LogsetNotExist")
    client.call("DELETE", "/logset", {"logset_id": logset_id})


# ---- shippers ---------------------------------------------------------------------------


def test_shipper_lifecycle_documented_shape(client: LegacyClient, topic: str) -> None:
    body = _shipper_body(
        topic, interval=300, max_size=100, partition="%Y%m%d", compress={"format": "none"},
        content={"format": "csv", "csv_info": {
            "print_key": True, "keys": ["key1", "key2"], "delimiter": "|",
            "escape_char": "'", "non_existing_field": "null"}})
    shipper_id = client.call("POST", "/shipper", json=body)["shipper_id"]
    got = client.call("GET", "/shipper", {"shipper_id": shipper_id})
    documented = ["shipper_id", "topic_id", "bucket", "prefix", "shipper_name", "interval",
                  "max_size", "effective", "partition", "compress", "content", "filter_rules",
                  "create_time"]
    assert list(got)[:len(documented)] == documented
    assert got["content"] == body["content"] and got["compress"] == {"format": "none"}
    assert got["effective"] is True and got["interval"] == 300 and got["max_size"] == 100
    assert set(got["progress"]) >= {"shipped_until", "next_window", "oldest_failed_window"}

    client.call("PUT", "/shipper", json={"shipper_id": shipper_id, "effective": False,
                                         "content": {"format": "json"}, "interval": 600})
    got = client.call("GET", "/shipper", {"shipper_id": shipper_id})
    assert got["effective"] is False and got["interval"] == 600
    assert got["content"] == {"format": "json"} and got["bucket"] == body["bucket"]

    listed = client.call("GET", "/shippers", {"topic_id": topic})["shippers"]
    assert [s["shipper_id"] for s in listed] == [shipper_id]
    client.call("DELETE", "/shipper", {"shipper_id": shipper_id})
    with pytest.raises(ApiError) as err:
        client.call("GET", "/shipper", {"shipper_id": shipper_id})
    assert _error(err) == (404, "ShipperNotExist")


def test_shippers_paging(client: LegacyClient, topic: str) -> None:
    ids = [client.call("POST", "/shipper", json=_shipper_body(topic))["shipper_id"]
           for _ in range(3)]
    page = client.call("GET", "/shippers", {"topic_id": topic, "offset": "1", "count": "1"})
    assert [s["shipper_id"] for s in page["shippers"]] == ids[1:2]
    with pytest.raises(ApiError) as err:
        client.call("GET", "/shippers", {"topic_id": topic, "count": "1001"})
    assert _error(err) == (400, "InvalidParam")
    with pytest.raises(ApiError) as err:
        client.call("GET", "/shippers", {"topic_id": "nope"})
    assert _error(err) == (404, "TopicNotExist")


BAD_SHIPPER_FIELDS: list[dict[str, Any]] = [
    {"interval": 901},
    {"interval": "300"},
    {"max_size": 99},
    {"max_size": 257},
    {"partition": "%Y%Q"},
    {"compress": {"format": "rar"}},
    {"compress": "gzip"},
    {"content": {"format": "xml"}},
    {"content": {"format": "csv"}},
    {"content": {"format": "csv", "csv_info": {"keys": [], "delimiter": ",", "escape_char": "",
                                               "non_existing_field": "", "print_key": False}}},
    {"content": {"format": "csv", "csv_info": {"keys": ["a"], "delimiter": ",,",
                                               "escape_char": "", "non_existing_field": "",
                                               "print_key": False}}},
    {"filter_rules": [{"key": "status", "regex": "([", "value": "404"}]},
    {"filter_rules": [{"key": "k", "regex": "(.*)", "value": "v"}] * 6},
    {"filter_rules": [{"key": "k", "regex": "(.*)"}]},
    {"compress": {"format": "lzop"}, "content": {"format": "parquet", "parquet_info": {
        "parquet_key_info": [{"key_name": "a", "key_type": "int64",
                              "key_non_existing_field": ""}]}}},
    {"content": {"format": "parquet", "parquet_info": {"parquet_key_info": [
        {"key_name": "a", "key_type": "decimal", "key_non_existing_field": ""}]}}},
    {"bucket": "Bad_Bucket"},
    {"prefix": "a b"},
    {"shipper_name": ""},
    {"surprise": 1},
]


@pytest.mark.parametrize("override", BAD_SHIPPER_FIELDS, ids=lambda o: next(iter(o)))
def test_shipper_invalid_fields(client: LegacyClient, topic: str,
                                override: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as err:
        client.call("POST", "/shipper", json=_shipper_body(topic, **override))
    assert _error(err) == (400, "InvalidParam")


def test_shipper_missing_fields_conflict_unknown_topic(client: LegacyClient, topic: str) -> None:
    for field in ("topic_id", "bucket", "prefix", "shipper_name"):
        body = _shipper_body(topic)
        del body[field]
        with pytest.raises(ApiError) as err:
            client.call("POST", "/shipper", json=body)
        assert _error(err) == (400, "InvalidParam"), field
    body = _shipper_body(topic)
    client.call("POST", "/shipper", json=body)
    with pytest.raises(ApiError) as err:
        client.call("POST", "/shipper", json=body)
    assert _error(err) == (409, "ShipperConflict")
    with pytest.raises(ApiError) as err:
        client.call("POST", "/shipper", json=_shipper_body("no-such-topic"))
    assert _error(err) == (404, "TopicNotExist")
    with pytest.raises(ApiError) as err:
        client.call("PUT", "/shipper", json={"shipper_id": "nope", "prefix": "x"})
    assert _error(err) == (404, "ShipperNotExist")
    with pytest.raises(ApiError) as err:
        client.call("DELETE", "/shipper", {"shipper_id": "nope"})
    assert _error(err) == (404, "ShipperNotExist")
    with pytest.raises(ApiError) as err:
        client.call("PUT", "/tasks", json={"shipper_id": "nope"})
    assert _error(err) == (404, "ShipperNotExist")
    assert client.call("PUT", "/tasks", json={"shipper_id": client.call(
        "POST", "/shipper", json=_shipper_body(topic))["shipper_id"]}) == {"retried": 0}


# ---- requests: auth, malformed bodies, routes ---------------------------------------------


def test_authentication_errors(client: LegacyClient, server: ServerProcess) -> None:
    resp = client.raw("GET", "/logsets", sign=False)
    assert (resp.status_code, resp.json()["errorcode"]) == (400, "MissingAuthorization")
    assert resp.headers["x-cls-requestid"]
    resp = client.raw("GET", "/logsets", sign=False, headers={"Authorization": "q-sign-x"})
    assert (resp.status_code, resp.json()["errorcode"]) == (400, "InvalidAuthorization")
    stranger = LegacyClient(server.base_url, "AKIDnobody", "x")
    resp = stranger.raw("GET", "/logsets")
    assert (resp.status_code, resp.json()["errorcode"]) == (401, "AuthFailure.SecretIdNotFound")
    wrong_key = LegacyClient(server.base_url, SECRET_ID, "not-the-key")
    resp = wrong_key.raw("GET", "/logsets")
    assert (resp.status_code, resp.json()["errorcode"]) == (401, "AuthFailure.SignatureFailure")
    resp = client.raw("GET", "/logsets", sign_time=int(time.time()) - 7200)
    assert (resp.status_code, resp.json()["errorcode"]) == (401, "AuthFailure.SignatureExpire")
    resp = client.raw("GET", "/logsets", headers={"X-Cls-Token": "sts"})
    assert resp.status_code == 401
    assert resp.json()["errorcode"] == "AuthFailure.TokenFailure"


def test_malformed_requests_get_clear_4xx(client: LegacyClient) -> None:
    cases = [
        (client.raw("POST", "/logset", body=b"{not json"), 400, "InvalidContent"),
        (client.raw("POST", "/logset", body=b"[1, 2]"), 400, "InvalidParam"),
        (client.raw("POST", "/logset", body=b""), 400, "MissingContent"),
        (client.raw("POST", "/logset", body=b" " * (2 << 20)), 413, "InvalidContent"),
        (client.raw("GET", "/no/such/route"), 404, "NotSupported"),
        (client.raw("PATCH", "/logset", body=b"{}"), 405, "NotSupported"),
        (client.raw("GET", "/tasks", {"shipper_id": "x", "start_time": "yesterday",
                                      "end_time": "2020-01-01 00:00:00"}), 400, "InvalidParam"),
        (client.raw("GET", "/logset", {"logset_id": "x", "extra": "1"}), 400, "InvalidParam"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert list(body) == ["errorcode", "errormessage"] and body["errorcode"] == code
        assert "Traceback" not in body["errormessage"]
        assert resp.headers["x-cls-requestid"]
    # and the server still serves
    assert "logsets" in client.call("GET", "/logsets")


@pytest.fixture()
def tight_server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "tight", env={"CLS_SHIPPER_QUOTA_LOGSETS": "1",
                                                  "CLS_SHIPPER_QUOTA_TOPICS": "1",
                                                  "CLS_SHIPPER_QUOTA_SHIPPERS": "1"},
                         args=["--workers", "0"]).start()
    yield proc
    proc.stop()


def test_quotas(tight_server: ServerProcess) -> None:
    client = LegacyClient(tight_server.base_url)
    logset = client.call("POST", "/logset", json={"logset_name": "one", "period": 1})["logset_id"]
    with pytest.raises(ApiError) as err:
        client.call("POST", "/logset", json={"logset_name": "two", "period": 1})
    assert _error(err) == (403, "LogsetExceed")
    topic = client.call("POST", "/topic", json={"logset_id": logset, "topic_name": "a"})[
        "topic_id"]
    with pytest.raises(ApiError) as err:
        client.call("POST", "/topic", json={"logset_id": logset, "topic_name": "b"})
    assert _error(err) == (403, "TopicExceed")
    shipper = client.call("POST", "/shipper", json=_shipper_body(topic))["shipper_id"]
    with pytest.raises(ApiError) as err:
        client.call("POST", "/shipper", json=_shipper_body(topic))
    assert _error(err) == (403, "ShipperExceed")
    # the default --min-interval (300) accepts only whole minutes from 300 to 900
    for interval in (60, 301, 960):
        with pytest.raises(ApiError) as err:
            client.call("PUT", "/shipper", json={"shipper_id": shipper, "interval": interval})
        assert _error(err) == (400, "InvalidParam")
    client.call("PUT", "/shipper", json={"shipper_id": shipper, "interval": 360})


# ---- hardening found in review ------------------------------------------------------------


def _auth(client: LegacyClient, method: str, path: str, params: dict[str, str],
          headers: dict[str, str], start: int | None = None, expire: int = 300) -> str:
    return qsign.sign(client.secret_id, client.secret_key, method, path, params, headers,
                      int(time.time()) - 60 if start is None else start, expire)


def test_a_signature_covers_exactly_the_request_it_was_made_for(
        client: LegacyClient, topic: str) -> None:
    host = {"Host": client.host}
    signed = {"topic_id": topic}
    cases = [
        # an unsigned parameter added, or the same name in another case (which would pick
        # the resource while the signed one passes the check)
        (f"/shippers?topic_id={topic}&offset=1", _auth(client, "GET", "/shippers", signed, host),
         401, "AuthFailure.SignatureFailure"),
        (f"/shippers?topic_id={topic}&TOPIC_ID=x",
         _auth(client, "GET", "/shippers", signed, host), 401, "AuthFailure.SignatureFailure"),
        # nothing signed at all
        (f"/shippers?topic_id={topic}", _auth(client, "GET", "/shippers", {}, {}), 401,
         "AuthFailure.SignatureFailure"),
        # a signature meant to live for years
        (f"/shippers?topic_id={topic}",
         _auth(client, "GET", "/shippers", signed, host, expire=10**8), 401,
         "AuthFailure.SignatureExpire"),
    ]
    for url, authorization, status, code in cases:
        resp = client.http.get(url, headers={**host, "Authorization": authorization})
        assert (resp.status_code, resp.json()["errorcode"]) == (status, code), url
    ok = client.http.get(f"/shippers?topic_id={topic}",
                         headers={**host, "Authorization": _auth(client, "GET", "/shippers",
                                                                 signed, host)})
    assert ok.status_code == 200


def test_odd_numbers_nul_and_paths_are_refused_not_500(client: LegacyClient,
                                                       topic: str) -> None:
    now = time.time() * 1000
    span = {"start_time": legacy_time(now - 3_600_000), "end_time": legacy_time(now)}
    shipper = client.call("POST", "/shipper", json=_shipper_body(topic))["shipper_id"]
    requests = [
        ("GET", "/shippers", {"topic_id": topic, "count": "--5"}, None),
        ("GET", "/shippers", {"topic_id": topic, "count": "²"}, None),
        ("GET", "/shippers", {"topic_id": topic, "offset": "9" * 5000}, None),
        ("GET", "/audit", {"shipper_id": shipper, "start_time": "0001-01-01 00:00:00",
                           "end_time": span["end_time"]}, None),
        ("GET", "/cursor", {"topic_id": topic, "start": "²"}, None),
        ("GET", "/cursor", {"topic_id": topic, "start": "9" * 30}, None),
        ("GET", "/logset", {"logset_id": "a\x00b"}, None),
        ("POST", "/logset", None, {"logset_name": "a\x00b", "period": 3}),
        ("POST", "/topic", None, {"logset_id": "x", "topic_name": "t", "partition_count": "²"}),
        ("POST", "/shipper", None, _shipper_body(topic, partition="../../../../tmp/x/")),
    ]
    for method, path, params, body in requests:
        with pytest.raises(ApiError) as err:
            client.call(method, path, params, body)
        assert err.value.status in (400, 404), (path, params, body, err.value.body)
    huge = client.raw("POST", "/logset", body=b'{"logset_name": "big", "period": ' +
                      str(2**70).encode() + b"}")
    assert huge.status_code == 400, huge.text
    bad_time = ("q-sign-algorithm=sha1&q-ak=a&q-sign-time=\u00b2;\u00b3&q-key-time=\u00b2;"
                "\u00b3&q-header-list=host&q-url-param-list=&q-signature=" + "0" * 40)
    resp = client.http.get("/logsets", headers={b"Authorization": bad_time.encode("latin-1")})
    assert (resp.status_code, resp.json()["errorcode"]) == (400, "InvalidAuthorization")
    assert client.raw("GET", "/logsets/").status_code == 404  # no slash redirect


def test_management_bodies_must_be_json(client: LegacyClient) -> None:
    body = b'{"logset_name": "typed", "period": 3}'
    resp = client.raw("POST", "/logset", body=body, headers={"Content-Type": "text/plain"})
    assert (resp.status_code, resp.json()["errorcode"]) == (400, "InvalidContentType")
    resp = client.http.post("/logset", content=body, headers={
        "Host": client.host, "Authorization": _auth(client, "POST", "/logset", {},
                                                    {"Host": client.host})})
    assert (resp.status_code, resp.json()["errorcode"]) == (400, "MissingContentType")


def test_json_options_survive_a_read_modify_write(client: LegacyClient, topic: str) -> None:
    options = {"enable_tag": False, "meta_fields": ["__TIMESTAMP__"], "json_type": 1}
    shipper = client.call("POST", "/shipper", json=_shipper_body(
        topic, content={"format": "json", "json_info": options}))["shipper_id"]
    got = client.call("GET", "/shipper", {"shipper_id": shipper})
    assert got["content"] == {"format": "json", "json_info": options}
    client.call("PUT", "/shipper", json={"shipper_id": shipper, "content": {"format": "json"},
                                         "prefix": "moved"})
    assert client.call("GET", "/shipper", {"shipper_id": shipper})["content"]["json_info"] == \
        options


def test_an_unexpected_error_is_a_500_with_the_request_id_and_no_trace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from cls_shipper.api.app import create_app
    from cls_shipper.auth.keys import create_key
    from cls_shipper.service import Context, logsets
    from cls_shipper.settings import Settings
    from cls_shipper.store import open_database

    settings = Settings(data_dir=tmp_path)
    ctx = Context(open_database(settings.db_url), settings)
    create_key(ctx.db, "test", (SECRET_ID, SECRET_KEY))

    def broken(_: Context) -> None:
        raise RuntimeError("secret detail that must not leak")

    monkeypatch.setattr(logsets, "list_all", broken)
    authorization = qsign.sign(SECRET_ID, SECRET_KEY, "GET", "/logsets", {},
                               {"Host": "testserver"}, int(time.time()) - 60)
    with TestClient(create_app(settings, ctx), raise_server_exceptions=False) as http:
        resp = http.get("/logsets", headers={"Authorization": authorization})
    assert resp.status_code == 500 and resp.json()["errorcode"] == "InternalError"
    assert "secret detail" not in resp.text and resp.headers["x-cls-requestid"]
    ctx.db.dispose()
