import pytest

from engine.dispatch import (
    MAX_PARAMETER_LENGTH,
    MAX_RECIPIENTS,
    Outgoing,
    dispatch_key,
    plan_dispatches,
    recipient_text,
    without_sends,
)
from engine.templates import split_template

LITERAL = "Reply STOP to opt out."
GREETING = "Hi {{ customer.first_name }}!"  # one expression: splits
VIP = "{% if customer.vip %}VIP {% endif %}hello"  # a block: does not split


def phone(number):
    return f"+1212555{number:04d}"


def literal_messages(count):
    return [Outgoing(f"key-{i}", phone(i), LITERAL) for i in range(count)]


def greeting(key, number, name):
    return Outgoing(key, phone(number), f"Hi {name}!", (name,))


@pytest.mark.parametrize(
    ("count", "sizes"),
    [
        # one recipient
        (1, [1]),
        # exactly one full request
        (MAX_RECIPIENTS, [1000]),
        # one more starts a second request
        (MAX_RECIPIENTS + 1, [1000, 1]),
        # 2,500 messages: 1,000 + 1,000 + 500
        (2500, [1000, 1000, 500]),
    ],
)
def test_literal_text_groups_everyone(count, sizes):
    messages = literal_messages(count)
    plans = plan_dispatches(messages, split_template(LITERAL))
    assert [len(plan.recipients) for plan in plans] == sizes
    assert all(plan.body == LITERAL and plan.parameters is None for plan in plans)
    # every message is planned exactly once, in order
    assert [key for plan in plans for key in plan.send_keys] == [m.send_key for m in messages]
    assert [p for plan in plans for p in plan.recipients] == [m.phone for m in messages]


def test_no_messages_no_requests():
    assert plan_dispatches([], split_template(GREETING)) == []


def test_split_template_gives_one_request_with_parameters():
    messages = [greeting("a", 1, "Ada"), greeting("b", 2, "Bob"), greeting("c", 3, "Cy")]
    (plan,) = plan_dispatches(messages, split_template(GREETING))
    assert plan.body == "Hi ${p1}!"
    assert plan.recipients == (phone(1), phone(2), phone(3))
    assert plan.send_keys == ("a", "b", "c")
    assert plan.parameters == {"p1": {phone(1): "Ada", phone(2): "Bob", phone(3): "Cy"}}
    assert plan.payload("+12025550100") == {
        "sender": "+12025550100",
        "body": "Hi ${p1}!",
        "recipients": [phone(1), phone(2), phone(3)],
        "send_keys": ["a", "b", "c"],
        "parameters": {"p1": {phone(1): "Ada", phone(2): "Bob", phone(3): "Cy"}},
    }


def test_several_expressions_become_numbered_parameters():
    split = split_template("{{ customer.first_name }}, {{ customer.orders }} orders")
    messages = [
        Outgoing("a", phone(1), "Ada, 3 orders", ("Ada", "3")),
        Outgoing("b", phone(2), "Bob, 0 orders", ("Bob", "0")),
    ]
    (plan,) = plan_dispatches(messages, split)
    assert plan.body == "${p1}, ${p2} orders"
    assert plan.parameters == {
        "p1": {phone(1): "Ada", phone(2): "Bob"},
        "p2": {phone(1): "3", phone(2): "0"},
    }


def test_split_template_requests_hold_at_most_1000_recipients():
    messages = [greeting(f"k{i}", i, f"n{i}") for i in range(2500)]
    plans = plan_dispatches(messages, split_template(GREETING))
    assert [len(plan.recipients) for plan in plans] == [1000, 1000, 500]
    for plan in plans:
        assert set(plan.parameters["p1"]) == set(plan.recipients)


@pytest.mark.parametrize(
    ("length", "requests"),
    [
        # at the limit: still a parameter, one request for both
        (MAX_PARAMETER_LENGTH, 1),
        # one over: that message falls back to a request of its own text
        (MAX_PARAMETER_LENGTH + 1, 2),
    ],
)
def test_long_values_fall_back_to_grouping_by_text(length, requests):
    long_name = "x" * length
    messages = [greeting("a", 1, "Ada"), greeting("long", 2, long_name)]
    plans = plan_dispatches(messages, split_template(GREETING))
    assert len(plans) == requests
    by_key = {key: plan for plan in plans for key in plan.send_keys}
    assert by_key["a"].body == "Hi ${p1}!"
    assert by_key["a"].parameters["p1"][phone(1)] == "Ada"
    if requests == 1:
        assert by_key["long"].parameters["p1"][phone(2)] == long_name
    else:
        assert by_key["long"].body == f"Hi {long_name}!"
        assert by_key["long"].parameters is None
        assert by_key["long"].recipients == (phone(2),)


def test_messages_without_values_are_grouped_by_text():
    # a message planned without values (e.g. resumed) cannot ride as parameters
    messages = [greeting("a", 1, "Ada"), Outgoing("b", phone(2), "Hi Bob!")]
    plans = plan_dispatches(messages, split_template(GREETING))
    assert {(plan.send_keys, plan.body) for plan in plans} == {
        (("a",), "Hi ${p1}!"),
        (("b",), "Hi Bob!"),
    }


