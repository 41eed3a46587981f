"""Every page of the web UI in real headless Chromium, against a kernel holding realistic data.

Each test watches the page: a JavaScript error, a console error or an HTTP failure it did not
expect fails it. Screenshots go to $OXIOS_TEST_ARTIFACTS when set.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import expect

from oxios.providers.scripted import ScriptedProvider
from oxios_hookspecs import Action

from .conftest import clean_env, live_server, web_kernel
from .ui_watch import Watch, artifacts, chromium

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

VIEWPORT = {"width": 1280, "height": 800}
LONG_WORD = "supercalifragilistic" * 40  # 800 characters without a space
LONG_TEXT = "The deployment checklist, step by step. " * 60


def hours_from_now(hours: int, days: str = "*") -> str:
    """A cron schedule that fires `hours` from now, so no job fires (and takes a scripted reply) while the tests run."""
    at = datetime.now() + timedelta(hours=hours)  # jobs read schedules in the machine's timezone
    return f"{at.minute} {at.hour} * * {days}"


async def shot(page: Any, name: str, tmp_path: Path) -> None:
    await page.screenshot(path=str(artifacts(tmp_path) / f"ui-{name}.png"), full_page=True)


async def no_horizontal_overflow(page: Any, selector: str) -> None:
    """Long content wraps inside `selector` instead of widening it past the window."""
    overflow = await page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].map((n) => [n.scrollWidth, n.clientWidth])
              .filter(([scroll, client]) => scroll > client + 1)""",
        selector,
    )
    assert overflow == [], f"{selector} overflows: {overflow}"
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def toast(page: Any, text: str, error: bool = True) -> None:
    await page.locator("#toast.error" if error else "#toast:not(.error)", has_text=text).wait_for()


@pytest.fixture(scope="module")
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> Any:
    async with chromium() as browser:
        yield browser


