"""Fixtures and helpers for the browser tests of the canvas (web/).

The PyPI playwright package's async API drives Debian's chromium (no `playwright
install`); the real server (`server.make_app`) runs in the test's event loop via
pytest-aiohttp, over a temporary data folder, serving the canvas's test build (web/dist-test,
built by `npm run build:test`: the production build has no ``window.__app`` test hook).
Import the fixtures into a test module: ``from tests.browser_support import canvas_fixture``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "web" / "dist-test"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class Canvas:
    """One browser page on a live server, with what went wrong collected."""

    page: Any
    url: str
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # console errors and warnings
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)  # types of the dialogs shown (accepted)

    def allow(self, pattern: str) -> None:
        """Expect a failing response (e.g. the 400 of a validation test)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    async def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def app(self, expr: str, arg: Any = None) -> Any:
        """Evaluate ``expr`` with ``app`` bound to the page's ``window.__app`` test hook."""
        script = f"(arg) => {{ const app = window.__app; return {expr}; }}"
        return await self.page.evaluate(script, arg)

    async def workflow(self) -> dict[str, Any]:
        return await self.app("app.workflow()")

    async def wait_app(self, expr: str, arg: Any = None, timeout: float = 15_000) -> Any:
        handle = await self.page.wait_for_function(
            f"(arg) => {{ const app = window.__app; return app && ({expr}); }}",
            arg=arg,
            timeout=timeout,
        )
        return await handle.json_value()

    async def request(self, method: str, path: str, data: Any = None) -> Any:
        """An API call as this page's client (its issued id), e.g. to read its jobs."""
        headers = {"X-Client-Id": await self.app("app.clientId")}
        kw: dict[str, Any] = {"headers": headers}
        if data is not None:
            kw["data"] = data
        return await self.page.request.fetch(f"{self.url}{path}", method=method, **kw)

    def node(self, node_id: str) -> Any:
        return self.page.locator(f'.react-flow__node[data-id="{node_id}"]')

    def handle(self, node_id: str, name: str) -> Any:
        return self.page.locator(
            f'.react-flow__handle[data-nodeid="{node_id}"][data-handleid="{name}"]'
        )

    async def connect(self, src: str, output: str, dst: str, input_: str) -> None:
        """Drag with the mouse from an output handle to an input handle."""
        a = await self.handle(src, output).bounding_box()
        b = await self.handle(dst, input_).bounding_box()
        assert a and b, f"handles {src}.{output} / {dst}.{input_} not on screen"
        mouse = self.page.mouse
        await mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
        await mouse.down()
        bx, by = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        await mouse.move((a["x"] + bx) / 2, (a["y"] + by) / 2, steps=5)
        await mouse.move(bx, by, steps=5)
        await mouse.up()

    async def load(self, doc: dict[str, Any]) -> None:
        """Replace the graph (as opening a file does) and wait until it is drawn."""
        await self.app("app.load(arg)", doc)
        await self.wait_app(
            "document.querySelectorAll('.react-flow__node').length === arg", len(doc["nodes"])
        )


def require_dist() -> None:
    if not (DIST / "index.html").is_file():
        pytest.fail(
            "web/dist-test is missing: build the canvas's test build first"
            " (cd web && npm ci && npm run build:test; ./dev.sh test does it)",
            pytrace=False,
        )


@pytest.fixture(name="models_dir")
def models_dir_fixture(tmp_path: Path) -> Path:
    """The server's (empty) models folder; tests may put checkpoints in it."""
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    return tmp_path / "models"


@pytest.fixture(name="live_url")
async def live_url_fixture(aiohttp_server: Any, tmp_path: Path, models_dir: Path) -> str:
    """The real server over a temporary data folder, serving web/dist."""
    require_dist()
    from server import ServerConfig, make_app

    config = ServerConfig(
        data_dir=tmp_path / "data",
        models_dir=models_dir,
        workflows_dir=ROOT / "workflows",
        web_dist=DIST,
    )
    server = await aiohttp_server(make_app(config), host="127.0.0.1")
    return str(server.make_url("/"))


@pytest.fixture(name="canvas")
async def canvas_fixture(live_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Canvas]:
    """A chromium page on the canvas with the default workflow loaded and drawn."""
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            async with open_canvas(browser, live_url, request.node.name) as c:
                yield c
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def open_canvas(browser: Any, url: str, name: str) -> AsyncIterator[Canvas]:
    """A fresh browser context (its own storage, so its own client id) on the canvas."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    c = Canvas(page, url)
    page.on("pageerror", lambda e: c.errors.append(f"pageerror: {e}"))
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and c.console.append(f"{m.type}: {m.text}"),
    )
    dialogs = c.dialogs
    page.on("dialog", lambda d: (dialogs.append(d.type), asyncio.ensure_future(d.accept())))
    page.on(
        "response",
        lambda r: r.status >= 400 and c.errors.append(f"{r.status} {r.request.method} {r.url}"),
    )
    try:
        await page.goto(url)
        await c.wait_app("app.ready && Object.keys(app.workflow().nodes).length > 0")
        await c.wait_app("app.connected()")
        yield c
    finally:
        await c.shot(f"{name}-end")
        await context.close()


# -- one server and one browser per test module -------------------------------------------
# For modules whose tests need no fresh server: import these instead of the fixtures above
# (same names) and mark the module ``pytest.mark.asyncio(loop_scope="module")``. Each test
# still gets its own browser context (fresh storage, its own client id and history).


@pytest_asyncio.fixture(name="models_dir", scope="module", loop_scope="module")
async def shared_models_dir_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("shared") / "models"
    (models / "checkpoints").mkdir(parents=True)
    return models


@pytest_asyncio.fixture(name="live_url", scope="module", loop_scope="module")
async def shared_live_url_fixture(models_dir: Path) -> AsyncIterator[str]:
    require_dist()
    from aiohttp.test_utils import TestServer

    from server import ServerConfig, make_app

    config = ServerConfig(
        data_dir=models_dir.parent / "data",
        models_dir=models_dir,
        workflows_dir=ROOT / "workflows",
        web_dist=DIST,
    )
    server = TestServer(make_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/"))
    finally:
        await server.close()


@pytest_asyncio.fixture(name="browser", scope="module", loop_scope="module")
async def shared_browser_fixture() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(name="canvas", loop_scope="module")
async def shared_canvas_fixture(
    browser: Any, live_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Canvas]:
    async with open_canvas(browser, live_url, request.node.name) as c:
        yield c


async def type_into(canvas: Canvas, locator: Any, text: str) -> None:
    """Replace a field's text by typing, as a person would."""
    await locator.click()
    await canvas.page.keyboard.press("Control+a")
    await canvas.page.keyboard.type(text)


def default_workflow() -> dict[str, Any]:
    return json.loads((ROOT / "workflows" / "txt2img.json").read_text())


async def layout_problems(page: Any) -> list[str]:
    """Overlapping or cut-off text on the page as it is drawn now (tests/layout_problems.js)."""
    return await page.evaluate((ROOT / "tests" / "layout_problems.js").read_text())
