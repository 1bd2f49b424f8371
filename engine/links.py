"""Links in message texts: found, tagged with UTM parameters, shortened. Pure functions.

The seed's four settings, resolved per node by `link_rules` from the project's `links:`
section and the scenario's `settings.links`:
- link shortener: every http(s) URL in an SMS or MMS text (and an MMS's fallback SMS)
  becomes `<short_url_base>/<code>`, served by the webhook app (`engine/clicks.py`);
- transfer identity to URL links: a click's redirect carries the customer id in a query
  parameter, on every click (`all_clicks`), on the link's first click only
  (`first_click`), or never (`disabled`); it needs the shortener, which knows who clicked;
- link transformation: UTM parameters added to each URL (`auto`: utm_source from the
  project, utm_medium the channel, utm_campaign the scenario's name; or manual values),
  never overwriting a parameter the URL already has;
- custom campaign tracking is the scenario's `tracking`, copied onto every campaign event.

A short link is per recipient (its code says who clicked), so links are rewritten at
compose time, before segmentation, and the rewritten message keeps its batching: the
message's shape (a `SplitTemplate`) gets one more slot per short link, which becomes one
more Sinch parameter, so a literal-and-expressions text with a link is still one request
per 1,000 recipients. Codes are derived from the send key and the link's position, so a
retried render makes the same links (exactly-once); `salt` moves a code that another
message already took.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine.templates import SplitTemplate

if TYPE_CHECKING:
    from engine.scenario import ScenarioLinks
    from engine.settings import IdentityTransfer, Settings

# The name of the project secret that keys short link codes (`Store.secret`).
LINK_SECRET = "short_links"
CODE_LENGTH = 10  # base62, about 59 bits: not sequential, so not enumerable; rarely equal
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# `scenarist webhooks` serves /l/{code} on port 8080 unless told otherwise.
LOCAL_SHORT_URL_BASE = "http://127.0.0.1:8080/l"
# What a short link's slot is called in a rewritten message's shape.
LINK_SLOT = "link"

# URL finding follows the rules of Django's and Jinja's `urlize` (the standard library has
# no URL finder, and Jinja's is private and yields HTML, not positions): a URL starts at
# http:// or https:// not glued to a preceding word, runs to whitespace or <>", and loses
# trailing punctuation (.,;:!?') and closing brackets that have no opening partner in it.
_CANDIDATE = re.compile(r"(?<![\w@/.])https?://[^\s<>\"]+", re.IGNORECASE)
_TRAILING = ".,;:!?'"
_BRACKETS = {")": "(", "]": "["}


def find_urls(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every http(s) URL in `text`, in order."""
    spans = []
    for match in _CANDIDATE.finditer(text):
        url = _trim(match.group())
        if _has_host(url):
            spans.append((match.start(), match.start() + len(url)))
    return spans


@lru_cache(maxsize=4096)
def _has_host(url: str) -> bool:
    return bool(urlsplit(url).hostname)


def _trim(url: str) -> str:
    while url:
        last = url[-1]
        if last in _TRAILING or (
            last in _BRACKETS and url.count(_BRACKETS[last]) < url.count(last)
        ):
            url = url[:-1]
        else:
            return url
    return url


@lru_cache(maxsize=4096)
def with_parameters(url: str, parameters: tuple[tuple[str, str], ...]) -> str:
    """`url` with query `parameters` appended, except those it already has (never
    overwritten); its own query stays byte for byte, its fragment stays last."""
    parts = urlsplit(url)
    present = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    added = [(name, value) for name, value in parameters if name not in present]
    if not added:
        return url
    query = parts.query + ("&" if parts.query else "") + urlencode(added)
    return urlunsplit(parts._replace(query=query))


