"""The alerting rules in deploy/prometheus: valid for Prometheus, and their unit tests pass
(each alert fires when it should, once per shipper however many nodes export the gauge, and
not before its `for`)."""

from __future__ import annotations

import subprocess

from tests.helpers.server import REPO
from tests.helpers.tools import require_tool

RULES = REPO / "deploy" / "prometheus"


def test_alert_rules_are_valid() -> None:
    promtool = require_tool("promtool", "prometheus")
    done = subprocess.run([promtool, "check", "rules", str(RULES / "alerts.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    promtool = require_tool("promtool", "prometheus")
    done = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=RULES,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
