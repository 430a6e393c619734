"""The console's Content-Security-Policy lets images come from the tile host only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.console.headers import security_headers, tile_origin
from backend.settings import ConsoleSettings

PDOK = "https://service.pdok.nl/brt/achtergrondkaart/wmts/v2_0/standaard/EPSG:3857/{z}/{x}/{y}.png"


def _images(tile_url: str | None) -> str:
    policy = security_headers(tile_url)["Content-Security-Policy"]
    [images] = [d.strip() for d in policy.split(";") if d.strip().startswith("img-src")]
    return images


def test_images_come_from_this_server_and_the_tile_host_only():
    assert _images(PDOK) == "img-src 'self' data: https://service.pdok.nl"
    assert _images(None) == "img-src 'self' data:"
    assert _images("http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png") == (
        "img-src 'self' data: http://127.0.0.1:8080")


def test_a_tile_url_keeps_no_credentials_in_the_policy():
    assert tile_origin("https://user:pw@tiles.example.nl/{z}/{x}/{y}.png") == (
        "https://tiles.example.nl")


@pytest.mark.parametrize("bad", [
    "tiles.example.nl/{z}/{x}/{y}.png",            # no scheme
    "ftp://tiles.example.nl/{z}/{x}/{y}.png",      # not http(s)
    "https:///{z}/{x}/{y}.png",                    # no host
    "https://tiles.example.nl; script-src *",      # would add to the policy
    "https://a.nl,https://b.nl/{z}/{x}/{y}.png",
])
def test_a_tile_url_that_is_no_single_http_origin_is_refused_at_start(bad):
    with pytest.raises(ValidationError, match="tile URL"):
        ConsoleSettings(tile_url=bad)
    assert ConsoleSettings(tile_url=PDOK).tile_url == PDOK
