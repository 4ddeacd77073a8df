"""Check in headless Chromium that a report artifact's plots show as images in the Prefect UI.

tasks/report.py inlines every plot as a `data:image/png;base64,...` markdown image, so the UI
needs no file server to show it. Both of Prefect's UIs pass artifact markdown through a
sanitiser (V2: react-markdown with rehype-sanitize; V1: marked) that could strip such URIs and
leave an empty <img> or bare alt text. Only a browser can tell, so this opens the newest
artifact under a key in each UI, polls (bounded) until every inline image of its markdown is an
<img> that kept its data: URI, decoded (naturalWidth > 0) and is laid out (width > 0), and saves
a screenshot per UI:

    python tools/check_report_renders.py --api-url http://127.0.0.1:4200/api

Exits 0 when every image renders in every UI checked, else 1 with the reason. Needs the
`ui-check` extra (Playwright) and a system Chromium (Debian: `apt-get install chromium`); it
never downloads a browser, and it aborts every request that would leave the server (the V2 UI
calls an analytics host).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Browser, Page, Route

    RouteHandler = Callable[[Route], None]

CHROMIUM = Path("/usr/bin/chromium")
# Headless without a sandbox (root in a container), and nothing that phones home: the machine's
# network is closed and a browser's background traffic would only flood it with retries.
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
UI_VERSIONS = ("v1", "v2")
# Tall enough that V1, which scrolls an inner pane rather than the page, shows the plots too.
VIEWPORT_HEIGHT = 2400
HTTP_SECONDS = 10.0
POLL_MS = 500
INLINE_IMAGE = re.compile(r"!\[([^\]]*)\]\(data:image/")
# One snapshot of each expected image, found by its alt text: a sanitiser that strips the src
# keeps the alt, so a stripped image shows up as found with no data: src.
SNAPSHOT_JS = """(alts) => alts.map((alt) => {
  const img = [...document.querySelectorAll("img")].find((i) => i.alt === alt);
  if (!img) return {alt, found: false};
  return {
    alt, found: true, src: (img.getAttribute("src") || "").slice(0, 40),
    naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
    width: img.getBoundingClientRect().width, html: img.outerHTML.slice(0, 160),
  };
})"""


class CheckFailed(Exception):
    """Why the report does not render; main prints it as the failure message."""


@dataclass(frozen=True)
class Artifact:
    id: str
    key: str
    markdown: str

    @property
    def image_alts(self) -> list[str]:
        return INLINE_IMAGE.findall(self.markdown)


def latest_artifact(api_url: str, key: str) -> Artifact:
    """The newest artifact under `key`.

    Not `GET /artifacts/{key}/latest`: that returns the artifact *collection*, whose id the UI's
    artifact page answers with "Artifact not found".
    """
    response = httpx.post(
        f"{api_url}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1},
        timeout=HTTP_SECONDS,
    )
    response.raise_for_status()
    found = response.json()
    if not found:
        raise CheckFailed(f"no artifact with key {key!r} at {api_url}")
    return Artifact(id=found[0]["id"], key=key, markdown=str(found[0]["data"]))


def origin_of(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def artifact_pages(origin: str, artifact_id: str, versions: list[str]) -> dict[str, str]:
    """The artifact's page in each UI, from the server's /ui-settings (it knows the base paths)."""
    response = httpx.get(f"{origin}/ui-settings", timeout=HTTP_SECONDS)
    if response.status_code != httpx.codes.OK:
        raise CheckFailed(
            f"{origin}/ui-settings answered {response.status_code}: this server serves no UI "
            "(started with --no-ui?)"
        )
    settings = response.json()
    missing = [version for version in versions if version not in settings["available_uis"]]
    if missing:
        raise CheckFailed(f"{origin} serves UIs {settings['available_uis']}, not {missing}")
    return {
        version: f"{origin}{settings[f'{version}_base_url'].rstrip('/')}/artifacts/artifact/"
        f"{artifact_id}"
        for version in versions
    }


def rendered(image: dict[str, Any]) -> bool:
    return bool(
        image["found"]
        and image["src"].startswith("data:image/")
        and image["naturalWidth"] > 0
        and image["width"] > 0
    )


def describe(image: dict[str, Any]) -> str:
    if not image["found"]:
        return f"{image['alt']!r}: no <img> with that alt text"
    if rendered(image):
        return f"{image['alt']!r}: {image['naturalWidth']}x{image['naturalHeight']} px"
    return f"{image['alt']!r}: not rendered: {image['html']}"


def wait_for_images(page: Page, url: str, alts: list[str], seconds: float) -> list[dict[str, Any]]:
    """Open `url` and poll until every image has rendered on two polls in a row.

    Two in a row because the V2 UI renders the markdown, rewrites its URL (`?tab=Artifact`) and
    renders again: a single early match can be gone a moment later.
    """
    page.goto(url, wait_until="domcontentloaded")  # the UI fetches the artifact after that
    deadline = time.monotonic() + seconds
    settled = False
    while True:
        images: list[dict[str, Any]] = page.evaluate(SNAPSHOT_JS, alts)
        if all(rendered(image) for image in images):
            if settled:
                return images
            settled = True
        else:
            settled = False
        if time.monotonic() > deadline:
            raise CheckFailed(
                f"{url}: not every image rendered within {seconds:g} s:\n  "
                + "\n  ".join(describe(image) for image in images)
            )
        page.wait_for_timeout(POLL_MS)


def check_ui(
    browser: Browser, url: str, alts: list[str], shot: Path, seconds: float, route: RouteHandler
) -> str:
    """One UI in a fresh context: wait for the images, screenshot whatever the page then shows."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(viewport={"width": 1280, "height": VIEWPORT_HEIGHT})
    context.route("**/*", route)
    page = context.new_page()
    try:
        images = wait_for_images(page, url, alts, seconds)
    except PlaywrightError as error:
        raise CheckFailed(f"{url}: {error}") from None
    finally:
        page.screenshot(path=shot, full_page=True)
        context.close()
    return f"{len(images)} images rendered at {url} ({'; '.join(map(describe, images))})"


