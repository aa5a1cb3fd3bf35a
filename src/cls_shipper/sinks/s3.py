"""S3-compatible object storage through obstore (AWS S3, Tencent COS, MinIO, Ceph, ...).

URL forms (the bucket is never part of the URL: every shipper names its own):

    s3://?endpoint=https://cos.ap-guangzhou.myqcloud.com&region=ap-guangzhou
    s3+http://127.0.0.1:9000/?region=us-east-1            (endpoint http://127.0.0.1:9000)
    s3+https://minio.internal:9000/?addressing=path
    s3://                                                  (AWS; region from the environment)

Query parameters: region, addressing (path | virtual | auto), part_size (MiB),
concurrency, retries, timeout and connect_timeout (seconds), proxy, insecure (true to
accept invalid TLS certificates). Credentials never go in the URL: they come from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or obstore's default chain
(web identity token, container or instance credentials) when those are unset."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import obstore
from cachetools import LRUCache
from obstore.exceptions import NotFoundError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from cls_shipper.errors import SinkError
from cls_shipper.sinks.base import (
    PROBE_BODY,
    Digests,
    StoredObject,
    WrittenObject,
    check_bucket,
    check_key,
    probe_key,
)

if TYPE_CHECKING:
    from obstore import WritableFile

MIB = 1024 * 1024
# S3 parts are at least 5 MiB (except the last) and an upload has at most 10,000 parts, so
# 8 MiB parts allow objects up to ~78 GiB while a writer holds at most
# part_size * (concurrency + 1) bytes.
DEFAULT_PART_MIB = 8
DEFAULT_CONCURRENCY = 2
# obstore retries 5xx, connection errors and timeouts itself; the task ledger retries again
# with its own backoff, so keep the inner loop short and let a dead endpoint fail the attempt.
DEFAULT_RETRIES = 3
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
# Hosts that only (or preferably) serve virtual-hosted-style requests.
_VIRTUAL_HOST_SUFFIXES = (".myqcloud.com", ".amazonaws.com", ".aliyuncs.com")
_PARAMS = {"endpoint", "region", "addressing", "part_size", "concurrency", "retries",
           "timeout", "connect_timeout", "proxy", "insecure"}


def _invalid(message: str) -> SinkError:
    return SinkError("invalid", f"invalid object store URL: {message}")


def _number(params: Mapping[str, str], name: str, default: float, low: float,
            high: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise _invalid(f"{name}={raw} is outside {low:g}..{high:g}")
    return value


@dataclass(frozen=True)
class S3Options:
    endpoint: str | None  # None: AWS itself, https://s3.<region>.amazonaws.com
    region: str
    virtual_hosted: bool
    part_size: int  # bytes
    concurrency: int
    retries: int
    timeout_s: float
    connect_timeout_s: float
    proxy: str | None = None
    insecure: bool = False

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> S3Options:
        env = os.environ if environ is None else environ
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if parts.username or parts.password:
            raise _invalid("credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY in the environment")
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        params = dict(pairs)
        unknown = sorted(set(params) - _PARAMS)
        if unknown:
            raise _invalid(f"unknown parameter(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(_PARAMS))}")
        endpoint: str | None
        if scheme in ("s3+http", "s3+https"):
            if not parts.netloc:
                raise _invalid(f"{url!r} has no host")
            if "endpoint" in params:
                raise _invalid("give the endpoint either as host or as endpoint=, not both")
            endpoint = urlunsplit((scheme[3:], parts.netloc, parts.path.rstrip("/"), "", ""))
        elif scheme == "s3":
            if parts.netloc or parts.path.strip("/"):
                raise _invalid("the bucket comes from each shipper, not from the URL; use "
                               "s3://?endpoint=... or s3+https://host/")
            endpoint = (params.get("endpoint") or env.get("AWS_ENDPOINT_URL_S3")
                        or env.get("AWS_ENDPOINT_URL") or None)
        else:
            raise _invalid(f"unsupported scheme {parts.scheme!r}")
        if endpoint is not None:
            ep = urlsplit(endpoint)
            if ep.scheme not in ("http", "https") or not ep.hostname:
                raise _invalid(f"endpoint {endpoint!r} must be an http:// or https:// URL")
            if ep.username or ep.password or ep.query:
                raise _invalid(f"endpoint {endpoint!r} must not carry credentials or a query")
            endpoint = endpoint.rstrip("/")
        region = (params.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
                  or "us-east-1")
        addressing = params.get("addressing", "auto").lower()
        if addressing == "auto":
            host = urlsplit(endpoint).hostname or "" if endpoint else ""
            # AWS and COS want virtual-hosted requests (COS accepts nothing else); MinIO and
            # most self-hosted stores are set up for path-style.
            virtual = endpoint is None or host.endswith(_VIRTUAL_HOST_SUFFIXES)
        elif addressing in ("path", "virtual"):
            virtual = addressing == "virtual"
        else:
            raise _invalid(f"addressing={addressing!r}; use path, virtual or auto")
        insecure = params.get("insecure", "false").lower()
        if insecure not in ("true", "false", "1", "0"):
            raise _invalid(f"insecure={insecure!r}; use true or false")
        return cls(
            endpoint=endpoint, region=region, virtual_hosted=virtual,
            part_size=int(_number(params, "part_size", DEFAULT_PART_MIB, 5, 5120) * MIB),
            concurrency=int(_number(params, "concurrency", DEFAULT_CONCURRENCY, 1, 32)),
            retries=int(_number(params, "retries", DEFAULT_RETRIES, 0, 20)),
            timeout_s=_number(params, "timeout", DEFAULT_TIMEOUT_S, 1, 3600),
            connect_timeout_s=_number(params, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S,
                                      0.1, 300),
            proxy=params.get("proxy") or None, insecure=insecure in ("true", "1"))

    def bucket_endpoint(self, bucket: str) -> str | None:
        """The endpoint obstore is given: with virtual-hosted addressing obstore expects the
        bucket already in the host name."""
        if self.endpoint is None or not self.virtual_hosted:
            return self.endpoint
        ep = urlsplit(self.endpoint)
        return urlunsplit((ep.scheme, f"{bucket}.{ep.netloc}", ep.path, "", ""))

    def describe(self) -> str:
        where = self.endpoint or f"AWS S3 ({self.region})"
        addressing = "virtual-hosted" if self.virtual_hosted else "path-style"
        return (f"S3 {where} region={self.region} {addressing} "
                f"part_size={self.part_size // MIB}MiB")


# --- error classification ------------------------------------------------------------

_STATUS_RE = re.compile(r"status code: (\d{3})")
_CODE_RE = re.compile(r"<Code>([^<]{1,100})</Code>")
_S3MSG_RE = re.compile(r"<Message>([^<]{1,300})</Message>")
_METHOD_RE = re.compile(r"Error performing (GET|PUT|POST|HEAD|DELETE)")
_INVALID_CODES = {"InvalidStorageClass", "InvalidBucketName", "InvalidArgument",
                  "KeyTooLongError", "EntityTooLarge", "InvalidRequest",
                  "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraint"}
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                   "TooManyRequests", "ServiceUnavailable", "InternalError", "RequestTimeout"}
# Connection-level failures, recognised in obstore's debug text; the first match names it.
_NETWORK_PHRASES = (
    ("connection refused", "connection refused"),
    ("dns error", "host name not resolved"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("connection reset", "connection reset"),
    ("connection closed", "connection closed"),
    ("broken pipe", "connection broken"),
    # The writer path reports only this line (connection refused, reset, DNS failure).
    ("error sending request", "no answer (connection refused or reset, timed out, or host "
                              "not resolved)"),
    ("tcp connect error", "connect failed"),
    ("invalid certificate", "TLS certificate rejected"),
    ("certificate", "TLS certificate problem"),
)


def _short(text: str, limit: int = 160) -> str:
    first = text.split("\n\nDebug source", 1)[0].split("\n", 1)[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"


def classify(exc: Exception, *, bucket: str, key: str, where: str) -> SinkError:
    """Turn an obstore failure into a SinkError the task ledger can act on."""
    text = str(exc)
    status_match = _STATUS_RE.search(text)
    status = int(status_match.group(1)) if status_match else None
    code_match = _CODE_RE.search(text)
    s3_code = code_match.group(1) if code_match else None
    s3_msg_match = _S3MSG_RE.search(text)
    method_match = _METHOD_RE.search(text)
    method = method_match.group(1) if method_match else "request"
    if status is not None:
        detail = f"{method} -> {status} {s3_code or ''}".rstrip()
        if s3_msg_match:
            detail += f": {s3_msg_match.group(1)}"
    else:
        # obstore's debug text always lists its retry_timeout setting; not a timeout.
        lowered = re.sub(r"retry_timeout: [^,\n]*", "", text).lower()
        reason = next((label for phrase, label in _NETWORK_PHRASES if phrase in lowered), None)
        # No method here: after a failed part obstore's own abort (DELETE) is what reports
        # the connection failure, which would mislead.
        detail = reason or _short(text)

    if s3_code == "NoSuchBucket":
        return SinkError("bucket_missing", f"bucket '{bucket}' does not exist at {where} "
                                           "(10001): create it, then retry the task",
                         detail=detail)
    if (isinstance(exc, PermissionDeniedError | UnauthenticatedError)
            or status in (401, 403)):
        if s3_code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                       "ExpiredToken", "TokenRefreshRequired", "InvalidClientTokenId"):
            hint = ("check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN of "
                    "the shipping workers")
        elif s3_code == "RequestTimeTooSkewed":
            hint = "the worker's clock is off; sync it (NTP)"
        else:
            hint = (f"grant these credentials PutObject and multipart upload on bucket "
                    f"'{bucket}'")
        return SinkError("access_denied", f"no permission to write to bucket '{bucket}' at "
                                          f"{where} (10002): {detail}; {hint}, then retry "
                                          "the task", detail=detail)
    if s3_code in _INVALID_CODES or "incorrectly configured region" in text:
        return SinkError("invalid", f"object storage at {where} rejected '{bucket}/{key}' "
                                    f"(10003): {detail}; fix the shipper or the object store "
                                    "settings", detail=detail)
    if status is not None and (status >= 500 or status == 429 or s3_code in _THROTTLE_CODES):
        return SinkError("other", f"object storage at {where} failed (10003): {detail}; "
                                  "will retry", transient=True, detail=detail)
    if status is None and detail != _short(text):  # a recognised connection failure
        return SinkError("unreachable", f"object storage at {where} is unreachable (10003): "
                                        f"{detail}; will retry", detail=detail)
    if "credential" in text.lower():
        # obstore could not obtain credentials at all (no env variables, no instance role).
        return SinkError("access_denied", f"no credentials for object storage at {where} "
                                          f"(10002): {detail}; set AWS_ACCESS_KEY_ID and "
                                          "AWS_SECRET_ACCESS_KEY for the shipping workers",
                         detail=detail)
    return SinkError("other", f"object storage at {where} failed for '{bucket}/{key}' "
                              f"(10003): {detail}", transient=True, detail=detail)


# --- writer and sink ---------------------------------------------------------------------


class _Aborted(Exception):
    """Handed to WritableFile.__exit__: with an exception obstore aborts the multipart
    upload instead of completing it (measured with moto; close() would complete it)."""


class S3Writer:
    def __init__(self, sink: S3Sink, bucket: str, key: str, store: S3Store,
                 attributes: dict[str, str]) -> None:
        self.sink, self.bucket, self.key = sink, bucket, key
        self._digests = Digests()
        self._done = False
        try:
            self._file: WritableFile = obstore.open_writer(
                store, key, attributes=attributes,
                buffer_size=sink.options.part_size, max_concurrency=sink.options.concurrency)
        except Exception as exc:  # obstore raises many types; all classified
            raise self._classify(exc) from exc

    def _classify(self, exc: Exception) -> SinkError:
        return classify(exc, bucket=self.bucket, key=self.key, where=self.sink.where)

    def write(self, data: bytes) -> None:
        if self._done:
            raise RuntimeError(f"write to {self.key!r} after close or abort")
        try:
            # Buffers up to one part; a full part is uploaded (multipart) before returning
            # once `concurrency` parts are in flight, which bounds memory.
            self._file.write(data)
        except Exception as exc:  # classified below, upload aborted first
            self.abort()
            raise self._classify(exc) from exc
        self._digests.update(data)

    def close(self) -> WrittenObject:
        if self._done:
            raise RuntimeError(f"close of {self.key!r} after close or abort")
        try:
            # A single PUT for a small object, else the last part + CompleteMultipartUpload;
            # either way the object appears whole or not at all.
            self._file.close()
        except Exception as exc:  # classified below, upload aborted first
            self.abort()
            raise self._classify(exc) from exc
        self._done = True
        return self._digests.result(self.bucket, self.key)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        # The original failure matters more than a failed abort; an abort that cannot reach
        # the store leaves the upload to the bucket's lifecycle rule.
        with contextlib.suppress(Exception):
            self._file.__exit__(_Aborted, _Aborted("writer aborted"), None)


MAX_STORES = 64


class S3Sink:
    def __init__(self, options: S3Options, environ: Mapping[str, str] | None = None) -> None:
        self.options = options
        self._environ = os.environ if environ is None else environ
        # Buckets come from shipper configurations, which clients create and delete at will:
        # keep the recently used ones (a store in use by a writer stays alive through it).
        self._stores: LRUCache[str, S3Store] = LRUCache(maxsize=MAX_STORES)
        self._lock = threading.Lock()
        self.where = options.endpoint or f"AWS S3 ({options.region})"

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> S3Sink:
        return cls(S3Options.from_url(url, environ), environ)

    def store(self, bucket: str) -> S3Store:
        """One store per bucket, created on first use and kept while recently used: it holds
        the connection pool and, for role-based credentials, the refreshed token."""
        with self._lock:
            store = self._stores.get(bucket)
            if store is None:
                store = self._stores[bucket] = self._new_store(bucket)
            return store

    def _new_store(self, bucket: str) -> S3Store:
        opts = self.options
        config: dict[str, Any] = {
            "region": opts.region,
            "virtual_hosted_style_request": opts.virtual_hosted,
        }
        endpoint = opts.bucket_endpoint(bucket)
        if endpoint is not None:
            config["endpoint"] = endpoint
        env = self._environ
        # Explicit rather than obstore's own environment lookup, so the variables seen are
        # the ones this sink was given; without them obstore falls back to its chain (web
        # identity token, container and instance credentials).
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            config["access_key_id"] = env["AWS_ACCESS_KEY_ID"]
            config["secret_access_key"] = env["AWS_SECRET_ACCESS_KEY"]
            if env.get("AWS_SESSION_TOKEN"):
                config["session_token"] = env["AWS_SESSION_TOKEN"]
        client: dict[str, Any] = {
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "timeout": timedelta(seconds=opts.timeout_s),
            "connect_timeout": timedelta(seconds=opts.connect_timeout_s),
        }
        if opts.proxy:
            client["proxy_url"] = opts.proxy
        if opts.insecure:
            client["allow_invalid_certificates"] = True
        retry: dict[str, Any] = {
            "max_retries": opts.retries,
            "retry_timeout": timedelta(seconds=max(opts.timeout_s, 30.0)),
        }
        try:
            return S3Store(bucket, config=config,  # type: ignore[arg-type]
                           client_options=client,  # type: ignore[arg-type]
                           retry_config=retry)  # type: ignore[arg-type]
        except Exception as exc:  # obstore raises several types here
            raise SinkError("invalid", f"cannot configure object storage at {self.where} "
                                       f"(10003): {_short(str(exc))}") from exc

    def open_writer(self, bucket: str, key: str, *, content_type: str,
                    storage_class: str = "STANDARD") -> S3Writer:
        check_bucket(bucket)
        check_key(key)
        attributes = {"Content-Type": content_type}
        storage = (storage_class or "STANDARD").upper()
        # STANDARD is every store's default; omitting the header keeps stores that reject
        # the x-amz-storage-class header entirely (some self-hosted ones) working.
        if storage != "STANDARD":
            attributes["Storage-Class"] = storage
        return S3Writer(self, bucket, key, self.store(bucket), attributes)

    def stat(self, bucket: str, key: str) -> StoredObject | None:
        check_bucket(bucket)
        check_key(key)
        try:
            meta = obstore.head(self.store(bucket), key)
        except (NotFoundError, FileNotFoundError):  # obstore raises the builtin for HEAD 404
            return None
        except Exception as exc:  # obstore raises several types; classify() sorts them
            raise classify(exc, bucket=bucket, key=key, where=self.where) from exc
        return _stored(meta["path"], meta["size"], meta["e_tag"])

    def list_objects(self, bucket: str, prefix: str) -> Iterator[StoredObject]:
        check_bucket(bucket)
        # obstore lists by whole path segments; the prefix may end inside a name.
        directory = prefix.rpartition("/")[0]
        try:
            for batch in obstore.list(self.store(bucket), directory or None, chunk_size=500):
                for meta in batch:
                    if meta["path"].startswith(prefix):
                        yield _stored(meta["path"], meta["size"], meta["e_tag"])
        except Exception as exc:  # obstore raises several types; classify() sorts them
            raise classify(exc, bucket=bucket, key=prefix, where=self.where) from exc

    def probe(self, bucket: str, prefix: str) -> None:
        check_bucket(bucket)
        key = probe_key(prefix)
        check_key(key)
        store = self.store(bucket)
        try:
            # A PUT like the workers' (same store, credentials and timeouts): what a bucket
            # policy or a missing bucket refuses, it refuses too.
            obstore.put(store, key, PROBE_BODY)
        except Exception as exc:  # obstore raises several types; classify() sorts them
            raise classify(exc, bucket=bucket, key=key, where=self.where) from exc
        with contextlib.suppress(Exception):  # see Sink.probe: deleting is not required
            obstore.delete(store, key)

    def describe(self) -> str:
        return self.options.describe()


def _stored(key: str, size: int, etag: str | None) -> StoredObject:
    # A single-part upload's ETag is the MD5 of the object; a multipart one ("…-N") is not.
    tag = (etag or "").strip('"')
    md5 = tag if len(tag) == 32 and "-" not in tag else ""
    return StoredObject(key, size, md5)
