"""TC3-HMAC-SHA256, the API 3.0 request signature (spec §7.1).

`sign` builds an Authorization value as `tencentcloud-sdk-python-common` does; `verify` checks
one on the server, rebuilding the canonical request from the headers the client says it signed
(the SDKs sign `content-type;host`, other clients may sign more).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cls_shipper.errors import Kinds, ServiceError

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "cls"
TERMINATOR = "tc3_request"
# The SDK's `unsignedPayload` option sends this instead of hashing the body.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
REQUIRED_SIGNED = ("content-type", "host")



def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def canonical_request(method: str, path: str, query: str,
                      headers: Sequence[tuple[str, str]], payload_hash: str) -> str:
    """`headers` are (lowercase name, value) in the signed order."""
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in headers)
    signed = ";".join(name for name, _ in headers)
    return f"{method.upper()}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}"


def compute_signature(secret_key: str, timestamp: int, date: str, canonical: str,
                      service: str = SERVICE) -> str:
    scope = f"{date}/{service}/{TERMINATOR}"
    string_to_sign = (f"{ALGORITHM}\n{timestamp}\n{scope}\n"
                      f"{hashlib.sha256(canonical.encode()).hexdigest()}")
    k_date = _hmac(("TC3" + secret_key).encode(), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, TERMINATOR)
    return hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign(secret_id: str, secret_key: str, method: str, host: str, content_type: str,
         payload: bytes, timestamp: int, query: str = "", path: str = "/") -> str:
    """An Authorization value signing content-type and host, as the official SDKs do."""
    date = utc_date(timestamp)
    canonical = canonical_request(method, path, query,
                                  [("content-type", content_type), ("host", host)],
                                  hashlib.sha256(payload).hexdigest())
    signature = compute_signature(secret_key, timestamp, date, canonical)
    return (f"{ALGORITHM} Credential={secret_id}/{date}/{SERVICE}/{TERMINATOR}, "
            f"SignedHeaders=content-type;host, Signature={signature}")


@dataclass(frozen=True, slots=True)
class ParsedAuthorization:
    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _bad(message: str) -> ServiceError:
    return ServiceError(Kinds.INVALID_AUTHORIZATION, message)


def parse_authorization(value: str | None) -> ParsedAuthorization:
    if value is None or not value.strip():
        raise ServiceError(Kinds.MISSING_AUTHORIZATION, "the Authorization header is missing")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _bad(f"only {ALGORITHM} signatures are supported")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise _bad(f"malformed Authorization part {part.strip()!r}")
        fields[key] = val.strip()
    absent = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
    if absent:
        raise _bad(f"Authorization lacks {', '.join(absent)}")
    scope = fields["Credential"].split("/")
    if len(scope) != 4 or not scope[0] or scope[3] != TERMINATOR:
        raise _bad("Credential must be <SecretId>/<YYYY-MM-DD>/cls/tc3_request")
    secret_id, date, service, _ = scope
    if service != SERVICE:
        raise _bad(f"the credential scope names service {service!r}, not {SERVICE!r}")
    signed = tuple(n.strip().lower() for n in fields["SignedHeaders"].split(";") if n.strip())
    missing = [n for n in REQUIRED_SIGNED if n not in signed]
    if missing:
        raise _bad(f"SignedHeaders must include {', '.join(missing)}")
    if list(signed) != sorted(set(signed)):
        raise _bad("SignedHeaders must be lowercase, sorted and without repeats")
    signature = fields["Signature"].lower()
    if len(signature) != 64 or any(c not in "0123456789abcdef" for c in signature):
        raise _bad("Signature must be 64 hex digits")
    return ParsedAuthorization(secret_id, date, service, signed, signature)


def verify(authorization: str | None, method: str, path: str, query: str,
           headers: Mapping[str, str], payload: bytes,
           lookup_secret: Callable[[str], str | None], now: int, clock_skew: int) -> str:
    """Check a TC3 Authorization; return the SecretId or raise ServiceError.

    `headers` must be case-insensitive (Starlette's Headers) or have lowercase keys; `query`
    is the raw query string as sent (the SDK signs exactly what it sends)."""
    auth, timestamp = precheck(authorization, headers, now, clock_skew)
    secret_key = lookup_secret(auth.secret_id)
    if secret_key is None:
        raise unknown_key(auth.secret_id)
    return check_signature(auth, timestamp, secret_key, method, path, query, headers, payload)


def unknown_key(secret_id: str) -> ServiceError:
    return ServiceError(Kinds.SECRET_ID_NOT_FOUND,
                        f"SecretId {secret_id!r} does not exist or is disabled")


def precheck(authorization: str | None, headers: Mapping[str, str], now: int,
             clock_skew: int) -> tuple[ParsedAuthorization, int]:
    """What can be checked from the headers alone, before the body is read: the form of the
    Authorization, the timestamp's window and date, a signed payload. Returns the parsed
    Authorization and the timestamp; the key and the signature (over the body's hash) are
    the caller's next steps."""
    auth = parse_authorization(authorization)
    stamp = headers.get("x-tc-timestamp")
    if stamp is None or not stamp.strip():
        raise ServiceError(Kinds.MISSING_PARAM, "the X-TC-Timestamp header is missing")
    if not (stamp.strip().isascii() and stamp.strip().isdigit() and len(stamp.strip()) <= 12):
        raise _bad("X-TC-Timestamp must be Unix seconds")
    timestamp = int(stamp)
    if abs(now - timestamp) > clock_skew:
        raise ServiceError(Kinds.SIGNATURE_EXPIRE,
                           f"X-TC-Timestamp {timestamp} is more than {clock_skew}s from the "
                           "server's clock: the signature has expired (or the client clock "
                           "is wrong)")
    if auth.date != utc_date(timestamp):
        raise _bad(f"the credential date {auth.date} is not the UTC date of X-TC-Timestamp")
    if headers.get("x-tc-content-sha256", "").strip() == UNSIGNED_PAYLOAD:
        # With an unsigned payload nothing ties the signature to the parameters (the SDKs
        # do not sign X-TC-Action either), so a captured request could be replayed with any
        # body until the timestamp expires.
        raise ServiceError(Kinds.SIGNATURE_FAILURE,
                           "unsigned payloads are not accepted; sign the request body")
    return auth, timestamp


def check_signature(auth: ParsedAuthorization, timestamp: int, secret_key: str, method: str,
                    path: str, query: str, headers: Mapping[str, str], payload: bytes) -> str:
    """The signature over the request and its body; returns the SecretId."""
    values: list[tuple[str, str]] = []
    for name in auth.signed_headers:
        value = headers.get(name)
        if value is None:
            raise ServiceError(Kinds.SIGNATURE_FAILURE,
                               f"signed header {name!r} is not in the request")
        values.append((name, value.strip()))
    payload_hash = hashlib.sha256(payload).hexdigest()
    # The protocol lowercases header values; the Python SDK signs them as sent. Both agree for
    # the usual lowercase host and content type, and either is accepted.
    candidates = [values, [(n, v.lower()) for n, v in values]]
    matched = False
    for candidate in candidates if candidates[0] != candidates[1] else candidates[:1]:
        canonical = canonical_request(method, path, query, candidate, payload_hash)
        expected = compute_signature(secret_key, timestamp, auth.date, canonical, auth.service)
        matched |= hmac.compare_digest(expected, auth.signature)
    if not matched:
        raise ServiceError(Kinds.SIGNATURE_FAILURE, "the signature does not match")
    return auth.secret_id
