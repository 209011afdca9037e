"""The bot in webhook mode (bot/webhook.py): answered only after handling, none lost, none answered twice.

`python -m bot` with TELEGRAM_WEBHOOK_URL against the local Bot API (tests/telegram_api.py), which posts
updates to the webhook like Telegram and, with `redeliver_after`, posts an update again until it gets a 2xx.
"""

from __future__ import annotations

import html
import itertools
import json
import signal
import urllib.error
import urllib.request
from typing import Any, Dict, Iterator, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack import Stack, free_port
from tests.telegram_api import LocalBotApi
from tests.test_telegram import bot_env, started, wait_for_port

pytestmark = pytest.mark.stack
chats = itertools.count(9101)
SECRET = "w3bhook-Secret_9"
LEASE = "2"


@pytest.fixture(scope="module")
def hooked(stack: Stack) -> Iterator[Tuple[LocalBotApi, str, int]]:
    server = LocalBotApi(redeliver_after=0.3).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    env = bot_env(
        server,
        TELEGRAM_WEBHOOK_URL=url,
        TELEGRAM_SECRET_TOKEN=SECRET,
        TELEGRAM_WEBHOOK_PORT=str(port),
        TELEGRAM_UPDATE_LEASE=LEASE,
    )
    stack.spawn_bot("hooked", env)
    started(server)
    wait_for_port(port)
    yield server, url, port
    stack.halt("bot hooked")
    server.stop()


def post(url: str, body: bytes, secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json", **({"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def answers(api: LocalBotApi, chat: int, since: int = 0) -> list[str]:
    return [html.unescape(str(c.params.get("text", ""))) for c in api.calls_to("sendMessage", chat_id=chat, since=since)]


def test_an_update_is_answered_200_only_after_its_reply_was_sent(hooked: Tuple[LocalBotApi, str, int]) -> None:
    api, _, _ = hooked
    chat = next(chats)
    update = api.user_sends_text(chat, "how much does a passport renewal cost")
    deliveries = api.wait_webhook_deliveries(1, timeout=30)
    with api._cond:  # the delivery's status and the calls before it, at once
        delivered = [d for d in api.webhook_deliveries if d[0] == update["update_id"]]
        replied = answers(api, chat)
    assert delivered == [(update["update_id"], 200)], deliveries
    assert replied and "costs" in " ".join(replied)  # PTB's run_webhook would have answered 200 before Rasa did


def test_a_bot_killed_mid_update_gets_it_again_and_the_restarted_bot_answers_once(
    stack: Stack, hooked: Tuple[LocalBotApi, str, int]
) -> None:
    api, _, port = hooked
    chat = next(chats)
    since = api.mark()
    api.fail_next("sendMessage", kind="stall", retry_after=20, chat_id=chat)  # the bot gets stuck sending its reply
    update = api.user_sends_text(chat, "how much does an id card renewal cost")
    with api._cond:  # the bot's sendMessage has arrived (and stalls)
        assert api._cond.wait_for(lambda: any(c.method == "sendMessage" and c.chat_id == chat for c in api.calls[since:]), 30)
    bot = stack.processes["bot hooked"]
    bot.send_signal(signal.SIGKILL)  # mid-update: Rasa answered, the reply has not reached the chat
    bot.wait(timeout=10)
    stack.resume("bot hooked")
    wait_for_port(port)
    api.wait_for("sendMessage", chat_id=chat, since=since, timeout=60)
    api.wait_quiet(2.0, timeout=30)
    replies = answers(api, chat, since)
    assert len(replies) == 1 and "costs" in replies[0], replies
    mine = [status for update_id, status in api.webhook_deliveries if update_id == update["update_id"]]
    # refused while the bot was down; then 200 (setWebhook at restart also delivers it again: answered once all the same)
    assert mine[0] != 200 and mine[-1] == 200, mine
    assert post(hooked[1], json.dumps(update).encode()) == 200  # delivered again later: answered, not handled again
    api.wait_quiet(1.0, timeout=10)
    assert len(answers(api, chat, since)) == 1


def test_a_wrong_or_missing_secret_token_is_refused_and_nothing_is_answered(hooked: Tuple[LocalBotApi, str, int]) -> None:
    api, url, _ = hooked
    chat = next(chats)
    body = json.dumps(
        {"update_id": 77_000_001, "message": {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}, "text": "hi"}}
    ).encode()
    assert post(url, body, secret="wrong") == 403 and post(url, body, secret=None) == 403
    api.wait_quiet(1.0, timeout=10)
    assert not answers(api, chat)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
update_like = st.fixed_dictionaries(
    {"update_id": st.integers(min_value=-5, max_value=2**64)},
    optional={"message": json_values, "callback_query": json_values, "edited_message": json_values, "poll": json_values},
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(update_like.map(json.dumps), json_values.map(json.dumps), st.text(max_size=50)))
def test_generated_bodies_on_the_webhook_never_get_a_5xx(hooked: Tuple[LocalBotApi, str, int], body: str) -> None:
    status = post(hooked[1], body.encode())
    assert status < 500, (status, body)
    health: Dict[str, Any] = json.loads(urllib.request.urlopen(hooked[1].rsplit("/", 2)[0] + "/health/live", timeout=5).read())
    assert health == {"live": True}
