"""The web UI in real headless Chromium: chat streamed over the WebSocket, live agents, approvals, auth."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from oxios.providers.scripted import ScriptedProvider
from oxios_hookspecs import Action

from .conftest import clean_env, live_server, web_kernel
from .ui_watch import Watch, artifacts, chromium

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


@pytest.fixture(scope="module")
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> Any:
    async with chromium() as browser:
        yield browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider) -> Any:
    home = tmp_path_factory.mktemp("web-ui")
    with clean_env(home):
        async with web_kernel(home, provider, {"security": {"rate_limit_per_minute": 0}}) as kernel:
            async with live_server(kernel) as base:
                yield kernel, base


async def test_chat_streams_a_reply_in_the_browser(browser: Any, server: Any, provider: ScriptedProvider, tmp_path: Path) -> None:
    kernel, base = server
    provider.enqueue_text("Hello! I am Oxios, streaming this answer token by token over the WebSocket.")
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    watch = Watch(page)
    await page.goto(base + "/")
    await page.wait_for_selector("#live:not(.off)")  # the SSE stream is connected
    await page.fill("#chat-input", "Who are you?")
    await page.press("#chat-input", "Enter")
    reply = page.locator(".msg.assistant").last
    await reply.locator(".meta").wait_for()  # the done frame arrived
    assert (await reply.inner_text()).startswith("Hello! I am Oxios, streaming this answer token by token")
    assert await page.locator(".msg.user").last.inner_text() == "Who are you?"
    # The session list shows the new conversation, and it was stored.
    await page.locator("#session-list li").first.wait_for()
    assert "Who are you?" in await page.locator("#session-list li").first.inner_text()
    sessions = kernel.services["sessions"].list()
    assert sessions and sessions[0]["title"] == "Who are you?"
    await page.screenshot(path=str(artifacts(tmp_path) / "oxios-chat.png"))
    watch.check()
    await page.close()


async def test_agents_and_approvals_update_live(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    watch = Watch(page)
    await page.goto(base + "/#approvals")
    await page.wait_for_selector("#live:not(.off)")
    approvals = kernel.services["approvals"]
    context = kernel.context(agent_id="agent-ui", session_id="s-ui")
    waiting = asyncio.create_task(approvals.request(Action(kind="exec", argv=["make", "deploy"]), context, "deploys are risky"))
    card = page.locator("#approvals-list li", has_text="make deploy")
    await card.wait_for()  # appeared through the SSE approval.requested event, no reload
    await page.screenshot(path=str(artifacts(tmp_path) / "oxios-approvals.png"))
    await card.get_by_role("button", name="Approve").click()
    verdict = await asyncio.wait_for(waiting, 10)
    assert verdict.verdict == "allow"
    await page.goto(base + "/#agents")
    kernel.publish("agent.started", agent_id="live-agent-1", goal="watch me")
    await page.locator("#event-log li", has_text="agent.started").first.wait_for()
    watch.check()
    await page.close()


async def test_audit_and_config_views(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    kernel.services["audit"].append("agent-ui", "exec", "git status", True, "allowlisted", {})
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    watch = Watch(page)
    await page.goto(base + "/#audit")
    await page.locator("#audit-body tr", has_text="git status").wait_for()
    await page.click("#audit-verify")
    await page.locator("#audit-status", has_text="chain intact").wait_for()
    await page.goto(base + "/#config")
    await page.wait_for_function("document.querySelector('#config-text').value.includes('gateway')")
    await page.screenshot(path=str(artifacts(tmp_path) / "oxios-audit-config.png"))
    watch.check()
    await page.close()


async def test_cron_skills_memory_views(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    watch = Watch(page)
    await page.goto(base + "/#cron")
    await page.fill("#cron-form input[name=name]", "morning-news")
    await page.fill("#cron-form input[name=schedule]", "0 9 * * *")
    await page.fill("#cron-form input[name=goal]", "Summarize top tech news")
    await page.click("#cron-form button[type=submit]")
    await page.locator("#cron-body tr", has_text="morning-news").wait_for()
    assert kernel.services["cron"].get("morning-news")["goal"] == "Summarize top tech news"
    await page.goto(base + "/#skills")
    row = page.locator("#skills-body tr", has_text="code-review")
    await row.wait_for()
    await row.get_by_role("button", name="SKILL.md").click()
    await page.locator("#skill-content", has_text="name: code-review").wait_for()
    await page.goto(base + "/#memory")
    await page.fill("#memory-form input[name=content]", "The launch window opens on Friday")
    await page.click("#memory-form button[type=submit]")
    await page.locator("#memory-list li", has_text="launch window").wait_for()
    await page.fill("#memory-search input[name=q]", "launch")
    await page.click("#memory-search button[type=submit]")
    await page.locator("#memory-list li", has_text="score").first.wait_for()
    await page.screenshot(path=str(artifacts(tmp_path) / "oxios-memory.png"))
    watch.check()
    await page.close()


async def test_token_prompt_when_auth_is_on(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider, tmp_path: Path
) -> None:
    home = tmp_path_factory.mktemp("web-ui-auth")
    with clean_env(home):
        config = {"security": {"auth_enabled": True, "rate_limit_per_minute": 0}}
        async with web_kernel(home, provider, config) as kernel, live_server(kernel) as base:
            token = kernel.services["tokens"].create("browser", role="admin")["token"]
            page = await browser.new_page()
            watch = Watch(page)
            await page.goto(base + "/")
            dialog = page.locator("#token-dialog")
            await dialog.wait_for()  # a 401 opened the token prompt
            await page.fill("#token-input", token)
            await page.click("#token-save")
            provider.enqueue_text("Authenticated hello.")
            await page.fill("#chat-input", "hi with a token")
            await page.press("#chat-input", "Enter")
            reply = page.locator(".msg.assistant").last
            await reply.locator(".meta").wait_for()
            assert (await reply.inner_text()).startswith("Authenticated hello.")
            assert await page.evaluate("localStorage.getItem('oxios.token')") == token
            await page.screenshot(path=str(artifacts(tmp_path) / "oxios-auth.png"))
            watch.check("GET /api/events 401", "GET /api/sessions 401", "GET /api/personas 401", "GET /api/approvals 401")
            await page.close()
