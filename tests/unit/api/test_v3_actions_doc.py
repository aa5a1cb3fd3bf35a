"""docs/api-v3.md lists exactly the actions the server answers, each with exactly the
parameters its model takes (required ones in bold)."""

from __future__ import annotations

import re
from pathlib import Path

from cls_shipper.api.v3.actions import ACTIONS
from cls_shipper.api.v3.consumer_groups import CONSUMER_ACTIONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "api-v3.md"
_NAME = re.compile(r"(\*\*)?`([A-Za-z]+)`(\*\*)?")


def _table() -> dict[str, tuple[set[str], set[str]]]:
    """action -> (every parameter, the required ones), from the table under "## Actions"."""
    section = DOC.read_text().split("## Actions", 1)[1]
    rows: dict[str, tuple[set[str], set[str]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("action", "---"):
            if rows and not line.startswith("|"):
                break
            continue
        names = _NAME.findall(cells[1])
        assert cells[0] not in rows, f"{cells[0]} is listed twice"
        rows[cells[0]] = ({n for _, n, _ in names}, {n for bold, n, _ in names if bold})
    return rows


def test_the_actions_table_is_the_action_table() -> None:
    table = _table()
    every_action = {**ACTIONS, **CONSUMER_ACTIONS}
    assert list(table) and set(table) == set(every_action)
    for name, action in every_action.items():
        fields = action.model.model_fields
        every = {f.alias or n for n, f in fields.items()}
        required = {f.alias or n for n, f in fields.items() if f.is_required()}
        assert table[name] == (every, required), name
