"""Test support: external tools a test needs (Debian's `prometheus` and `promtool`)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, package: str) -> str:
    """The tool's path; skips with the reason when it is missing, fails under CI=true (where
    .ci/run installs it)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; it is required under CI=true")
        pytest.skip(reason)
    return path
