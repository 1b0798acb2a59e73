"""The browser check's pure parts (no browser needed): which pages it opens, links and transparent figures."""

import numpy as np
from PIL import Image

from llmtheory.check_book import book_pages, broken_link, transparent_fraction


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
