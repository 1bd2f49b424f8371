"""Keyword rules: which keyword an inbound message's text parts ask for."""

from __future__ import annotations

import pytest

from engine.keywords import KeywordMatch, first_word, match_keyword
from engine.settings import KeywordSettings

TABLE = KeywordSettings(auto_responses={"JOIN": "Welcome to the club!"}).table


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("STOP", "STOP"),
        ("stop", "STOP"),
        ("  Stop!", "STOP"),  # leading spaces, punctuation after
        ("STOP please", "STOP"),
        ("Stop.", "STOP"),
        ("\nhelp me", "HELP"),
        ("stopped", "STOPPED"),  # a longer word is another word
        ("¿ayuda?", None),  # starts with punctuation: no leading word
        ("", None),
        ("Ünsubscribe", "ÜNSUBSCRIBE"),
    ],
)
def test_first_word(text, word):
    assert first_word(text) == word


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        # every STOP-family keyword revokes
        (["STOP"], KeywordMatch("stop", "STOP", 0)),
        (["stopall"], KeywordMatch("stop", "STOPALL", 0)),
        (["Unsubscribe me"], KeywordMatch("stop", "UNSUBSCRIBE", 0)),
        (["cancel"], KeywordMatch("stop", "CANCEL", 0)),
        (["END"], KeywordMatch("stop", "END", 0)),
        (["quit!"], KeywordMatch("stop", "QUIT", 0)),
        # START family restores
        (["start"], KeywordMatch("start", "START", 0)),
        (["UNSTOP"], KeywordMatch("start", "UNSTOP", 0)),
        (["Yes"], KeywordMatch("start", "YES", 0)),
        # HELP family answers
        (["help"], KeywordMatch("help", "HELP", 0)),
        (["INFO please"], KeywordMatch("help", "INFO", 0)),
        # the project's own keywords
        (["join"], KeywordMatch("custom", "JOIN", 0)),
        # not at the beginning, or another word: nothing
        (["please stop"], None),
        (["stopped"], None),
        (["Thanks!"], None),
        ([], None),
        # multi-part MMS: every part is scanned, STOP wins over the others
        (["Nice picture", "stop"], KeywordMatch("stop", "STOP", 1)),
        (["HELP", "STOP"], KeywordMatch("stop", "STOP", 1)),
        (["join", "start"], KeywordMatch("start", "START", 1)),
        (["info", "join"], KeywordMatch("help", "INFO", 0)),
        (["hi", "", "join now"], KeywordMatch("custom", "JOIN", 2)),
    ],
)
def test_match_keyword(texts, expected):
    assert match_keyword(texts, TABLE) == expected


def test_keyword_families_are_configurable():
    table = KeywordSettings(stop=["ALTO", "STOP"], start=["ARRIBA"], help=["AYUDA"]).table
    assert match_keyword(["alto"], table) == KeywordMatch("stop", "ALTO", 0)
    assert match_keyword(["quit"], table) is None
    assert match_keyword(["ayuda"], table) == KeywordMatch("help", "AYUDA", 0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stop": ["STOP"], "help": ["stop"]}, "keyword STOP is in both stop and help"),
        ({"auto_responses": {"HELP": "x"}}, "keyword HELP is in both help and auto_responses"),
        ({"stop": ["STOP ALL"]}, "String should match pattern"),
        ({"help_text": ""}, "at least 1 character"),
    ],
)
def test_keyword_settings_are_checked(values, message):
    with pytest.raises(ValueError, match=message):
        KeywordSettings(**values)


def test_responses_per_family():
    settings = KeywordSettings(auto_responses={"join": "Welcome!"}, stop_response=None)
    assert settings.response("custom", "JOIN") == "Welcome!"
    assert settings.response("stop", "STOP") is None
    assert settings.response("help", "INFO") == settings.help_text
    assert settings.response("start", "YES") == settings.start_response
