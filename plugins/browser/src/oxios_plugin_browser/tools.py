"""Browser tools for agents. Each agent works in its own tabs (its own browser context)."""

from __future__ import annotations

import asyncio
import json
import time
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from oxios.security.sandbox import sandbox_for
from oxios_hookspecs import Action, ActionContext, ToolResult

from .engine import BrowserEngine, BrowserError
from .guard import Blocked

MAX_JSON_CHARS = 50_000


@cache
def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _engine(context: ActionContext) -> BrowserEngine:
    engine = context.kernel.services.get("browser") if context.kernel is not None else None
    if engine is None:
        raise BrowserError("the browser service is not running")
    return engine


def _owner(context: ActionContext) -> str:
    return context.agent_id or context.session_id or "default"


def _json(value: Any) -> ToolResult:
    text = json.dumps(value, indent=1, default=str)
    if len(text) > MAX_JSON_CHARS:
        text = text[:MAX_JSON_CHARS] + f"\n[truncated at {MAX_JSON_CHARS} characters]"
    return ToolResult(content=text, data=value)


def _failure(engine: BrowserEngine | None, err: Exception) -> ToolResult:
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "ERR_BLOCKED_BY_CLIENT" in message and engine is not None and engine.guard.blocked:
        last = engine.guard.blocked[-1]
        return ToolResult.error(f"blocked by the SSRF guard: {last['url']}: {last['reason']}")
    if engine is not None and not engine.running and engine.launches:
        return ToolResult.error(f"the browser stopped ({message}); it is relaunched on the next call")
    return ToolResult.error(message)


async def _run(context: ActionContext, action: Any) -> ToolResult:
    """Run ``action(engine)`` turning every browser failure into a tool error."""
    from playwright.async_api import Error as PlaywrightError

    engine: BrowserEngine | None = None
    try:
        engine = _engine(context)
        return await action(engine)
    except (BrowserError, Blocked, PermissionError) as err:
        return ToolResult.error(str(err))
    except PlaywrightError as err:
        return _failure(engine, err)


MAX_REDIRECTS = 10


async def _authorize_navigation(engine: BrowserEngine, context: ActionContext, url: str) -> None:
    await engine.guard.check(url)  # scheme, host and address first: a clear error before any policy prompt
    auth = await context.kernel.authorize(Action(kind="url", url=url, name="browser.navigate"), context)
    allowed, reason = auth.allowed, auth.reason
    if not allowed:
        raise PermissionError(f"navigation to {url} denied: {reason}")
    if engine.settings.robots_txt and not await engine.guard.robots_allows(url, engine.settings.robots_user_agent):
        raise BrowserError(
            f"robots.txt of {url} disallows it for {engine.settings.robots_user_agent} (plugins.browser.robots_txt)"
        )


async def _navigate(engine: BrowserEngine, context: ActionContext, url: str, *, new_tab: bool = False) -> Any:
    url = url.strip()
    await _authorize_navigation(engine, context, url)
    owner = _owner(context)
    page = await engine.new_tab(owner) if new_tab else await engine.current_page(owner)
    response = await page.goto(url, wait_until="domcontentloaded")
    response = await _follow_redirects(engine, context, page, response)
    (await engine.session(owner)).touch()
    return page, response


async def _follow_redirects(engine: BrowserEngine, context: ActionContext, page: Any, response: Any) -> Any:
    """Follow document redirects the guard held back, each one a checked navigation."""
    for _ in range(MAX_REDIRECTS):
        target = engine.guard.redirects.pop(page.url, None)
        if target is None:
            return response
        await _authorize_navigation(engine, context, target)
        response = await page.goto(target, wait_until="domcontentloaded")
    raise BrowserError(f"more than {MAX_REDIRECTS} redirects")


async def _markdown(engine: BrowserEngine, page: Any) -> ToolResult:
    data = await page.evaluate(_script("page.js"))
    limit = engine.settings.max_markdown_chars
    body = data["markdown"]
    if len(body) > limit:
        body = body[:limit] + f"\n\n[page text truncated at {limit} characters]"
    links = "\n".join(
        f"[{i}]: {link['href']}" + (f' "{link["text"]}"' if link["text"] else "") for i, link in enumerate(data["links"][:200], 1)
    )
    text = f"# {data['title']}\n\nURL: {data['url']}\n\n{body}\n"
    if links:
        text += f"\n## Links\n\n{links}\n"
    return ToolResult(content=text, data={"title": data["title"], "url": data["url"], "links": data["links"][:200]})


