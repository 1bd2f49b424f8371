"""SMS segmentation: which encoding a text needs and how many parts it is billed as.

The rules are the ones in PROVIDERS.md ("Segmentation"), checked against Infobip's preview.
No maintained library computes GSM 03.38 segment counts (the `gsm0338` codec encodes but
does not count parts), so the character tables below are written out by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Segmentation", "segment", "split_gsm_text"]

# GSM 03.38 default alphabet, in table order. The escape code 0x1B is left out: it is not a
# character a user can type, only the prefix of the extension table below.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape code, so each one costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE, GSM7_PER_PART = 160, 153
UCS2_SINGLE, UCS2_PER_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class Segmentation:
    """How a text is encoded and split into SMS parts."""

    encoding: Encoding
    length: int
    """Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2."""
    parts: int
    per_part: int
    """The limit that applied: 160 or 153 for GSM-7, 70 or 67 for UCS-2."""
    remaining: int
    """Units still free in the last part."""
    ucs2_characters: tuple[str, ...]
    """Distinct characters that force UCS-2, in order of appearance."""


def segment(text: str) -> Segmentation:
    """Return the encoding, length and part count of `text` as an SMS.

    An empty text is one GSM-7 part with 160 units remaining.
    """
    # Set operations on the distinct characters keep this fast on the send path.
    distinct = set(text)
    if distinct <= GSM7_ALL:
        encoding: Encoding = "GSM-7"
        single, multi = GSM7_SINGLE, GSM7_PER_PART
        length = len(text) + sum(text.count(c) for c in distinct & GSM7_EXTENSION)
        ucs2_characters: tuple[str, ...] = ()
    else:
        encoding = "UCS-2"
        single, multi = UCS2_SINGLE, UCS2_PER_PART
        # UTF-16 code units: characters outside the BMP take a surrogate pair.
        length = len(text.encode("utf-16-le")) // 2
        ucs2_characters = tuple(dict.fromkeys(c for c in text if c not in GSM7_ALL))

    if length <= single:
        return Segmentation(encoding, length, 1, single, single - length, ucs2_characters)
    parts = math.ceil(length / multi)
    return Segmentation(encoding, length, parts, multi, parts * multi - length, ucs2_characters)


def split_gsm_text(
    text: str,
    limit: int = GSM7_SINGLE,
    per_part: int = GSM7_PER_PART,
    *,
    ucs2_limit: int = UCS2_SINGLE,
    ucs2_per_part: int = UCS2_PER_PART,
) -> list[str]:
    """Split `text` into pieces that each fit in one SMS part.

    A text of at most `limit` septets comes back whole; a longer one is cut into pieces of
    at most `per_part` septets. Text that needs UCS-2 is measured in UTF-16 code units
    against `ucs2_limit` and `ucs2_per_part` instead. A character is never cut in two: an
    extension character's escape pair and a surrogate pair always stay in one piece, so a
    piece may come out one unit short and, rarely, there is one piece more than
    `segment(text).parts`.
    """
    if segment(text).encoding == "GSM-7":
        single, multi, cost = limit, per_part, _septets
    else:
        single, multi, cost = ucs2_limit, ucs2_per_part, _ucs2_units
    if multi < 2:
        # Below two units an escape pair or a surrogate pair could never fit.
        raise ValueError(f"per_part must be at least 2, got {multi}")
    if sum(cost(c) for c in text) <= single:
        return [text]

    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        units = cost(char)
        if used + units > multi:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += units
    pieces.append("".join(current))
    return pieces


def _septets(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


def _ucs2_units(char: str) -> int:
    # Characters outside the Basic Multilingual Plane take a UTF-16 surrogate pair.
    return 2 if ord(char) > 0xFFFF else 1
