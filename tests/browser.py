"""Pages opened the way a person opens them: headless Chromium (the system's, driven by
Playwright), a window of a given size, and a record of every request the page makes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def opened(url: str, width: int = 1400, height: int = 900, offline: bool = True,
           headers: dict[str, str] | None = None) -> Iterator[tuple[object, list[str]]]:
    """``(page, requested)``: ``url`` loaded in a ``width`` × ``height`` window (with no network
    when ``offline``), and the list of URLs it has requested so far."""
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=offline, viewport={"width": width, "height": height},
                                          extra_http_headers=headers or {})
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url, wait_until="load")
            yield page, requested
        finally:
            browser.close()
