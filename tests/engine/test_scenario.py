from datetime import datetime
from pathlib import Path
from unittest.mock import ANY

import pytest

from engine.errors import Problem, ScenarioError
from engine.scenario import load_scenario, parse_scenario
from engine.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "scenarist.yaml")
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))

TRIGGER = "{id: start, type: trigger, kind: launch}"
HELLO = '{id: hello, type: sms, text: "Hi"}'
KNOWN_TYPES = "known types: condition, mms, silent_hours, sms, trigger, wait"


def scenario(
    nodes=(TRIGGER, HELLO),
    edges=("{from: start, to: hello}",),
    settings="{consent_category: sms_marketing}",
    extra=(),
):
    """A scenario file whose lines are easy to count.

    Line 1 `id`, 2 `name`, 3 `settings`, 4 `nodes:`, then one node per line from line 5,
    `edges:`, one edge per line, and finally the `extra` top-level lines.
    """
    lines = ["id: t", "name: T", f"settings: {settings}", "nodes:"]
    lines += [f"  - {node}" for node in nodes]
    lines += ["edges:"] + [f"  - {edge}" for edge in edges]
    lines += list(extra)
    return "\n".join(lines) + "\n"


def problems_of(text, settings=SETTINGS):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml", settings)
    return caught.value.problems


