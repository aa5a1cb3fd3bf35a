"""Coverage-guided differential fuzzing of the C extension against the Python paths.

    make fuzz FUZZ_SECONDS=60      (tests/fuzz/fuzz.sh: clang build with ASan, one run each)
    python tests/fuzz/wire_fuzz.py scan|json|lines CORPUS_DIR [libFuzzer flags]

`scan`: `_wire.scan_log_group_list` must reach `check_protobuf_python`'s decision, error kind
and message. `json`: `_wire.encode_json_lines` must write the Python encoder's bytes, or leave
the chunk to Python only where the Python path fails (or the chunk holds a protobuf group).
`lines`: the uploader's `_wire.encode_lines` (through ingest/lines.py) must give the batches,
logs, contents and progress of the Python path, or the same LineError.
The seed corpus is written into CORPUS_DIR by this harness from the generator of
tests/unit/ingest/test_wire.py; a disagreement raises, which atheris reports as a finding
(non-zero exit, the input saved as crash-*)."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["cls_shipper"]):
    from cls_shipper.errors import CorruptChunkError, LineError, ServiceError
    from cls_shipper.formats.jsonlines import JsonLinesEncoder
    from cls_shipper.formats.records import iter_batches
    from cls_shipper.ingest import decode, lines
    from cls_shipper.ingest.native import wire
    from cls_shipper.model.shipper import LEGACY_JSON, JsonInfo

from tests.unit.ingest.test_lines import SAMPLES, run
from tests.unit.ingest.test_wire import corpus, mutate

CONFIGS = [
    LEGACY_JSON,
    JsonInfo(enable_tag=False, meta_fields=[], json_type=0),
    JsonInfo(enable_tag=True, meta_fields=["__TIMESTAMP__", "__SOURCE__"], json_type=0),
    JsonInfo(enable_tag=True, meta_fields=["__FILENAME__", "__HOSTNAME__"], json_type=0),
]
IPS = ["192.0.2.10", "", "ünï"]


def scan_one(data: bytes) -> None:
    try:
        logs, _groups = wire.scan_log_group_list(data)
        c: Any = ("ok", logs)
    except wire.Unsupported:
        return
    except wire.ScanError as exc:
        kind, message = exc.args
        c = ("error", decode._SCAN_KINDS[kind], message)
    try:
        py: Any = ("ok", decode.check_protobuf_python(data))
    except ServiceError as exc:
        py = ("error", exc.kind, exc.message)
    if c != py:
        raise AssertionError(f"scanner {c!r} != Python {py!r}")


def python_lines(raw: bytes, ip: str, info: JsonInfo) -> Any:
    encoder = JsonLinesEncoder(info)
    lines: list[bytes] = []
    groups: list[int] = []
    try:
        for batch in iter_batches(raw, ip):
            lines += encoder.encode(batch)
            groups.append(len(lines))
    except (CorruptChunkError, UnicodeDecodeError, TypeError):  # TypeError: orjson's range
        return None
    ends, total = [], 0
    for line in lines:
        total += len(line)
        ends.append(total)
    return b"".join(lines), ends, groups


def json_one(data: bytes) -> None:
    if not data:
        return
    # The first byte picks the configuration, so that libFuzzer can mutate it too.
    info, ip = CONFIGS[data[0] % len(CONFIGS)], IPS[data[0] // len(CONFIGS) % len(IPS)]
    raw = data[1:]
    try:
        c: Any = wire.encode_json_lines(raw, ip, info.meta_fields, info.enable_tag)
    except wire.Unsupported as exc:
        c = str(exc)
    py = python_lines(raw, ip, info)
    if isinstance(c, str):
        if py is not None and "group" not in c:
            raise AssertionError(f"C left a chunk to Python ({c}) that Python encodes")
    elif c != py:
        raise AssertionError(f"transcoder {c!r} != Python {py!r}")


MODES: list[lines.Mode] = ["auto", "raw", "json"]


def lines_one(data: bytes) -> None:
    if not data:
        return
    # The first byte picks the mode, the batch size and the read size.
    mode, batch_size = MODES[data[0] % 3], data[0] // 3 % 5 + 1
    lines.READ_BYTES = data[0] % 7 * 13 + 1
    text = data[1:]
    outcomes: list[Any] = []
    for native in (True, False):
        try:
            outcomes.append(run(text, mode, batch_size, native))
        except LineError as exc:
            outcomes.append(("LineError", exc.message))
    if outcomes[0] != outcomes[1]:
        raise AssertionError(f"C walk {outcomes[0]!r} != Python {outcomes[1]!r}")


TARGETS = {"scan": scan_one, "json": json_one, "lines": lines_one}


def seed(target: str, directory: Path) -> None:
    """Generated bodies (clean and not) and mutations of them, as libFuzzer's start."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    if target == "lines":
        for index in range(300):
            picked = rng.sample(SAMPLES, rng.randint(1, 8))
            text = b"\n".join(picked) + rng.choice([b"", b"\n", b"\r\n"])
            (directory / f"seed-{index:04d}").write_bytes(bytes([index % 256]) + text)
        return
    bodies = corpus(1, 150) + corpus(2, 150, clean=True)
    bodies += [mutate(rng, body) for body in bodies[:100]]
    for index, body in enumerate(bodies):
        prefix = bytes([index % 256]) if target == "json" else b""
        (directory / f"seed-{index:04d}").write_bytes(prefix + body)


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} scan|json|lines CORPUS_DIR [libFuzzer flags]")
    if wire is None:
        sys.exit("cls_shipper._wire is not built")
    target = sys.argv[1]
    seed(target, Path(sys.argv[2]))
    atheris.Setup([sys.argv[0], *sys.argv[2:]], TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
