"""A local directory as object storage: `<root>/<bucket>/<key>`. Each object is written to a
temporary file next to its final path, fsynced and renamed, so readers see either the old
object or the complete new one, never a part."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

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

# In-flight files are hidden and end in this suffix; anything left after a crash can be
# deleted safely.
TEMP_SUFFIX = ".tmp"


def _os_error(exc: OSError, what: str, path: Path) -> SinkError:
    detail = f"{exc.strerror or exc}"
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM,
                                                          errno.EROFS):
        return SinkError("access_denied", f"no permission to {what} {path} (10002): {detail}; "
                                          "fix the directory's owner or mode, then retry",
                         detail=detail)
    if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG):
        return SinkError("invalid", f"cannot {what} {path} (10003): {detail}; a file and a "
                                    "directory share this name", detail=detail)
    # Out of space, I/O errors and the like: worth retrying once someone has made room.
    return SinkError("other", f"cannot {what} {path} (10003): {detail}", transient=True,
                     detail=detail)


class LocalWriter:
    def __init__(self, bucket: str, key: str, final: Path) -> None:
        self.bucket, self.key, self.final = bucket, key, final
        self._digests = Digests()
        self._done = False
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.",
                                       suffix=TEMP_SUFFIX)
        except OSError as exc:
            raise _os_error(exc, "create", final) from exc
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        if self._done:
            raise RuntimeError(f"write to {self.key!r} after close or abort")
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise _os_error(exc, "write", self.final) from exc
        self._digests.update(data)

    def close(self) -> WrittenObject:
        if self._done:
            raise RuntimeError(f"close of {self.key!r} after close or abort")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.final)
        except OSError as exc:
            self.abort()
            raise _os_error(exc, "write", self.final) from exc
        self._done = True
        # The rename is durable only once the directory entry is on disk.
        try:
            dir_fd = os.open(self.final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise _os_error(exc, "sync directory of", self.final) from exc
        return self._digests.result(self.bucket, self.key)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalSink:
    """`file:///abs/dir`: bucket = sub-directory (created on demand), key = relative path."""

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise SinkError("invalid", f"local object store must be an absolute path, got "
                                       f"{str(root)!r} (10003)")
        self.root = root

    def path_of(self, bucket: str, key: str) -> Path:
        check_bucket(bucket)
        check_key(key)
        return self.root / bucket / key

    def open_writer(self, bucket: str, key: str, *, content_type: str,
                    storage_class: str = "STANDARD") -> LocalWriter:
        # A directory has no content type or storage class; both are accepted and ignored so
        # a shipper behaves the same on either sink.
        del content_type, storage_class
        return LocalWriter(bucket, key, self.path_of(bucket, key))

    def stat(self, bucket: str, key: str) -> StoredObject | None:
        path = self.path_of(bucket, key)
        try:
            return _stored(key, path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _os_error(exc, "read", path) from exc

    def list_objects(self, bucket: str, prefix: str) -> Iterator[StoredObject]:
        check_bucket(bucket)
        directory, _, _ = prefix.rpartition("/")
        if directory:
            check_key(directory)  # never list outside the bucket
        top = self.root / bucket / directory
        if not top.is_dir():
            return
        for path in sorted(top.rglob("*")):
            key = path.relative_to(self.root / bucket).as_posix()
            # Temp files of writes under way (or left by a crash) are not objects.
            if path.is_file() and key.startswith(prefix) and not path.name.endswith(TEMP_SUFFIX):
                yield _stored(key, path)

    def probe(self, bucket: str, prefix: str) -> None:
        key = probe_key(prefix)
        writer = LocalWriter(bucket, key, self.path_of(bucket, key))
        writer.write(PROBE_BODY)
        written = writer.close()
        with contextlib.suppress(OSError):  # see Sink.probe: deleting is not required
            (self.root / bucket / written.key).unlink()

    def describe(self) -> str:
        return f"local directory {self.root}"


def _stored(key: str, path: Path) -> StoredObject:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return StoredObject(key, path.stat().st_size, digest.hexdigest())