def has_problem(problems, node, field, fragment, line):
    return any(
        p.file == "s.yaml"
        and p.node == node
        and p.field == field
        and fragment in p.message
        and (line is ANY or p.line == line)
        for p in problems
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_shipped_scenarios_validate(path):
    scenario = load_scenario(path, SETTINGS)
    assert scenario.id == path.stem
    assert scenario.order[0] == scenario.trigger.id
    assert set(scenario.order) == set(scenario.nodes)


def test_shipped_scenarios_are_found():
    # a glob that found nothing would make the test above vacuous
    assert {path.stem for path in SHIPPED} >= {"welcome", "abandoned_cart", "weekly_digest"}


@pytest.mark.parametrize(
    ("text", "node", "field", "fragment", "line"),
    [
        pytest.param(
            "id: t\nname: T\n  settings: x\n",
            None,
            None,
            "not valid YAML: mapping values are not allowed here",
            3,
            id="yaml-syntax-error",
        ),
        pytest.param(
            "id: t\nnodes: []\n", None, "name", "Field required", None, id="missing-top-level-field"
        ),
        pytest.param(
            "- a list\n",
            None,
            None,
            "the top level must be a mapping",
            1,
            id="top-level-not-mapping",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: fax, text: "Hi"}']),
            "hello",
            "type",
            f"unknown node type 'fax'; {KNOWN_TYPES}",
            6,
            id="unknown-node-type",
        ),
        pytest.param(
            scenario([TRIGGER, HELLO, '{id: hello, type: sms, text: "Again"}']),
            "hello",
            "id",
            "duplicate node id",
            7,
            id="duplicate-node-id",
        ),
        pytest.param(
            scenario(
                [TRIGGER, HELLO, '{id: bye, type: sms, text: "Bye"}'],
                ["{from: start, to: hello}", "{from: hello, to: bye}", "{from: bye, to: hello}"],
            ),
            "hello",
            None,
            "the graph is not acyclic: a cycle runs through hello, bye",
            6,
            id="cycle",
        ),
        pytest.param(
            scenario(["{id: start, type: wait, duration: 1h}", HELLO]),
            None,
            None,
            "a scenario needs exactly one trigger: no trigger node",
            None,
            id="no-trigger",
        ),
        pytest.param(
            scenario([TRIGGER, "{id: hello, type: trigger, kind: launch}"]),
            None,
            None,
            "several triggers: start, hello",
            None,
            id="two-triggers",
        ),
        pytest.param(
            scenario([TRIGGER, HELLO, '{id: lost, type: sms, text: "x"}']),
            "lost",
            None,
            "unreachable from the trigger",
            7,
            id="unreachable-node",
        ),
        pytest.param(
            scenario(edges=["{from: start, to: hello}", "{from: hello, to: ghost}"]),
            "ghost",
            "edges.1",
            "edge to unknown node 'ghost'",
            9,
            id="edge-to-unknown-node",
        ),
        pytest.param(
            scenario(edges=["{from: phantom, to: hello}"]),
            "phantom",
            "edges.0",
            "edge from unknown node 'phantom'",
            8,
            id="edge-from-unknown-node",
        ),
        pytest.param(
            scenario(edges=["{from: start, to: hello, when: true}"]),
            "start",
            "edges.0.when",
            "branch 'true' is not one of next",
            8,
            id="branch-the-node-does-not-have",
        ),
        pytest.param(
            scenario(
                [TRIGGER, HELLO, '{id: other, type: sms, text: "x"}'],
                ["{from: start, to: hello}", "{from: start, to: other}"],
            ),
            "start",
            "edges.1",
            "branch 'next' already has an edge",
            10,
            id="branch-with-two-edges",
        ),
        pytest.param(
            # `stray` is not on a cycle: only the edge into the trigger is wrong
            scenario(
                [TRIGGER, HELLO, '{id: stray, type: sms, text: "x"}'],
                ["{from: start, to: hello}", "{from: stray, to: start}"],
            ),
            "start",
            None,
            "the trigger cannot have incoming edges",
            ANY,  # the problem carries no line, though the edge has one
            id="edge-into-trigger",
        ),
        pytest.param(
            scenario(["{id: start, type: trigger, kind: schedule, cron: '61 * * * *'}", HELLO]),
            "start",
            "cron",
            "cron '61 * * * *' is invalid",
            5,
            id="bad-cron",
        ),
        pytest.param(
            scenario(["{id: start, type: trigger, kind: launch, timezone: Mars/Base}", HELLO]),
            "start",
            "timezone",
            "unknown time zone 'Mars/Base'",
            5,
            id="bad-trigger-time-zone",
        ),
        pytest.param(
            scenario(
                [
                    "{id: start, type: trigger, kind: schedule, cron: '0 9 * * *',"
                    " at: 2026-05-01T09:00:00}",
                    HELLO,
                ]
            ),
            "start",
            None,
            "a schedule trigger needs exactly one of `at` or `cron`",
            5,
            id="schedule-with-at-and-cron",
        ),
        pytest.param(
            scenario(["{id: start, type: trigger, kind: schedule}", HELLO]),
            "start",
            None,
            "a schedule trigger needs exactly one of `at` or `cron`",
            5,
            id="schedule-with-neither-at-nor-cron",
        ),
        pytest.param(
            scenario(["{id: start, type: trigger, kind: event}", HELLO]),
            "start",
            None,
            "an event trigger needs `event`",
            5,
            id="event-trigger-without-event",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: sms, text: "Hi {{ name"}']),
            "hello",
            "text",
            "template syntax error at line 1: unexpected end of template",
            6,
            id="jinja-syntax-error",
        ),
        pytest.param(
            scenario([TRIGGER, "{id: hello, type: sms, text: " + "x" * 1601 + "}"]),
            "hello",
            "text",
            "text has 1601 characters; the maximum is 1600",
            6,
            id="text-over-1600-characters",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: sms, text: "Hi", sender: nope}']),
            "hello",
            "sender",
            "sender 'nope' is not a predefined sender",
            6,
            id="node-sender-not-predefined",
        ),
        pytest.param(
            scenario(settings="{consent_category: sms_marketing, sender: nope}"),
            None,
            "sender",
            "sender 'nope' is not a predefined sender",
            3,
            id="scenario-sender-not-predefined",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: sms, text: "Hi", integration: nope}']),
            "hello",
            "integration",
            "integration 'nope' is not configured",
            6,
            id="node-integration-not-configured",
        ),
        pytest.param(
            scenario(settings="{consent_category: carrier_pigeon}"),
            None,
            "consent_category",
            "consent category 'carrier_pigeon' is not defined in the project settings "
            "(sms_marketing, transactional)",
            3,
            id="unknown-consent-category",
        ),
        pytest.param(
            scenario(settings="{consent_category: sms_marketing, frequency_policy: hourly}"),
            None,
            "frequency_policy",
            "frequency policy 'hourly' is not defined in the project settings",
            3,
            id="unknown-frequency-policy",
        ),
        pytest.param(
            # the line is checked separately: see test_audience_problem_points_at_its_line
            scenario(extra=['audience: "customer.country =="']),
            None,
            "audience",
            "audience is not a valid expression",
            ANY,
            id="invalid-audience",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: condition, expression: "customer.vip and"}']),
            "hello",
            "expression",
            "not a valid expression",
            6,
            id="invalid-condition-expression",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: wait, duration: 1h, until: "09:00"}']),
            "hello",
            None,
            "a wait needs exactly one of `duration` or `until`",
            6,
            id="wait-with-duration-and-until",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: sms, text: "Hi", colour: red}']),
            "hello",
            "colour",
            "Extra inputs are not permitted",
            6,
            id="unknown-field-on-node",
        ),
        # -- what a scenario's templates and expressions may use and build
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: sms, text: "Hi {{ custmer.first_name }}"}']),
            "hello",
            "text",
            "unknown name 'custmer': only customer, event, cycler, dict, joiner, namespace, "
            "range exist",
            6,
            id="unknown-name-in-template",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: condition, expression: "vip"}']),
            "hello",
            "expression",
            "not a valid expression: unknown name 'vip'",
            6,
            id="unknown-name-in-condition",
        ),
        pytest.param(
            scenario(extra=["audience: \"'a' * 10 ** 9\""]),
            None,
            "audience",
            "'*' would build a str of 1,000,000,000 characters; the limit is 100,000",
            9,
            id="huge-string-in-audience",
        ),
        pytest.param(
            scenario([TRIGGER, '{id: hello, type: sms, text: "{{ [1] * 10 ** 9 }}"}']),
            "hello",
            "text",
            "'*' would build a list of 1,000,000,000 elements; the limit is 100,000",
            6,
            id="huge-list-in-template",
        ),
        pytest.param(
            scenario(
                [TRIGGER, "{id: hello, type: condition, expression: 'customer.n > 2 ** 200000'}"]
            ),
            "hello",
            "expression",
            "'**' would build an integer of 200,000 bits; the limit is 100,000",
            6,
            id="huge-power-in-condition",
        ),
        pytest.param(
            scenario(
                [
                    TRIGGER,
                    "{id: hello, type: sms, text: \"{{ 'x' | center(10 ** 6 - 1) }}\"}",
                ]
            ),
            "hello",
            "text",
            "filter 'center' would build a str of 999,999 characters",
            6,
            id="huge-filter-result-in-template",
        ),
        pytest.param(
            scenario(
                [
                    TRIGGER,
                    "{id: hello, type: condition, expression: '"
                    + "(" * 70
                    + "customer.vip"
                    + ")" * 70
                    + "'}",
                ]
            ),
            "hello",
            "expression",
            "not a valid expression: the expression nests too deeply to be read",
            6,
            id="condition-nested-70-deep",
        ),
        # -- what a node must have
        pytest.param(
            scenario([TRIGGER, "{id: '', type: sms, text: Hi}"]),
            "#2",
            "id",
            "must not be empty or only spaces",
            6,
            id="empty-node-id",
        ),
        pytest.param(
            scenario([TRIGGER, "{id: hello, type: sms, text: '   '}"]),
            "hello",
            "text",
            "must not be empty or only spaces",
            6,
            id="blank-sms-text",
        ),
        pytest.param(
            scenario(
                [
                    TRIGGER,
                    "{id: hello, type: mms, text: ' ', fallback: disabled,"
                    " media_url: 'https://cdn.example.com/a.jpg'}",
                ]
            ),
            "hello",
            "text",
            "text is required and not blank",
            6,
            id="blank-mms-text",
        ),
        pytest.param(
            scenario(
                [TRIGGER, "{id: hello, type: mms, text: Hi, fallback: {text: ' '}}"],
            ),
            "hello",
            "fallback.FallbackSms.text",  # pydantic names the member of `text | disabled`
            "must not be empty or only spaces",
            6,
            id="blank-fallback-text",
        ),
        # -- YAML that loses or hides something
        pytest.param(
            scenario([TRIGGER, "{id: hello, type: sms, text: Hi, text: Bye}"]),
            "hello",
            "text",
            "duplicate key 'text' (first on line 6): YAML would keep only the last",
            6,
            id="duplicate-key-in-a-node",
        ),
        pytest.param(
            scenario(settings="{consent_category: sms_marketing, consent_category: other}"),
            None,
            "settings.consent_category",
            "duplicate key 'consent_category' (first on line 3)",
            3,
            id="duplicate-key-in-settings",
        ),
        pytest.param(
            "id: t\nname: T\nid: u\n",
            None,
            "id",
            "duplicate key 'id' (first on line 1)",
            3,
            id="duplicate-top-level-key",
        ),
        pytest.param(
            scenario(extra=["tracking: " + "[" * 500 + "]" * 500]),
            None,
            None,
            "the YAML nests too deeply to be read",
            None,
            id="yaml-nested-500-deep",
        ),
    ],
)
def test_broken_scenario_is_reported(text, node, field, fragment, line):
    problems = problems_of(text)
    assert has_problem(problems, node, field, fragment, line), problems


