"""The security headers of every console page: everything the console loads comes from this
server, map tiles from the configured tile host only."""

from __future__ import annotations

from urllib.parse import urlsplit


def tile_origin(tile_url: str) -> str:
    """The origin (scheme and host) a tile URL template loads from, for the page's
    Content-Security-Policy. Raises ValueError for what is not an http(s) URL with a host, or
    what could add to the policy (spaces, `;`, `,`, quotes)."""
    if any(c.isspace() or c in ";,'\"" for c in tile_url):
        raise ValueError("a tile URL has no spaces, ';', ',' or quotes")
    parts = urlsplit(tile_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("a tile URL is an http(s) URL with a host")
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def security_headers(tile_url: str | None) -> dict[str, str]:
    images = "'self' data:" + (f" {tile_origin(tile_url)}" if tile_url else "")
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
