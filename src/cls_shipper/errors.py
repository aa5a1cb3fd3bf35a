"""Typed errors of the service layer. Each kind carries its legacy code and HTTP status
(spec §2.4) and its API 3.0 code (spec §7.9); the HTTP surfaces only render them."""

from __future__ import annotations

from dataclasses import dataclass


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
    SPEED_QUOTA_EXCEED = ErrorKind("SpeedQuotaExceed", 429, "RequestLimitExceeded")
    INTERNAL = ErrorKind("InternalError", 500, "InternalError")


class ServiceError(Exception):
    """A rule was broken; `kind` says how each API reports it."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        # Messages quote the caller's input; a 60 KB id must not come back as a 60 KB error.
        if len(message) > 1000:
            message = message[:1000] + "…"
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid(message: str) -> ServiceError:
    return ServiceError(Kinds.INVALID_PARAM, message)


def missing(name: str) -> ServiceError:
    return ServiceError(Kinds.MISSING_PARAM, f"missing required parameter {name!r}")
