import pytest

from engine.errors import InputError
from engine.phones import normalize_phone, phone_region


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # already E.164
        ("+12125550123", "+12125550123"),
        # 00 is the international prefix
        ("0012125550123", "+12125550123"),
        # spaces, dashes, dots and parentheses are separators
        ("+1 (212) 555-0123", "+12125550123"),
        # dots as separators
        ("+1.212.555.0123", "+12125550123"),
        # surrounding whitespace, tabs included
        ("  +1 212 555 0123\t", "+12125550123"),
        # 00 with separators
        ("00 44 7400 123456", "+447400123456"),
        # Canada shares country code 1
        ("+1 506-234-5678", "+15062345678"),
        # UK mobile
        ("+44 7400 123456", "+447400123456"),
        # the UK trunk 0 written in brackets is dropped by phonenumbers
        ("+44 (0)7400 123456", "+447400123456"),
        # German mobile
        ("+49 1512 3456789", "+4915123456789"),
        # Australian mobile
        ("+61 412 345 678", "+61412345678"),
        # Brazilian mobile with the ninth digit
        ("+55 11 96123-4567", "+5511961234567"),
        # Czech mobile
        ("00420 601 123 456", "+420601123456"),
    ],
)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # national format: the country is unknown
        (
            "0601234567",
            "phone '0601234567' is not in international format: it must start with + or 00",
        ),
        # a US number without its country code
        ("(212) 555-0123", "is not in international format"),
        # a single 0 is the national trunk prefix, not 00
        ("0 44 7400 123456", "is not in international format"),
        # letters are refused even where phonenumbers would read them as a vanity number
        ("+1 800 FLOWERS", "phone '+1 800 FLOWERS' contains 'F': only digits"),
        # an extension is not a phone to text
        ("+1 212 555 0123 ext 4", "contains 'e'"),
        # slashes are not separators we allow
        ("+49 1512/3456789", "contains '/'"),
        # a plus sign that is not the first character
        ("+1+2125550123", "contains '+'"),
        # nothing at all
        ("", "phone '' is empty"),
        # only separators
        (" - ", "phone ' - ' is empty"),
        # too short
        ("+1 555", "phone '+1 555' is not a valid phone number: too short"),
        # too long
        ("+1 2125550123456789", "is not a valid phone number: too long"),
        # right length but no such area code
        ("+1 555 123 4567", "phone '+1 555 123 4567' is not a valid phone number"),
        # no country has code 999
        ("+999 123456789", "is not a valid phone number: unknown country code"),
        # just a plus sign
        ("+", "phone '+' is not a valid phone number"),
    ],
)
def test_normalize_phone_rejects(raw, message):
    with pytest.raises(InputError) as caught:
        normalize_phone(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        # New York
        ("+12125550123", "US"),
        # New Brunswick: country code 1 but Canada
        ("+15062345678", "CA"),
        # UK
        ("+447400123456", "GB"),
        # Germany
        ("+4915123456789", "DE"),
        # Australia
        ("+61412345678", "AU"),
        # Brazil
        ("+5511961234567", "BR"),
        # international freephone belongs to no region
        ("+80012345678", None),
        # not a number
        ("hello", None),
        # area code 555 does not exist, so no region can be told
        ("+15551234567", None),
    ],
)
def test_phone_region(e164, region):
    assert phone_region(e164) == region
