"""Every error cls-shipper raises on purpose, in one tree:

    ClsShipperError                 the root: `message` says what went wrong and what to do
    ├── ServiceError                a rule was broken; `kind` carries the legacy code and HTTP
    │                               status (spec §2.4) and the API 3.0 code (spec §7.9)
    ├── ClientError                 a CLS API answered a client (the CLI) with an error
    ├── SettingsError               a server setting is unknown (a typo) or invalid
    └── ShippingError               a window could not be shipped; `code` is the console code a
        │                           task records (spec §8.6), `transient` whether a retry may help
        ├── SinkError               the object store failed (sinks/)
        └── FormatError             stored records could not be encoded (formats/)
            ├── CorruptChunkError
            └── CodecUnavailableError

The HTTP surfaces only render these; the engine records them on the task."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal


@dataclass(frozen=True, slots=True)
class ErrorKind:
    legacy_code: str
    status: int
    v3_code: str


class Kinds:
    INVALID_PARAM = ErrorKind("InvalidParam", 400, "InvalidParameterValue")
    MISSING_PARAM = ErrorKind("InvalidParam", 400, "MissingParameter")
    UNKNOWN_PARAM = ErrorKind("InvalidParam", 400, "UnknownParameter")
    # API 3.0 only (their legacy codes are never rendered):
    WRONG_TYPE = ErrorKind("InvalidParam", 400, "InvalidParameter")
    NO_SUCH_VERSION = ErrorKind("InvalidParam", 400, "NoSuchVersion")
    UNSUPPORTED_PROTOCOL = ErrorKind("InvalidParam", 400, "UnsupportedProtocol")
    LIMIT_EXCEEDED = ErrorKind("InvalidParam", 400, "LimitExceeded")
    INVALID_CONTENT = ErrorKind("InvalidContent", 400, "InvalidParameter")
    MISSING_CONTENT = ErrorKind("MissingContent", 400, "MissingParameter")
    INVALID_CONTENT_TYPE = ErrorKind("InvalidContentType", 400, "InvalidParameter")
    MISSING_CONTENT_TYPE = ErrorKind("MissingContentType", 400, "InvalidParameter")
    INVALID_COMPRESS_TYPE = ErrorKind("InvalidCompressType", 400, "InvalidParameterValue")
    BODY_TOO_LARGE = ErrorKind("InvalidContent", 413, "InvalidParameter")
    # A body that did not arrive within BODY_TIMEOUT: "Timeout" is a code the SDKs retry.
    BODY_TIMEOUT = ErrorKind("Timeout", 408, "FailedOperation")
    TOPIC_CLOSED = ErrorKind("TopicClosed", 400, "FailedOperation.TopicClosed")
    LOGSET_NOT_EMPTY = ErrorKind("LogsetNotEmpty", 400, "FailedOperation.LogsetNotEmpty")
    MISSING_AUTHORIZATION = ErrorKind(
        "MissingAuthorization", 400, "AuthFailure.InvalidAuthorization")
    INVALID_AUTHORIZATION = ErrorKind(
        "InvalidAuthorization", 400, "AuthFailure.InvalidAuthorization")
    SECRET_ID_NOT_FOUND = ErrorKind(
        "AuthFailure.SecretIdNotFound", 401, "AuthFailure.SecretIdNotFound")
    SIGNATURE_FAILURE = ErrorKind(
        "AuthFailure.SignatureFailure", 401, "AuthFailure.SignatureFailure")
    SIGNATURE_EXPIRE = ErrorKind("AuthFailure.SignatureExpire", 401, "AuthFailure.SignatureExpire")
    TOKEN_FAILURE = ErrorKind("AuthFailure.TokenFailure", 401, "AuthFailure.TokenFailure")
    LOGSET_EXCEED = ErrorKind("LogsetExceed", 403, "LimitExceeded.Logset")
    TOPIC_EXCEED = ErrorKind("TopicExceed", 403, "LimitExceeded.Topic")
    SHIPPER_EXCEED = ErrorKind("ShipperExceed", 403, "LimitExceeded.Shipper")
    LOG_SIZE_EXCEED = ErrorKind("LogSizeExceed", 403, "LimitExceeded.LogSize")
    TASK_READ_ONLY = ErrorKind("TaskReadOnly", 403, "FailedOperation.ShipperTaskNotToRetry")
    NOT_ALLOWED = ErrorKind("NotAllowed", 403, "OperationDenied")
    CURSOR_NOT_EXIST = ErrorKind("CursorNotExist", 404, "ResourceNotFound")
    TASK_NOT_EXIST = ErrorKind("TaskNotExist", 404, "ResourceNotFound.ShipperTaskNotExist")
    LOGSET_NOT_EXIST = ErrorKind("LogsetNotExist", 404, "ResourceNotFound.LogsetNotExist")
    SHIPPER_NOT_EXIST = ErrorKind("ShipperNotExist", 404, "ResourceNotFound.ShipperNotExist")
    TOPIC_NOT_EXIST = ErrorKind("TopicNotExist", 404, "ResourceNotFound.TopicNotExist")
    NOT_SUPPORTED = ErrorKind("NotSupported", 405, "UnsupportedOperation")
    ROUTE_NOT_FOUND = ErrorKind("NotSupported", 404, "InvalidAction")
    LOGSET_CONFLICT = ErrorKind("LogsetConflict", 409, "InvalidParameter.LogsetConflict")
    TOPIC_CONFLICT = ErrorKind("TopicConflict", 409, "InvalidParameter.TopicConflict")
    SHIPPER_CONFLICT = ErrorKind("ShipperConflict", 409, "InvalidParameter.ShipperConflict")
    # The object store failed while we asked it something (an audit): not our bug, not the
    # caller's input; the message carries the store's own reason (bucket missing, denied...).
    OBJECT_STORE_FAILED = ErrorKind("InternalError", 502, "FailedOperation")
    # A shipper's destination checked on create/modify (spec §7.9 lists no bucket codes for
    # CreateShipper/ModifyShipper): a missing bucket is a bad parameter value, one the
    # server may not write to an ACL failure.
    DESTINATION_MISSING = ErrorKind("InvalidParam", 400, "InvalidParameterValue")
    DESTINATION_DENIED = ErrorKind("NotAllowed", 403, "OperationDenied.ACLFailed")
    SPEED_QUOTA_EXCEED = ErrorKind("SpeedQuotaExceed", 429, "RequestLimitExceeded")
    # Consumption (pull_log and consumer groups). "InvalidOffset" is the code the SDK's
    # consumer library recognises for an offset it should move on from.
    INVALID_OFFSET = ErrorKind("InvalidOffset", 400, "InvalidParameterValue")
    PARTITION_NOT_EXIST = ErrorKind("PartitionNotExist", 404,
                                    "ResourceNotFound.PartitionNotExist")
    CONSUMER_GROUP_NOT_EXIST = ErrorKind("ConsumerGroupNotExist", 404,
                                         "ResourceNotFound.ConsumerGroupNotExist")
    # The SDK's ConsumerWorker looks for "consumer group already exists" in the message and
    # then updates the group instead.
    CONSUMER_GROUP_CONFLICT = ErrorKind("ConsumerGroupConflict", 409,
                                        "ResourceInUse.ConsumerGroup")
    CONSUMER_GROUP_EXCEED = ErrorKind("ConsumerGroupExceed", 403, "LimitExceeded.ConsumerGroup")
    INTERNAL = ErrorKind("InternalError", 500, "InternalError")


class ClsShipperError(Exception):
    """The root of every error cls-shipper raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServiceError(ClsShipperError):
    """A rule was broken; `kind` says how each API reports it."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        # Messages quote the caller's input; a 60 KB id must not come back as a 60 KB error.
        if len(message) > 1000:
            message = message[:1000] + "…"
        super().__init__(message)
        self.kind = kind


def invalid(message: str) -> ServiceError:
    return ServiceError(Kinds.INVALID_PARAM, message)


def missing(name: str) -> ServiceError:
    return ServiceError(Kinds.MISSING_PARAM, f"missing required parameter {name!r}")


class ClientError(ClsShipperError):
    """A CLS API answered with an error (or could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class LineError(ClsShipperError):
    """A line the uploader's --format refuses (not a JSON object under `--format json`)."""


class SettingsError(ClsShipperError):
    """A setting in the TOML file or a `CLS_SHIPPER_*` variable is unknown or invalid: the
    server does not start on settings it would otherwise silently ignore."""


class TaskCode(IntEnum):
    """The console codes of a shipping task (spec §8.6)."""

    BUCKET_MISSING = 10001
    ACCESS_DENIED = 10002
    INTERNAL = 10003


class ShippingError(ClsShipperError):
    """A window could not be shipped. `str(error)` is the message the task ledger records,
    `transient` says whether retrying with backoff can help, `code` is the console code."""

    def __init__(self, message: str, *, transient: bool,
                 code: TaskCode = TaskCode.INTERNAL) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code

    @classmethod
    def unexpected(cls, exc: BaseException) -> ShippingError:
        """An error nobody foresaw (a bug, or a library failing oddly): recorded with its type
        so it can be reported, and retried in case it passes."""
        return cls(f"internal error ({TaskCode.INTERNAL}): {type(exc).__name__}: {exc}",
                   transient=True)


SinkErrorKind = Literal["bucket_missing", "access_denied", "unreachable", "invalid", "other"]

_SINK_CODE: dict[SinkErrorKind, TaskCode] = {
    "bucket_missing": TaskCode.BUCKET_MISSING,
    "access_denied": TaskCode.ACCESS_DENIED,
    "unreachable": TaskCode.INTERNAL,
    "invalid": TaskCode.INTERNAL,
    "other": TaskCode.INTERNAL,
}
# A missing bucket, a refused credential or a bad key will not fix itself by waiting; an
# outage or a throttled endpoint usually does.
_SINK_TRANSIENT: dict[SinkErrorKind, bool] = {
    "bucket_missing": False,
    "access_denied": False,
    "unreachable": True,
    "invalid": False,
    "other": True,
}


class SinkError(ShippingError):
    """A destination failed in a way the task ledger records (10001 bucket missing, 10002 no
    permission, 10003 anything else)."""

    def __init__(self, kind: SinkErrorKind, message: str, *, transient: bool | None = None,
                 code: TaskCode | None = None, detail: str = "") -> None:
        super().__init__(message,
                         transient=_SINK_TRANSIENT[kind] if transient is None else transient,
                         code=_SINK_CODE[kind] if code is None else code)
        self.kind: SinkErrorKind = kind
        # The underlying error, shortened; already part of `message` where it helps.
        self.detail = detail

    def __repr__(self) -> str:
        return (f"SinkError(kind={self.kind!r}, code={int(self.code)}, "
                f"transient={self.transient}, message={self.message!r})")


class FormatError(ShippingError):
    """Stored records could not be turned into objects. Retried (the cause may be a library
    or a resource of this machine), as any unexpected failure is."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


class CorruptChunkError(FormatError):
    """A stored chunk is not a decodable LogGroupList. Retrying will not help."""


class CodecUnavailableError(FormatError):
    """A codec needs a system library that this machine does not have."""