def short_code(send_key: str | None, position: int, salt: int = 0, secret: str = "") -> str:
    """The code of the `position`th link of the message `send_key`: the same every time.

    Keyed with the project's `secret` (HMAC), so knowing how send keys are made (scenario,
    version, node, customer) is not enough to work out a customer's link. Without a send
    key (a preview) the code is an obviously fake `preview001` of the same length, so the
    preview's length and parts are those of the real message.
    """
    if send_key is None:
        return f"preview{position:03d}"
    message = f"{send_key}\n{position}\n{salt}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    number = int.from_bytes(digest[:8])  # 64 bits cover the 62**10 codes
    code = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, 62)
        code.append(_BASE62[digit])
    return "".join(code)


def is_short_code(code: str) -> bool:
    """Whether `code` has the shape `short_code` gives (what the click route looks up:
    anything else is no link, and a NUL in a lookup is an error on PostgreSQL)."""
    return len(code) == CODE_LENGTH and all(character in _BASE62 for character in code)


def redirect_url(
    target: str, identity: IdentityTransfer, parameter: str, customer_id: str, first_click: bool
) -> str:
    """Where a click goes: the target, with the customer id when identity transfers."""
    transfers = identity == "all_clicks" or (identity == "first_click" and first_click)
    return with_parameters(target, ((parameter, customer_id),)) if transfers else target


# -- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkRules:
    """How one node's links are rewritten."""

    shorten: bool
    base: str  # a short link is base/code
    identity: IdentityTransfer
    utm: tuple[tuple[str, str], ...]  # () when links are not transformed


def short_url_base(settings: Settings) -> str:
    """The configured base, else the webhook server's public URL + /l, else the local one."""
    if settings.links.short_url_base:
        return settings.links.short_url_base.rstrip("/")
    if settings.webhooks.public_url:
        return settings.webhooks.public_url.rstrip("/") + "/l"
    return LOCAL_SHORT_URL_BASE


def link_rules(
    settings: Settings, own: ScenarioLinks, campaign: str, channel: str
) -> LinkRules | None:
    """The scenario's link settings over the project's; None when links stay as written."""
    project = settings.links
    shorten = project.shorten if own.shorten is None else own.shorten
    mode = project.utm if own.utm is None else own.utm
    utm: dict[str, str] = {}
    if mode != "none":
        utm = {"utm_source": project.utm_source, "utm_medium": channel, "utm_campaign": campaign}
        if not isinstance(mode, str):  # manual: the values it gives replace the automatic ones
            utm.update(mode.model_dump(exclude_none=True))
    if not shorten and not utm:
        return None
    identity = project.identity if own.identity is None else own.identity
    base = short_url_base(settings)
    return LinkRules(shorten, base, identity if shorten else "disabled", tuple(utm.items()))


# -- rewriting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A short link in one message: stored with its send, followed by `engine/clicks.py`."""

    position: int  # 1, 2, ... in the order the links appear
    code: str
    target: str  # the URL as written, with its UTM parameters
    identity: IdentityTransfer


class _Piece(NamedTuple):
    start: int
    end: int
    expression: str | None  # None: literal text, the same for every recipient


class _Edit(NamedTuple):
    start: int
    end: int
    replacement: str
    slot: bool  # a slot of its own in the shape, rather than replaced where it stands


def rewrite(
    rules: LinkRules,
    shape: SplitTemplate,
    values: tuple[str, ...],
    codes: Callable[[int], str],
    first_position: int = 1,
) -> tuple[SplitTemplate, tuple[str, ...], tuple[Link, ...]]:
    """One recipient's message (`shape` filled with `values`) with its links rewritten:
    the new shape, its values and the short links made (`codes(position)` names each).

    A URL inside one expression's value is rewritten within that value. A short link
    where the text is literal, or a URL that runs across literal text and a value
    (`https://shop.example/cart/{{ event.cart }}`), becomes a slot of its own, labelled
    LINK_SLOT: the result is a shape for planning requests, not a template to render.
    A URL only tagged with UTM parameters in literal text stays literal: every recipient
    gets the same.
    """
    text = shape.join(values)
    spans = find_urls(text)
    if not spans:
        return shape, values, ()
    pieces = _pieces(shape, values)
    edits, links = [], []
    for position, (start, end) in enumerate(spans, start=first_position):
        target = with_parameters(text[start:end], rules.utm)
        replacement = target
        if rules.shorten:
            code = codes(position)
            links.append(Link(position, code, target, rules.identity))
            replacement = f"{rules.base}/{code}"
        home = next((p for p in pieces if p.start <= start and end <= p.end), None)
        slot = home is None or (home.expression is None and rules.shorten)
        edits.append(_Edit(start, end, replacement, slot))
    new_shape, new_values = _carve(text, pieces, edits)
    return new_shape, new_values, tuple(links)


