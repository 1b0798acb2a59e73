"""Open every page of the rendered book in headless Chromium and check what a reader would see.

``python -m llmtheory.check_book [_build/html]`` (``make check-book``) fails, naming the page, when a page has a
JavaScript error, math that MathJax left untypeset, an image that does not load, a code block wider than its
column at 1200 px, a display equation that runs past its column (one may scroll inside its own block), a table
cell that reads NaN, an internal link or cross-reference whose target is missing, or a figure with a transparent
background (unreadable in the theme's dark mode). It saves screenshots of each whole page under
``_build/screenshots/`` for a person to look at: ``<page>-1.png``, ``<page>-2.png``, ... top to bottom, each at most
:data:`TILE_HEIGHT` px tall (:func:`tiles`), so that the end of a long chapter is captured too.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``) and selenium
(in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

WIDTH, HEIGHT = 1200, 900
TILE_HEIGHT = 16_000  # px per screenshot file: one PNG of a whole 40,000 px chapter is too tall to open or review
SKIPPED_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
# pydata-sphinx-theme logs this with console.error on a reader's first visit (no colour mode stored yet); it
# resets to "auto" and the page is unaffected. Every other console error counts.
KNOWN_CONSOLE_NOISE = ("Got invalid theme mode: . Resetting to auto.",)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

# Runs in the page: everything measured from the DOM after MathJax has finished.
MEASURE = """
const article = document.querySelector('article') || document.body;
const visible = el => !el.closest('details:not([open])') && el.offsetParent !== null;
const untypeset = [...article.querySelectorAll('.math')]
  .filter(el => !el.querySelector('mjx-container')).map(el => el.textContent.slice(0, 60));
const prose = [...article.querySelectorAll('p, li, td')]
  .filter(el => !el.closest('pre, code, .highlight, .cell_output'))
  .map(el => el.innerText).filter(t => /(^|[^\\\\$])\\$[^$\\s][^$]*[^$\\s\\\\]\\$/.test(t))
  .map(t => t.slice(0, 60));
const images = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
const wide = [...article.querySelectorAll('pre')].filter(visible)
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .map(p => `${p.scrollWidth - p.clientWidth} px over: ${p.innerText.split('\\n')[0].slice(0, 50)}`);
// a display equation may scroll inside its own block (book.css); it must not run past the column or be cut off
const right = article.getBoundingClientRect().right;
const equations = [...article.querySelectorAll('mjx-container[display="true"]')].filter(visible)
  .filter(m => m.getBoundingClientRect().right > right + 1 || (m.scrollWidth > m.clientWidth + 1
    && !['auto', 'scroll'].includes(getComputedStyle(m).overflowX)))
  .map(m => `${m.scrollWidth - m.clientWidth} px: ${(m.closest('div.math') || m).id || m.textContent.slice(0, 40)}`);
// pandas' marks for a missing value, where llmtheory.display shows "—" with a note saying why
const missing = [...article.querySelectorAll('td')].filter(td => /^\\s*(NaN|nan|NaT|<NA>)\\s*$/.test(td.innerText))
  .map(td => (td.closest('table').innerText || '').split('\\n')[0].slice(0, 50));
const links = [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.startsWith('file:'));
const figures = [...article.querySelectorAll('img')].map(i => i.src).filter(s => s.startsWith('file:'));
return {untypeset, prose, images, wide, equations, missing, links, figures};
"""

# A page with sections has a table of contents; at 1200 px book.css moves it out of the layout (a third column
# would leave code too little width), so it must be visible either beside the article or in the pop-up.
HAS_PAGE_TOC = "return document.querySelectorAll('.bd-toc-nav a, #pst-page-navigation-heading-2').length > 0;"
TOC_SHOWN = """
const visible = el => el && el.getBoundingClientRect().width > 0 && getComputedStyle(el).visibility === 'visible';
const column = document.getElementById('pst-secondary-sidebar');
const popup = document.getElementById('pst-secondary-sidebar-modal');
return visible(column) || (popup && popup.open && visible(popup) && popup.innerText.trim().length > 0);
"""

WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(() => done(true)).catch(() => done(false));
} else { done(null); }
"""


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)


def book_pages(html_dir: Path) -> list[Path]:
    """Every page of the book, without Sphinx's own (index, search) and static files."""
    return sorted(
        p
        for p in html_dir.rglob("*.html")
        if not {"_static", "_sources", "_images"} & set(p.relative_to(html_dir).parts)
        and p.name not in SKIPPED_PAGES
        and not is_redirect(p)
    )


def is_redirect(page: Path) -> bool:
    """Jupyter Book's root ``index.html``: a bare meta refresh to the first page (no body to check)."""
    head = page.read_text(errors="replace")[:300].lstrip().lower()
    return head.startswith('<meta http-equiv="refresh"')


def driver():
    """Headless Chromium at 1200 px, its console logged, with no background network traffic."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def transparent_fraction(png: Path) -> float:
    """The fraction of a PNG's pixels that are mostly transparent (0 for an image without alpha)."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as image:
        if "A" not in image.getbands():
            return 0.0
        alpha = np.asarray(image.getchannel("A"))
    return float((alpha < 128).mean())


_ID_CACHE: dict[Path, set[str]] = {}


def _ids(page: Path) -> set[str]:
    if page not in _ID_CACHE:
        _ID_CACHE[page] = set(re.findall(r'\bid="([^"]+)"', page.read_text(errors="replace")))
    return _ID_CACHE[page]