async def seed(kernel: Any, base: str, provider: ScriptedProvider) -> None:
    """What a daemon that has been used for a while holds: sessions, agents, jobs, memories, audit."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        provider.enqueue_text("Sure. Step 1: run the tests. Step 2: tag the release.")
        r = await client.post("/api/chat", json={"content": "How do I cut a release?"})
        assert r.status_code == 200, r.text
        provider.enqueue_text(LONG_TEXT + "\n\n" + LONG_WORD)
        r = await client.post("/api/chat", json={"content": "Give me the whole deployment checklist " + LONG_WORD})
        assert r.status_code == 200, r.text
        provider.enqueue_error(RuntimeError("model backend exploded"))
        r = await client.post("/api/chat", json={"content": "This one fails"})
        assert r.status_code == 502, r.text
        for job in (
            {"name": "morning-news", "schedule": hours_from_now(12), "goal": "Summarize top tech news"},
            {"name": "weekly-report", "schedule": "0 17 * * 5", "goal": "Write the weekly status report"},  # paused below
            {"name": "long-goal", "schedule": hours_from_now(8), "goal": LONG_TEXT},
        ):
            r = await client.post("/api/cron-jobs", json=job)
            assert r.status_code == 201, r.text
        assert (await client.post("/api/cron-jobs/weekly-report/pause")).status_code == 200
        for memory in (
            {"name": "release-day", "category": "project", "content": "Releases go out on Thursdays after the standup"},
            {"category": "people", "content": "Alice owns the billing service"},
            {"name": "long-note", "category": "notes", "content": LONG_TEXT + LONG_WORD},
        ):
            r = await client.post("/api/memory", json=memory)
            assert r.status_code in (200, 201), r.text
        r = await client.post(
            "/api/skills",
            json={"name": "release-notes", "description": "Write release notes from the git log", "body": "Group by type."},
        )
        assert r.status_code in (200, 201), r.text
    audit = kernel.services["audit"]
    for i in range(60):
        audit.append(f"agent-{i % 3}", "exec", f"git log -n {i}", i % 7 != 0, "allowlisted" if i % 7 else "denied by policy", {})
    audit.append("agent-9", "path.write", "/workspace/" + LONG_WORD, True, LONG_TEXT, {})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider) -> Any:
    home = tmp_path_factory.mktemp("web-ui-pages")
    with clean_env(home):
        async with web_kernel(home, provider, {"security": {"rate_limit_per_minute": 0}}) as kernel:
            async with live_server(kernel) as base:
                await seed(kernel, base, provider)
                yield kernel, base


async def open_page(browser: Any, url: str) -> tuple[Any, Watch]:
    page = await browser.new_page(viewport=VIEWPORT)
    watch = Watch(page)
    await page.goto(url)
    await page.wait_for_selector("#live:not(.off)")  # the event stream is connected
    return page, watch


# -- chat -------------------------------------------------------------------------------------------


async def test_chat_sessions_personas_streaming_and_errors(
    browser: Any, server: Any, provider: ScriptedProvider, tmp_path: Path
) -> None:
    kernel, base = server
    page, watch = await open_page(browser, base + "/#chat")
    sessions = page.locator("#session-list li")
    await sessions.filter(has_text="How do I cut a release?").wait_for()
    assert await sessions.count() == 3
    # The persona switcher lists the personas; picking one makes it the active one.
    select = page.locator("#persona-select")
    await page.locator("#persona-select option", has_text="Review").wait_for(state="attached")
    assert await select.input_value() == ""
    await select.select_option("Review")
    await toast(page, "Persona Review is active", error=False)
    assert kernel.services["personas"].active_name() == "Review"
    other, other_watch = await open_page(browser, base + "/#agents")  # the top bar shows it on every page
    await expect(other.locator("#persona-select")).to_have_value("Review")
    other_watch.check()
    await other.close()
    await select.select_option("")  # "none" clears it
    await toast(page, "No persona is active", error=False)
    assert kernel.services["personas"].active_name() is None
    # Opening a stored conversation shows it; long words wrap inside the bubbles.
    await sessions.filter(has_text="Give me the whole deployment").click()
    await page.locator(".msg.assistant", has_text="The deployment checklist").wait_for()
    assert await page.locator(".msg").count() == 2
    await no_horizontal_overflow(page, "#messages")
    await shot(page, "chat-long-session", tmp_path)
    # A new chat streams its reply and joins the list.
    await page.click("#new-chat")
    await page.locator("#messages .welcome").wait_for()
    provider.enqueue_text("Here are the release notes for 1.4: faster startup, fewer bugs.")
    await page.fill("#chat-input", "Draft the release notes")
    await page.press("#chat-input", "Enter")
    reply = page.locator(".msg.assistant").last
    await reply.locator(".meta").wait_for()
    assert (await reply.inner_text()).startswith("Here are the release notes for 1.4")
    await page.locator("#session-list li.active", has_text="Draft the release notes").wait_for()
    # Stop cancels a reply that is still being written.
    provider.enqueue_hang("Let me think about")
    await page.fill("#chat-input", "Think forever")
    await page.click("#chat-send")
    await page.locator(".msg.assistant.streaming", has_text="Let me think about").wait_for()
    await page.click("#chat-stop")
    await page.locator(".msg.assistant.error", has_text="cancelled").wait_for()
    await page.locator("#chat-stop.hidden").wait_for(state="attached")
    # A failing model is shown in the bubble.
    provider.enqueue_error(RuntimeError("the model backend is down"))
    await page.fill("#chat-input", "Are you there?")
    await page.press("#chat-input", "Enter")
    await page.locator(".msg.assistant.error", has_text="the model backend is down").wait_for()
    await shot(page, "chat", tmp_path)
    # Deleting a conversation asks first, then removes it everywhere.
    doomed = sessions.filter(has_text="How do I cut a release?")
    await doomed.get_by_role("button", name="Delete How do I cut a release?").click()
    await doomed.wait_for(state="detached")
    assert watch.dialogs == ['Delete the conversation "How do I cut a release?"?']
    assert all(s["title"] != "How do I cut a release?" for s in kernel.services["sessions"].list(limit=100))
    watch.check()
    await page.close()


# -- agents -----------------------------------------------------------------------------------------


async def test_agents_appear_live_and_can_be_killed(
    browser: Any, server: Any, provider: ScriptedProvider, tmp_path: Path
) -> None:
    kernel, base = server
    page, watch = await open_page(browser, base + "/#agents")
    failed = page.locator("#agents-body tr", has_text="This one fails")
    await failed.wait_for()
    assert "model backend exploded" in await failed.inner_text()  # why it failed
    assert await page.get_by_role("button", name="Kill").count() == 0  # nothing runs: nothing to kill
    await no_horizontal_overflow(page, "main")
    provider.enqueue_hang("Working on it")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        chat = asyncio.create_task(client.post("/api/chat", json={"content": "Index the whole monorepo"}))
        running = page.locator("#agents-body tr", has_text="Index the whole monorepo")
        await running.locator(".pill.running").wait_for()  # arrived over SSE, no reload
        await page.locator("#event-log li", has_text="agent.started").first.wait_for()
        await shot(page, "agents", tmp_path)
        await running.get_by_role("button", name="Kill").click()
        await running.locator(".pill.killed").wait_for()
        assert (await chat).status_code == 502
    agent_id = await running.get_attribute("data-agent")
    assert kernel.services["agents"].get(agent_id)["status"] == "killed"
    assert watch.dialogs == [f"Kill agent {agent_id[:8]}?"]
    assert await page.get_by_role("button", name="Kill").count() == 0
    watch.check()
    await page.close()


# -- cron -------------------------------------------------------------------------------------------


async def test_cron_add_pause_run_delete_and_errors(
    browser: Any, server: Any, provider: ScriptedProvider, tmp_path: Path
) -> None:
    kernel, base = server
    cron = kernel.services["cron"]
    page, watch = await open_page(browser, base + "/#cron")
    rows = page.locator("#cron-body tr")
    await rows.filter(has_text="morning-news").wait_for()
    assert await rows.filter(has_text="weekly-report").locator(".pill.paused").count() == 1
    long_goal = rows.filter(has_text="long-goal").locator(".clamp")
    assert await long_goal.evaluate("(n) => n.scrollHeight > n.clientHeight")  # clamped to a few lines
    await no_horizontal_overflow(page, "main")

    async def add(name: str, schedule: str, goal: str) -> None:
        await page.fill("#cron-form input[name=name]", name)
        await page.fill("#cron-form input[name=schedule]", schedule)
        await page.fill("#cron-form input[name=goal]", goal)
        await page.click("#cron-form button[type=submit]")

    weekdays = hours_from_now(10, days="1-5")
    await add("standup-digest", weekdays, "Summarize yesterday's merged pull requests")
    await rows.filter(has_text="standup-digest").wait_for()
    assert cron.get("standup-digest")["schedule"] == weekdays
    await add("broken", "every tuesday-ish", "never runs")  # the server's refusal is shown
    await page.locator("#toast.error", has_text="schedule").wait_for()
    assert await rows.filter(has_text="broken").count() == 0
    await add("morning-news", "0 9 * * *", "again")  # a taken name: 409
    await page.locator("#toast.error", has_text="morning-news").wait_for()
    # Pause and resume.
    news = rows.filter(has_text="morning-news")
    await news.get_by_role("button", name="Pause").click()
    await news.locator(".pill.paused").wait_for()
    assert cron.get("morning-news")["paused"] is True
    await news.get_by_role("button", name="Resume").click()
    await news.locator(".pill.scheduled").wait_for()
    assert cron.get("morning-news")["paused"] is False
    # Run now: the run's end arrives over SSE and shows as the last run.
    provider.enqueue_text("Top story: a new Python release.")
    await news.get_by_role("button", name="Run now").click()
    await toast(page, "Started morning-news", error=False)
    await news.locator(".pill.succeeded").wait_for()
    await shot(page, "cron", tmp_path)
    # Delete asks first.
    await rows.filter(has_text="standup-digest").get_by_role("button", name="Delete").click()
    await rows.filter(has_text="standup-digest").wait_for(state="detached")
    assert watch.dialogs == ["Delete the cron job standup-digest?"]
    assert all(job["name"] != "standup-digest" for job in cron.list())
    watch.check("POST /api/cron-jobs 422", "POST /api/cron-jobs 409")
    await page.close()


# -- skills -----------------------------------------------------------------------------------------


async def test_skills_read_disable_enable(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    page, watch = await open_page(browser, base + "/#skills")
    mine = page.locator("#skills-body tr", has_text="release-notes")
    await mine.wait_for()
    bundled = page.locator("#skills-body tr", has_text="code-review")
    assert "bundled" in await bundled.inner_text()
    await bundled.get_by_role("button", name="SKILL.md").click()
    await page.locator("#skill-content", has_text="name: code-review").wait_for()
    assert await page.inner_text("#skill-title") == "code-review · SKILL.md"
    await shot(page, "skills", tmp_path)
    await page.click("#skill-close")
    await page.locator("#skill-panel.hidden").wait_for(state="attached")
    await mine.get_by_role("button", name="Disable").click()
    await mine.locator(".pill.disabled").wait_for()
    assert kernel.services["skills"].get("release-notes")["status"] == "disabled"
    await mine.get_by_role("button", name="Enable").click()
    await mine.get_by_role("button", name="Disable").wait_for()
    assert kernel.services["skills"].get("release-notes")["status"] != "disabled"
    await no_horizontal_overflow(page, "main")
    watch.check()
    await page.close()


# -- memory -----------------------------------------------------------------------------------------


async def test_memory_list_save_search_forget(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    page, watch = await open_page(browser, base + "/#memory")
    cards = page.locator("#memory-list li")
    await cards.filter(has_text="Alice owns the billing service").wait_for()
    await page.locator("#memory-summary", has_text="3 memories").wait_for()
    long_note = cards.filter(has_text="long-note").locator(".clamp")
    assert await long_note.evaluate("(n) => n.scrollHeight > n.clientHeight")
    await no_horizontal_overflow(page, "main")
    await long_note.click()  # a click shows all of it
    await page.locator("#memory-list .clamp.open").wait_for()
    # Save: the card appears; a blank memory is refused with the server's reason.
    await page.fill("#memory-form input[name=category]", "ops")
    await page.fill("#memory-form input[name=content]", "The staging database restarts every Sunday at 03:00")
    await page.click("#memory-form button[type=submit]")
    await cards.filter(has_text="staging database").wait_for()
    await page.fill("#memory-form input[name=content]", "   ")
    await page.click("#memory-form button[type=submit]")
    await page.locator("#toast.error", has_text="content").wait_for()
    # Search, then a search that finds nothing.
    await page.fill("#memory-search input[name=q]", "billing")
    await page.click("#memory-search button[type=submit]")
    await cards.filter(has_text="score").filter(has_text="Alice owns the billing service").wait_for()
    await page.locator("#memory-summary", has_text='for "billing"').wait_for()
    await shot(page, "memory-search", tmp_path)
    await page.fill("#memory-search input[name=q]", "xylophone")
    await page.select_option("#memory-search select[name=mode]", "keyword")
    await page.click("#memory-search button[type=submit]")
    await page.locator("#memory-list li.empty", has_text="No memories match").wait_for()
    # Refresh shows everything again; Forget asks, then removes it.
    await page.click("#view-memory [data-refresh]")
    await page.locator("#memory-summary", has_text="4 memories").wait_for()
    await cards.filter(has_text="staging database").get_by_role("button", name="Forget").click()
    await page.locator("#memory-summary", has_text="3 memories").wait_for()
    assert watch.dialogs == ['Forget "The staging database restarts every Sunday at 03:00"?']
    hits = await kernel.services["memory"].search("staging database", mode="keyword")
    assert not [h for h in hits if "staging" in h.record.content]
    await shot(page, "memory", tmp_path)
    watch.check("POST /api/memory 422")
    await page.close()


# -- audit ------------------------------------------------------------------------------------------


async def test_audit_pages_and_verify(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    total = kernel.services["audit"].count()
    pages = -(-total // 50)
    assert pages >= 2
    page, watch = await open_page(browser, base + "/#audit")
    await page.locator("#audit-page", has_text=f"page 1 of {pages} ({total} entries)").wait_for()
    assert await page.locator("#audit-body tr").count() == 50
    assert await page.locator("#audit-prev").is_disabled()
    long_row = page.locator("#audit-body tr", has_text="path.write")
    assert await long_row.locator(".clamp").first.evaluate("(n) => n.scrollHeight > n.clientHeight")
    await no_horizontal_overflow(page, "main")
    await page.click("#audit-next")
    await page.locator("#audit-page", has_text=f"page 2 of {pages}").wait_for()
    first_seq = int(await page.locator("#audit-body tr td").first.inner_text())
    assert first_seq == total - 50  # newest first: page 2 starts 50 entries back
    await page.click("#audit-prev")
    await page.locator("#audit-page", has_text=f"page 1 of {pages}").wait_for()
    await page.click("#audit-verify")
    await page.locator("#audit-status.ok", has_text="chain intact").wait_for()
    await shot(page, "audit", tmp_path)
    watch.check()
    await page.close()


# -- approvals --------------------------------------------------------------------------------------


async def test_approvals_arrive_live_and_are_decided(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    approvals = kernel.services["approvals"]
    page, watch = await open_page(browser, base + "/#approvals")
    await page.locator("#approvals-list li.empty", has_text="Nothing is waiting").wait_for()
    assert await page.locator("#approvals-badge.hidden").count() == 1
    context = kernel.context(agent_id="agent-deployer", session_id="s-deploy")
    deploy = asyncio.create_task(approvals.request(Action(kind="exec", argv=["make", "deploy"]), context, "deploys are risky"))
    wipe = asyncio.create_task(approvals.request(Action(kind="exec", argv=["rm", "-rf", "build"]), context, "deletes files"))
    cards = page.locator("#approvals-list li")
    await cards.filter(has_text="make deploy").wait_for()  # over SSE, no reload
    await cards.filter(has_text="rm -rf build").wait_for()
    await page.locator("#approvals-badge", has_text="2").wait_for()
    assert "agent agent-deployer" in await cards.filter(has_text="make deploy").inner_text()
    await shot(page, "approvals", tmp_path)
    await cards.filter(has_text="rm -rf build").get_by_role("button", name="Reject").click()
    assert (await asyncio.wait_for(wipe, 10)).verdict == "deny"
    await cards.filter(has_text="rm -rf build").wait_for(state="detached")
    await page.locator("#approvals-badge", has_text="1").wait_for()
    card = cards.filter(has_text="make deploy")
    approval_id = await card.get_attribute("data-approval")
    await card.get_by_role("combobox", name="Approve for").select_option("session")
    await card.get_by_role("button", name="Approve").click()
    assert (await asyncio.wait_for(deploy, 10)).verdict == "allow"
    await page.locator("#approvals-list li.empty").wait_for()
    await page.locator("#approvals-badge.hidden").wait_for(state="attached")
    [grant] = [g for g in approvals.grants() if g["approval_id"] == approval_id]
    assert grant["scope"] == "session" and grant["scope_id"] == "s-deploy" and grant["created_by"] == "web:local"
    watch.check()
    await page.close()


# -- config (last: it changes the running config) -----------------------------------------------------


async def test_config_save_shows_applied_and_restart_required(browser: Any, server: Any, tmp_path: Path) -> None:
    kernel, base = server
    port = kernel.config.gateway.port
    page, watch = await open_page(browser, base + "/#config")
    await expect(page.locator("#config-text")).to_have_value(re.compile("max_concurrent"))
    result = page.locator("#config-result")

    async def edit(change: str) -> None:
        await page.evaluate(
            f"""() => {{ const c = JSON.parse(document.querySelector('#config-text').value); {change};
                document.querySelector('#config-text').value = JSON.stringify(c, null, 2); }}"""
        )
        await page.click("#config-save")

    await edit(f"c.scheduler.max_concurrent = 3; c.gateway.port = {port + 1}")
    await result.locator("text=Applied now: scheduler.max_concurrent.").wait_for()
    await result.locator("text=Needs a restart (oxios restart): gateway.port.").wait_for()
    assert "Saved: gateway.port, scheduler.max_concurrent." in await result.inner_text()
    assert kernel.services["scheduler"].stats()["max_concurrent"] == 3
    await shot(page, "config", tmp_path)
    await page.click("#config-save")  # the saved edits are the new base
    await page.locator("#config-result.ok", has_text="Nothing changed.").wait_for()
    await edit('c.gateway.port = "not-a-port"')  # the server's refusal names the key
    await page.locator("#config-result.error", has_text="Not saved").filter(has_text="gateway.port").wait_for()
    await page.fill("#config-text", "{ not json")
    await page.click("#config-save")
    await page.locator("#config-result.error", has_text="Not valid JSON").wait_for()
    await page.click("#view-config [data-refresh]")  # back to the running config
    await expect(page.locator("#config-result")).to_have_class(re.compile("hidden"))
    await edit("c.scheduler.max_concurrent = null; c.gateway.port = null")  # null: back to the defaults
    await page.locator("#config-result.ok", has_text="Saved").wait_for()
    assert kernel.config.gateway.port == port
    watch.check("PUT /api/config 422")
    await page.close()


# -- a narrow window ------------------------------------------------------------------------------------


async def test_narrow_window_keeps_the_layout(browser: Any, server: Any, tmp_path: Path) -> None:
    _, base = server
    page = await browser.new_page(viewport={"width": 600, "height": 800})
    watch = Watch(page)
    await page.goto(base + "/#chat")
    for view, ready in (
        ("chat", "#messages .welcome"),
        ("agents", "#agents-body tr"),
        ("cron", "#cron-body tr"),
        ("memory", "#memory-list li"),
        ("audit", "#audit-body tr"),
    ):
        await page.goto(f"{base}/#{view}")
        await page.locator(ready).first.wait_for()
        await shot(page, f"narrow-{view}", tmp_path)
        await no_horizontal_overflow(page, "main")  # wide tables scroll inside their own box
    watch.check()
    await page.close()


# -- refresh buttons ------------------------------------------------------------------------------


async def test_every_refresh_button_reloads_its_page(browser: Any, server: Any) -> None:
    _, base = server
    page, watch = await open_page(browser, base + "/#chat")
    for view, path in (
        ("agents", "/api/agents?limit=100"),
        ("cron", "/api/cron-jobs?limit=200"),
        ("skills", "/api/skills?limit=500"),
        ("memory", "/api/memory?limit=50"),
        ("config", "/api/config"),
        ("audit", "/api/audit/entries?limit=50&page=1"),
        ("approvals", "/api/approvals?limit=100"),  # not the badge's ?limit=1
    ):

        def loaded(r: Any, path: str = path) -> bool:
            return r.url.endswith(path) and r.request.method == "GET"

        async with page.expect_response(loaded):  # opening the page loads it once
            await page.goto(f"{base}/#{view}")
        async with page.expect_response(loaded) as response:  # and Refresh once more
            await page.click(f"#view-{view} [data-refresh]")
        assert (await response.value).status == 200, view
    watch.check()
    await page.close()


# -- API docs ---------------------------------------------------------------------------------------


async def test_api_docs_page(browser: Any, server: Any, tmp_path: Path) -> None:
    _, base = server
    page = await browser.new_page(viewport=VIEWPORT)
    watch = Watch(page)
    await page.goto(base + "/docs")
    kill = page.locator("details.op", has_text="/api/agents/{id}/kill")
    await kill.locator("summary").click()
    await kill.locator(".detail", has_text="409").wait_for()
    assert await page.locator("details.op").count() > 50
    await shot(page, "api-docs", tmp_path)
    watch.check()
    await page.close()


# -- auth on ----------------------------------------------------------------------------------------


async def test_auth_on_token_prompt_and_empty_pages(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider, tmp_path: Path
) -> None:
    home = tmp_path_factory.mktemp("web-ui-pages-auth")
    with clean_env(home):
        config = {"security": {"auth_enabled": True, "rate_limit_per_minute": 0}}
        async with web_kernel(home, provider, config) as kernel, live_server(kernel) as base:
            token = kernel.services["tokens"].create("browser", role="admin")["token"]
            page = await browser.new_page(viewport=VIEWPORT)
            watch = Watch(page)
            await page.goto(base + "/")
            dialog = page.locator("#token-dialog[open]")
            await dialog.wait_for()  # one prompt for all the requests that got a 401
            assert await page.locator("#live.off").count() == 1
            await page.fill("#token-input", "not-the-token")
            await page.press("#token-input", "Enter")  # Enter saves
            await page.locator("#token-reason", has_text="The token was refused: invalid or revoked token").wait_for()
            await shot(page, "auth-token-refused", tmp_path)
            await dialog.wait_for()
            await page.fill("#token-input", token)
            await page.click("#token-save")
            await dialog.wait_for(state="hidden")
            await page.wait_for_selector("#live:not(.off)")
            await page.locator("#session-list li.empty", has_text="No conversations yet").wait_for()
            await shot(page, "auth-chat-empty", tmp_path)
            # Every page works with the token, and says so when it has nothing to show.
            for view, empty in (
                ("agents", "#agents-body tr.empty"),
                ("cron", "#cron-body tr.empty"),
                ("memory", "#memory-list li.empty"),
                ("approvals", "#approvals-list li.empty"),
            ):
                await page.goto(f"{base}/#{view}")
                await page.locator(empty).wait_for()
                await shot(page, f"auth-{view}-empty", tmp_path)
            await page.goto(base + "/#skills")
            await page.locator("#skills-body tr", has_text="code-review").wait_for()
            await page.goto(base + "/#audit")
            await page.locator("#audit-body tr", has_text="auth").first.wait_for()  # the refused requests
            await page.goto(base + "/#config")
            await expect(page.locator("#config-text")).to_have_value(re.compile("auth_enabled"))
            # The chat stream takes the token too.
            await page.goto(base + "/#chat")
            provider.enqueue_text("Authenticated hello.")
            await page.fill("#chat-input", "hi with a token")
            await page.press("#chat-input", "Enter")
            await page.locator(".msg.assistant .meta").wait_for()
            assert await page.evaluate("localStorage.getItem('oxios.token')") == token
            # Cancelling the prompt leaves the page usable and says why nothing loads.
            await page.evaluate("localStorage.removeItem('oxios.token')")
            await page.goto(base + "/#memory")
            await dialog.wait_for()
            await page.click("#token-cancel")
            await page.locator("#toast.error", has_text="an API token is needed").wait_for()
            # The Token button asks again and loads the page on the spot.
            await page.click("#token-button")
            await page.fill("#token-input", token)
            await page.click("#token-save")
            await page.locator("#memory-list li.empty").wait_for()
            watch.check(
                "GET /api/events 401",
                "GET /api/sessions 401",
                "GET /api/personas 401",
                "GET /api/approvals 401",
                "GET /api/memory 401",
            )
            await page.close()
