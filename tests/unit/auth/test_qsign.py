"""The legacy signature against the four worked vectors of spec §3.3, and verification rules."""

from __future__ import annotations

import pytest

from cls_shipper.auth import qsign
from cls_shipper.errors import ServiceError

SECRET_ID = "AKIDc9YlmrBcFk4C8sbmXQ8i65XXXXXXXXXX"
SECRET_KEY = "LUSE4nPK1d4tX5SHyXv6tZXXXXXXXXXX"
LOGSET_ID = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
BODY_MD5 = "f9c7fc33c7eab68dfa8a52508d1f4659"

VECTORS = [
    ("A", "GET", {"logset_id": LOGSET_ID},
     {"content-type": "application/json", "host": "ap-shanghai.cls.tencentyun.com"},
     "1578976553;1578978363", "315dfa0d0ce55582145f7800df5eb3e9c88d2f84"),
    ("B", "PUT", {}, {"content-type": "application/json",
                      "host": "ap-shanghai.cls.tencentyun.com"},
     "1578976553;1578978363", "600aeb5e646d385d7dd9da57ba9b2545cadfaa1c"),
    ("C", "GET", {"logset_id": LOGSET_ID}, {"host": "ap-shanghai.cls.myqcloud.com"},
     "1510109254;1510109314", "2c53900d3fe8d2e875db8a6af5fe7303ee1567a8"),
    ("D", "PUT", {}, {"content-md5": BODY_MD5, "content-type": "application/json",
                      "host": "ap-shanghai.cls.myqcloud.com"},
     "1510109254;1510109314", "85a55e61de42483ba03bffd07a6c01b8d651af51"),
]


@pytest.mark.parametrize(("name", "method", "params", "headers", "sign_time", "expected"),
                         VECTORS, ids=[v[0] for v in VECTORS])
def test_worked_vectors(name: str, method: str, params: dict[str, str],
                        headers: dict[str, str], sign_time: str, expected: str) -> None:
    assert qsign.compute_signature(SECRET_KEY, method, "/logset", params, headers,
                                   sign_time) == expected


@pytest.mark.parametrize(("name", "method", "params", "headers", "sign_time", "expected"),
                         VECTORS, ids=[v[0] for v in VECTORS])
def test_vectors_verify_as_server(name: str, method: str, params: dict[str, str],
                                  headers: dict[str, str], sign_time: str,
                                  expected: str) -> None:
    authorization = (
        f"q-sign-algorithm=sha1&q-ak={SECRET_ID}&q-sign-time={sign_time}&q-key-time={sign_time}"
        f"&q-header-list={';'.join(sorted(headers))}&q-url-param-list={';'.join(sorted(params))}"
        f"&q-signature={expected}")
    start = int(sign_time.split(";")[0])
    request_headers = {k.title(): v for k, v in headers.items()}
    assert qsign.verify(authorization, method, "/logset", list(params.items()), request_headers,
                        lambda sid: SECRET_KEY if sid == SECRET_ID else None, start + 10,
                        0) == SECRET_ID


def _signed(params: dict[str, str], start: int = 1000) -> str:
    return qsign.sign(SECRET_ID, SECRET_KEY, "GET", "/tasks", params, {"Host": "h"}, start)


def _verify(auth: str | None, params: dict[str, str], now: int = 1100) -> str:
    return qsign.verify(auth, "GET", "/tasks", list(params.items()), {"Host": "h"},
                        lambda sid: SECRET_KEY if sid == SECRET_ID else None, now, 0)


def test_space_encoded_with_plus_or_pct20_both_verify() -> None:
    params = {"start_time": "2017-10-10 00:00:00"}
    assert _verify(_signed(params), params) == SECRET_ID
    # The Java SDK encodes the space as %20: recompute the signature that way.
    sig = qsign.compute_signature(SECRET_KEY, "GET", "/tasks", params, {"host": "h"},
                                  "1000;1300", qsign._encode_pct20)
    auth = _signed(params).rsplit("=", 1)[0] + "=" + sig
    assert _verify(auth, params) == SECRET_ID


@pytest.mark.parametrize(("auth", "code"), [
    (None, "MissingAuthorization"),
    ("garbage", "InvalidAuthorization"),
    ("q-sign-algorithm=md5&q-ak=a&q-sign-time=1;2&q-key-time=1;2&q-header-list="
     "&q-url-param-list=&q-signature=" + "0" * 40, "InvalidAuthorization"),
])
def test_malformed_authorization(auth: str | None, code: str) -> None:
    with pytest.raises(ServiceError) as err:
        _verify(auth, {})
    assert err.value.kind.legacy_code == code


def test_tampered_param_fails_and_expired_window_rejected() -> None:
    params = {"shipper_id": "a"}
    auth = _signed(params)
    with pytest.raises(ServiceError) as err:
        _verify(auth, {"shipper_id": "b"})
    assert err.value.kind.legacy_code == "AuthFailure.SignatureFailure"
    with pytest.raises(ServiceError) as err:
        _verify(auth, params, now=5000)
    assert err.value.kind.legacy_code == "AuthFailure.SignatureExpire"
    with pytest.raises(ServiceError) as err:
        _verify(auth, params, now=10)
    assert err.value.kind.legacy_code == "AuthFailure.SignatureExpire"


def test_unknown_secret_id() -> None:
    auth = qsign.sign("AKIDnobody", SECRET_KEY, "GET", "/tasks", {}, {"Host": "h"}, 1000)
    with pytest.raises(ServiceError) as err:
        _verify(auth, {})
    assert err.value.kind.legacy_code == "AuthFailure.SecretIdNotFound"