def broken_link(url: str) -> str | None:
    """Why a ``file:`` link is broken (its file or its anchor is missing), or None."""
    parsed = urlparse(url)
    target = Path(unquote(parsed.path))
    if not target.exists():
        return f"missing file {target.name}"
    if parsed.fragment and target.suffix == ".html" and unquote(parsed.fragment) not in _ids(target):
        return f"missing anchor #{parsed.fragment} in {target.name}"
    return None


def check_page(browser, page: Path, html_dir: Path, screenshots: Path) -> PageReport:
    report = PageReport(str(page.relative_to(html_dir)))
    browser.get(page.as_uri())
    if browser.execute_async_script(WAIT_FOR_MATHJAX) is False:
        report.problems.append("MathJax failed to start")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    errors = [m for m in errors if "favicon" not in m and not any(noise in m for noise in KNOWN_CONSOLE_NOISE)]
    report.problems += [f"JavaScript error: {m[:160]}" for m in errors]
    found = browser.execute_script(MEASURE)
    report.problems += [f"untypeset math: {t}" for t in found["untypeset"]]
    report.problems += [f"dollar math left in the text: {t}" for t in found["prose"]]
    report.problems += [f"image does not load: {src}" for src in found["images"]]
    report.problems += [f"code wider than its column at {WIDTH} px: {w}" for w in found["wide"]]
    report.problems += [f"equation runs past its column at {WIDTH} px: {e}" for e in found["equations"]]
    report.problems += [f"table shows NaN instead of a dash (llmtheory.display): {t}" for t in found["missing"]]
    for url in sorted(set(found["links"])):
        if why := broken_link(url):
            report.problems.append(f"broken link {url.split('/')[-1]}: {why}")
    for src in sorted(set(found["figures"])):
        path = Path(unquote(urlparse(src).path))
        if path.suffix.lower() == ".png" and path.is_file() and transparent_fraction(path) > 0.2:
            report.problems.append(f"figure with a transparent background (dark mode): {path.name}")
    save_screenshots(full_page(browser), screenshots, report.page.replace("/", "__").removesuffix(".html"))
    if browser.execute_script(HAS_PAGE_TOC) and not page_toc_reachable(browser):
        report.problems.append("the page's table of contents cannot be opened at 1200 px")
    return report


def page_toc_reachable(browser) -> bool:
    """The page's table of contents is shown beside the article, or opens from a visible button."""
    if browser.execute_script(TOC_SHOWN):
        return True
    buttons = [b for b in browser.find_elements("css selector", ".secondary-toggle") if b.is_displayed()]
    if not buttons:
        return False
    buttons[0].click()
    return bool(browser.execute_script(TOC_SHOWN))


def tiles(height: int, tile: int = TILE_HEIGHT) -> list[tuple[int, int]]:
    """``(top, height)`` of the screenshots that cover a page ``height`` px tall, top to bottom, without gaps or
    overlaps; each is ``tile`` px tall but the last, which takes the rest."""
    if tile < 1:
        raise ValueError(f"tile={tile} px: a screenshot tile must be at least 1 px tall")
    height = max(int(height), 1)
    return [(top, min(tile, height - top)) for top in range(0, height, tile)]


def full_page(browser) -> list[bytes]:
    """PNGs of the whole page at the checked width, one per :func:`tiles` tile.

    The viewport is stretched to the page's height, so the page is laid out as one long screen (the theme's
    sticky header and sidebars appear once, at the top, not over every tile); each tile is a clip of it.
    """
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        shots = []
        for top, tall in tiles(height):
            clip = {"x": 0, "y": top, "width": WIDTH, "height": tall, "scale": 1}
            shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": clip})
            shots.append(base64.b64decode(shot["data"]))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return shots


def save_screenshots(pngs: list[bytes], folder: Path, name: str) -> list[Path]:
    """Write ``<name>-1.png``, ``<name>-2.png``, ... in ``folder``, after removing the page's screenshots of an
    earlier run (a page that got shorter would otherwise keep its old last tiles)."""
    stale = re.compile(rf"{re.escape(name)}(-\d+)?\.png")
    for old in folder.glob(f"{name}*.png"):
        if stale.fullmatch(old.name):
            old.unlink()
    paths = [folder / f"{name}-{i}.png" for i in range(1, len(pngs) + 1)]
    for path, png in zip(paths, pngs, strict=True):
        path.write_bytes(png)
    return paths


def check_book(html_dir: Path, screenshots: Path) -> list[PageReport]:
    """Check every page; return one report per page."""
    if not (html_dir / "index.html").is_file():
        raise FileNotFoundError(f"no rendered book at {html_dir}: run `make book` first")
    screenshots.mkdir(parents=True, exist_ok=True)
    browser = driver()
    try:
        return [check_page(browser, page, html_dir, screenshots) for page in book_pages(html_dir)]
    finally:
        browser.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmtheory.check_book", description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", default="_build/html")
    parser.add_argument("--screenshots", default="_build/screenshots")
    args = parser.parse_args(argv)
    reports = check_book(Path(args.html).resolve(), Path(args.screenshots))
    bad = [r for r in reports if r.problems]
    for r in reports:
        print(f"{'FAIL' if r.problems else 'ok  '} {r.page}")
        for problem in r.problems[:20]:
            print(f"       {problem}")
        if len(r.problems) > 20:
            print(f"       ... and {len(r.problems) - 20} more")
    print(f"{len(reports) - len(bad)} of {len(reports)} pages pass; screenshots in {args.screenshots}/")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
