"""lzop files (`.lzo`) written with LZO1X-1 from Debian's liblzo2-2, called through ctypes.

The container is what lzop 1.04 writes (lzop.c, x_compress/write_header): the magic, a
header protected by an adler32 (or crc32) checksum, then blocks of at most 256 KiB, each
`uncompressed length, compressed length, checksum(s), data`, and a zero length at the end.
A block that does not shrink is stored as is and carries no compressed-data checksum,
exactly as lzop does; `lzop -t`/`lzop -d` and hadoop-lzo read the result.

Every header field that lzop fills from the environment is fixed (no file name, mtime 0,
mode 0644, library version 2.10) so the same input always gives the same bytes."""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
import threading
from typing import Literal

from zlib_ng import zlib_ng  # the same checksums as zlib, several times faster

from cls_shipper.errors import CodecUnavailableError

MAGIC = b"\x89LZO\x00\r\n\x1a\n"
BLOCK_SIZE = 256 * 1024  # lzop's default block size
LZOP_VERSION = 0x1040  # the format of lzop 1.04
LIB_VERSION = 0x20A0  # recorded, not checked by readers; fixed for reproducible bytes
VERSION_NEEDED = 0x0940  # the oldest lzop that reads this header layout
METHOD_LZO1X_1 = 1
LEVEL = 5  # what lzop records for its default LZO1X-1 compression

F_ADLER32_D = 0x00000001
F_ADLER32_C = 0x00000002
F_CRC32_D = 0x00000100
F_CRC32_C = 0x00000200
F_H_CRC32 = 0x00001000
F_OS_UNIX = 0x03000000
FILE_MODE = 0o100644

Checksum = Literal["adler32", "crc32"]

_LIBRARY_NAMES = ("liblzo2.so.2", "liblzo2.so")
_INSTALL_HINT = ("lzop compression needs the LZO library (liblzo2.so.2): install the Debian/"
                 "Ubuntu package liblzo2-2 (or lzo on other systems), or choose another codec")


class _Lzo:
    """The two liblzo2 functions we need, bound once per process."""

    def __init__(self) -> None:
        lib = None
        names = list(_LIBRARY_NAMES)
        found = ctypes.util.find_library("lzo2")
        if found:
            names.append(found)
        for name in names:
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            raise CodecUnavailableError(_INSTALL_HINT)
        # getattr: a dunder name written inside a class body would be name-mangled.
        init = getattr(lib, "__lzo_init_v2")
        init.restype = ctypes.c_int
        init.argtypes = [ctypes.c_uint] + [ctypes.c_int] * 9
        ptr = ctypes.sizeof(ctypes.c_void_p)
        # lzo_init() is a macro passing the caller's type sizes; -1 skips a check (used for
        # lzo_callback_t, a struct we never pass).
        status = init(lib.lzo_version(), ctypes.sizeof(ctypes.c_short),
                      ctypes.sizeof(ctypes.c_int), ctypes.sizeof(ctypes.c_long), 4,
                      ctypes.sizeof(ctypes.c_size_t), ptr, ptr, ptr, -1)
        if status != 0:
            raise CodecUnavailableError(f"liblzo2 failed to initialise (status {status})")
        self.compress_fn = lib.lzo1x_1_compress
        self.compress_fn.restype = ctypes.c_int
        self.compress_fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
        # LZO1X_1_MEM_COMPRESS = 16384 * sizeof(lzo_bytep)
        self.work_size = 16384 * ptr


_lzo: _Lzo | None = None
_lzo_lock = threading.Lock()


def _library() -> _Lzo:
    global _lzo
    with _lzo_lock:
        if _lzo is None:
            _lzo = _Lzo()
        return _lzo


def available() -> bool:
    try:
        _library()
    except CodecUnavailableError:
        return False
    return True


def header(checksum: Checksum = "adler32") -> bytes:
    flags = F_OS_UNIX
    flags |= (F_CRC32_D | F_CRC32_C | F_H_CRC32) if checksum == "crc32" else (
        F_ADLER32_D | F_ADLER32_C)
    body = struct.pack(">HHHBBIIIIB", LZOP_VERSION, LIB_VERSION, VERSION_NEEDED,
                       METHOD_LZO1X_1, LEVEL, flags, FILE_MODE, 0, 0, 0)
    check = zlib_ng.crc32(body) if checksum == "crc32" else zlib_ng.adler32(body)
    return MAGIC + body + struct.pack(">I", check)


class LzopCompressor:
    """Streaming lzop writer: `compress` returns whatever complete blocks are ready."""

    def __init__(self, checksum: Checksum = "adler32") -> None:
        lzo = _library()
        self._compress = lzo.compress_fn
        self._work = ctypes.create_string_buffer(lzo.work_size)
        # Worst case of LZO1X-1 for incompressible input (lzo1x.h / LZO FAQ).
        self._out = ctypes.create_string_buffer(BLOCK_SIZE + BLOCK_SIZE // 16 + 64 + 3)
        self._out_len = ctypes.c_size_t(0)
        self._crc = checksum == "crc32"
        self._pending = bytearray()
        self._started = False
        self._checksum = checksum

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return header(self._checksum)

    def _block(self, block: bytes) -> bytes:
        size = len(block)
        status = self._compress(block, size, self._out, ctypes.byref(self._out_len),
                                self._work)
        if status != 0:
            raise CodecUnavailableError(f"lzo1x_1_compress failed (status {status})")
        packed = self._out_len.value
        data_check = zlib_ng.crc32(block) if self._crc else zlib_ng.adler32(block)
        if packed < size:
            compressed = self._out.raw[:packed]
            comp_check = zlib_ng.crc32(compressed) if self._crc else zlib_ng.adler32(compressed)
            return struct.pack(">IIII", size, packed, data_check, comp_check) + compressed
        return struct.pack(">III", size, size, data_check) + block

    def compress(self, data: bytes) -> bytes:
        self._pending += data
        if len(self._pending) < BLOCK_SIZE:
            return self._start()
        out = [self._start()]
        view = memoryview(self._pending)
        whole = len(view) - len(view) % BLOCK_SIZE
        for at in range(0, whole, BLOCK_SIZE):
            out.append(self._block(bytes(view[at:at + BLOCK_SIZE])))
        view.release()
        del self._pending[:whole]
        return b"".join(out)

    def finish(self) -> bytes:
        out = [self._start()]
        if self._pending:
            out.append(self._block(bytes(self._pending)))
            self._pending.clear()
        out.append(b"\x00\x00\x00\x00")
        return b"".join(out)
