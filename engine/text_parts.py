"""The text parts of Sinch MMS MO messages, read from the files their postbacks link to.

A Sinch MMS MO postback carries no text: each part, text ones included, is a file on
Sinch's servers, and a `.txt` one is read so its words can be scanned for a keyword.
The URLs come from a request body, so reading them must not open a way into our own
network (server-side request forgery). The rules (`refusal`):
- http and https only;
- no address that is not public: loopback, private, link-local, shared, multicast or
  reserved (every address the host name resolves to is checked, before each request);
- except the first URL on a trusted origin: a configured simulator integration's `url`
  (`trusted_origins`), as the simulator serves the parts it posts on 127.0.0.1. The
  origin must match exactly (scheme, host, port);
- redirects followed by hand, at most `MAX_REDIRECTS`, each hop checked by the same rules
  and never trusted: a provider's URL may not lead into our network;
- at most `TEXT_PART_BYTES` read (a keyword is in the first words), uncompressed, within
  `TEXT_PART_TIMEOUT` in all; then the connection is dropped.
The client resolves the name again when it connects, so a name whose answer changes in
between (DNS rebinding) is not caught here; callbacks' credentials are the other guard.

A part refused or not read is logged and left as media: the message is still stored,
only unscanned.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from engine.settings import Settings, SimulatorIntegration

if TYPE_CHECKING:
    from integrations.webhooks.inbound import InboundMessage

logger = logging.getLogger("scenarist.inbound")

IPAddress = IPv4Address | IPv6Address

TEXT_PART_BYTES = 8192
TEXT_PART_TIMEOUT = 3.0  # seconds for one part, redirects included
MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Refused(Exception):
    """A text part that may not be read (why is the message)."""


def origin(url: str) -> str:
    """`scheme://host:port` of an http(s) URL, the port spelled out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return f"{scheme}://{parts.hostname or ''}:{parts.port or _DEFAULT_PORTS.get(scheme)}"


def trusted_origins(settings: Settings) -> frozenset[str]:
    """The origins a first text part URL may be on whatever their address: the
    simulator integrations' (it serves the parts it posts, on loopback)."""
    return frozenset(
        origin(integration.url)
        for integration in settings.integrations.values()
        if isinstance(integration, SimulatorIntegration)
    )


def _public(address: IPAddress) -> bool:
    # An IPv6 address that carries an IPv4 one is as public as that one.
    if isinstance(address, IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    return address.is_global and not address.is_multicast


def refusal(
    url: str, addresses: Sequence[IPAddress], *, redirected: bool, trusted: Collection[str]
) -> str | None:
    """Why a text part may not be read from `url`, whose host resolves to `addresses`
    (None: it may be). `redirected`: a redirect led there (it is never trusted)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading the port is what refuses "http://host:x/"
    except ValueError:
        return "not a URL"
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        return f"{parts.scheme or 'no'} scheme, not http(s)"
    if not parts.hostname:
        return "no host"
    if not redirected and origin(url) in trusted:
        return None
    if not addresses:
        return f"{parts.hostname} has no address"
    for address in addresses:
        if not _public(address):
            return f"{parts.hostname} is at {address}, not a public address"
    return None


def resolve_host(host: str) -> list[IPAddress]:
    """Every address `host` (a name or an address) has; none when it does not resolve."""
    try:
        return [ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    # An IPv6 address may come with its scope ("fe80::1%eth0").
    return [ip_address(str(info[4][0]).split("%")[0]) for info in found]


class TextPartReader:
    """Reads the `.txt` parts of Sinch MMS MO messages (the rules in the module doc).
    `resolve` and `clock` are there for tests: host names to addresses, seconds."""

    def __init__(
        self,
        http: httpx.Client,
        trusted: Collection[str] = frozenset(),
        resolve: Callable[[str], list[IPAddress]] = resolve_host,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._http, self._trusted, self._resolve, self._clock = http, trusted, resolve, clock

    def close(self) -> None:
        self._http.close()

    def read(self, message: InboundMessage) -> InboundMessage:
        """The message with the text of its `.txt` media files as text parts, in order
        after its own; a file refused or not read is left as media, and logged."""
        texts = list(message.texts)
        for url in message.media:
            if not _text_file(url):
                continue
            try:
                texts.append(self._fetch(url).decode("utf-8", errors="replace"))
            except (Refused, httpx.HTTPError, httpx.InvalidURL) as exc:
                logger.warning("text part %s of %s not read: %s", url, message.message_id, exc)
        return replace(message, texts=tuple(texts)) if texts != list(message.texts) else message

    def _fetch(self, url: str) -> bytes:
        deadline = self._clock() + TEXT_PART_TIMEOUT
        for hop in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            reason = refusal(url, self._resolve(host), redirected=hop > 0, trusted=self._trusted)
            if reason is not None:
                raise Refused(reason)
            left = deadline - self._clock()
            if left <= 0:
                raise Refused(f"not read within {TEXT_PART_TIMEOUT}s")
            request = self._http.build_request(
                "GET", url, headers={"Accept-Encoding": "identity"}, timeout=left
            )
            response = self._http.send(request, stream=True, follow_redirects=False)
            try:
                if response.has_redirect_location:
                    url = str(response.url.join(response.headers["location"]))
                    continue
                response.raise_for_status()
                return self._head(response, deadline)
            finally:
                response.close()
        raise Refused(f"more than {MAX_REDIRECTS} redirects")

    def _head(self, response: httpx.Response, deadline: float) -> bytes:
        """The first TEXT_PART_BYTES of the body, or what came before the deadline."""
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            # Decoding could inflate a small body a thousandfold before any cap applies.
            raise Refused(f"compressed ({response.headers['content-encoding']})")
        head = bytearray()
        for chunk in response.iter_bytes():  # as they come: identity, so nothing inflated
            if self._clock() > deadline:
                break
            head += chunk
            if len(head) >= TEXT_PART_BYTES:
                break
        return bytes(head[:TEXT_PART_BYTES])


def _text_file(url: str) -> bool:
    try:
        return urlsplit(url).path.lower().endswith(".txt")
    except ValueError:  # not a URL: not a text file either (the parsers refuse these)
        return False
