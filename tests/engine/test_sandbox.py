"""The sandbox's size rules, as pure functions (how templates use them: test_templates)."""

import pytest

from engine.sandbox import binop_size, format_size, printf_size, size_of


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("abc", 3),  # characters
        ([1, 2, 3], 3),  # items
        (["ab", "cd"], 6),  # items and the characters of the strings in them
        ({"k": "vv"}, 4),  # a dict: its pairs, keys and values
        ((("a",),), 3),  # nested
        (12345, 0),  # numbers are measured in bits elsewhere
    ],
)
def test_size_of(value, size):
    assert size_of(value) == size


def test_size_of_stops_counting_soon_after_the_limit():
    # 1,000 references to one string of 1,000: counting stops past 100,000.
    assert 100_000 < size_of(["x" * 1000] * 1000) <= 101_000


@pytest.mark.parametrize(
    ("operator", "left", "right", "expected"),
    [
        ("*", "ab", 3, (str, 6)),  # repetition, either way round
        ("*", 3, [1, 2], (list, 6)),
        ("*", "ab", -2, (str, 0)),  # a negative count builds nothing
        ("*", 2**10, 2**20, (int, 32)),  # a product of integers: the sum of their bits
        ("*", 2.5, 4, None),  # floats cannot grow
        ("**", 2, 100, (int, 100)),
        ("**", 10, 3, (int, 10)),  # log2(10) * 3 = 9.97, rounded up
        ("**", 1, 10**9, None),  # 1, 0 and -1 stay small
        ("**", 2, -3, None),  # a float
        ("+", "ab", "cde", (str, 5)),
        ("+", [1], [2, 3], (list, 3)),
        ("+", 1, 2, None),
        ("%", "%5d", 1, (str, 3 + 5 + 0)),  # the template, the width, the value's size
        ("%", "%s-%s", ("ab", "c"), (str, 8)),
        ("/", 10**9, 3, None),  # not an operator that grows
    ],
)
def test_binop_size(operator, left, right, expected):
    assert binop_size(operator, left, right) == expected


@pytest.mark.parametrize(
    ("template", "values", "size"),
    [
        ("%d", 7, 2),
        ("%10s|%.3f", ("a", 1.5), 9 + 10 + 3 + 1),  # widths and precisions add up
        ("%*d", (50, 7), 3 + 50),  # a `*` width is taken from the values
        ("%.*f", (4, 2.0), 4 + 4),
        ("%(name)8s", {"name": "Ada"}, 9 + 8 + 8),  # a mapping: its size, keys too
        ("100%% sure %s", "x", 13 + 1),  # %% takes no value
    ],
)
def test_printf_size(template, values, size):
    assert printf_size(template, values) == size


@pytest.mark.parametrize(
    ("template", "args", "kwargs", "size"),
    [
        # the template, then the arguments as a list (their count and sizes), then widths
        ("{}", ("abc",), {}, 2 + 4),
        ("{:>20}", (1,), {}, 6 + 1 + 20),
        ("{:{}}", ("a", 30), {}, 5 + 3 + 30),  # a nested width comes from the arguments
        ("{name:,}", (), {"name": 1234}, 8 + 5),  # keyword arguments are measured with keys
        ("{", (), {}, None),  # does not parse: str.format will say so
    ],
)
def test_format_size(template, args, kwargs, size):
    assert format_size(template, args, kwargs) == size
