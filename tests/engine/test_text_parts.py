"""Reading Sinch MMS MO text parts: which URLs may be read (the rule, table-driven), and
the reader: redirects checked hop by hop, a size cap, a deadline, nothing lost."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address

import httpx
import pytest

from engine.text_parts import (
    MAX_REDIRECTS,
    TEXT_PART_BYTES,
    TEXT_PART_TIMEOUT,
    TextPartReader,
    origin,
    refusal,
    resolve_host,
    trusted_origins,
)
from tests.conftest import project_settings
from tests.engine.test_inbound import STOP

PUBLIC = ip_address("93.184.215.14")
SIMULATOR = "http://127.0.0.1:8765"
TRUSTED = frozenset({origin(SIMULATOR)})


def at(*addresses: str) -> list[IPv4Address | IPv6Address]:
    return [ip_address(address) for address in addresses]


@pytest.mark.parametrize(
    ("url", "addresses", "redirected", "reason"),
    [
        ("https://mms.sinch.com/mo/file2.txt", at("93.184.215.14"), False, None),
        ("http://mms.sinch.com/mo/file2.txt", at("2606:2800:21f:cb07::1"), True, None),
        # not http(s), or not a URL at all
        ("file:///etc/passwd.txt", [], False, "file scheme, not http(s)"),
        ("ftp://mms.sinch.com/a.txt", at("93.184.215.14"), False, "ftp scheme, not http(s)"),
        ("http://[::1/a.txt", [], False, "not a URL"),
        ("http:///a.txt", [], False, "no host"),
        ("https://nowhere.invalid/a.txt", [], False, "nowhere.invalid has no address"),
        # addresses that are not public, however reached
        ("http://127.0.0.1/a.txt", at("127.0.0.1"), False, "is at 127.0.0.1, not a public"),
        ("http://localhost/a.txt", at("::1", "127.0.0.1"), False, "is at ::1"),
        ("http://10.1.2.3/a.txt", at("10.1.2.3"), True, "is at 10.1.2.3"),
        ("http://h/a.txt", at("192.168.0.9"), False, "is at 192.168.0.9"),
        ("http://h/a.txt", at("172.16.0.1"), False, "is at 172.16.0.1"),
        ("http://h/a.txt", at("169.254.169.254"), False, "is at 169.254.169.254"),  # metadata
        ("http://h/a.txt", at("100.64.0.1"), False, "is at 100.64.0.1"),  # carrier NAT
        ("http://h/a.txt", at("0.0.0.0"), False, "is at 0.0.0.0"),
        ("http://h/a.txt", at("240.0.0.1"), False, "is at 240.0.0.1"),  # reserved
        ("http://h/a.txt", at("224.0.0.1"), False, "is at 224.0.0.1"),  # multicast
        ("http://h/a.txt", at("fe80::1"), False, "is at fe80::1"),
        ("http://h/a.txt", at("fc00::1"), False, "is at fc00::1"),
        ("http://h/a.txt", at("::ffff:127.0.0.1"), False, "is at ::ffff:7f00:1"),  # v4 in v6
        ("http://h/a.txt", at("2002:7f00:1::"), False, "is at 2002:7f00:1::"),  # 6to4 of it
        # one private address among public ones is enough to refuse (DNS may answer both)
        ("http://h/a.txt", at("93.184.215.14", "10.0.0.1"), False, "is at 10.0.0.1"),
        # the simulator's origin, exactly, and only as the first URL
        (f"{SIMULATOR}/_simulator/inbound/U1RPUA.txt", at("127.0.0.1"), False, None),
        ("HTTP://127.0.0.1:8765/a.txt", at("127.0.0.1"), False, None),
        (f"{SIMULATOR}/a.txt", at("127.0.0.1"), True, "is at 127.0.0.1"),
        ("http://127.0.0.1:8766/a.txt", at("127.0.0.1"), False, "is at 127.0.0.1"),
        ("https://127.0.0.1:8765/a.txt", at("127.0.0.1"), False, "is at 127.0.0.1"),
        ("http://localhost:8765/a.txt", at("127.0.0.1"), False, "is at 127.0.0.1"),
    ],
)
def test_which_text_part_urls_may_be_read(url, addresses, redirected, reason):
    found = refusal(url, addresses, redirected=redirected, trusted=TRUSTED)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_the_simulator_integrations_are_trusted_and_nothing_else():
    settings = project_settings(
        integrations={
            "local": {"type": "simulator", "url": "http://127.0.0.1:9000/"},
            "default": {"type": "simulator"},
            "sinch": {"type": "sinch_sms", "service_plan_id": "p", "api_token_env": "T"},
        },
        default_sms_provider="local",
        default_mms_provider=None,
    )
    assert trusted_origins(settings) == {"http://127.0.0.1:9000", "http://127.0.0.1:8765"}


def test_addresses_are_taken_as_they_are_and_names_resolved():
    assert resolve_host("10.0.0.1") == [ip_address("10.0.0.1")]
    assert resolve_host("::1") == [ip_address("::1")]
    assert ip_address("127.0.0.1") in resolve_host("localhost")
    assert resolve_host("nowhere.invalid") == []  # RFC 6761: never resolves


# -- the reader ----------------------------------------------------------------------------


def message_with(*media: str):
    return replace(STOP, provider="sinch_mms", texts=(), media=media)


def reader(handler, clock=None, resolve=None) -> TextPartReader:
    """A reader over `handler` (httpx.MockTransport), every name public unless told."""
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return TextPartReader(
        http,
        TRUSTED,
        resolve=resolve or (lambda host: at(host) if host[0].isdigit() else [PUBLIC]),
        **({"clock": clock} if clock else {}),
    )


def test_text_parts_are_read_in_order_after_the_messages_own_and_images_are_not_fetched():
    fetched: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        assert request.headers["accept-encoding"] == "identity"
        return httpx.Response(200, content=request.url.path[1:].encode())

    message = replace(
        message_with(
            "https://mms.sinch.com/1.jpg",
            "https://mms.sinch.com/a.txt",
            "https://mms.sinch.com/B.TXT",
        ),
        texts=("inline",),
    )
    assert reader(serve).read(message).texts == ("inline", "a.txt", "B.TXT")
    assert fetched == ["https://mms.sinch.com/a.txt", "https://mms.sinch.com/B.TXT"]


@pytest.mark.parametrize(
    ("hops", "read"),
    [
        (["https://cdn.sinch.com/stop.txt"], True),  # to another public host
        (["/moved/stop.txt"], True),  # relative, on the same host
        (["http://127.0.0.1/stop.txt"], False),  # into our network
        (["http://169.254.169.254/latest/meta-data/"], False),
        (["https://cdn.sinch.com/1.txt", "http://10.0.0.5/2.txt"], False),  # at the second hop
        (["ftp://cdn.sinch.com/stop.txt"], False),
        ([f"https://cdn.sinch.com/{n}.txt" for n in range(MAX_REDIRECTS)], True),
        ([f"https://cdn.sinch.com/{n}.txt" for n in range(MAX_REDIRECTS + 1)], False),
    ],
)
def test_every_redirect_is_checked_before_it_is_followed(hops, read, caplog):
    requested: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if len(requested) <= len(hops):
            return httpx.Response(302, headers={"location": hops[len(requested) - 1]})
        return httpx.Response(200, content=b"STOP")

    message = message_with("https://mms.sinch.com/mo/stop.txt")
    assert reader(serve).read(message).texts == (("STOP",) if read else ())
    assert all(
        "127.0.0.1" not in url and "169.254" not in url and "10.0" not in url for url in requested
    )
    if not read:
        assert "not read" in caplog.text


def test_a_redirect_from_the_simulator_into_loopback_is_not_followed():
    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.port == 8765:
            return httpx.Response(302, headers={"location": "http://127.0.0.1:5432/x.txt"})
        raise AssertionError(f"{request.url} requested")

    assert reader(serve).read(message_with(f"{SIMULATOR}/a.txt")).texts == ()
    served = reader(lambda request: httpx.Response(200, content=b"stop"))
    assert served.read(message_with(f"{SIMULATOR}/a.txt")).texts == ("stop",)


def test_at_most_the_cap_is_read_and_the_stream_then_dropped():
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for n in range(1000):  # 1 MB offered
            pulled.append(n)
            yield b"x" * 1024

    text = reader(lambda request: httpx.Response(200, content=chunks())).read(
        message_with("https://mms.sinch.com/big.txt")
    )
    assert text.texts == ("x" * TEXT_PART_BYTES,)
    assert len(pulled) == TEXT_PART_BYTES // 1024


def test_a_slow_part_is_cut_at_the_deadline_with_what_came():
    now = [0.0]

    def clock() -> float:
        return now[0]

    def chunks() -> Iterator[bytes]:
        for word in (b"STOP ", b"sending ", b"these"):
            now[0] += TEXT_PART_TIMEOUT * 0.4  # each chunk takes 40% of the time allowed
            yield word

    text = reader(lambda request: httpx.Response(200, content=chunks()), clock=clock).read(
        message_with("https://mms.sinch.com/slow.txt")
    )
    assert text.texts == ("STOP sending ",)


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (404, {}, b""),
        (500, {}, b"STOP"),
        (200, {"content-encoding": "gzip"}, gzip.compress(b"STOP" * 10_000)),  # not inflated
        (302, {}, b""),  # a redirect to nowhere
        (302, {"location": "http://[::1"}, b""),
    ],
)
def test_a_part_not_read_leaves_the_message_as_it_was(status, headers, body, caplog):
    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    message = message_with("https://mms.sinch.com/a.jpg", "https://mms.sinch.com/a.txt")
    assert reader(serve).read(message) == message
    assert "text part https://mms.sinch.com/a.txt of" in caplog.text


def test_a_part_whose_host_does_not_resolve_is_not_requested(caplog):
    def serve(request: httpx.Request) -> httpx.Response:
        raise AssertionError("requested")

    message = message_with("https://nowhere.invalid/a.txt")
    assert reader(serve, resolve=lambda host: []).read(message) == message
    assert "nowhere.invalid has no address" in caplog.text
