"""screenshots.py: the demo page at the screen sizes it is made for, in headless Chromium.

    PYTHONPATH=$PWD .venv/bin/python demo/screenshots.py [--data DIR] [--out FOLDER]

Serves the page (demo/serve.py) on data/ (or DIR) and saves one PNG per size in SIZES to FOLDER
(default /tmp/demo-screenshots), to be looked at; with `--readme` it also writes the README's
picture, demo/screenshot.png (1366×768). tests/test_demo.py checks the page at the same sizes.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

DEMO_DIR = Path(__file__).resolve().parent

# name: (CSS viewport width, height, device pixel ratio); a 1920×1080 screen zoomed to 150% is
# a 1280×720 CSS viewport at 1.5 device pixels per CSS pixel, a 720p projector zoomed to 125% or
# 150% one of 1024×576 or 853×480.
SIZES = {
    "1280x720": (1280, 720, 1),
    "1366x768": (1366, 768, 1),
    "1024x768": (1024, 768, 1),
    "1920x1080": (1920, 1080, 1),
    "1920x1080-zoom150": (1280, 720, 1.5),
    "1280x720-projector": (1280, 720, 1),
    "1024x768-projector": (1024, 768, 1),
    "1024x576-zoom125": (1024, 576, 1.25),
    "853x480-zoom150": (853, 480, 1.5),
    "390x844": (390, 844, 3),
    "360x740": (360, 740, 3),
    "844x390": (844, 390, 3),
}
PHONES = ("390x844", "360x740")  # held upright: one column
SHORT = ("1024x576-zoom125", "853x480-zoom150", "844x390")  # the pad and digits in view, scrolls
TOUCH = (*PHONES, "844x390")
PROJECTOR = ("1280x720-projector", "1024x768-projector")  # opened in projector mode
ONE_SCREEN = tuple(size for size in SIZES if size not in PHONES + SHORT)
README_SIZE = "1366x768"


def load_script(path: Path) -> ModuleType:
    """A script of the repository as a module (demo/ and tests/ are folders, not packages)."""
    spec = importlib.util.spec_from_file_location(f"demo_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_server() -> ModuleType:
    """demo/serve.py, the server of `make demo`, as a module."""
    return load_script(DEMO_DIR / "serve.py")


def open_page(browser, url: str, size: str):
    """A new tab of `size` on `url`, once the page has drawn (or shown its error)."""
    width, height, ratio = SIZES[size]
    page = browser.new_page(
        viewport={"width": width, "height": height},
        device_scale_factor=ratio,
        has_touch=size in TOUCH,
        is_mobile=size in TOUCH,
    )
    page.goto(f"{url}?projector" if size in PROJECTOR else url)
    page.wait_for_function("window.demoState !== undefined", timeout=60_000)
    return page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO_DIR.parent / "data")
    parser.add_argument("--out", type=Path, default=Path("/tmp/demo-screenshots"))
    parser.add_argument("--readme", action="store_true", help="also write demo/screenshot.png")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    serve = load_server()
    httpd, base = serve.serve_in_thread(serve.Site(DEMO_DIR.parent, {"": args.data}))
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = load_script(DEMO_DIR.parent / "tests" / "browser.py").launch_chromium(
                playwright
            )
            for size in SIZES:
                page = open_page(browser, f"{base}/demo/", size)
                page.screenshot(path=args.out / f"{size}.png")
                if args.readme and size == README_SIZE:
                    page.screenshot(path=DEMO_DIR / "screenshot.png")
                page.close()
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    print(f"screenshots of {', '.join(SIZES)} in {args.out}")


if __name__ == "__main__":
    main()