async def browse(url: str, context: ActionContext) -> ToolResult:
    """Open a web page and return it as Markdown: title, readable text and numbered links."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page, response = await _navigate(engine, context, url)
        result = await _markdown(engine, page)
        if response is not None and response.status >= 400:
            result.content = f"(HTTP {response.status})\n\n" + result.content
        return result

    return await _run(context, act)


async def browser_goto(url: str, context: ActionContext, new_tab: bool = False) -> ToolResult:
    """Navigate the current tab (or a new tab) to a URL; returns status, final URL and title."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page, response = await _navigate(engine, context, url, new_tab=new_tab)
        return _json({"url": page.url, "status": response.status if response else None, "title": await page.title()})

    return await _run(context, act)


async def browser_read(context: ActionContext) -> ToolResult:
    """Return the current tab as Markdown (after clicks or typing changed it)."""

    async def act(engine: BrowserEngine) -> ToolResult:
        return await _markdown(engine, await engine.current_page(_owner(context), create=False))

    return await _run(context, act)


async def browser_click(selector: str, context: ActionContext) -> ToolResult:
    """Click the element matching a CSS or text selector (e.g. "text=Next", "#submit")."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page = await engine.current_page(_owner(context), create=False)
        await page.click(selector)
        try:
            await page.wait_for_load_state("domcontentloaded", timeout=engine.settings.navigation_timeout_secs * 1000)
        except Exception:  # a click that starts no navigation is fine
            pass
        await _follow_redirects(engine, context, page, None)
        return _json({"url": page.url, "title": await page.title()})

    return await _run(context, act)


async def browser_type(selector: str, text: str, context: ActionContext, submit: bool = False) -> ToolResult:
    """Fill a text field with text; submit=true presses Enter afterwards."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page = await engine.current_page(_owner(context), create=False)
        await page.fill(selector, text)
        if submit:
            await page.press(selector, "Enter")
            await page.wait_for_load_state("domcontentloaded")
            await _follow_redirects(engine, context, page, None)
        return _json({"url": page.url, "title": await page.title()})

    return await _run(context, act)


async def browser_select(selector: str, value: str, context: ActionContext) -> ToolResult:
    """Choose an option (by value or label) in a <select> element."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page = await engine.current_page(_owner(context), create=False)
        try:
            chosen = await page.select_option(selector, value)
        except Exception:
            chosen = await page.select_option(selector, label=value)
        return _json({"selected": chosen})

    return await _run(context, act)


async def browser_evaluate(js: str, context: ActionContext) -> ToolResult:
    """Run a JavaScript expression or function in the current page and return its result as JSON."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page = await engine.current_page(_owner(context), create=False)
        return _json(await page.evaluate(js))

    return await _run(context, act)


async def browser_extract(selector: str, context: ActionContext, limit: int = 50) -> ToolResult:
    """Structured data for elements matching a CSS selector: text, attributes, links,
    table rows, select options and form fields."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page = await engine.current_page(_owner(context), create=False)
        return _json(await page.evaluate(_script("extract.js"), [selector, max(1, min(limit, 500))]))

    return await _run(context, act)


async def browser_screenshot(context: ActionContext, full_page: bool = False, selector: str = "", name: str = "") -> ToolResult:
    """Save a PNG screenshot of the current tab (or one element) into the workspace; returns its path."""

    async def act(engine: BrowserEngine) -> ToolResult:
        page = await engine.current_page(_owner(context), create=False)
        folder = engine.workspace / engine.settings.screenshots_dir
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(name).stem)[:80] or time.strftime(
            "shot-%Y%m%d-%H%M%S"
        )
        target = folder / f"{stem}.png"
        if selector:
            png = await page.locator(selector).first.screenshot()
        else:
            png = await page.screenshot(full_page=full_page)
        # Written by us through the sandbox, not by Chromium by name: a link the model planted
        # at the folder or the file must not carry the PNG outside the workspace.
        await asyncio.to_thread(sandbox_for(context).write_atomic, target, png)
        rel = str(target.relative_to(engine.workspace))
        return ToolResult(content=f"saved {rel}", data={"path": rel, "bytes": len(png)})

    return await _run(context, act)


async def browser_tabs(context: ActionContext, action: str = "list", index: int = -1) -> ToolResult:
    """Manage this agent's tabs: action = list | switch | close (with index)."""

    async def act(engine: BrowserEngine) -> ToolResult:
        owner = _owner(context)
        if action == "switch":
            await engine.switch_tab(owner, index)
        elif action == "close":
            await engine.close_tab(owner, index)
        elif action != "list":
            raise BrowserError(f"unknown action {action!r}: use list, switch or close")
        session = await engine.session(owner)
        return _json({"tabs": await engine.tabs(owner), "downloads": session.downloads})

    return await _run(context, act)


TOOLS = (
    browse,
    browser_goto,
    browser_read,
    browser_click,
    browser_type,
    browser_select,
    browser_evaluate,
    browser_extract,
    browser_screenshot,
    browser_tabs,
)
