"""Links in message texts: finding, UTM tagging, codes, identity, rules, rewriting, and the
settings that drive them (table-driven, no I/O)."""

from __future__ import annotations

import re

import pytest

from engine.errors import ConfigError, ScenarioError
from engine.links import (
    CODE_LENGTH,
    LINK_SLOT,
    Link,
    LinkRules,
    clashing,
    find_urls,
    is_short_code,
    link_rules,
    redirect_url,
    rewrite,
    rewrite_text,
    short_code,
    short_url_base,
    with_parameters,
)
from engine.scenario import ScenarioLinks, parse_scenario
from engine.settings import load_settings
from engine.templates import SplitTemplate
from tests.conftest import project_settings


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("Shop https://x.com/sale now", ["https://x.com/sale"]),
        ("Shop https://x.com/sale.", ["https://x.com/sale"]),  # the sentence's full stop
        ("Go: http://x.com/a, then http://y.com/b!", ["http://x.com/a", "http://y.com/b"]),
        ("(see https://x.com/a)", ["https://x.com/a"]),  # an unbalanced closing bracket
        ("https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("[https://x.com/a]", ["https://x.com/a"]),
        ("https://x.com/?q=1&r=a.b#top", ["https://x.com/?q=1&r=a.b#top"]),
        ('"https://x.com/a" or <https://y.com/b>', ["https://x.com/a", "https://y.com/b"]),
        ("It's https://x.com/a'", ["https://x.com/a"]),
        ("HTTPS://X.COM/Sale?", ["HTTPS://X.COM/Sale"]),  # any case; a question's mark
        ("port https://x.com:8443/p;", ["https://x.com:8443/p"]),
        ("unicode https://例え.jp/パス", ["https://例え.jp/パス"]),
        ("line\nhttps://x.com/a\nnext", ["https://x.com/a"]),
        ("ftp://x.com/a and www.x.com", []),  # http(s) only
        ("xhttps://x.com and a/https://x.com", []),  # glued to a word or a path
        ("https:// and http://?q", []),  # no host
        ("", []),
    ],
)
def test_find_urls(text, urls):
    assert [text[start:end] for start, end in find_urls(text)] == urls


UTM = (("utm_source", "scenarist"), ("utm_medium", "sms"), ("utm_campaign", "Spring sale"))
TAGS = "utm_source=scenarist&utm_medium=sms&utm_campaign=Spring+sale"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.com/sale", f"https://x.com/sale?{TAGS}"),
        ("https://x.com", f"https://x.com?{TAGS}"),
        ("https://x.com/?a=1", f"https://x.com/?a=1&{TAGS}"),
        ("https://x.com/p#top", f"https://x.com/p?{TAGS}#top"),  # the fragment stays last
        ("https://x.com/?q=a%20b,c", f"https://x.com/?q=a%20b,c&{TAGS}"),  # query kept as is
        # a parameter already there is kept, never overwritten
        (
            "https://x.com/?utm_source=news",
            "https://x.com/?utm_source=news&utm_medium=sms&utm_campaign=Spring+sale",
        ),
        (f"https://x.com/?{TAGS}", f"https://x.com/?{TAGS}"),
        ("https://x.com/?utm_medium=", "https://x.com/?utm_medium=&utm_source=scenarist"
         "&utm_campaign=Spring+sale"),  # present though blank
    ],
)  # fmt: skip
def test_with_parameters(url, expected):
    assert with_parameters(url, UTM) == expected


def test_short_codes_are_deterministic_and_distinct():
    code = short_code("s/v/n/c1/launch", 1)
    assert code == short_code("s/v/n/c1/launch", 1)  # a retried render makes the same link
    assert len(code) == CODE_LENGTH and code.isalnum() and code.isascii()
    others = {
        short_code("s/v/n/c1/launch", 2),  # the next link of the message
        short_code("s/v/n/c2/launch", 1),  # another customer
        short_code("s/v/n/c1/launch", 1, salt=1),  # moved off a taken code
        short_code("s/v/n/c1/launch", 1, secret="another project"),  # keyed per project
    }
    assert code not in others and len(others) == 4
    assert short_code(None, 2) == "preview002"  # a preview: obviously fake, the same length


@pytest.mark.parametrize(
    ("code", "looked_up"),
    [
        (short_code("s/v/n/c1/launch", 1, secret="k"), True),
        ("nosuchcode", True),  # the shape of a code: looked up, and not found
        ("abc\x00defgh", False),  # a NUL is an error in a PostgreSQL lookup
        ("abcdefghi", False),  # one short
        ("abcdefghijk", False),
        ("abcdéfghij", False),
        ("abc-efghij", False),
        ("", False),
    ],
)
def test_only_what_has_a_codes_shape_is_looked_up(code, looked_up):
    assert is_short_code(code) is looked_up
    assert len(short_code(None, 2)) == CODE_LENGTH


