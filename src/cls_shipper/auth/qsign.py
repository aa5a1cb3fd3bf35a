"""The legacy CLS request signature, `q-sign-algorithm=sha1` (spec §3).

`sign` builds an Authorization value the way the official SDKs do; `verify` checks one on the
server. Verification accepts values encoded with `+` (Python/Go SDKs) or `%20` (Java SDK) for
spaces, since the signed text differs between the two.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from cls_shipper.errors import Kinds, ServiceError

FIELDS = (
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
)
# Headers the Python SDK signs when present; Go/Java also sign every header starting with "x".
SDK_SIGNED_HEADERS = ("content-type", "content-md5", "host")
_SECONDS = re.compile(r"[0-9]{1,12}")
# The SDKs sign for [now - 60, now + 300]; the doc's examples span 30 minutes. Longer-lived
# signatures are refused: a captured one would otherwise be a credential for good.
DEFAULT_MAX_LIFETIME = 3600


def _encode_plus(value: str) -> str:
    return quote_plus(value, safe="")


def _encode_pct20(value: str) -> str:
    # Java SDK: URLEncoder then "+" -> "%20", "*" -> "%2A", "%7E" -> "~".
    return quote(value, safe="~")


def _format_pairs(pairs: Mapping[str, str], encode: Callable[[str], str]) -> str:
    return "&".join(f"{k}={encode(pairs[k])}" for k in sorted(pairs))


def _hmac_sha1_hex(key: bytes, msg: bytes) -> str:
    return hmac.new(key, msg, hashlib.sha1).hexdigest()


def compute_signature(
    secret_key: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    sign_time: str,
    encode: Callable[[str], str] = _encode_plus,
) -> str:
    """Signature over already-lowercased param and header names (spec §3.2)."""
    request_info = (
        f"{method.lower()}\n{path}\n{_format_pairs(params, encode)}\n"
        f"{_format_pairs(headers, encode)}\n"
    )
    string_to_sign = (
        f"sha1\n{sign_time}\n{hashlib.sha1(request_info.encode()).hexdigest()}\n"
    )
    sign_key = _hmac_sha1_hex(secret_key.encode(), sign_time.encode())
    return _hmac_sha1_hex(sign_key.encode(), string_to_sign.encode())


def sign(
    secret_id: str,
    secret_key: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    start: int,
    expire: int = 300,
) -> str:
    """An Authorization value signing every param and the SDK's header set, as the Python
    SDK does (`tencentcloud/log/auth.py`)."""
    signed_params = {k.lower(): str(v) for k, v in params.items()}
    signed_headers = {
        k.lower(): str(v) for k, v in headers.items() if k.lower() in SDK_SIGNED_HEADERS
    }
    sign_time = f"{start};{start + expire}"
    signature = compute_signature(
        secret_key, method, path, signed_params, signed_headers, sign_time
    )
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={sign_time}"
        f"&q-key-time={sign_time}&q-header-list={';'.join(sorted(signed_headers))}"
        f"&q-url-param-list={';'.join(sorted(signed_params))}&q-signature={signature}"
    )


@dataclass(frozen=True, slots=True)
class ParsedAuthorization:
    secret_id: str
    sign_time: str
    start: int
    end: int
    header_names: tuple[str, ...]
    param_names: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> ParsedAuthorization:
    if value is None or not value.strip():
        raise ServiceError(Kinds.MISSING_AUTHORIZATION, "the Authorization header is missing")
    fields: dict[str, str] = {}
    for part in value.strip().split("&"):
        key, sep, val = part.partition("=")
        if not sep:
            raise ServiceError(Kinds.INVALID_AUTHORIZATION,
                               f"malformed Authorization part {part!r}")
        fields[key.strip()] = val.strip()
    absent = [name for name in FIELDS if name not in fields]
    if absent:
        raise ServiceError(
            Kinds.INVALID_AUTHORIZATION, f"Authorization lacks {', '.join(absent)}"
        )
    if fields["q-sign-algorithm"].lower() != "sha1":
        raise ServiceError(Kinds.INVALID_AUTHORIZATION, "q-sign-algorithm must be sha1")
    if fields["q-sign-time"] != fields["q-key-time"]:
        raise ServiceError(Kinds.INVALID_AUTHORIZATION, "q-sign-time and q-key-time differ")
    start_text, sep, end_text = fields["q-sign-time"].partition(";")
    if not (sep and _SECONDS.fullmatch(start_text) and _SECONDS.fullmatch(end_text)):
        raise ServiceError(Kinds.INVALID_AUTHORIZATION, "q-sign-time must be <start>;<end>")
    signature = fields["q-signature"].lower()
    if len(signature) != 40 or any(c not in "0123456789abcdef" for c in signature):
        raise ServiceError(Kinds.INVALID_AUTHORIZATION, "q-signature must be 40 hex digits")

    def names(text: str) -> tuple[str, ...]:
        return tuple(n.strip().lower() for n in text.split(";") if n.strip())

    return ParsedAuthorization(
        secret_id=fields["q-ak"],
        sign_time=fields["q-sign-time"],
        start=int(start_text),
        end=int(end_text),
        header_names=names(fields["q-header-list"]),
        param_names=names(fields["q-url-param-list"]),
        signature=signature,
    )


def verify(
    authorization: str | None,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    lookup_secret: Callable[[str], str | None],
    now: int,
    clock_skew: int,
    max_lifetime: int = DEFAULT_MAX_LIFETIME,
) -> str:
    """Check a q-sign Authorization; return the SecretId or raise ServiceError.

    Stricter than the algorithm alone, so that a signature covers the request it was made
    for: every query parameter must be signed (an unsigned one could change what is
    addressed), none may appear twice in any letter case, and the Host header must be signed.
    The official SDKs sign all of these."""
    auth = parse_authorization(authorization)
    return check(auth, lookup_secret(auth.secret_id), method, path, query, headers, now,
                 clock_skew, max_lifetime)


def check(
    auth: ParsedAuthorization,
    secret_key: str | None,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    now: int,
    clock_skew: int,
    max_lifetime: int = DEFAULT_MAX_LIFETIME,
) -> str:
    """`verify` once the key is looked up (None: unknown or disabled), so a caller can look
    it up its own way (the server: from the cache, or in a worker thread)."""
    if secret_key is None:
        raise ServiceError(
            Kinds.SECRET_ID_NOT_FOUND, f"SecretId {auth.secret_id!r} does not exist or is disabled"
        )
    if auth.end <= auth.start:
        raise ServiceError(Kinds.SIGNATURE_EXPIRE, "q-sign-time ends before it starts")
    if auth.end - auth.start > max_lifetime:
        raise ServiceError(Kinds.SIGNATURE_EXPIRE,
                           f"q-sign-time spans more than {max_lifetime} seconds; sign each "
                           "request for a short time, as the SDKs do")
    if now > auth.end + clock_skew:
        raise ServiceError(Kinds.SIGNATURE_EXPIRE, "the signature has expired")
    if now < auth.start - clock_skew:
        raise ServiceError(
            Kinds.SIGNATURE_EXPIRE, "the signature starts in the future (check the client clock)"
        )
    query_items = list(query)
    query_values = {k.lower(): v for k, v in query_items}
    if len(query_values) != len(query_items):
        raise ServiceError(Kinds.SIGNATURE_FAILURE, "a query parameter appears more than once")
    unsigned = sorted(set(query_values) - set(auth.param_names))
    if unsigned:
        raise ServiceError(Kinds.SIGNATURE_FAILURE,
                           f"query parameter(s) not covered by the signature: "
                           f"{', '.join(unsigned)[:200]}")
    if "host" not in auth.header_names:
        raise ServiceError(Kinds.SIGNATURE_FAILURE, "the signature must cover the Host header")
    header_values = {k.lower(): v for k, v in headers.items()}
    try:
        params = {name: query_values[name] for name in auth.param_names}
        signed_headers = {name: header_values[name] for name in auth.header_names}
    except KeyError as exc:
        raise ServiceError(
            Kinds.SIGNATURE_FAILURE, f"signed field {exc.args[0]!r} is not in the request"
        ) from None
    for encode in (_encode_plus, _encode_pct20):
        expected = compute_signature(
            secret_key, method, path, params, signed_headers, auth.sign_time, encode
        )
        if hmac.compare_digest(expected, auth.signature):
            return auth.secret_id
    raise ServiceError(Kinds.SIGNATURE_FAILURE, "the signature does not match")
