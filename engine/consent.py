"""Whether a customer may be sent a message of a consent category: a pure rule.

The consent policy decides it for a whole batch before composing; the send protocol decides it
again for each provider request just before it is made, so a STOP that arrives in between
is honoured too. Both say why with the same words.
"""

from __future__ import annotations


def consent_refusal(category: str, granted: bool, stopped: bool) -> str | None:
    """Why a message of `category` may not be sent, or None when it may: the customer
    must grant the category, and their phone must not have texted STOP for it since
    (a STOP holds for whoever has the phone, even with an older grant)."""
    if not granted:
        return f"no consent: {category}"
    if stopped:
        return f"the phone texted STOP: {category}"
    return None
