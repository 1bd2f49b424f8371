import pytest

from engine.consent import consent_refusal


@pytest.mark.parametrize(
    ("granted", "stopped", "reason"),
    [
        (True, False, None),  # granted, no STOP: sent
        (False, False, "no consent: sms_marketing"),  # never granted, or revoked
        (True, True, "the phone texted STOP: sms_marketing"),  # a STOP beats an older grant
        (False, True, "no consent: sms_marketing"),  # both: the missing grant is named
    ],
)
def test_a_message_needs_a_grant_and_no_stop(granted, stopped, reason):
    assert consent_refusal("sms_marketing", granted, stopped) == reason
