"""Headless Chromium for the page tests: Debian's `chromium` (make toolchain) driven by Playwright.

`require()` skips a test when Chromium or Playwright is missing, and fails it under CI=true (where
`make toolchain` and the dev extras must have installed both). `look_at(page_path, shots, name)` opens
an HTML file, waits until it has loaded, saves screenshots (the top of the page as a reader first sees
it, and the whole page) under `shots`, and returns what a test asserts on: the headings, the sections,
each table's caption, header and size, each image's load state and sizes, and the page's width.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root, without a sandbox; no background traffic (this machine has no network but the registries).
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 1000}
SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"  # kept by CI as artifacts


def require() -> None:
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append("chromium (make toolchain)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    if missing:
        message = f"the browser tests need {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


PAGE_FACTS = """() => ({
  title: document.title,
  headings: Array.from(document.querySelectorAll('h1, h2')).map(h => h.textContent.trim()),
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
  summary: Array.from(document.querySelectorAll('#summary li')).map(li => li.textContent.trim()),
  warnings: Array.from(document.querySelectorAll('#warnings li')).map(li => li.textContent.trim()),
  tables: Array.from(document.querySelectorAll('table')).map(t => ({
    id: t.id,
    caption: t.caption ? t.caption.textContent.trim() : '',
    header: Array.from(t.querySelectorAll('thead th, tr:first-child th')).map(th => th.textContent.trim()),
    rows: t.querySelectorAll('tbody tr').length,
    cells: Array.from(t.querySelectorAll('tbody tr')).map(tr => Array.from(tr.cells).map(c => c.textContent.trim())),
  })),
  images: Array.from(document.images).map(i => ({
    src: i.getAttribute('src'), complete: i.complete, natural: i.naturalWidth, shown: i.clientWidth,
    alt: i.alt, caption: i.closest('figure')?.querySelector('figcaption')?.textContent.trim() || '',
  })),
  details_open: Array.from(document.querySelectorAll('details')).map(d => d.open),
  page_width: document.documentElement.scrollWidth,
  viewport_width: window.innerWidth,
  height: document.documentElement.scrollHeight,
})"""


def look_at(browser: Any, page_path: Path, shots: Path, name: str) -> dict[str, Any]:
    """Open `page_path`, screenshot it to shots/NAME-top.png and shots/NAME-page.png, return its facts."""
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(Path(page_path).resolve().as_uri(), wait_until="load")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        facts = page.evaluate(PAGE_FACTS)
        page.screenshot(path=shots / f"{name}-top.png")
        page.screenshot(path=shots / f"{name}-page.png", full_page=True)
        facts["shots"] = [shots / f"{name}-top.png", shots / f"{name}-page.png"]
        return facts
    finally:
        page.close()
