"""Tags of logsets and topics: one rule for API 3.0 and the console, enforced where they
are stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.service import Context, logsets, topics
from cls_shipper.service.tags import MAX_TAGS, check_tags
from cls_shipper.settings import Settings
from cls_shipper.store import open_database


def tag(key: str, value: str = "v") -> dict[str, str]:
    return {"Key": key, "Value": value}


@pytest.mark.parametrize(("tags", "message"), [
    ([tag(f"k{i}") for i in range(MAX_TAGS + 1)], "Tags: at most 10 tags"),
    ([tag("")], "Tags: a Key is 1 to 127 characters"),
    ([tag("k" * 128)], "Tags: a Key is 1 to 127 characters"),
    ([tag("k", "v" * 256)], "Tags: a Value is at most 255 characters (tag 'k')"),
    ([tag("team"), tag("team", "other")], "Tags: the Key 'team' is given twice"),
    ([{"Key": "k"}], "Tags: each tag is a Key and a Value, both strings"),
    ("team=web", "Tags must be a list of {Key, Value}"),
])
def test_refused_tags_say_why(tags: object, message: str) -> None:
    with pytest.raises(ServiceError) as refused:
        check_tags(tags)
    assert refused.value.message == message


def test_tags_are_checked_wherever_they_are_stored(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    ctx = Context(open_database(settings.db_url), settings)
    twice = [tag("team"), tag("team")]
    with pytest.raises(ServiceError):
        logsets.create(ctx, "a", tags=twice)
    logset = logsets.create(ctx, "a", tags=[tag("team", "web"), tag("env", "")])
    assert logsets.get(ctx, logset).tags == [tag("team", "web"), tag("env", "")]
    with pytest.raises(ServiceError) as refused:
        logsets.modify(ctx, logset, tags=[tag(str(i)) for i in range(11)])
    assert refused.value.kind is Kinds.LIMIT_EXCEEDED
    with pytest.raises(ServiceError):
        topics.create(ctx, logset, "t", tags=twice)
    topic = topics.create(ctx, logset, "t", tags=[tag("a")])
    with pytest.raises(ServiceError):
        topics.modify(ctx, topic, tags=[tag("")])
    topics.modify(ctx, topic, tags=[])
    assert topics.get(ctx, topic).tags == []