def test_unknown_node_type_message_lists_every_registered_type():
    from nodes import NODE_TYPES

    (problem,) = [
        p for p in problems_of(scenario([TRIGGER, "{id: hello, type: fax}"])) if p.field == "type"
    ]
    assert problem.message.endswith("known types: " + ", ".join(sorted(NODE_TYPES)))


def test_audience_problem_points_at_its_line():
    text = scenario(extra=['audience: "customer.country =="'])  # line 9
    assert has_problem(problems_of(text), None, "audience", "not a valid expression", 9)


@pytest.mark.parametrize(
    "bad_node",
    [
        pytest.param(
            "{id: start, type: trigger, kind: launch, timezone: Mars/Base}", id="bad-time-zone"
        ),
        pytest.param("{id: start, type: trigger, kind: launch, colour: red}", id="extra-field"),
    ],
)
def test_invalid_node_is_not_also_reported_as_unknown(bad_node):
    problems = problems_of(scenario([bad_node, HELLO]))
    assert not [p for p in problems if "unknown node" in p.message], problems


def test_several_problems_are_reported_at_once():
    text = scenario(
        [
            TRIGGER,
            '{id: hello, type: sms, text: "Hi {{ name", sender: nope}',
            "{id: odd, type: fax}",
        ],
        ["{from: start, to: hello}", "{from: hello, to: ghost}"],
        settings="{consent_category: carrier_pigeon}",
        extra=['audience: "x =="'],
    )
    problems = problems_of(text)
    found = {(p.node, p.field) for p in problems}
    assert found >= {
        ("hello", "text"),  # template syntax error
        ("hello", "sender"),  # sender not predefined
        ("odd", "type"),  # unknown node type
        ("ghost", "edges.1"),  # dangling edge
        (None, "consent_category"),  # unknown consent category
        (None, "audience"),  # invalid audience
    }
    # the exception's message lists every problem, one per line
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml", SETTINGS)
    assert str(caught.value).splitlines() == [str(p) for p in problems]


