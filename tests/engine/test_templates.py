import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from engine.errors import TemplateError
from engine.sandbox import TooBig
from engine.templates import (
    SplitTemplate,
    evaluate,
    expression_error,
    render,
    render_many,
    split_template,
    syntax_error,
    template_error,
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
        # lists and dicts cannot grow in place, out of sight of the size checks
        "{{ customer.tags.append(3) }}",
        "{{ customer.update(vip=False) }}",
    ],
)
def test_sandbox_blocks_internals(source):
    with pytest.raises(TemplateError, match="is unsafe") as caught:
        render(source, {**CUSTOMER, "customer": {**CUSTOMER["customer"], "tags": [1]}})
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


KNOWN = "only customer, event, cycler, dict, joiner, namespace, range exist"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        # what a condition reads
        ("customer.vip and event.total > 100", None),
        # a global
        ("range(3) | list | length == 3", None),
        # a misspelt variable
        ("custmer.vip", f"unknown name 'custmer': {KNOWN}"),
        # two of them, sorted
        ("vip or orders", f"unknown name 'orders', 'vip': {KNOWN}"),
        # lipsum is taken out of the globals: its size is its argument
        ("lipsum(3)", f"unknown name 'lipsum': {KNOWN}"),
        # the audience: refused before anything allocates it
        ("'a' * 10 ** 9", "'*' would build a str of 1,000,000,000 characters"),
        ("[1] * 10 ** 9", "'*' would build a list of 1,000,000,000 elements"),
        # a huge constant inside a larger expression
        ("customer.name == 'a' * 10 ** 9", "'*' would build a str of 1,000,000,000"),
        # a string method on a constant
        ("'a'.ljust(10 ** 6) == customer.name", "'ljust' would build a str of 1,000,000"),
        # a division by zero fails with the customer's data at run time, not here
        ("customer.orders > 1 / 0", None),
        # 70 nested parentheses overflow Jinja's parser: a message, not a traceback
        ("(" * 70 + "customer.vip" + ")" * 70, "the expression nests too deeply to be read"),
    ],
)
def test_expression_error_names_what_is_wrong(source, error):
    found = expression_error(source)
    if error is None:
        assert found is None
    else:
        assert found is not None and found.startswith(error), found


@pytest.mark.parametrize(
    ("source", "error"),
    [
        # names set inside the template, loop variables and globals are known
        ("{% set n = 2 %}{% for i in range(n) %}{{ loop.index }}{{ i }}{% endfor %}", None),
        ("{% set ns = namespace(total=0) %}{{ ns.total }}", None),
        # the misspelt customer
        ("Hi {{ custmer.first_name }}", f"unknown name 'custmer': {KNOWN}"),
        # syntax errors name the line
        ("Hi\n{{ customer.first_name", "template syntax error at line 2: unexpected end"),
        # a filter that does not exist fails at compilation
        ("{{ customer.first_name | shout }}", "template syntax error at line 1: No filter"),
        # constants over the limits, by operator, filter, method and formatting
        ("{{ 'a' * 10 ** 9 }}", "'*' would build a str of 1,000,000,000 characters"),
        ("{{ 2 ** 200000 }}", "'**' would build an integer of 200,000 bits"),
        ("{{ 'x' | center(10 ** 6) }}", "filter 'center' would build a str of 1,000,000"),
        ("{{ 'x'.zfill(10 ** 6) }}", "'zfill' would build a str of 1,000,000"),
        ("{{ '%1000000d' % 1 }}", "'%' would build a str of 1,000,00"),
        ("{{ '{:>1000000}'.format(1) }}", "'format' would build a str of 1,000,0"),
        # Jinja nesting too deep for its parser
        ("{% if x %}" * 500 + "{% endif %}" * 500, "the template nests too deeply to be read"),
    ],
)
def test_template_error_names_what_is_wrong(source, error):
    found = template_error(source)
    if error is None:
        assert found is None
    else:
        assert found is not None and found.startswith(error), found


BIG = {"customer": {"first_name": "Ada", "orders": 3, "tags": [1, 2]}, "event": {}}


