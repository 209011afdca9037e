"""Telegram updates, generated (tests/fuzz_strategies.py `telegram_updates`), into the real bot (`python -m bot` on the
stack) through the local Bot API stand-in (tests/telegram_api.py), by getUpdates polling and by webhook (with Telegram's
redelivery of an update not answered 2xx): messages of every kind (text with entities in and out of range, commands,
huge text, contacts, places, voice notes that cannot be fetched, unknown content), edited messages, channel posts,
button presses with any data, updates carrying nothing the bot knows.

What must hold, each case in a new chat: the bot keeps running; the webhook never answers 5xx; a new message in the
chat gets a reply and a button press an answer (or a reply), while what the bot deliberately leaves alone (an edited
message, a channel post, an update with no message) gets nothing; nothing goes to any other chat; and afterwards the
chat still works: /cancel, then an ordinary question gets its answer (or, once the generated message asked for a
person, a reply that says so).
"""

from __future__ import annotations

import copy
import html
import itertools
import os
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from hypothesis import example, given
from telegram import Update

from harness.stack import Stack, free_port
from onewindow.backend import ServiceBackend
from tests.fuzz_strategies import fuzz_settings, telegram_updates
from tests.telegram_api import ApiCall, LocalBotApi
from tests.test_telegram import bot_env, started, wait_for_port

pytestmark = pytest.mark.stack
chats = itertools.count(61_001)
QUESTION, ANSWER = "how much does a passport renewal cost", "costs"
SECRET = "fuzz-Secret_14"
REPLY_SECONDS = 60.0
DRAWN_CHAT = 987_654_321  # the chat the strategy draws updates for; each case moves them to a new one


@pytest.fixture(scope="module", params=["polling", "webhook"])
def bot(request: pytest.FixtureRequest, stack: Stack) -> Iterator[Tuple[LocalBotApi, str]]:
    """A bot of its own (its own token, so its own webhook ledger) in each mode."""
    mode = request.param
    api = LocalBotApi(token=f"{os.getpid() % 90_000 + 10_000}{int(mode == 'webhook')}:FUZZ-TOKEN", redeliver_after=0.3).start()
    env = bot_env(api)
    if mode == "webhook":
        port = free_port()
        env.update(
            TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook",
            TELEGRAM_SECRET_TOKEN=SECRET,
            TELEGRAM_WEBHOOK_PORT=str(port),
        )
    stack.spawn_bot(f"fuzz {mode}", env)
    started(api)
    if mode == "webhook":
        wait_for_port(port)
    yield api, mode
    stack.halt(f"bot fuzz {mode}")
    api.stop()


@pytest.fixture(scope="module")
def backend(stack: Stack) -> Iterator[ServiceBackend]:
    service = ServiceBackend.from_url(stack.database_url)
    yield service
    service.engine.dispose()


def sent(api: LocalBotApi, since: int) -> List[ApiCall]:
    """What the bot sent since `since` (any status): messages, media, button answers."""
    with api._cond:  # the stand-in's record, read at once
        return [c for c in api.calls[since:] if c.method.startswith("send") or c.method == "answerCallbackQuery"]


def texts_to(api: LocalBotApi, chat: int, since: int) -> str:
    return " ".join(html.unescape(str(c.params.get("text", ""))) for c in api.calls_to("sendMessage", chat_id=chat, since=since))


def kind_of(update: Dict[str, Any]) -> str:
    """What the update carries; "unreadable" when python-telegram-bot cannot read it (Telegram never sends such a one:
    the bot drops it, logged by its id)."""
    try:
        Update.de_json(copy.deepcopy(update), None)
    except Exception:  # whatever PTB's constructors raise
        return "unreadable"
    return next((key for key in ("message", "edited_message", "callback_query", "channel_post") if key in update), "")


def deliver(api: LocalBotApi, update: Dict[str, Any]) -> Dict[str, Any]:
    """`update` with the stand-in's next update id (and, for a button press, a query id it knows), delivered."""
    with api._cond:
        update = {**update, "update_id": api.state.new_update()["update_id"]}
        if "callback_query" in update:
            update["callback_query"] = {**update["callback_query"], "id": api.state.callback_query_id()}
    api.deliver(update)
    return update


