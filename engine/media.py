"""How big an MMS media file is, when its server says: the seeds recommend at most 1 MB.

A HEAD request reads `Content-Length`; a server that does not answer, or does not give a
length, leaves the size unknown, and that is no error (many CDNs are not reachable from
where scenarios are validated).
"""

from __future__ import annotations

import httpx

RECOMMENDED_MAX_BYTES = 1_000_000


def media_size(url: str, client: httpx.Client) -> int | None:
    """The file's size in bytes, or None when it cannot be learned."""
    try:
        response = client.head(url, follow_redirects=True)
    except httpx.HTTPError:
        return None
    length = response.headers.get("content-length")
    if response.is_success and length is not None and length.isdigit():
        return int(length)
    return None


def media_size_warning(url: str, client: httpx.Client) -> str | None:
    """A warning for a media file over the recommended size, else None."""
    size = media_size(url, client)
    if size is None or size <= RECOMMENDED_MAX_BYTES:
        return None
    return (
        f"media {url} is {size / 1_000_000:.1f} MB; MMS providers recommend at most 1 MB "
        "(larger files may be refused or sent as the fallback SMS)"
    )
