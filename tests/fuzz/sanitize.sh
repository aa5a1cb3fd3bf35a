#!/bin/sh
# `make sanitize`: the C extension built with AddressSanitizer and UndefinedBehaviorSanitizer
# (gcc), in a temporary directory, under its differential tests and the encoder tests that
# run the C transcoder. Any report aborts the run, so the exit status is non-zero.
#   PYTHON: the interpreter with the project's test dependencies (default python3)
set -eu
python=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
PYTHON=$python "$root/tests/fuzz/build_wire.sh" "$build" gcc \
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
libasan=$(gcc -print-file-name=libasan.so)
cd "$root"
# The sanitized build must be the one imported, or this run proves nothing.
PYTHONPATH="$build:$root" LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0 "$python" -c \
    'import sys, cls_shipper._wire as w; sys.exit(not w.__file__.startswith(sys.argv[1]))' "$build"
# PYTHONMALLOC=malloc: bytes objects in malloc blocks ASan guards, not in pymalloc arenas.
# detect_leaks=0: CPython keeps its own allocations until exit, which LeakSanitizer reports.
# --capture=sys: a report goes straight to fd 2, not into a capture lost when it aborts.
# CI=true: a sanitized extension that fails to import fails the tests instead of skipping.
CI=true PYTHONMALLOC=malloc PYTHONPATH="$build:$root" LD_PRELOAD="$libasan" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$python" -m pytest -q -p no:cacheprovider --capture=sys \
    tests/unit/ingest tests/unit/formats/test_encoder.py
