"""Debian's Chromium, headless, driven by Playwright for Python; screenshots kept as test artifacts.

Playwright's own browser downloads are never used: `make test` installs the `chromium` package.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Git-ignored: the screenshots of the last run, to look at after a failure (CI keeps the folder).
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@contextlib.contextmanager
def chromium_page(work_dir: Path, width: int = 1600, height: int = 1000, timeout_ms: int = 60_000) -> Iterator[Page]:
    """A page in a fresh headless Chromium profile under `work_dir`."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make test` does, as root)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            work_dir / "chromium-profile",
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            # Actions and `expect` wait for their selector up to this long (a loaded 2-core machine is slow).
            context.set_default_timeout(timeout_ms)
            expect.set_options(timeout=timeout_ms)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


class Screenshots:
    """Numbered screenshots of a page under `folder`, each also copied to artifacts/<name>/."""

    def __init__(self, page: Page, folder: Path, name: str) -> None:
        self.page, self.folder, self.count = page, folder, 0
        self.artifacts = ARTIFACTS / name
        shutil.rmtree(self.artifacts, ignore_errors=True)  # only this run's pictures
        self.folder.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)

    def take(self, what: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{what}.png"
        self.page.screenshot(path=path)
        shutil.copy2(path, self.artifacts / path.name)
        return path

    @contextlib.contextmanager
    def on_failure(self) -> Iterator[None]:
        """Keep a picture of the page as it was when a step failed."""
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.take("failure")
            raise
