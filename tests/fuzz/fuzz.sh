#!/bin/sh
# `make fuzz`: libFuzzer (through atheris) over the three C walks, differentially against the
# Python paths, each for FUZZ_SECONDS. The extension is built with clang for coverage
# feedback (-fsanitize=fuzzer-no-link) and AddressSanitizer, in a temporary directory.
# A finding exits non-zero and leaves its input in fuzz-artifacts/.
#   PYTHON: the interpreter with the project's test dependencies and atheris
#   FUZZ_SECONDS: per walk (default 60)
set -eu
python=${PYTHON:-python3}
seconds=${FUZZ_SECONDS:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
PYTHON=$python "$root/tests/fuzz/build_wire.sh" "$build" clang \
    -fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer
preload=$("$python" -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so
mkdir -p "$root/fuzz-artifacts"
cd "$root"
for target in scan json lines; do
    echo "fuzzing $target for ${seconds}s"
    # The fuzzer's own progress (a line per module it instruments, a line per new coverage
    # point) goes to a log: printed whole on a finding, only its final figures otherwise.
    log="$root/fuzz-artifacts/$target.log"
    status=0
    # PYTHONMALLOC=malloc: bytes objects in malloc blocks ASan guards; detect_leaks=0:
    # CPython's own allocations live until exit.
    PYTHONMALLOC=malloc PYTHONPATH="$build:$root" LD_PRELOAD="$preload" \
        ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
        "$python" tests/fuzz/wire_fuzz.py "$target" "$build/corpus-$target" \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$root/fuzz-artifacts/$target-" \
        >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$log"
        exit "$status"
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
done