@pytest.mark.parametrize(
    ("identity", "first_click", "expected"),
    [
        ("disabled", True, "https://x.com/a?b=1"),
        ("disabled", False, "https://x.com/a?b=1"),
        ("first_click", True, "https://x.com/a?b=1&who=c1"),
        ("first_click", False, "https://x.com/a?b=1"),
        ("all_clicks", True, "https://x.com/a?b=1&who=c1"),
        ("all_clicks", False, "https://x.com/a?b=1&who=c1"),
    ],
)
def test_identity_transfer(identity, first_click, expected):
    assert redirect_url("https://x.com/a?b=1", identity, "who", "c1", first_click) == expected


AUTO = {"utm_source": "scenarist", "utm_medium": "mms", "utm_campaign": "Spring"}
ACME = {**AUTO, "utm_source": "acme"}
SPRING26 = {**AUTO, "utm_campaign": "spring26"}


@pytest.mark.parametrize(
    ("project", "own", "expected"),
    [
        ({}, {}, None),  # the seed: disabled unless asked for
        ({}, {"utm": "none", "shorten": False}, None),
        ({}, {"shorten": True}, (True, "first_click", {})),  # the recommended identity
        ({"shorten": True}, {}, (True, "first_click", {})),  # the project's default
        ({"shorten": True}, {"shorten": False, "utm": "auto"}, (False, "disabled", AUTO)),
        ({}, {"shorten": True, "identity": "all_clicks"}, (True, "all_clicks", {})),
        ({"shorten": True, "identity": "disabled"}, {}, (True, "disabled", {})),
        ({"utm": "auto"}, {}, (False, "disabled", AUTO)),
        ({"utm": "auto", "utm_source": "acme"}, {}, (False, "disabled", ACME)),
        ({"utm": "auto"}, {"utm": "none"}, None),
        # manual values replace the automatic ones they name
        ({}, {"utm": {"utm_campaign": "spring26"}}, (False, "disabled", SPRING26)),
    ],
)  # fmt: skip
def test_link_rules_put_the_scenario_over_the_project(project, own, expected):
    settings = project_settings(links=project)
    rules = link_rules(settings, ScenarioLinks.model_validate(own), "Spring", "mms")
    if expected is None:
        assert rules is None
    else:
        assert (rules.shorten, rules.identity, dict(rules.utm)) == expected


@pytest.mark.parametrize(
    ("links", "webhooks", "base"),
    [
        ({"short_url_base": "https://s.example.com/l/"}, {}, "https://s.example.com/l"),
        ({}, {"public_url": "https://hooks.example.com/"}, "https://hooks.example.com/l"),
        ({}, {}, "http://127.0.0.1:8080/l"),  # `scenarist webhooks` on its default port
    ],
)
def test_short_url_base(links, webhooks, base):
    assert short_url_base(project_settings(links=links, webhooks=webhooks)) == base


SHORT = LinkRules(True, "https://s.ex/l", "first_click", ())
TAG = LinkRules(False, "https://s.ex/l", "disabled", (("utm_medium", "sms"),))


def codes(position: int) -> str:
    return f"code{position:06d}"


def short(position: int) -> str:
    return f"https://s.ex/l/{codes(position)}"


@pytest.mark.parametrize(
    ("rules", "literals", "expressions", "values", "shape", "new_values"),
    [
        # no URL: the message is as it was
        (SHORT, ("Hi ", "!"), ("n",), ("Ann",), (("Hi ", "!"), ("n",)), ("Ann",)),
        # a URL in literal text becomes a slot (a parameter) of its own
        (SHORT, ("Hi ", ", see https://x.com/sale now"), ("n",), ("Ann",),
         (("Hi ", ", see ", " now"), ("n", LINK_SLOT)), ("Ann", short(1))),
        # a URL inside a value is shortened within the value
        (SHORT, ("Cart: ", "."), ("event.url",), ("https://x.com/c/1",),
         (("Cart: ", "."), ("event.url",)), (short(1),)),
        # a URL across literal text and a value is one link: the value is consumed
        (SHORT, ("Go https://x.com/c/", "!"), ("id",), ("42",),
         (("Go ", "!"), (LINK_SLOT,)), (short(1),)),
        # ... and what of the value follows the URL stays a value
        (SHORT, ("Go https://x.com/c/", ""), ("id",), ("42 now",),
         (("Go ", "", ""), (LINK_SLOT, "id")), (short(1), " now")),
        # a URL starting in a value and ending in literal text
        (SHORT, ("", "/sale today"), ("base",), ("https://x.com",),
         (("", " today"), (LINK_SLOT,)), (short(1),)),
        # an empty value inside a URL leaves nothing behind
        (SHORT, ("https://x.com/", "a"), ("empty",), ("",), (("", ""), (LINK_SLOT,)), (short(1),)),
        # links are numbered in text order, wherever they stand
        (SHORT, ("A https://a.com B ", ""), ("u",), ("https://b.com",),
         (("A ", " B ", ""), (LINK_SLOT, "u")), (short(1), short(2))),
        # a whole rendered text (no template slots)
        (SHORT, ("Hi Ann https://x.com/a and https://x.com/b.",), (), (),
         (("Hi Ann ", " and ", "."), (LINK_SLOT, LINK_SLOT)), (short(1), short(2))),
        # only tagged: literal text stays literal (everyone gets the same)
        (TAG, ("Hi ", " https://x.com/a."), ("n",), ("Ann",),
         (("Hi ", " https://x.com/a?utm_medium=sms."), ("n",)), ("Ann",)),
        (TAG, ("Cart: ", ""), ("u",), ("https://x.com/c",),
         (("Cart: ", ""), ("u",)), ("https://x.com/c?utm_medium=sms",)),
        # ... but a URL across literal text and a value is per recipient: a slot
        (TAG, ("Go https://x.com/c/", "!"), ("id",), ("42",),
         (("Go ", "!"), (LINK_SLOT,)), ("https://x.com/c/42?utm_medium=sms",)),
    ],
)  # fmt: skip
def test_rewrite_keeps_the_message_a_shape_and_its_values(
    rules, literals, expressions, values, shape, new_values
):
    new_shape, got_values, links = rewrite(
        rules, SplitTemplate(literals, expressions), values, codes
    )
    assert (new_shape.literals, new_shape.expressions) == shape
    assert got_values == new_values
    # every short link made stands in the message, once, in order
    text = new_shape.join(got_values)
    assert [link.code for link in links] == re.findall(r"https://s\.ex/l/(\w+)", text)


