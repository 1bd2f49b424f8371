import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from engine.errors import TemplateError
from engine.templates import (
    SplitTemplate,
    evaluate,
    expression_error,
    render,
    split_template,
    syntax_error,
)

CUSTOMER = {"customer": {"first_name": "Ada", "orders": 3, "vip": True}, "event": {}}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # plain attribute access on the customer
        ("Hi {{ customer.first_name }}!", "Hi Ada!"),
        # filters
        ("{{ customer.first_name | upper }}", "ADA"),
        # numbers are rendered as text
        ("{{ customer.orders + 1 }} orders", "4 orders"),
        # a trailing newline is kept
        ("Hi\n", "Hi\n"),
        # HTML is not escaped: this is an SMS, not a web page
        ("{{ '<b>' }} & co", "<b> & co"),
    ],
)
def test_render(source, expected):
    assert render(source, CUSTOMER) == expected


@pytest.mark.parametrize(
    ("source", "fragment", "cause"),
    [
        # a missing top-level variable is an error, not an empty string
        ("Hi {{ name }}", "'name' is undefined", UndefinedError),
        # a missing attribute too
        ("Hi {{ customer.last_name }}", "has no attribute 'last_name'", UndefinedError),
        # even when only tested inside an expression
        ("{{ customer.last_name | upper }}", "has no attribute 'last_name'", UndefinedError),
        # an exception from customer data is wrapped too
        ("{{ customer.orders / 0 }}", "ZeroDivisionError", ZeroDivisionError),
    ],
)
def test_render_failures_are_template_errors(source, fragment, cause):
    with pytest.raises(TemplateError, match="template error") as caught:
        render(source, CUSTOMER)
    assert fragment in str(caught.value)
    assert isinstance(caught.value.__cause__, cause)


@pytest.mark.parametrize(
    "source",
    [
        # the classic escape from a template to Python's object graph
        "{{ ''.__class__.__mro__ }}",
        # reaching subclasses from a customer attribute
        "{{ customer.__class__.__subclasses__() }}",
        # a method's globals
        "{{ ''.format.__globals__ }}",
        # a dict's constructor
        "{{ customer.__init__ }}",
        # attributes of a global helper
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_blocks_internals(source):
    with pytest.raises(TemplateError, match="is unsafe") as caught:
        render(source, CUSTOMER)
    assert isinstance(caught.value.__cause__, SecurityError)


def test_sandbox_blocks_huge_ranges():
    with pytest.raises(TemplateError, match="OverflowError"):
        render("{{ range(10 ** 9) | list | length }}", CUSTOMER)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a comparison on an attribute
        ("customer.orders > 2", True),
        # boolean logic
        ("customer.vip and customer.orders > 5", False),
        # membership
        ("customer.first_name in ['Ada', 'Bob']", True),
    ],
)
def test_evaluate(source, expected):
    assert evaluate(source, CUSTOMER) is expected


def test_evaluate_missing_attribute_is_a_template_error():
    with pytest.raises(TemplateError, match="expression error in 'customer.country == 'US''"):
        evaluate("customer.country == 'US'", CUSTOMER)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        # valid
        ("Hi {{ customer.first_name }}", None),
        # an unclosed output names its line
        ("Hi\n{{ customer.first_name", "line 2: unexpected end of template"),
        # an unclosed block
        ("{% if customer.vip %}VIP", "line 1: Unexpected end of template"),
    ],
)
def test_syntax_error(source, error):
    found = syntax_error(source)
    if error is None:
        assert found is None
    else:
        assert found.startswith(error)


@pytest.mark.parametrize(
    ("source", "valid"),
    [
        # a comparison
        ("customer.country == 'US'", True),
        # a dangling operator
        ("customer.country ==", False),
        # a statement is not an expression
        ("{% if x %}", False),
    ],
)
def test_expression_error(source, valid):
    assert (expression_error(source) is None) is valid