def test_welcome_scenario_compiles_to_its_graph():
    welcome = load_scenario(ROOT / "scenarios" / "welcome.yaml", SETTINGS)
    assert welcome.order == (
        "start",
        "is_vip",
        "vip_welcome",
        "welcome",
        "one_day",
        "ordered",
        "nudge",
    )
    assert welcome.routes == {
        ("start", "next"): "is_vip",
        ("is_vip", "true"): "vip_welcome",
        ("is_vip", "false"): "welcome",
        ("welcome", "next"): "one_day",
        ("one_day", "next"): "ordered",
        ("ordered", "false"): "nudge",
    }
    assert welcome.action_ids == {"vip_welcome": 1, "welcome": 2, "nudge": 3}
    assert welcome.next_node("ordered", "true") is None


# Nodes listed out of graph order: the trigger last, `second` before `first`.
SHUFFLED = scenario(
    [
        '{id: second, type: sms, text: "2"}',
        "{id: pause, type: wait, duration: 1h}",
        '{id: first, type: sms, text: "1"}',
        TRIGGER,
    ],
    [
        "{from: pause, to: second}",
        "{from: first, to: pause}",
        "{from: start, to: first}",
    ],
)


def test_order_is_topological_and_starts_at_the_trigger():
    compiled = parse_scenario(SHUFFLED, "s.yaml", SETTINGS)
    assert compiled.order == ("start", "first", "pause", "second")
    assert compiled.trigger.id == "start"
    for (source, _branch), target in compiled.routes.items():
        assert compiled.order.index(source) < compiled.order.index(target)


def test_action_ids_follow_file_order_and_skip_non_messages():
    compiled = parse_scenario(SHUFFLED, "s.yaml", SETTINGS)
    # `second` comes first in the file; the wait and the trigger send nothing
    assert compiled.action_ids == {"second": 1, "first": 2}


def test_routes_map_node_and_branch_to_the_next_node():
    compiled = parse_scenario(SHUFFLED, "s.yaml", SETTINGS)
    assert compiled.routes == {
        ("pause", "next"): "second",
        ("first", "next"): "pause",
        ("start", "next"): "first",
    }
    assert compiled.next_node("second", "next") is None


BLOCK_STYLE = """\
# the same definition as scenario(), written in block style with comments
id: t
name: T
settings:
  consent_category: sms_marketing
nodes:
  - id: start
    type: trigger
    kind: launch
  - id: hello
    type: sms
    text: Hi   # plain scalar
edges:
  - from: start
    to: hello
"""


