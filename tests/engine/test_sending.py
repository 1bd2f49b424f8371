"""The send protocol's pure rules, table-driven, without a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.journey import JourneyItem
from engine.sending import Refused, outcome_reason, over_frequency_cap, send_key
from engine.settings import FrequencyPolicy

TWO_A_DAY = FrequencyPolicy(max_messages=2, window=timedelta(days=1))


@pytest.mark.parametrize(
    ("customer_ids", "sent", "refused"),
    [
        (["a", "b"], {}, [False, False]),  # nothing sent yet
        (["a"], {"a": 2}, [True]),  # at the cap
        (["a"], {"a": 1}, [False]),  # one below it
        (["a", "a", "a"], {"a": 1}, [False, True, True]),  # two entries in one batch count
        (["a", "b", "a"], {"b": 5}, [False, True, False]),  # per customer
    ],
)
def test_frequency_cap_counts_what_the_batch_itself_sends(customer_ids, sent, refused):
    assert over_frequency_cap(customer_ids, sent, TWO_A_DAY) == refused


def test_a_cap_of_zero_refuses_everyone():
    policy = FrequencyPolicy(max_messages=0, window=timedelta(hours=1))
    assert over_frequency_cap(["a", "b"], {}, policy) == [True, True]


@pytest.mark.parametrize(
    ("state", "error", "reason", "counted_as"),
    [
        ("enqueued", None, None, "sent"),
        ("suppressed", None, "no consent: sms", "suppressed: no consent: sms"),
        ("suppressed", None, "frequency policy: daily", "suppressed: frequency policy: daily"),
        ("enqueue_failed", "invalid_phone", None, "enqueue_failed: invalid_phone"),
        ("enqueue_failed", "40003", None, "enqueue_failed: 40003"),  # a provider's code
    ],
)
def test_outcomes_are_counted_by_reason(state, error, reason, counted_as):
    assert outcome_reason(state, error, reason) == counted_as


@pytest.mark.parametrize(
    ("error", "fails_journey"),
    [
        ("template_error", True),
        ("text_too_long", True),
        ("too_many_parts", True),
        ("invalid_phone", False),
        ("sender_not_allowed", False),
        ("mms_not_available", False),
    ],
)
def test_only_a_message_that_cannot_be_composed_fails_its_journey(error, fails_journey):
    assert Refused(error, "why").fails_journey is fails_journey


def test_send_keys_are_unique_per_version_node_customer_and_entry():
    item = JourneyItem(1, "c1", "launch", "v2", {}, {})
    assert send_key("welcome", "hello", item) == "welcome/v2/hello/c1/launch"
