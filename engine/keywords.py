"""Two-way messaging keywords: which keyword an inbound message starts with, and what it
asks for. Pure functions: no I/O.

Every text part of an inbound message is scanned at its beginning (an MMS may carry
several text parts). A keyword is the first word of a part, case-insensitive, followed by
nothing, a space or punctuation: "stop", "Stop!" and "STOP please" are STOP; "stopped" and
"please stop" are not.

When parts ask for different things, consent wins: a STOP anywhere revokes even if another
part says START or HELP, because sending to someone who asked to stop is the costly
mistake. The order is stop, start, help, then the project's own keywords.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Family = Literal["stop", "start", "help", "custom"]
FAMILY_ORDER: tuple[Family, ...] = ("stop", "start", "help", "custom")

# The leading word: letters and digits after optional whitespace.
_FIRST_WORD = re.compile(r"\s*([^\W_]+)")


@dataclass(frozen=True)
class Keywords:
    """The keyword table: each family's keywords (upper case) and custom auto-responses."""

    stop: frozenset[str]
    start: frozenset[str]
    help: frozenset[str]
    custom: frozenset[str]

    def family_of(self, word: str) -> Family | None:
        for family in FAMILY_ORDER:
            if word in getattr(self, family):
                return family
        return None


@dataclass(frozen=True)
class KeywordMatch:
    """The keyword an inbound message asks for: its family, the keyword, and which text
    part (from 0) carried it."""

    family: Family
    keyword: str
    part: int


def first_word(text: str) -> str | None:
    """The leading word of `text`, upper case, or None when it starts with no word."""
    match = _FIRST_WORD.match(text)
    return match.group(1).upper() if match else None


def match_keyword(texts: Sequence[str], keywords: Keywords) -> KeywordMatch | None:
    """The keyword of an inbound message's text parts, by the rules in the module
    docstring; None when no part starts with a keyword."""
    found: list[KeywordMatch] = []
    for position, text in enumerate(texts):
        word = first_word(text)
        family = keywords.family_of(word) if word else None
        if family is not None and word is not None:
            found.append(KeywordMatch(family, word, position))
    if not found:
        return None
    return min(found, key=lambda match: (FAMILY_ORDER.index(match.family), match.part))
