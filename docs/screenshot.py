"""Screenshot a dashboard page with the system's Chromium: ``python docs/screenshot.py URL OUT``.

docs/dashboard.png was made so: `gitsync serve --port 0`, the examples applied to it, the
sales_etl workflow triggered from its page and run to the end, then its page shot.
"""

from __future__ import annotations

import shutil
import sys

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main(url: str, out: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 820})
        page.goto(url)
        page.screenshot(path=out, full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