def handled(api: LocalBotApi, mode: str, update: Dict[str, Any], chat: int, since: int) -> None:
    """Wait until the bot is done with `update`: answered 2xx on the webhook, or (polling) its reply came and the bot
    fell silent; an update that gets no reply is done when the bot has been quiet for a while."""
    if mode == "webhook":
        with api._cond:
            done = api._cond.wait_for(
                lambda: (
                    any(d == (update["update_id"], 200) for d in api.webhook_deliveries)
                    or any(u == update["update_id"] and s >= 500 for u, s in api.webhook_deliveries)
                ),
                REPLY_SECONDS,
            )
        assert done, f"update {update['update_id']} not answered 200: {api.webhook_deliveries[-5:]}"
    elif kind_of(update) in ("message", "callback_query"):
        with api._cond:
            api._cond.wait_for(
                lambda: any(c.params.get("chat_id") == chat or c.method == "answerCallbackQuery" for c in sent(api, since)),
                REPLY_SECONDS,
            )
    api.wait_quiet(1.5, timeout=REPLY_SECONDS)


@fuzz_settings(10)
@given(update=telegram_updates(chat_id=DRAWN_CHAT, update_id=0))
@example(
    update={"update_id": 0, "message": {"message_id": 1, "date": 0, "chat": {"id": DRAWN_CHAT, "type": "private"}, "photo": "x"}}
)
def test_generated_updates_get_a_reply_or_a_deliberate_silence_and_the_chat_goes_on(
    stack: Stack, bot: Tuple[LocalBotApi, str], backend: ServiceBackend, update: Dict[str, Any]
) -> None:
    api, mode = bot
    chat = next(chats)
    update = in_chat(update, chat)
    api.set_user(chat, "Fuzz")  # the chat exists, as when a user has started the bot
    since = api.mark()
    update = deliver(api, update)
    handled(api, mode, update, chat, since)
    process = stack.processes[f"bot fuzz {mode}"]
    assert process.poll() is None, f"the bot exited ({process.returncode})"
    assert all(status < 500 for _, status in api.webhook_deliveries), api.webhook_deliveries
    replies = sent(api, since)
    kind = kind_of(update)
    if kind == "message":
        assert any(c.chat_id == chat and c.status == 200 for c in replies), (kind, api.recent_calls())
    elif kind == "callback_query":
        answered = [c for c in replies if c.params.get("callback_query_id") == update["callback_query"]["id"]]
        assert answered or any(c.chat_id == chat and c.status == 200 for c in replies), (kind, api.recent_calls())
    else:
        assert not replies, (kind, api.recent_calls())  # new messages only (filters.UpdateType.MESSAGE), in a chat
    assert all(c.chat_id in (None, chat) for c in replies), api.recent_calls()

    control = api.mark()
    api.user_sends_text(chat, "/cancel")
    api.wait_for("sendMessage", chat_id=chat, since=control, timeout=REPLY_SECONDS)
    api.wait_quiet(1.0, timeout=REPLY_SECONDS)
    question = api.mark()
    api.user_sends_text(chat, QUESTION)
    api.wait_for("sendMessage", chat_id=chat, since=question, timeout=REPLY_SECONDS)
    api.wait_quiet(1.0, timeout=REPLY_SECONDS)
    handed_over = backend.handoffs.active(f"telegram:{chat}") is not None
    assert handed_over or ANSWER in texts_to(api, chat, question), (update, api.recent_calls())
    assert all(c.chat_id in (None, chat) for c in sent(api, since)), api.recent_calls()


def in_chat(update: Dict[str, Any], chat: int) -> Dict[str, Any]:
    """The generated update with `chat` as its chat and user."""

    def move(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: chat if key == "id" and item == DRAWN_CHAT else move(item) for key, item in value.items()}
        if isinstance(value, list):
            return [move(item) for item in value]
        return value

    return move(update)
