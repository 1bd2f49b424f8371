"""Contact cards (vCard 4.0)."""

from __future__ import annotations

import pytest

from engine.contact_card import contact_card
from engine.errors import InputError


def test_a_card_has_name_number_and_logo_in_vcard_4():
    card = contact_card("Acme, Inc.", "+1 212 555 0123", logo_url="https://acme.test/logo.png")
    lines = card.split("\r\n")
    assert lines[:3] == ["BEGIN:VCARD", "VERSION:4.0", "KIND:org"]
    assert "FN:Acme\\, Inc." in lines  # commas escaped
    assert "TEL;VALUE=uri;TYPE=work:tel:+12125550123" in lines  # E.164
    assert "LOGO:https://acme.test/logo.png" in lines
    assert card.endswith("END:VCARD\r\n")


def test_long_lines_are_folded_at_75_octets():
    card = contact_card("Ž" * 60, "+12125550123")
    for line in card.split("\r\n"):
        assert len(line.encode()) <= 75
    unfolded = card.replace("\r\n ", "")
    assert f"FN:{'Ž' * 60}" in unfolded.split("\r\n")


@pytest.mark.parametrize(
    ("name", "phone", "error"),
    [
        ("", "+12125550123", ValueError),  # no business name
        ("Acme", "0601 234 567", InputError),  # not international
    ],
)
def test_bad_cards_are_refused(name, phone, error):
    with pytest.raises(error):
        contact_card(name, phone)
