"""The official Tencent SDKs pin protobuf<4, so they live in their own virtualenv, created
once (cached under .sdk-venv in the repo, or CLS_SHIPPER_SDK_VENV) and driven as a subprocess."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

from tests.support import REPO

PACKAGES = ["tencentcloud-cls-sdk-python", "tencentcloud-sdk-python-cls"]
VENV = Path(os.environ.get("CLS_SHIPPER_SDK_VENV", REPO / ".sdk-venv"))


def sdk_python() -> Path:
    """The SDK virtualenv's python, creating the venv on first use (file-locked, so parallel
    test processes build it once)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(str(VENV) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            venv.create(VENV, with_pip=True, clear=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
            stamp.write_text("\n".join(PACKAGES))
    return python


def run_sdk_script(script: str, args: dict[str, Any], timeout: float = 120) -> Any:
    """Run `script` (Python source) in the SDK venv with `ARGS` (a dict) defined; the script
    prints one JSON document as its result, which is returned."""
    prelude = f"import json, sys\nARGS = json.loads({json.dumps(json.dumps(args))})\n"
    done = subprocess.run([str(sdk_python()), "-c", prelude + script], capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"SDK script failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(sdk_python(), file=sys.stderr)