@pytest.mark.parametrize(
    ("source", "literals", "expressions"),
    [
        # literal text only
        ("Reply STOP to opt out.", ("Reply STOP to opt out.",), ()),
        # the empty template
        ("", ("",), ()),
        # one expression between literals
        ("Hi {{ customer.first_name }}!", ("Hi ", "!"), ("customer.first_name",)),
        # expressions side by side leave empty literals between them
        ("{{ a }}{{ b }}", ("", "", ""), ("a", "b")),
        # a filter is part of the expression
        ("{{ name | upper }} x", ("", " x"), ("name | upper",)),
        # an expression containing `}}` inside a string
        ("{{ 'a}}' }}", ("", ""), ("'a}}'",)),
        # a conditional expression is still one output
        ("{{ 'VIP' if vip else 'friend' }}", ("", ""), ("'VIP' if vip else 'friend'",)),
        # a trailing newline stays in the last literal
        ("Hi {{ name }}\n", ("Hi ", "\n"), ("name",)),
        # a `$` not followed by `{` is harmless
        ("Pay $ {{ price }}", ("Pay $ ", ""), ("price",)),
    ],
)
def test_split_template(source, literals, expressions):
    assert split_template(source) == SplitTemplate(literals, expressions)


@pytest.mark.parametrize(
    "source",
    [
        # an if block: the text's shape depends on the customer
        "{% if vip %}VIP{% endif %} hello",
        # a for loop
        "{% for item in items %}{{ item }}{% endfor %}",
        # a set statement
        "{% set x = 1 %}{{ x }}",
        # a comment
        "Hi {# internal note #}{{ name }}",
        # whitespace control on the left
        "Hi {{- name }}",
        # whitespace control on the right
        "{{ name -}} !",
        # whitespace control on a block
        "{%- if vip %}x{% endif %}",
        # raw blocks
        "{% raw %}{{ name }}{% endraw %}",
        # a literal `${` would read as a Sinch placeholder
        "Cost: ${5} for {{ name }}",
        # a literal `${` at the end
        "{{ name }}${",
        # a syntax error
        "Hi {{ name",
    ],
)
def test_split_template_refuses(source):
    assert split_template(source) is None


SPLITTABLE = [
    "Reply STOP to opt out.",
    "Hi {{ customer.first_name }}!",
    "{{ customer.first_name }}{{ customer.orders }}",
    "Hi {{ customer.first_name | title }}, you have {{ customer.orders }} orders.\n",
    "line 1\n{{ customer.first_name }}\nline 3\n\n",
    "{{ 'VIP' if customer.vip else 'friend' }}: {{ customer.orders * 2 }} points",
]
CONTEXTS = [
    {"customer": {"first_name": "ada", "orders": 3, "vip": True}},
    {"customer": {"first_name": "Zoë O'Neil", "orders": 0, "vip": False}},
    # values that look like template syntax or placeholders are just text
    {"customer": {"first_name": "{{ x }} ${p1}", "orders": -1, "vip": None}},
    {"customer": {"first_name": "", "orders": 10**6, "vip": 1}},
]


@pytest.mark.parametrize("source", SPLITTABLE)
@pytest.mark.parametrize("context", CONTEXTS, ids=["plain", "unicode", "syntax-like", "empty"])
def test_split_join_equals_render(source, context):
    split = split_template(source)
    assert split is not None
    values = split.values(context)
    assert len(values) == len(split.expressions)
    assert split.join(values) == render(source, context)


def test_split_values_raise_for_missing_variables():
    split = split_template("Hi {{ customer.first_name }}")
    with pytest.raises(TemplateError, match="has no attribute 'first_name'"):
        split.values({"customer": {}})


@pytest.mark.parametrize(
    ("source", "names", "body"),
    [
        # one placeholder
        ("Hi {{ name }}!", ("p1",), "Hi ${p1}!"),
        # two, in order
        ("{{ a }} and {{ b }}.", ("p1", "p2"), "${p1} and ${p2}."),
        # literal text only: the body is the text
        ("Hello", (), "Hello"),
        # adjacent expressions, newline kept
        ("{{ a }}{{ b }}\n", ("x", "y"), "${x}${y}\n"),
    ],
)
def test_placeholder_body(source, names, body):
    assert split_template(source).placeholder_body(names) == body


def test_placeholder_body_needs_one_name_per_expression():
    with pytest.raises(ValueError):
        split_template("{{ a }} {{ b }}").placeholder_body(("p1",))
