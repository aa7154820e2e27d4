"""Screenshots of the exchange with its demo data (`make screenshots`): the home page on a
desktop, a lot's page on a phone, the buyer's page on both.

    python -m market.screenshots [FOLDER]      # default: screenshots/ (git-ignored)

It starts its own embedded PostgreSQL and Redis in a temporary folder on free ports (a
developer's .market/ and running servers are left alone), applies the migrations, seeds the
demo, serves the app as `market serve` does (granian) and photographs each page of `PAGES`
in headless Chromium (Playwright, as the browser tests do; MARKET_CHROMIUM or
/usr/bin/chromium). Everything it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from market.demo import DEMO_PASSWORD
from market.settings import ROOT, Settings

DESKTOP: Final = {"width": 1280, "height": 900}
PHONE: Final = {"width": 390, "height": 844}  # an everyday phone's CSS width
LOT: Final = "{lot}"  # stands for the first lot of the catalogue
BUYER: Final = "buyer@ipx.demo"  # the demo's approved buyer (market/demo.py)
# As root, without a GPU, and nothing reaching out to Google's hosts (the network is closed);
# the browser tests launch Chromium with the same.
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Shot:
    name: str  # the file's name, without .png
    path: str  # LOT stands for the first lot of the catalogue
    viewport: dict[str, int]
    login: str | None = None  # the demo user signed in, None: nobody


PAGES: Final[tuple[Shot, ...]] = (
    Shot("home-desktop", "/", DESKTOP),
    Shot("lot-phone", f"/lots/{LOT}", PHONE),
    Shot("buyer-desktop", "/my/activity", DESKTOP, BUYER),
    Shot("buyer-phone", "/my/activity", PHONE, BUYER),
)


def chromium() -> str:
    path = os.environ.get("MARKET_CHROMIUM", "/usr/bin/chromium")
    found = path if Path(path).exists() else shutil.which("chromium")
    if not found:
        raise SystemExit("Chromium is missing: install Debian's package 'chromium'")
    return found


async def shoot(base_url: str, folder: Path, pages: tuple[Shot, ...] = PAGES) -> list[Path]:
    """Photograph each page of a running exchange seeded with the demo; the PNGs written."""
    from playwright.async_api import async_playwright

    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    written = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            lot = await _first_lot(browser, base_url)
            for shot in pages:
                page = await browser.new_page(viewport=shot.viewport)  # type: ignore[arg-type]
                try:
                    if shot.login is not None:
                        await _sign_in(page, base_url, shot.login)
                    answer = await page.goto(base_url + shot.path.replace(LOT, lot))
                    if answer is None or answer.status != 200:
                        raise RuntimeError(f"{shot.path}: {answer and answer.status}")
                    target = folder / f"{shot.name}.png"
                    await page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                finally:
                    await page.close()
        finally:
            await browser.close()
    return written


async def _first_lot(browser: Any, base_url: str) -> str:
    page = await browser.new_page()
    try:
        await page.goto(base_url + "/lots")
        reference = await page.get_attribute("tr[data-reference]", "data-reference")
    finally:
        await page.close()
    if not reference:
        raise RuntimeError("the catalogue lists no lot: is the demo seeded?")
    return str(reference)


async def _sign_in(page: Any, base_url: str, email: str) -> None:
    await page.goto(base_url + "/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", DEMO_PASSWORD)
    await page.click("main form button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _demo_exchange(data_dir: Path) -> Iterator[str]:
    """Embedded services in `data_dir`, migrated and seeded, and the app served; its URL."""
    from market.cli import _migrate, resolved
    from market.demo import seed_demo

    base = Settings(
        data_dir=data_dir,
        pg_port=_free_port(),
        redis_port=_free_port(),
        secret_key="screenshots-" + "x" * 32,
    )
    with resolved(base) as settings:
        asyncio.run(_migrate(settings))
        asyncio.run(seed_demo(settings, force=True))
        asyncio.run(_more_of_the_buyer(settings))
        port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": settings.database_url or "",
            "REDIS_URL": settings.redis_url or "",
            "MARKET_SECRET_KEY": settings.secret_key,
            "MARKET_DATA_DIR": str(data_dir),
            "MARKET_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-ws"]
        proc = subprocess.Popen([*command, "market.asgi:app"], cwd=ROOT, env=env)  # noqa: S603
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _more_of_the_buyer(settings: Settings) -> None:
    from market import db
    from market.buyer.demo import seed_buyer_activity
    from market.clock import SystemClock

    assert settings.database_url
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        await seed_buyer_activity(pool, SystemClock(), settings)
    finally:
        await pool.close()


def _wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not start")


def _warn_without_chinese_fonts() -> None:
    """Without a CJK font Chromium draws Chinese as empty boxes: say so (the PNGs are still
    written; FONTCONFIG_FILE may point at a folder of fonts instead of installing one)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return
    found = subprocess.run(  # noqa: S603 - fontconfig's own lister
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=False
    )
    if not found.stdout.strip():
        print(
            "warning: no Chinese font: the pages' Chinese will show as boxes "
            "(Debian: apt-get install fonts-noto-cjk)",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", nargs="?", default="screenshots", type=Path)
    args = parser.parse_args(argv)
    _warn_without_chinese_fonts()
    with (
        tempfile.TemporaryDirectory(prefix="market-screenshots-") as tmp,
        _demo_exchange(Path(tmp)) as url,
    ):
        written = asyncio.run(shoot(url, args.folder))
    for path in written:
        print(f"{path}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
