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

from tests.helpers.server import REPO

# tccli is the official command line; the tests drive it with --endpoint against a server.
PACKAGES = ["tencentcloud-cls-sdk-python", "tencentcloud-sdk-python-cls", "tccli"]
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


def run_sdk_script(script: str, args: dict[str, Any], timeout: float = 120,
                   env: dict[str, str] | None = None) -> Any:
    """Run `script` (Python source) in the SDK venv with `ARGS` (a dict) defined, and `env`
    added to the environment; the script prints one JSON document as its result, which is
    returned."""
    prelude = "import json, sys\nARGS = json.loads(sys.stdin.read())\n"
    done = subprocess.run([str(sdk_python()), "-c", prelude + script], capture_output=True,
                          text=True, timeout=timeout, input=json.dumps(args),
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(f"SDK script failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(sdk_python(), file=sys.stderr)


_PUT_LOGS = """
from tencentcloud.log.logclient import LogClient
from tencentcloud.log.cls_pb2 import LogGroupList
client = LogClient(ARGS["endpoint"], ARGS["secret_id"], ARGS["secret_key"])
sent = 0
for batch in ARGS["batches"]:
    lgl = LogGroupList()
    group = lgl.logGroupList.add()
    group.source = ARGS["source"]
    group.filename = "/var/log/app.log"
    tag = group.logTags.add()
    tag.key, tag.value = "env", "test"
    for item in batch:
        log = group.logs.add()
        log.time = item[0]
        for k, v in item[1].items():
            c = log.contents.add()
            c.key, c.value = k, v
    client.put_log_raw(ARGS["topic"], lgl)
    sent += len(batch)
print(json.dumps({"sent": sent}))
"""


def sdk_put_logs(base_url: str, secret_id: str, secret_key: str, topic_id: str,
                 batches: list[list[tuple[int, dict[str, str]]]],
                 source: str = "10.1.2.3") -> int:
    """Upload with the official SDK's `LogClient.put_log_raw`, one LogGroupList per batch of
    (time, contents); returns how many logs the SDK sent (each upload got a 200)."""
    result = run_sdk_script(_PUT_LOGS, {
        "endpoint": base_url.removeprefix("http://"), "secret_id": secret_id,
        "secret_key": secret_key, "topic": topic_id, "batches": batches, "source": source})
    return int(result["sent"])
