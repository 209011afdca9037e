"""The Telegram bot's parts on their own: settings, text splitting and escaping, button payloads,
which API failures are retried, and per-chat ordering; rendering goes through a real
python-telegram-bot `Bot` against the local Bot API server, which parses the HTML like Telegram.
"""

from __future__ import annotations

import asyncio
import html
import random
from typing import Any, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Bot, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.conversation import typing
from bot.delivery import SafeRetries, is_idempotent, never_delivered
from bot.handlers import listening, unsupported_text, welcome_text
from bot.keyboards import CALLBACK_LIMIT, PayloadStore, inline_keyboard
from bot.processing import PerChatUpdateProcessor, SeenUpdates
from bot.rendering import Renderer, checklist_text, list_lines, split_text, spoken_text
from bot.settings import SettingsError, settings_from_environment
from onewindow.infra.metrics import TELEGRAM_DELIVERY_ERRORS
from tests import expect
from tests.telegram_api import LocalBotApi

# --- settings ---------------------------------------------------------------------------------


def test_settings_defaults_and_clear_errors() -> None:
    settings = settings_from_environment({"TELEGRAM_TOKEN": "1:abc"})
    assert not settings.webhook_mode and settings.rasa_url == "http://127.0.0.1:5005" and settings.rasa_timeout == 8.0
    with pytest.raises(SettingsError, match="TELEGRAM_TOKEN is not set"):
        settings_from_environment({})
    with pytest.raises(SettingsError, match="needs TELEGRAM_SECRET_TOKEN"):
        settings_from_environment({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_WEBHOOK_URL": "https://x.org/hook"})
    with pytest.raises(SettingsError, match="may only hold"):
        settings_from_environment({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_SECRET_TOKEN": "has space"})
    with pytest.raises(SettingsError, match="RASA_TIMEOUT must be a number"):
        settings_from_environment({"TELEGRAM_TOKEN": "1:abc", "RASA_TIMEOUT": "soon"})
    hooked = settings_from_environment(
        {"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_WEBHOOK_URL": "https://x.org/hook", "TELEGRAM_SECRET_TOKEN": "a-B_9"}
    )
    assert hooked.webhook_mode and hooked.secret_token == "a-B_9"


# --- text ----------------------------------------------------------------------------------------


def test_split_text_keeps_every_word_and_fits_the_limit_after_escaping() -> None:
    pick = random.Random(7).choice
    words = [pick(["tax", "<b>", "a&b", "ID", "café", "form\n\n"]) for _ in range(3000)]
    text = " ".join(words)
    pieces = split_text(text, limit=500)
    assert len(pieces) > 3
    assert all(len(html.escape(p)) <= 500 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_split_text_prefers_paragraph_ends_and_leaves_short_text_alone() -> None:
    assert split_text("  short  ") == ["short"]
    first, second = split_text("a" * 300 + "\n\n" + "b" * 300, limit=400)
    assert first == "a" * 300 and second == "b" * 300
    assert all(len(p) <= 100 for p in split_text("x" * 350, limit=100))  # no space at all: hard cuts


WORDS = st.lists(
    st.sampled_from(["office", "Central", "open", "today", "8:30 am", "25 dollars", "bring", "photo", "the"]),
    min_size=1,
    max_size=6,
)
SENTENCE = WORDS.map(lambda words: " ".join(words) + ".")


@settings(max_examples=200, deadline=None)
@given(
    before=SENTENCE,
    items=st.lists(SENTENCE, min_size=2, max_size=8),
    after=st.sampled_from(["", "That is all.", "Ask me if you need more.", "There are 3 more."]),
)  # how the phone, too, tells the end of the last item
def test_each_numbered_item_goes_on_its_own_line(before: str, items: List[str], after: str) -> None:
    numbered = [f"{n}. {item}" for n, item in enumerate(items, start=1)]
    text = " ".join(part for part in (before, *numbered, after) if part)
    lines = list_lines(text).split("\n")
    assert lines == [before, *numbered, *([after] if after else [])]
    assert " ".join(lines) == text  # nothing lost or added but the line breaks


@settings(max_examples=200, deadline=None)
@given(text=st.lists(SENTENCE, min_size=1, max_size=6).map(" ".join), number=st.integers(2, 40))
def test_text_without_a_numbered_list_is_left_alone(text: str, number: int) -> None:
    assert list_lines(text) == text
    assert list_lines(f"{text} {number}. {text}") == f"{text} {number}. {text}"  # one item that is not 1. is no list


@pytest.mark.parametrize("model, heard", [("/models/vosk-small", True), ("", False), (None, False)])
def test_voice_messages_are_offered_only_with_a_speech_model(monkeypatch: pytest.MonkeyPatch, model: Any, heard: bool) -> None:
    if model is None:
        monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    else:
        monkeypatch.setenv("VOSK_MODEL_PATH", model)
    assert listening() is heard
    for text in (welcome_text(listening()), unsupported_text(listening())):
        assert ("voice message" in text) is heard, text
        assert "{" not in text and "ype your question" in text
    assert "Privacy" in welcome_text(heard) and "cannot look at pictures" in unsupported_text(heard)


def test_checklist_and_spoken_text() -> None:
    text = checklist_text({"title": "Passport <renewal>", "items": ["ID & photo", "Form"], "reference": "BK-123456"})
    assert text.splitlines() == [
        "<b>Passport &lt;renewal&gt;</b>",
        "☐ ID &amp; photo",
        "☐ Form",
        "Appointment number: <code>BK-123456</code>",
    ]
    said = spoken_text(
        [
            {"text": "Which office?", "buttons": [{"title": "North", "payload": "/x"}, {"title": "South", "payload": "/y"}]},
            {"custom": {}},
        ]
    )
    assert said == "Which office? You can choose: North, South."


# --- buttons ---------------------------------------------------------------------------------------


def test_long_payloads_travel_as_keys_and_expire_oldest_first() -> None:
    store = PayloadStore(capacity=2)
    short = '/inform{"office":"north_centre"}'
    assert store.callback_data(short) == short and store.payload(short) == short
    long_ones = [f'/inform{{"reference":"BK-00000{n}","service":"{"x" * 60}"}}' for n in range(3)]
    keys = [store.callback_data(p) for p in long_ones]
    assert all(len(k.encode()) <= CALLBACK_LIMIT and k.startswith("k:") for k in keys)
    assert store.payload(keys[0]) is None  # dropped: capacity 2
    assert [store.payload(k) for k in keys[1:]] == long_ones[1:]
    assert store.payload("forget:yes") is None


def test_inline_keyboard_puts_short_titles_two_to_a_row() -> None:
    buttons = [{"title": t, "payload": f"/p{n}"} for n, t in enumerate(["Yes", "No", "A much longer button title", "Ok"])]
    rows = inline_keyboard(buttons, PayloadStore()).inline_keyboard
    assert [[b.text for b in row] for row in rows] == [["Yes", "No"], ["A much longer button title"], ["Ok"]]


def test_a_long_list_of_times_keeps_every_button_three_to_a_row() -> None:
    times = [f"{hour}:{minute} am" for hour in range(8, 12) for minute in ("00", "30")] + ["12 pm", "1:30 pm", "2 pm"]
    rows = inline_keyboard([{"title": t, "payload": f"/p{n}"} for n, t in enumerate(times)], PayloadStore()).inline_keyboard
    assert [b.text for row in rows for b in row] == times
    assert [len(row) for row in rows] == [3, 3, 3, 2]


# --- retries ------------------------------------------------------------------------------------------


def test_only_failures_where_telegram_did_not_act_are_retried_for_sending_methods() -> None:
    assert never_delivered(NetworkError("httpx.ConnectError: [Errno 111] Connection refused"))
    assert never_delivered(NetworkError("Bad Gateway"))
    assert not never_delivered(TimedOut("Timed out"))
    assert not never_delivered(NetworkError("httpx.RemoteProtocolError: Server disconnected"))
    assert is_idempotent("getFile") and is_idempotent("sendChatAction") and is_idempotent("editMessageReplyMarkup")
    assert not is_idempotent("sendMessage") and not is_idempotent("sendVoice")


def run_with_failures(failures: List[Exception], endpoint: str) -> Dict[str, Any]:
    attempts: List[int] = []

    async def callback() -> bool:
        attempts.append(1)
        if len(attempts) <= len(failures):
            raise failures[len(attempts) - 1]
        return True

    async def go() -> Any:
        return await SafeRetries(backoff=0.01).process_request(callback, (), {}, endpoint, {}, None)

    try:
        return {"result": asyncio.run(go()), "attempts": len(attempts)}
    except Exception as error:  # the test inspects which error escaped
        return {"error": error, "attempts": len(attempts)}


def test_safe_retries_honour_flood_control_and_never_resend_an_uncertain_message() -> None:
    failed_before = TELEGRAM_DELIVERY_ERRORS._value.get()
    assert run_with_failures([RetryAfter(0), NetworkError("Bad Gateway")], "sendMessage") == {"result": True, "attempts": 3}
    uncertain = run_with_failures([TimedOut("Timed out")], "sendMessage")
    assert isinstance(uncertain["error"], TimedOut) and uncertain["attempts"] == 1
    assert run_with_failures([TimedOut("Timed out")], "getFile") == {"result": True, "attempts": 2}
    gave_up = run_with_failures([NetworkError("Bad Gateway")] * 9, "sendMessage")
    assert isinstance(gave_up["error"], NetworkError) and gave_up["attempts"] == 5
    refused = run_with_failures([BadRequest("Message is not modified")], "editMessageReplyMarkup")
    assert isinstance(refused["error"], BadRequest) and refused["attempts"] == 1
    too_long = run_with_failures([RetryAfter(3600)], "sendMessage")
    assert isinstance(too_long["error"], RetryAfter) and too_long["attempts"] == 1
    assert TELEGRAM_DELIVERY_ERRORS._value.get() - failed_before == 4  # the four that failed for good, not the retried


# --- ordering -------------------------------------------------------------------------------------------


def update_for(update_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {"message_id": update_id, "date": 0, "chat": {"id": chat_id, "type": "private"}, "text": "x"},
        },
        None,
    )


def test_a_chats_updates_run_one_at_a_time_in_order_and_chats_run_in_parallel() -> None:
    log: List[str] = []

    async def handle(name: str, seconds: float) -> None:
        log.append(f"{name} start")
        await asyncio.sleep(seconds)
        log.append(f"{name} end")

    async def go() -> None:
        processor = PerChatUpdateProcessor()
        await asyncio.gather(
            processor.process_update(update_for(1, 10), handle("a1", 0.05)),
            processor.process_update(update_for(2, 10), handle("a2", 0.0)),
            processor.process_update(update_for(3, 20), handle("b1", 0.0)),
            processor.process_update(update_for(1, 10), handle("a1 again", 0.0)),  # a redelivery
        )

    asyncio.run(go())
    assert log.index("a1 end") < log.index("a2 start")  # same chat: in order, one at a time
    assert log.index("b1 end") < log.index("a1 end")  # another chat did not wait
    assert "a1 again start" not in log


def test_seen_updates_forget_the_oldest_beyond_capacity() -> None:
    seen = SeenUpdates(capacity=2)
    assert [seen.first_time(n) for n in (1, 2, 1, 3, 1)] == [True, True, False, True, True]


# --- rendering through a real Bot against the local Bot API ------------------------------------------------


def test_renderer_sends_escaped_split_text_buttons_pins_and_checklists() -> None:
    long_text = ("Bring your <ID card> & two photos. " * 200).strip()
    responses: List[Dict[str, Any]] = [
        {"text": long_text, "buttons": [{"title": "Yes", "payload": "/affirm"}]},
        {"custom": {"venue": {"latitude": 52.09, "longitude": 5.12, "title": "Central", "address": "1 Market Square"}}},
        {"custom": {"checklist": {"title": "Bring", "items": ["ID <card>"]}}},
        {"custom": {"location": {"latitude": 1.5, "longitude": 2.5}}},
        {"custom": {"handoff": {"reference": "HO-1"}}},
        {"image": "https://example.org/map.png"},
    ]
    with LocalBotApi() as api:
        api.set_user(5, "Ana")  # Telegram only lets a bot write to chats that wrote to it

        async def go() -> None:
            async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
                await Renderer(PayloadStore()).send(bot, 5, responses)

        asyncio.run(go())
        sent = api.calls_to(chat_id=5)
        methods = [c.method for c in sent]
        pieces = len(html.escape(long_text)) // 4096 + 1
        assert methods == ["sendMessage"] * pieces + ["sendVenue", "sendMessage", "sendLocation", "sendPhoto"]
        stored = [m for m in api.messages(5) if m.get("text")]
        assert " ".join(m["text"] for m in stored[:pieces]) == long_text  # Telegram's view, after parsing the HTML
        assert all(len(c.params["text"]) <= 4096 for c in sent if c.method == "sendMessage")
        keyboards = [c.params.get("reply_markup") for c in sent[:pieces]]
        assert (
            keyboards[:-1] == [None] * (pieces - 1)
            and expect.present(keyboards[-1], "a keyboard on the last piece")["inline_keyboard"][0][0]["callback_data"]
            == "/affirm"
        )
        assert stored[pieces]["text"] == "Bring\n☐ ID <card>"


def test_a_numbered_list_arrives_one_item_a_line_and_the_voice_reply_is_unchanged() -> None:
    text = "Offices for passport renewal: 1. Central Service Centre. Open today. 2. North Service Centre. Closed today. There is 1 more: West."
    with LocalBotApi() as api:
        api.set_user(6, "Ana")

        async def go() -> None:
            async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
                await Renderer(PayloadStore()).send(bot, 6, [{"text": text}])

        asyncio.run(go())
        assert api.messages(6)[-1]["text"] == (
            "Offices for passport renewal:\n1. Central Service Centre. Open today.\n2. North Service Centre. Closed today.\nThere is 1 more: West."
        )
    assert spoken_text([{"text": text}]) == text  # a voice reply speaks the text as it was


# --- typing indicator ---------------------------------------------------------------------------------------


def test_typing_stops_even_when_a_request_in_flight_ignores_cancellation() -> None:
    """httpx can swallow a cancel during a request: the turn must still end, and the loop with it."""
    sent: List[float] = []

    class StubbornBot:
        async def send_chat_action(self, chat_id: int, action: str) -> bool:
            sent.append(asyncio.get_running_loop().time())
            try:
                await asyncio.sleep(0.3)
            except asyncio.CancelledError:
                pass  # swallowed, as httpx sometimes does
            return True

    async def go() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with typing(StubbornBot(), 1):  # type: ignore[arg-type]  # a stand-in for Bot with only the send_chat_action typing() calls
            await asyncio.sleep(0.4)  # slower than TYPING_AFTER_SECONDS: the indicator shows
        ended = loop.time() - started
        await asyncio.sleep(0.5)
        return ended

    took = asyncio.run(asyncio.wait_for(go(), 5))  # cancelling and awaiting the loop hung here for good
    assert took < 1.0 and len(sent) == 1  # no waiting forever, and no "typing" after the turn
