"""Phone numbers: normalization to E.164 and the region a number belongs to.

Parsing and validation are phonenumbers' (libphonenumber's metadata). Only the seed rule is
ours: a number must be written in international format, because guessing the country of a
national number would send messages to the wrong person.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from engine.errors import InputError

__all__ = ["normalize_phone", "phone_region"]

# Separators people write between digits; phonenumbers would also accept letters (vanity
# numbers such as 1-800-FLOWERS) and extensions, which a customer list must not contain.
_SEPARATORS = re.compile(r"[\s\-.()]")

_DIGITS = frozenset("0123456789")

# Why a number failed, from phonenumbers' two kinds of verdict.
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length for its country",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
}


def normalize_phone(raw: str) -> str:
    """Return `raw` in E.164 format, e.g. "+12015550123".

    `raw` must start with "+" or "00" and may contain spaces, dashes, dots and
    parentheses. Raises InputError saying what is wrong otherwise.
    """
    compact = _SEPARATORS.sub("", raw)
    if not compact:
        raise InputError(f"phone '{raw}' is empty")
    bad = next((c for c in compact.removeprefix("+") if c not in _DIGITS), None)
    if bad is not None:
        raise InputError(
            f"phone '{raw}' contains '{bad}': only digits, a leading +, spaces, dashes, dots "
            "and parentheses are allowed"
        )
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not compact.startswith("+"):
        raise InputError(
            f"phone '{raw}' is not in international format: it must start with + or 00"
        )

    try:
        number = phonenumbers.parse(compact, None)
    except NumberParseException as exc:
        raise InputError(_invalid(raw, _PARSE_REASONS.get(exc.error_type))) from None
    if not phonenumbers.is_valid_number(number):
        reason = _LENGTH_REASONS.get(phonenumbers.is_possible_number_with_reason(number))
        raise InputError(_invalid(raw, reason))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def phone_region(e164: str) -> str | None:
    """Return the ISO 3166 region code of an E.164 number, e.g. "US" or "CA".

    None when the number cannot be parsed or belongs to no single region (such as the
    +800 international freephone numbers).
    """
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    # "001" is libphonenumber's code for non-geographic numbering plans, "ZZ" for unknown.
    if region is None or not region.isalpha() or region == "ZZ":
        return None
    return region


def _invalid(raw: str, reason: str | None) -> str:
    message = f"phone '{raw}' is not a valid phone number"
    return f"{message}: {reason}" if reason else message
