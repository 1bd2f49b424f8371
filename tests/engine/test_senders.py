"""Which countries each sender type reaches (the seeds' table)."""

from __future__ import annotations

import pytest

from engine.senders import sender_refusal


@pytest.mark.parametrize(
    ("sender_type", "region", "allowed"),
    [
        ("short_code", "US", True),
        ("short_code", "CA", False),  # short codes are US only
        ("toll_free", "US", True),
        ("toll_free", "CA", True),
        ("toll_free", "AU", False),
        ("10dlc", "US", True),
        ("10dlc", "CA", True),
        ("10dlc", "GB", False),
        ("long_number", "CA", True),
        ("long_number", "AU", True),
        ("long_number", "US", False),  # long numbers: Canada and Australia
        ("10dlc", None, False),  # a number of no known country
    ],
)
def test_sender_types_reach_their_countries(sender_type, region, allowed):
    refusal = sender_refusal("main", sender_type, region)
    assert (refusal is None) == allowed
    if not allowed:
        assert "sender 'main'" in refusal and (region or "no known country") in refusal