def rewrite_text(
    rules: LinkRules, text: str, codes: Callable[[int], str], first_position: int = 1
) -> tuple[str, tuple[Link, ...]]:
    """A whole rendered text with its links rewritten, for channels without parameters."""
    shape, values, links = rewrite(rules, SplitTemplate((text,), ()), (), codes, first_position)
    return shape.join(values), links


def _pieces(shape: SplitTemplate, values: tuple[str, ...]) -> list[_Piece]:
    pieces, offset = [], 0
    for index, literal in enumerate(shape.literals):
        pieces.append(_Piece(offset, offset + len(literal), None))
        offset += len(literal)
        if index < len(values):
            pieces.append(_Piece(offset, offset + len(values[index]), shape.expressions[index]))
            offset += len(values[index])
    return pieces


def _carve(
    text: str, pieces: Sequence[_Piece], edits: Sequence[_Edit]
) -> tuple[SplitTemplate, tuple[str, ...]]:
    """Rebuild the message piece by piece: in-place edits change their piece, slot edits
    cut the pieces they cover and stand as one slot where they start."""
    literals, expressions, values = [""], [], []

    def slot(expression: str, value: str) -> None:
        expressions.append(expression)
        values.append(value)
        literals.append("")

    def flush(piece: _Piece, buffer: str, keep_empty: bool) -> None:
        if piece.expression is None:
            literals[-1] += buffer
        elif buffer or keep_empty:
            slot(piece.expression, buffer)

    k = 0
    for piece in pieces:
        while k < len(edits) and edits[k].end <= piece.start:
            k += 1
        if piece.start == piece.end and k < len(edits) and edits[k].start < piece.start:
            continue  # an empty value inside a link: nothing of it is left
        buffer, cursor, cut = "", piece.start, False
        while cursor < piece.end:
            while k < len(edits) and edits[k].end <= cursor:
                k += 1
            edit = edits[k] if k < len(edits) else None
            if edit is None or edit.start >= piece.end:
                buffer, cursor = buffer + text[cursor : piece.end], piece.end
            elif edit.start > cursor:
                buffer, cursor = buffer + text[cursor : edit.start], edit.start
            elif not edit.slot:
                buffer, cursor = buffer + edit.replacement, edit.end
            else:
                flush(piece, buffer, keep_empty=False)
                buffer, cut = "", True
                if cursor == edit.start:
                    slot(LINK_SLOT, edit.replacement)
                cursor = min(edit.end, piece.end)
        flush(piece, buffer, keep_empty=not cut)
    return SplitTemplate(tuple(literals), tuple(expressions)), tuple(values)


def clashing(
    messages: Sequence[tuple[str, Sequence[Link]]], owners: dict[str, tuple[str, int]]
) -> set[str]:
    """The send keys among `messages` (send key, its links) whose link codes belong to
    another link: one stored (`owners`: code -> send key and position) or one earlier in
    the same batch. Astronomically rare with 59-bit codes, but a click must never reach
    another customer's link."""
    taken = dict(owners)
    found = set()
    for send_key, links in messages:
        for link in links:
            if taken.setdefault(link.code, (send_key, link.position)) != (send_key, link.position):
                found.add(send_key)
    return found