def test_rewritten_links_carry_their_target_and_identity():
    rules = LinkRules(True, "https://s.ex/l", "all_clicks", (("utm_medium", "mms"),))
    text, links = rewrite_text(rules, "A https://x.com/a?k=1#f B", codes, first_position=3)
    assert text == f"A {short(3)} B"
    assert links == (Link(3, codes(3), "https://x.com/a?k=1&utm_medium=mms#f", "all_clicks"),)


def test_clashing_codes_are_found_in_the_store_and_in_the_batch():
    def link(code: str, position: int = 1) -> Link:
        return Link(position, code, "https://x.com", "disabled")

    messages = [
        ("k1", [link("aaa")]),  # its own stored link: a retried render
        ("k2", [link("bbb")]),  # stored for another message
        ("k3", [link("ccc")]),
        ("k4", [link("ddd"), link("ccc", 2)]),  # taken earlier in the same batch
    ]
    owners = {"aaa": ("k1", 1), "bbb": ("other", 1)}
    assert clashing(messages, owners) == {"k2", "k4"}


# -- settings ----------------------------------------------------------------------------

SCENARIO = """id: t
name: T
settings:
  consent_category: sms_marketing
  links:
    {links}
nodes:
  - {{id: start, type: trigger, kind: launch}}
  - {{id: hello, type: sms, text: "Hi https://x.com"}}
edges:
  - {{from: start, to: hello}}
"""


def problems(links: str, project: dict) -> list:
    try:
        parse_scenario(SCENARIO.format(links=links), "s.yaml", project_settings(**project))
    except ScenarioError as exc:
        return [(p.field, p.line, p.message) for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("links", "project", "field", "fragment"),
    [
        ("identity: first_click", {}, "links.identity", "needs the link shortener"),
        ("{shorten: false, identity: all_clicks}", {"links": {"shorten": True}},
         "links.identity", "needs the link shortener"),
        ("identity: sometimes", {}, "settings.links.identity", "first_click"),
        ("utm: always", {}, "settings.links.utm", "utm is 'auto', 'none' or {utm_source"),
        ("utm: {utm_term: x}", {}, "settings.links.utm.ManualUtm.utm_term", "Extra inputs"),
        ("shorten: maybe", {}, "settings.links.shorten", "boolean"),
    ],
)  # fmt: skip
def test_link_settings_errors_name_the_field(links, project, field, fragment):
    found = problems(links, project)
    assert any(f == field and fragment in m and line == 6 for f, line, m in found), found


@pytest.mark.parametrize(
    ("links", "project"),
    [
        ("identity: first_click", {"links": {"shorten": True}}),  # the project's shortener
        ("{shorten: true, identity: all_clicks}", {}),
        ("identity: disabled", {}),  # nothing to transfer, nothing wrong
        ("utm: {utm_campaign: spring}", {}),
    ],
)
def test_valid_link_settings(links, project):
    assert problems(links, project) == []


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("links: {short_url_base: s.example.com/l}", "links.short_url_base", "not an http(s)"),
        ("links: {short_url_base: 'https://s.ex/l?x=1'}", "links.short_url_base", "no query"),
        ("links: {identity: sometimes}", "links.identity", "first_click"),
        ("links: {identity_parameter: 'who are you'}", "links.identity_parameter", "pattern"),
        ("links: {utm_source: ''}", "links.utm_source", "at least 1"),
    ],
)
def test_project_link_settings_errors_name_the_key(tmp_path, text, key, fragment):
    path = tmp_path / "scenarist.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=rf"scenarist.yaml: {key}: .*{re.escape(fragment)}"):
        load_settings(path)