@pytest.mark.parametrize(
    ("template", "text", "values"),
    [
        # literal text: grouped by text
        pytest.param(LITERAL, LITERAL, None, id="literal"),
        # a split template: one parameter per phone
        pytest.param(GREETING, "Hi Ada!", ("Ada",), id="split"),
        # a template that does not split: grouped by text
        pytest.param(VIP, "hello", None, id="not-split"),
    ],
)
def test_a_shared_phone_never_appears_twice_in_one_request(template, text, values):
    # customers a and b share one phone; c has its own
    messages = [
        Outgoing("a", phone(1), text, values),
        Outgoing("b", phone(1), text, values),
        Outgoing("c", phone(2), text, values),
    ]
    plans = plan_dispatches(messages, split_template(template))
    assert [plan.send_keys for plan in plans] == [("a", "c"), ("b",)]
    for plan in plans:
        assert len(set(plan.recipients)) == len(plan.recipients)


def test_non_split_template_groups_identical_texts():
    messages = [
        Outgoing("a", phone(1), "VIP hello"),
        Outgoing("b", phone(2), "hello"),
        Outgoing("c", phone(3), "VIP hello"),
        Outgoing("d", phone(4), "hello"),
        Outgoing("e", phone(5), "hello"),
    ]
    plans = plan_dispatches(messages, split_template(VIP))
    assert split_template(VIP) is None
    assert {plan.body: plan.send_keys for plan in plans} == {
        "VIP hello": ("a", "c"),
        "hello": ("b", "d", "e"),
    }
    assert all(plan.parameters is None for plan in plans)


def test_plan_keys_are_dispatch_keys_of_their_send_keys():
    plans = plan_dispatches(literal_messages(1500), split_template(LITERAL))
    assert [plan.key for plan in plans] == [dispatch_key(plan.send_keys) for plan in plans]
    assert len({plan.key for plan in plans}) == len(plans)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        # the same keys in another order
        (["a", "b", "c"], ["c", "a", "b"], True),
        # one key more
        (["a", "b"], ["a", "b", "c"], False),
        # one key different
        (["a", "b"], ["a", "x"], False),
        # a single key
        (["a"], ["b"], False),
        # realistic send keys that differ only in the journey entry
        (["welcome/v1/hello/c1/e1"], ["welcome/v1/hello/c1/e2"], False),
    ],
)
def test_dispatch_key_is_deterministic(first, second, same):
    assert (dispatch_key(first) == dispatch_key(second)) is same
    assert dispatch_key(first) == dispatch_key(list(first))


@pytest.mark.parametrize(
    "count",
    [
        1,  # one send key
        1000,  # a full request of long keys
    ],
)
def test_dispatch_key_fits_a_client_reference(count):
    keys = [f"scenario-{'x' * 60}/0123456789ab/node/customer-{i}/entry-{i}" for i in range(count)]
    key = dispatch_key(keys)
    assert len(key) <= 128
    assert key.startswith("scn-")


@pytest.mark.parametrize(
    ("body", "parameters", "expected"),
    [
        ("Hi ${p1}!", {"p1": {"+1": "Ada"}}, "Hi Ada!"),  # one placeholder
        ("${p1} and ${p2}", {"p1": {"+1": "a"}, "p2": {"+1": "b"}}, "a and b"),  # two
        ("Plain text", None, "Plain text"),  # no parameters: the body as it is
        ("Cost: $5", {}, "Cost: $5"),  # a lone $ is text
    ],
)
def test_recipient_text_renders_placeholders_as_sinch_does(body, parameters, expected):
    assert recipient_text(body, parameters, "+1") == expected


def request(*keys, parameters=True, **extra):
    """A stored payload carrying the numbered keys (k1 to phone 1, ...)."""
    phones = [phone(int(key[1:])) for key in keys]
    return {
        "sender": "+12025550100",
        "body": "Hi ${p1}!" if parameters else LITERAL,
        "recipients": phones,
        "send_keys": list(keys),
        "parameters": {"p1": {p: f"Ann{p[-1]}" for p in phones}} if parameters else None,
        **extra,
    }


@pytest.mark.parametrize(
    ("payload", "withheld", "expected"),
    [
        # one of three goes, with its parameter values
        (request("k1", "k2", "k3"), {"k2"}, request("k1", "k3")),
        # nobody withheld: the payload as it was
        (request("k1", "k2"), set(), request("k1", "k2")),
        # everyone withheld: no recipients left
        (request("k1", "k2"), {"k1", "k2"}, request()),
        # a key not in this request changes nothing
        (request("k1"), {"k9"}, request("k1")),
        # no parameters (a literal text): recipients only
        (request("k1", "k2", parameters=False), {"k1"}, request("k2", parameters=False)),
        # what a channel adds (an MMS's subject, media) is kept
        (
            request("k1", "k2", parameters=False, subject="Sale", media_url="https://m/1.jpg"),
            {"k2"},
            request("k1", parameters=False, subject="Sale", media_url="https://m/1.jpg"),
        ),
    ],
)
def test_without_sends_takes_out_exactly_their_recipients(payload, withheld, expected):
    assert without_sends(payload, withheld) == expected
