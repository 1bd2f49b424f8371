"""Which countries each kind of predefined sender reaches.

From the seeds: a short code sends in the US; a toll-free or 10DLC number in the US and
Canada; a long number in Canada and Australia. A message whose recipient is elsewhere is
not sent and is tracked as enqueue_failed with the reason.
"""

from __future__ import annotations

SENDER_REGIONS: dict[str, frozenset[str]] = {
    "short_code": frozenset({"US"}),
    "toll_free": frozenset({"US", "CA"}),
    "10dlc": frozenset({"US", "CA"}),
    "long_number": frozenset({"CA", "AU"}),
}
SENDER_LABELS = {
    "short_code": "a short code",
    "toll_free": "a toll-free number",
    "10dlc": "a 10DLC number",
    "long_number": "a long number",
}


def sender_refusal(sender_name: str, sender_type: str, region: str | None) -> str | None:
    """None when a sender of this type reaches `region`, else the reason it does not."""
    allowed = SENDER_REGIONS[sender_type]
    if region in allowed:
        return None
    where = f"{region} numbers" if region else "numbers of no known country"
    return (
        f"sender '{sender_name}' is {SENDER_LABELS[sender_type]}, which reaches "
        f"{' and '.join(sorted(allowed))} only, not {where}"
    )
