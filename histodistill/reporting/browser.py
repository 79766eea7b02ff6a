"""A screenshot of an HTML file (the snakemake report) opened in headless Chromium.

    python -m histodistill.reporting.browser report.html report.png [--width 1400] [--height 1000]

Uses Debian's `chromium` (or Google Chrome) from PATH; the report is a JavaScript page, so Chromium is given a
virtual-time budget to render it before the picture is taken.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from histodistill.base.errors import HistodistillError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str:
    """Path of the first Chromium-family browser on PATH; an error saying how to install one otherwise."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise HistodistillError(
        "no Chromium found on PATH (looked for " + ", ".join(BROWSERS) + "); install Debian's package: "
        "`sudo apt-get install chromium`"
    )


def screenshot_command(browser: str, html: Path, png: Path, width: int, height: int, profile: Path) -> list[str]:
    return [
        browser,
        "--headless",
        "--no-sandbox",  # root in containers and CI
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",  # let the report's JavaScript render
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        html.resolve().as_uri(),
    ]


def screenshot(html: str | Path, png: str | Path, width: int = 1400, height: int = 1000, timeout: int = 120) -> Path:
    """Open `html` in headless Chromium and save what it shows as `png`; returns the PNG's path."""
    html, png = Path(html), Path(png).resolve()
    if not html.exists():
        raise HistodistillError(f"{html}: no such file; build the report first (`make report`)")
    browser = find_browser()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="histodistill-chromium-") as profile:
        cmd = screenshot_command(browser, html, png, width, height, Path(profile))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not png.exists():
        raise HistodistillError(
            f"{browser} could not take the screenshot (exit {proc.returncode}): {proc.stderr[-500:]}"
        )
    return png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html")
    ap.add_argument("png")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args()
    try:
        print(screenshot(args.html, args.png, args.width, args.height))
    except HistodistillError as exc:
        raise SystemExit(f"histodistill error: {exc}")


if __name__ == "__main__":
    main()
