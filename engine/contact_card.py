"""Contact cards: a text/vcard file (business name, number, logo) an MMS can carry.

Written by hand: a card is a few escaped, folded lines of RFC 6350 (vCard 4.0), and the
Python vCard library (vobject) targets vCard 3.0.
"""

from __future__ import annotations

from engine.phones import normalize_phone

MEDIA_TYPE = "text/vcard"


def contact_card(name: str, phone: str, logo_url: str | None = None, url: str | None = None) -> str:
    """A vCard 4.0 for a business: its name, its (international) number, a logo URL."""
    if not name.strip():
        raise ValueError("a contact card needs the business name")
    number = normalize_phone(phone)
    lines = [
        "BEGIN:VCARD",
        "VERSION:4.0",
        "KIND:org",
        f"FN:{_escape(name)}",
        f"ORG:{_escape(name)}",
        f"TEL;VALUE=uri;TYPE=work:tel:{number}",
    ]
    if logo_url:
        lines.append(f"LOGO:{logo_url}")
    if url:
        lines.append(f"URL:{url}")
    lines.append("END:VCARD")
    return "".join(_fold(line) + "\r\n" for line in lines)


def _escape(text: str) -> str:
    # RFC 6350 3.4: backslash, comma, semicolon and newlines are escaped in text values.
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def _fold(line: str, limit: int = 75) -> str:
    # RFC 6350 3.2: lines longer than 75 octets continue on lines starting with a space,
    # never splitting a UTF-8 character.
    pieces, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (limit if not pieces else limit - 1):
            pieces.append(current.decode())
            current = b""
        current += encoded
    pieces.append(current.decode())
    return "\r\n ".join(pieces)
