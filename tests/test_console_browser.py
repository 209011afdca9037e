"""The staff console in a real browser: Playwright driving Debian's chromium (headless) against the
running stack — Rasa, the action server, the Telegram bot on the local Bot API server, the console.

A citizen asks for a person in Telegram; a supervisor, already looking at the queue, sees the
handoff arrive live, replies (the reply reaches the chat), resolves it, finds the conversation in
the transcripts, reveals the masked phone number (and finds the reveal in the audit log) and opens
the analytics page. Screenshots of the main pages go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from harness.stack import Stack
from onewindow.settings import PROJECT_ROOT
from tests.console_server import RunningConsole, create_staff_user
from tests.fixtures_stack import RunningStack
from tests.telegram_api import LocalBotApi
from tests.test_telegram import bot_env, say, started, texts

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.stack
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
PHONE = "0412 345 678"
chats = itertools.count(9101)
# other citizens' conversations over the REST channel, so that the lists and charts have more than one
OTHER_CONVERSATIONS = {
    "web-visitor-1": ["how much is a passport renewal", "thanks"],
    "web-visitor-2": ["I just had a baby"],
    "kiosk:north-centre": ["what do I need for a marriage registration"],
    "phone:call-0007": ["where is the north service centre", "blorp zzkx qwv", "flurb wix snee"],
}


@pytest.fixture(scope="module")
def stack(running_stack: RunningStack) -> Stack:
    return running_stack(fresh=True)  # the analytics page counts every conversation


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[LocalBotApi]:
    server = LocalBotApi().start()
    stack.spawn_bot("browser", bot_env(server, RASA_ENDPOINTS=str(stack.endpoints)))
    yield started(server)
    stack.halt("bot browser")
    server.stop()


@pytest.fixture(scope="module")
def console(stack: Stack, api: LocalBotApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    create_staff_user(stack.database_url, "sam", "supervisor", PASSWORD)
    running = RunningConsole(
        stack.database_url,
        Path(tmp_path_factory.mktemp("console")),
        endpoints=stack.endpoints,
        rasa_url=stack.api_url,
        env={**bot_env(api), **stack.api_env()},
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/system-packages.sh installs it)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


def hold_other_conversations(stack: Stack) -> None:
    for sender, messages in OTHER_CONVERSATIONS.items():
        for message in messages:
            assert stack.say(sender, message), (sender, message)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_supervisor_takes_over_a_telegram_conversation_and_reviews_it(
    browser: Browser, console: RunningConsole, api: LocalBotApi, stack: Stack
) -> None:
    expect = playwright_api.expect
    hold_other_conversations(stack)
    chat = next(chats)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{console.base_url}/queue")
    expect(page).to_have_url(re.compile(r"/login"))  # not logged in: the login page, nothing else
    page.fill("#username", "sam")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/queue$"))

    # the citizen, in Telegram, gives a phone number and asks for a person while the queue is on screen
    say(api, chat, f"I want to book a passport appointment, my phone is {PHONE}")
    answer = texts(say(api, chat, "I want to talk to a person"))
    reference = re.search(r"HO-\d+", answer)
    assert reference, answer
    row = page.locator("tr", has_text=reference.group(0))
    expect(row).to_be_visible(timeout=15_000)  # arrived live, without reloading the page
    shoot(page, "queue")

    row.get_by_role("link", name=reference.group(0)).click()
    expect(page.get_by_role("heading", name=reference.group(0))).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(PHONE)  # masked until revealed
    page.get_by_role("button", name="Claim this handoff").click()
    page.fill("#reply-text", "Hello, this is Sam from the service centre. I can book that for you.")
    since = api.mark()
    page.get_by_role("button", name="Send reply").click()
    api.wait_for("sendMessage", chat_id=chat, since=since, timeout=15)
    assert "this is Sam from the service centre" in texts(api.calls_to(chat_id=chat, since=since))
    expect(page.locator(".message.reply")).to_contain_text("delivered")
    shoot(page, "handoff")
    page.select_option("select[name=outcome]", index=1)
    page.get_by_role("button", name=re.compile("Resolve")).click()
    expect(page).to_have_url(re.compile(r"/queue$"))
    expect(page.locator("tr", has_text=reference.group(0))).to_have_count(0)  # resolved: off the queue

    # the transcript, found by channel and text; the phone number is masked until revealed (audited)
    page.goto(f"{console.base_url}/transcripts")
    page.select_option("#f-channel", "telegram")
    page.fill("#f-q", "passport appointment")
    page.get_by_role("button", name="Search").click()
    results = page.locator("table tbody tr")
    expect(results).to_have_count(1)
    results.first.locator("a").first.click()
    expect(page.locator("main")).to_contain_text("this is Sam from the service centre")
    expect(page.locator("main")).not_to_contain_text(PHONE)
    shoot(page, "transcript")
    page.get_by_role("button", name="Reveal personal data").click()
    expect(page.locator("#revealed")).to_be_visible()
    expect(page.locator("main")).to_contain_text(PHONE)

    page.goto(f"{console.base_url}/audit")
    expect(page.locator("main")).to_contain_text("personal_data.reveal")
    expect(page.locator("main")).to_contain_text("transcript.view")

    page.goto(f"{console.base_url}/analytics")
    expect(page.locator("main")).to_contain_text(f"{len(OTHER_CONVERSATIONS) + 1} conversations")
    for chart in ("per-day", "outcomes", "handoff-reasons", "top-intents", "wait"):
        svg = page.locator(f'svg.chart[data-chart="{chart}"]')
        expect(svg).to_be_visible()
        assert int(svg.get_attribute("data-points") or 0) > 0, chart
        assert svg.locator("rect").count() > 0, chart  # drawn, not just an empty frame
    shoot(page, "analytics")
    page.close()
