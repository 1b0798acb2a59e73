"""The browser check's pure parts (no browser needed): which pages it opens, links, transparent figures and how
a page's screenshot is cut into tiles."""

import itertools

import numpy as np
import pytest
from PIL import Image

from llmtheory.check_book import TILE_HEIGHT, book_pages, broken_link, save_screenshots, tiles, transparent_fraction


def test_pages_skip_sphinx_indexes_and_static_files(tmp_path):
    for name in ("index.html", "book/intro.html", "genindex.html", "search.html", "_static/x.html"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("<html></html>")
    assert [p.relative_to(tmp_path).as_posix() for p in book_pages(tmp_path)] == ["book/intro.html", "index.html"]
    # Jupyter Book's root index is a bare redirect to the first page: nothing to check there
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />\n')
    assert [p.relative_to(tmp_path).as_posix() for p in book_pages(tmp_path)] == ["book/intro.html"]


def test_broken_links_name_the_missing_file_or_anchor(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<h1 id="top">x</h1>')
    assert broken_link(page.as_uri() + "#top") is None
    assert "missing anchor #gone" in broken_link(page.as_uri() + "#gone")
    assert "missing file" in broken_link((tmp_path / "other.html").as_uri())


def test_a_transparent_figure_is_measured(tmp_path):
    opaque, clear = tmp_path / "opaque.png", tmp_path / "clear.png"
    Image.new("RGB", (10, 10), "white").save(opaque)
    pixels = np.zeros((10, 10, 4), dtype=np.uint8)
    pixels[:5, :, 3] = 255
    Image.fromarray(pixels, "RGBA").save(clear)
    assert transparent_fraction(opaque) == 0.0
    assert transparent_fraction(clear) == 0.5


@pytest.mark.parametrize(
    "height", [1, 900, TILE_HEIGHT - 1, TILE_HEIGHT, TILE_HEIGHT + 1, 29_999, 30_000, 47_312, 120_000]
)
def test_screenshot_tiles_cover_the_whole_page_without_gaps_or_overlaps(height):
    cut = tiles(height)
    assert cut[0][0] == 0 and sum(tall for _, tall in cut) == height
    assert all(top + tall == next_top for (top, tall), (next_top, _) in itertools.pairwise(cut))
    assert all(0 < tall <= TILE_HEIGHT for _, tall in cut)
    assert len(cut) == -(-height // TILE_HEIGHT), "as few tiles as the limit allows"


def test_a_page_past_the_old_30000_px_cap_is_captured_to_its_end():
    assert tiles(47_312) == [(0, 16_000), (16_000, 16_000), (32_000, 15_312)]
    assert tiles(10, tile=4) == [(0, 4), (4, 4), (8, 2)]
    assert tiles(0) == [(0, 1)], "an empty page still gets one (1 px) screenshot"
    with pytest.raises(ValueError, match="tile=0"):
        tiles(100, tile=0)


def test_screenshots_are_numbered_and_replace_an_earlier_runs(tmp_path):
    for stale in ("notebooks__clse.png", "notebooks__clse-1.png", "notebooks__clse-3.png"):
        (tmp_path / stale).write_bytes(b"old")
    (tmp_path / "notebooks__clse_extra-1.png").write_bytes(b"another page")
    paths = save_screenshots([b"a", b"b"], tmp_path, "notebooks__clse")
    assert [p.name for p in paths] == ["notebooks__clse-1.png", "notebooks__clse-2.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notebooks__clse-1.png",
        "notebooks__clse-2.png",
        "notebooks__clse_extra-1.png",
    ]
    assert (tmp_path / "notebooks__clse-2.png").read_bytes() == b"b"