def check(args: argparse.Namespace) -> list[str]:
    """Check each UI in turn; return one line per UI for the success message."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise CheckFailed("Playwright is missing: pip install -e '.[ui-check]'") from error
    if not args.chromium.is_file():
        raise CheckFailed(f"no Chromium at {args.chromium} (Debian: apt-get install chromium)")

    artifact = latest_artifact(args.api_url, args.key)
    alts = artifact.image_alts
    if not alts:
        raise CheckFailed(f"artifact {artifact.id} ({artifact.key}) has no inline images")
    origin = origin_of(args.api_url)
    pages = artifact_pages(origin, artifact.id, args.ui)
    blocked: set[str] = set()

    def local_only(route: Route) -> None:
        if origin_of(route.request.url) == origin:
            route.continue_()
        else:
            blocked.add(httpx.URL(route.request.url).host)
            route.abort()

    lines, failures = [], []
    args.screenshot_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            # Every UI even after a failure: their sanitisers differ, so their answers may too.
            for version, url in pages.items():
                shot = args.screenshot_dir / f"report-render-{version}.png"
                try:
                    found = check_ui(browser, url, alts, shot, args.timeout, local_only)
                    lines.append(f"{version} UI: {found}; screenshot {shot}")
                except CheckFailed as error:
                    failures.append(f"{version} UI: {error}\n  screenshot {shot}")
        finally:
            browser.close()
    if failures:
        raise CheckFailed("\n".join(failures))
    if blocked:
        lines.append(f"aborted requests to other hosts: {', '.join(sorted(blocked))}")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--api-url",
        default=os.environ.get("PREFECT_API_URL"),
        required="PREFECT_API_URL" not in os.environ,
        help="the server's API, e.g. http://127.0.0.1:4200/api (default: $PREFECT_API_URL)",
    )
    parser.add_argument("--key", default="energy-report", help="artifact key (energy-report)")
    parser.add_argument(
        "--ui", action="append", choices=UI_VERSIONS, help="UI to check; repeatable (both)"
    )
    parser.add_argument("--screenshot-dir", type=Path, default=Path("."))
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds per UI for the images to render once the page has loaded (60)",
    )
    parser.add_argument("--chromium", type=Path, default=CHROMIUM)
    args = parser.parse_args(argv)
    args.api_url = args.api_url.rstrip("/")
    args.ui = args.ui or list(UI_VERSIONS)
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        lines = check(parse_args(argv))
    except (CheckFailed, httpx.HTTPError) as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    print("\n".join(["OK", *lines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
