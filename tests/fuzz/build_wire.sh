#!/bin/sh
# Build cls_shipper._wire with extra compiler flags into OUT/cls_shipper, next to links to the
# rest of the package, so that PYTHONPATH=OUT imports that build and the normal .so in
# src/ (which running servers may map) is never touched.
#   usage: build_wire.sh OUT CC [FLAGS...]      (PYTHON: the interpreter, default python3)
set -eu
out=$1 cc=$2
shift 2
python=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/../.." && pwd)
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
mkdir -p "$out/cls_shipper"
for entry in "$root"/src/cls_shipper/* "$root"/src/cls_shipper/.[!.]*; do
    [ -e "$entry" ] || continue
    case $(basename "$entry") in
    _wire*.so | __pycache__) ;;
    *) ln -sfn "$entry" "$out/cls_shipper/$(basename "$entry")" ;;
    esac
done
"$cc" -shared -fPIC -g -O1 -Wall -Wextra -Werror "$@" -I"$include" \
    "$root/src/cls_shipper/_wire.c" -o "$out/cls_shipper/_wire$suffix"