@pytest.mark.parametrize(
    ("source", "error"),
    [
        # the run-time repetition, of a customer's value
        ("{{ customer.first_name * 10 ** 9 }}", "'*' would build a str of 3,000,000,000"),
        ("{{ customer.tags * 10 ** 9 }}", "'*' would build a list of 2,000,000,000"),
        # just over the limit
        ("{{ customer.first_name * 33334 }}", "'*' would build a str of 100,002 characters"),
        # concatenation
        ("{{ customer.first_name * 20000 + customer.first_name * 20000 }}", "'+' would build"),
        # a list printed prints every string in it
        ("{{ [customer.first_name * 1000] * 50 }}", "'*' would build a list of 150,050"),
        # powers of a customer's number
        ("{{ customer.orders ** 100000 }}", "'**' would build an integer of 158,497 bits"),
        # filters and methods whose result grows with an argument or a product
        ("{{ customer.first_name | center(10 ** 9) }}", "filter 'center' would build a str"),
        ("{{ customer.first_name | indent(10 ** 6) }}", "filter 'indent' would build a str"),
        ("{{ customer.tags | batch(10 ** 9, 0) | list }}", "filter 'batch' would build a list"),
        ("{{ customer.first_name.rjust(10 ** 9) }}", "'rjust' would build a str"),
        (
            "{{ (customer.first_name * 1000).replace('A', 'B' * 1000) }}",
            "'replace' would build a str of 1,002,000",
        ),
        ("{{ ('x' * 1000) | join('y' * 1000) }}", "filter 'join' would build a str"),
        ("{{ '%*d' % (10 ** 9, customer.orders) }}", "'%' would build a str of 1,000,00"),
        # `~` doubling in a loop
        (
            "{% set ns = namespace(s=customer.first_name) %}"
            "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "'~' would build a str of 196,608 characters",
        ),
        # adding to a list in a loop
        (
            "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
            "{% set ns.l = ns.l + [customer.first_name * 1000] %}{% endfor %}",
            "'+' would build a list of 102,034 elements",
        ),
        # the output, and a {% set %} block's capture
        (
            "{% for i in range(50000) %}{{ customer.first_name }}{% endfor %}",
            "the output would build a str of 100,",
        ),
        (
            "{% set x %}{% for i in range(50001) %}ab{% endfor %}{% endset %}",
            "the output would build a str of 100,002 characters",
        ),
    ],
)
def test_what_a_template_builds_is_bounded_at_run_time(source, error):
    with pytest.raises(TemplateError, match="template error") as caught:
        render(source, BIG)
    assert error in str(caught.value)
    assert isinstance(caught.value.__cause__, TooBig)


def test_an_expression_building_too_much_is_a_template_error():
    with pytest.raises(TemplateError, match="'\\*' would build a str") as caught:
        evaluate("customer.first_name * 10 ** 9 == ''", BIG)
    assert isinstance(caught.value.__cause__, TooBig)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # numbers of any reasonable size still multiply, format and print
        ("{{ customer.orders * 10 ** 9 }}", "3000000000"),
        ("{{ '%d points' % 250000 }}", "250000 points"),
        ("{{ '{:,}'.format(1234567) }}", "1,234,567"),
        ("{{ '%s and %s' | format('a', 'b') }}", "a and b"),
        ("{{ 2 ** 0.5 > 1 }}", "True"),
        # repetition and concatenation within the limits
        ("{{ customer.first_name * 3 }}", "AdaAdaAda"),
        ("{{ customer.tags + [3] }}", "[1, 2, 3]"),
        ("{{ ('-' * 100000) | length }}", "100000"),
        ("{{ customer.first_name | center(9) }}", "   Ada   "),
        ("{{ customer.tags | join(', ') }}", "1, 2"),
        ("{{ 'a-b'.replace('-', ' and ') }}", "a and b"),
    ],
)
def test_values_within_the_limits_are_built(source, expected):
    assert render(source, BIG) == expected


@pytest.mark.parametrize(
    ("source", "error"),
    [
        # a value too big
        ("{{ customer.first_name * customer.n }}", "'*' would build a str of 150,000"),
        # a loop printing too much: one customer's output, not the batch's, is bounded
        (
            "{% for i in range(customer.n) %}{{ customer.first_name }}{% endfor %}",
            "the output would build a str of 1",
        ),
    ],
)
def test_a_customer_whose_text_is_too_big_fails_alone_in_a_batch(source, error):
    small = {"customer": {"first_name": "Ada", "n": 2}, "event": {}}
    large = {"customer": {"first_name": "Ada", "n": 50000}, "event": {}}
    results = render_many(source, [small, large, small])
    assert results[0] == results[2] == "AdaAda"
    assert isinstance(results[1], TemplateError)
    assert error in str(results[1])


def test_a_batch_longer_than_the_limit_renders_when_each_text_is_within_it():
    contexts = [{"customer": {"first_name": "x" * 60000}, "event": {}}] * 3
    assert render_many("{{ customer.first_name }}!", contexts) == ["x" * 60000 + "!"] * 3


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
