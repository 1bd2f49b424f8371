"""The media size warning (the seeds recommend at most 1 MB)."""

from __future__ import annotations

import httpx
import pytest

from engine.media import media_size_warning


def client(status: int, headers: dict[str, str] | None = None, fail: bool = False):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "HEAD"
        if fail:
            raise httpx.ConnectError("no route", request=request)
        return httpx.Response(status, headers=headers or {})

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "headers", "fail", "warns"),
    [
        (200, {"content-length": "1500000"}, False, True),  # 1.5 MB: over
        (200, {"content-length": "1000000"}, False, False),  # exactly 1 MB: fine
        (200, {"content-length": "20000"}, False, False),
        (200, {}, False, False),  # no length given: unknown, no warning
        (404, {"content-length": "5000000"}, False, False),  # not found: unknown
        (200, {}, True, False),  # unreachable: unknown
    ],
)
def test_only_a_known_size_over_1_mb_warns(status, headers, fail, warns):
    warning = media_size_warning("https://cdn.test/a.jpg", client(status, headers, fail))
    assert (warning is not None) == warns
    if warns:
        assert "1.5 MB" in warning and "at most 1 MB" in warning
