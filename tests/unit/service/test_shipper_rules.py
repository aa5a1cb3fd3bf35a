"""Whole-value checks of shipper fields refuse what `re.match` with `$` let through."""

from __future__ import annotations

import pytest

from cls_shipper.errors import ServiceError
from cls_shipper.service.shipper_rules import check_bucket, check_prefix


@pytest.mark.parametrize("bucket", ["abc\n", "test-1250000001\n", "\nabc"])
def test_bucket_with_a_newline_is_refused(bucket: str) -> None:
    with pytest.raises(ServiceError, match="bucket must be"):
        check_bucket(bucket)


@pytest.mark.parametrize("prefix", ["a/\n", "\n", "a\nb"])
def test_prefix_with_a_newline_is_refused(prefix: str) -> None:
    with pytest.raises(ServiceError, match="prefix may hold"):
        check_prefix(prefix)


def test_valid_values_still_pass() -> None:
    assert check_bucket("test-1250000001") == "test-1250000001"
    assert check_prefix("a/b_c-") == "a/b_c-"
    assert check_prefix("") == ""