@pytest.mark.parametrize(
    ("other", "same"),
    [
        # the very same text
        (scenario(), True),
        # layout, quoting and comments are not part of the definition
        (BLOCK_STYLE, True),
        # a different message text
        (scenario([TRIGGER, '{id: hello, type: sms, text: "Hi!"}']), False),
        # a different scenario name
        (scenario().replace("name: T", "name: U"), False),
        # a different wait duration changes the definition too
        (
            scenario([TRIGGER, "{id: hello, type: wait, duration: 1h}"]),
            False,
        ),
    ],
)
def test_version_is_a_hash_of_the_definition(other, same):
    version = parse_scenario(scenario(), "a.yaml", SETTINGS).version
    other_version = parse_scenario(other, "b.yaml", SETTINGS).version
    assert (version == other_version) is same
    assert len(version) == 12
    int(version, 16)  # hexadecimal


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        # the file alone
        (Problem("s.yaml", "boom"), "s.yaml: boom"),
        # file and line
        (Problem("s.yaml", "boom", line=3), "s.yaml:3: boom"),
        # a node without a field
        (Problem("s.yaml", "boom", "hello"), "s.yaml node 'hello': boom"),
        # a field without a node (scenario settings)
        (Problem("s.yaml", "boom", field="sender"), "s.yaml field 'sender': boom"),
        # everything
        (
            Problem("s.yaml", "boom", "hello", "text", 6),
            "s.yaml:6 node 'hello' field 'text': boom",
        ),
    ],
)
def test_problem_str(problem, text):
    assert str(problem) == text


def test_schema_errors_and_graph_errors_are_reported_in_one_run():
    # A bad top-level field, a bad node and a dangling edge: each stage reports its own.
    text = scenario(
        [TRIGGER, HELLO, "{id: odd, type: sms}"],
        ["{from: start, to: hello}", "{from: hello, to: ghost}"],
        extra=["colour: red"],
    )
    problems = problems_of(text)
    assert {(p.node, p.field) for p in problems} == {
        (None, "colour"),  # schema: an unknown top-level field
        ("odd", "text"),  # schema of a node: no text
        ("ghost", "edges.1"),  # graph: an edge to no node
    }, problems


def test_graph_order_is_checked_beside_other_problems_when_the_graph_is_whole():
    text = scenario(
        [TRIGGER, HELLO, '{id: bye, type: sms, text: "Bye", sender: nope}'],
        ["{from: start, to: hello}", "{from: hello, to: bye}", "{from: bye, to: hello}"],
        settings="{consent_category: carrier_pigeon}",
    )
    problems = problems_of(text)
    assert has_problem(problems, "bye", "sender", "not a predefined sender", 7)
    assert has_problem(problems, None, "consent_category", "carrier_pigeon", 3)
    assert has_problem(problems, "hello", None, "a cycle runs through hello, bye", 6)


def test_a_duplicate_key_in_a_nested_mapping_names_its_path():
    text = scenario([TRIGGER, "{id: hello, type: mms, text: Hi, fallback: {text: a, text: b}}"])
    assert has_problem(
        problems_of(text), "hello", "fallback.text", "duplicate key 'text' (first on line 6)", 6
    )


SCHEDULED = "{id: start, type: trigger, kind: schedule, at: %s, timezone: America/New_York}"


@pytest.mark.parametrize(
    ("at", "now", "past"),
    [
        # a day before: refused
        ("2026-05-01T09:00:00", "2026-05-02T09:00:00+00:00", True),
        # a day after: fine
        ("2026-05-03T09:00:00", "2026-05-02T09:00:00+00:00", False),
        # 09:00 in New York is 13:00 UTC: still to come at 12:00 UTC
        ("2026-05-02T09:00:00", "2026-05-02T12:00:00+00:00", False),
        # ... and past at 14:00 UTC
        ("2026-05-02T09:00:00", "2026-05-02T14:00:00+00:00", True),
        # an explicit offset wins over the trigger's time zone
        ("2026-05-02T09:00:00+00:00", "2026-05-02T12:00:00+00:00", True),
    ],
)
def test_a_schedule_at_in_the_past_is_refused(at, now, past):
    text = scenario([SCHEDULED % at, HELLO])
    when = datetime.fromisoformat(now)
    if past:
        with pytest.raises(ScenarioError) as caught:
            parse_scenario(text, "s.yaml", SETTINGS, when)
        assert has_problem(caught.value.problems, "start", "at", "is in the past", 5)
    else:
        assert parse_scenario(text, "s.yaml", SETTINGS, when).trigger.at is not None


def test_a_stored_version_with_a_past_at_still_compiles():
    # Ticks recompile launched versions without `now`: their `at` has passed by design.
    text = scenario([SCHEDULED % "2020-01-01T09:00:00", HELLO])
    assert parse_scenario(text, "s.yaml", SETTINGS).trigger.kind == "schedule"
