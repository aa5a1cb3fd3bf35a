"""Label values of ids are bounded per process."""

from __future__ import annotations

from cls_shipper.metrics import OTHER, LabelIds


def test_ids_past_the_limit_share_one_label() -> None:
    ids = LabelIds(limit=3)
    assert [ids(f"id-{i}") for i in range(5)] == ["id-0", "id-1", "id-2", OTHER, OTHER]
    assert ids("id-1") == "id-1"  # the first ones keep their label
    assert ids.known("id-2") and not ids.known("id-3")
