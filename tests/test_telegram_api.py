"""The local Telegram Bot API stand-in, driven by a real python-telegram-bot `Bot` over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import threading
import time
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import httpx
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    File,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
    Voice,
    WebhookInfo,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, EndPointNotFound, Forbidden, InvalidToken, NetworkError, RetryAfter

from tests import expect
from tests.telegram_api import LocalBotApi

T = TypeVar("T")
CHAT = 4242
OGG = b"OggS\x00\x02" + bytes(range(256)) * 40  # not a real recording: only the bytes matter here


@pytest.fixture
def api() -> Iterator[LocalBotApi]:
    with LocalBotApi() as server:
        yield server


def with_bot(api: LocalBotApi, use: Callable[[Bot], Awaitable[T]], token: str | None = None) -> T:
    """Run `use(bot)` with a real PTB Bot pointed at the stand-in."""

    async def main() -> T:
        async with Bot(token or api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
            return await use(bot)

    return asyncio.run(main())


def message_of(update: Update) -> Message:
    """The message an update carries (the test sent one)."""
    return expect.present(update.message, f"a message in update {update.update_id}")


def voice_of(message: Message) -> Voice:
    """The voice note of a message (the test sent one)."""
    return expect.present(message.voice, f"a voice note in message {message.message_id}")


def seconds(period: int | dtm.timedelta) -> float:
    return period.total_seconds() if isinstance(period, dtm.timedelta) else float(period)


def test_get_me_answers_the_bot_user(api: LocalBotApi) -> None:
    me = with_bot(api, lambda bot: bot.get_me())
    assert me.id == int(api.token.split(":")[0]) and me.is_bot and me.username == "onewindow_test_bot"
    assert [call.method for call in api.calls] == ["getMe", "getMe"]  # initialize() + get_me()


def test_send_message_records_decoded_params_and_echoes_the_keyboard(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "hello")
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("North office", callback_data='/choose{"o":"north"}')],
            [InlineKeyboardButton("Website", url="https://example.org/")],
        ]
    )

    async def send(bot: Bot) -> tuple[Message, Message]:
        first = await bot.send_message(CHAT, "<b>Which</b> office?", parse_mode=ParseMode.HTML, reply_markup=keyboard)
        second = await bot.send_message(
            CHAT,
            "Share your phone",
            reply_markup=ReplyKeyboardMarkup([[KeyboardButton("Send my number", request_contact=True)]], one_time_keyboard=True),
        )
        return first, second

    first, second = with_bot(api, send)
    assert first.message_id == 2 and second.message_id == 3  # the user's message was 1
    assert first.text == "Which office?" and first.entities[0].type == "bold"
    assert first.reply_markup == keyboard and second.reply_markup is None  # Telegram echoes inline keyboards only
    call = api.wait_for("sendMessage")[0]
    assert call.params["chat_id"] == CHAT and call.params["text"] == "<b>Which</b> office?"
    assert call.params["reply_markup"] == keyboard.to_dict()
    assert api.calls_to("sendMessage")[1].params["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    assert api.sent_texts(CHAT) == ["<b>Which</b> office?", "Share your phone"]
    assert api.inline_buttons(CHAT)[0]["callback_data"] == '/choose{"o":"north"}'


def test_get_updates_receives_user_messages_and_the_offset_confirms_them(api: LocalBotApi) -> None:
    api.set_user(CHAT, "Ana", username="ana")
    sent = api.user_sends_text(CHAT, "/start booking")
    api.user_shares_contact(CHAT, "+61412345678")

    async def poll(bot: Bot) -> tuple[tuple[Update, ...], tuple[Update, ...]]:
        first = await bot.get_updates(timeout=0)
        again = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
        return first, again

    first, again = with_bot(api, poll)
    assert [u.update_id for u in first] == [sent["update_id"], sent["update_id"] + 1] and again == ()
    message = message_of(first[0])
    sender = expect.present(message.from_user, "the message's sender")
    assert message.text == "/start booking" and sender.first_name == "Ana"
    assert message.chat.type == "private" and message.chat.id == sender.id == CHAT
    assert message.entities[0].type == "bot_command" and message.parse_entity(message.entities[0]) == "/start"
    contact = expect.present(message_of(first[1]).contact, "the shared contact")
    assert contact.user_id == CHAT and contact.phone_number == "+61412345678"
    assert api.calls_to("getUpdates")[-1].result == []


def test_a_redelivered_update_reaches_a_polling_bot_again(api: LocalBotApi) -> None:
    original = api.user_sends_text(CHAT, "book an id card")

    async def poll_twice(bot: Bot) -> tuple[tuple[Update, ...], tuple[Update, ...], tuple[Update, ...]]:
        first = await bot.get_updates()
        api.deliver(original)  # after the bot had it: Telegram sends it again
        later = api.user_sends_text(CHAT, "tomorrow")["update_id"]
        second = await bot.get_updates(offset=first[-1].update_id + 1)
        third = await bot.get_updates(offset=later + 1, timeout=0)
        return first, second, third

    first, second, third = with_bot(api, poll_twice)
    assert [u.update_id for u in first] == [original["update_id"]]
    assert [u.update_id for u in second] == [original["update_id"], original["update_id"] + 1]
    assert message_of(second[0]).text == "book an id card" and third == ()


def test_long_polling_returns_as_soon_as_an_update_arrives(api: LocalBotApi) -> None:
    async def poll(bot: Bot) -> tuple[float, tuple[Update, ...]]:
        threading.Timer(0.3, api.user_sends_text, args=(CHAT, "anyone there?")).start()
        started = time.monotonic()
        updates = await bot.get_updates(timeout=10)
        return time.monotonic() - started, updates

    elapsed, updates = with_bot(api, poll)
    assert message_of(updates[0]).text == "anyone there?" and 0.2 < elapsed < 3


def test_a_second_poller_terminates_the_first_with_a_conflict(api: LocalBotApi) -> None:
    async def two_pollers(bot: Bot) -> tuple[tuple[Update, ...] | BaseException, tuple[Update, ...] | BaseException]:
        async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as other_instance:
            first = asyncio.create_task(bot.get_updates(timeout=5))
            await asyncio.sleep(0.2)
            second = asyncio.create_task(other_instance.get_updates(timeout=0))
            return await asyncio.gather(first, second, return_exceptions=True)

    first, second = with_bot(api, two_pollers)
    assert isinstance(first, Conflict) and "only one bot instance" in first.message and second == ()


def test_voice_note_downloads_byte_for_byte(api: LocalBotApi) -> None:
    update = api.user_sends_voice(CHAT, OGG, duration=3)

    async def download(bot: Bot) -> tuple[Update, File, bytearray]:
        (received,) = await bot.get_updates()
        file = await voice_of(message_of(received)).get_file()
        return received, file, await file.download_as_bytearray()

    received, file, data = with_bot(api, download)
    voice = voice_of(message_of(received))
    assert voice.duration == dtm.timedelta(seconds=3) or voice.duration == 3
    assert voice.mime_type == "audio/ogg" and voice.file_size == len(OGG)
    assert expect.present(file.file_path, "the file's path").startswith(api.base_file_url + api.token + "/voice/")
    assert bytes(data) == OGG and update["message"]["voice"]["file_id"] == file.file_id
    assert api.calls_to("downloadFile")[0].params["file_path"].endswith(".oga")


def test_send_voice_uploads_multipart_bytes(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "read it to me")

    async def send(bot: Bot) -> tuple[Message, bytearray]:
        message = await bot.send_voice(CHAT, OGG, duration=2, caption="Your appointment")
        file = await bot.get_file(voice_of(message).file_id)
        return message, await file.download_as_bytearray()

    message, downloaded = with_bot(api, send)
    call = api.calls_to("sendVoice")[0]
    assert call.files["voice"] == OGG and call.params["caption"] == "Your appointment"
    assert voice_of(message).file_size == len(OGG) and message.caption == "Your appointment"
    assert bytes(downloaded) == OGG and api.sent_texts(CHAT) == ["Your appointment"]


def test_location_venue_photo_and_chat_action(api: LocalBotApi) -> None:
    api.user_shares_location(CHAT, -33.86, 151.2)

    async def send(bot: Bot) -> list[Any]:
        return [
            await bot.send_chat_action(CHAT, "typing"),
            await bot.send_location(CHAT, -33.86, 151.2),
            await bot.send_venue(CHAT, -33.86, 151.2, "North Service Centre", "1 Main St"),
            await bot.send_photo(CHAT, "https://example.org/map.png", caption="Map"),
        ]

    typing, location, venue, photo = with_bot(api, send)
    assert typing is True and location.location.latitude == -33.86
    assert venue.venue.title == "North Service Centre" and photo.photo[-1].width == 800
    assert api.calls_to("sendPhoto")[0].params["photo"] == "https://example.org/map.png"


def test_documents_stickers_contacts_captions_and_deletion(api: LocalBotApi) -> None:
    sticker_id = api.user_sends_sticker(CHAT)["message"]["sticker"]["file_id"]

    async def send(bot: Bot) -> list[Any]:
        document = await bot.send_document(
            CHAT, b"%PDF-1.4 checklist", filename="checklist.pdf", caption="*Bring* this", parse_mode=ParseMode.MARKDOWN
        )
        sticker = await bot.send_sticker(CHAT, sticker_id)
        contact = await bot.send_contact(CHAT, phone_number="+61 2 5550 1000", first_name="Hotline")
        recaptioned = await bot.edit_message_caption(CHAT, document.message_id, caption="Bring it along")
        deleted = await bot.delete_message(CHAT, contact.message_id)
        return [document, sticker, contact, recaptioned, deleted]

    document, sticker, contact, recaptioned, deleted = with_bot(api, send)
    assert document.caption == "Bring this" and document.caption_entities[0].type == "bold"
    assert api.calls_to("sendDocument")[0].files["document"] == b"%PDF-1.4 checklist"
    assert sticker.sticker.file_id == sticker_id and contact.contact.first_name == "Hotline"
    assert recaptioned.caption == "Bring it along" and not recaptioned.caption_entities and deleted is True
    assert contact.message_id not in [m["message_id"] for m in api.messages(CHAT)]
    with pytest.raises(EndPointNotFound):
        with_bot(api, lambda bot: bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": CHAT}))


def test_button_press_callback_answer_and_keyboard_edit(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "book")
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Mon", callback_data="day:mon"), InlineKeyboardButton("Tue", callback_data="day:tue")]]
    )
    sent = with_bot(api, lambda bot: bot.send_message(CHAT, "Which day?", reply_markup=keyboard))
    with pytest.raises(AssertionError, match="offered"):
        api.user_presses_button(CHAT, "day:sun")
    update = api.user_presses_button(CHAT, "day:tue")
    assert update["callback_query"]["message"]["message_id"] == sent.message_id

    async def react(bot: Bot) -> tuple[CallbackQuery, Message, BadRequest]:
        received = (await bot.get_updates())[-1]  # after the user's "book"
        query = expect.present(received.callback_query, "the button press")
        await query.answer("Tuesday it is")
        edited = await query.edit_message_reply_markup(None)
        assert isinstance(edited, Message), "a bot's own message edited: Telegram answers with the message"
        try:
            await query.edit_message_reply_markup(None)
        except BadRequest as error:
            return query, edited, error
        raise AssertionError("an edit changing nothing must fail")

    query, edited, not_modified = with_bot(api, react)
    assert isinstance(query.message, Message) and query.data == "day:tue" and query.message.reply_markup == keyboard
    assert edited.reply_markup is None and edited.edit_date is not None
    assert "message is not modified" in not_modified.message.lower()
    with pytest.raises(AssertionError, match="inline keyboard"):
        api.user_presses_button(CHAT, "day:mon")  # the keyboard is gone
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        with_bot(api, lambda bot: bot.answer_callback_query(query.id))  # answered already


def test_telegram_refusals_reach_the_bot_as_bad_requests(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "hi")
    refusals: dict[str, Callable[[Bot], Awaitable[Any]]] = {
        "can't parse entities": lambda bot: bot.send_message(CHAT, "Fee: 12.50 (cash)", parse_mode=ParseMode.MARKDOWN_V2),
        "Unsupported start tag": lambda bot: bot.send_message(CHAT, "<office>", parse_mode=ParseMode.HTML),
        "message text is empty": lambda bot: bot.send_message(CHAT, "  "),
        "message is too long": lambda bot: bot.send_message(CHAT, "x" * 4097),
        "chat not found": lambda bot: bot.send_message(999, "hello"),
        "BUTTON_DATA_INVALID": lambda bot: bot.send_message(
            CHAT, "pick", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("long", callback_data="x" * 65)]])
        ),
        "message to edit not found": lambda bot: bot.edit_message_text("new", CHAT, 77),
        "message to be replied not found": lambda bot: bot.send_message(CHAT, "re", reply_to_message_id=77),
    }
    for description, call in refusals.items():
        with pytest.raises(BadRequest, match=f"(?i){description}"):
            with_bot(api, call)
    assert api.calls_to("sendMessage", "editMessageText") == []
    assert len(api.failed_calls()) == len(refusals)


def test_flood_control_raises_retry_after(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "hi")
    api.fail_next("sendMessage", kind="flood", retry_after=3)
    with pytest.raises(RetryAfter) as raised:
        with_bot(api, lambda bot: bot.send_message(CHAT, "first"))
    assert seconds(raised.value.retry_after) == 3
    with_bot(api, lambda bot: bot.send_message(CHAT, "second"))
    attempts = [(c.status, c.params["text"]) for c in api.calls if c.method == "sendMessage"]
    assert attempts == [(429, "first"), (200, "second")]
    assert api.sent_texts(CHAT) == ["second"] and [m.get("text") for m in api.messages(CHAT)] == ["hi", "second"]


@pytest.mark.parametrize("kind, status", [("bad_gateway", 502), ("server_error", 500)])
def test_gateway_and_server_errors_raise_network_errors(api: LocalBotApi, kind: str, status: int) -> None:
    api.user_sends_text(CHAT, "hi")
    api.fail_next("sendMessage", kind=kind)
    with pytest.raises(NetworkError) as raised:
        with_bot(api, lambda bot: bot.send_message(CHAT, "hello"))
    assert type(raised.value) is NetworkError and api.failed_calls()[0].status == status


def test_blocked_bot_raises_forbidden(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "hi")
    api.fail_next("sendMessage", kind="blocked", chat_id=CHAT)
    with pytest.raises(Forbidden, match="blocked"):
        with_bot(api, lambda bot: bot.send_message(CHAT, "hello"))


def test_wrong_token_is_rejected(api: LocalBotApi) -> None:
    with pytest.raises(InvalidToken):
        with_bot(api, lambda bot: bot.get_me(), token="654321:WRONG")
    assert api.failed_calls()[0].status == 401


def test_commands_and_webhook_info(api: LocalBotApi) -> None:
    async def configure(bot: Bot) -> tuple[tuple[BotCommand, ...], WebhookInfo]:
        await bot.set_my_commands([BotCommand("start", "Start over"), BotCommand("help", "What I can do")])
        return await bot.get_my_commands(), await bot.get_webhook_info()

    commands, info = with_bot(api, configure)
    assert [c.command for c in commands] == ["start", "help"] and info.url == "" and info.pending_update_count == 0


async def webhook_receiver(path: str, receive: Callable[[web.Request], Awaitable[web.Response]]) -> tuple[web.AppRunner, str]:
    """A bot's webhook endpoint on a free loopback port: (runner to clean up, its URL)."""
    app = web.Application()
    app.router.add_post(path, receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}{path}"


def test_webhook_deliveries_carry_the_secret_and_block_get_updates(api: LocalBotApi) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.Response(text="ok")

    async def scenario(bot: Bot) -> tuple[WebhookInfo, Conflict]:
        runner, url = await webhook_receiver("/telegram", receive)
        try:
            await bot.set_webhook(url, secret_token="s3cret_Token-1")
            api.user_sends_text(CHAT, "via webhook")
            await asyncio.to_thread(api.wait_webhook_deliveries, 1, 5)
            try:
                await bot.get_updates()
            except Conflict as conflict:
                return await bot.get_webhook_info(), conflict
            raise AssertionError("getUpdates must conflict with a webhook")
        finally:
            await runner.cleanup()

    info, conflict = with_bot(api, scenario)
    ((update, secret),) = received
    assert message_of(Update.de_json(update, None)).text == "via webhook" and secret == "s3cret_Token-1"
    assert api.webhook_deliveries == [(update["update_id"], 200)] and info.pending_update_count == 0
    assert info.url.endswith("/telegram") and "webhook is active" in conflict.message


def test_updates_queued_before_the_webhook_is_set_are_delivered_in_order(api: LocalBotApi) -> None:
    received: list[int] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((await request.json())["update_id"])
        return web.Response(status=500 if len(received) == 3 else 200)

    async def scenario(bot: Bot) -> WebhookInfo:
        runner, url = await webhook_receiver("/", receive)
        try:
            for text in ("one", "two"):
                api.user_sends_text(CHAT, text)
            await bot.set_webhook(url)
            duplicate = api.user_sends_text(CHAT, "three")
            api.deliver(duplicate)  # Telegram sometimes sends an update twice
            await asyncio.to_thread(api.wait_webhook_deliveries, 4, 5)
            return await bot.get_webhook_info()
        finally:
            await runner.cleanup()

    info = with_bot(api, scenario)
    first = received[0]
    assert received == [first, first + 1, first + 2, first + 2]
    assert [status for _, status in api.webhook_deliveries] == [200, 200, 500, 200]
    assert info.last_error_message and "500" in info.last_error_message


def test_raw_http_encodings_unknown_methods_and_files(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "hi")
    base = f"{api.base_url}{api.token}"
    with httpx.Client() as client:
        keyboard = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
        as_json = client.post(f"{base}/sendMessage", json={"chat_id": CHAT, "text": "json", "reply_markup": keyboard})
        as_query = client.get(f"{base}/SENDMESSAGE", params={"chat_id": str(CHAT), "text": "42"})
        unknown = client.post(f"{base}/sendTelepathy", data={"chat_id": str(CHAT)})
        missing_file = client.get(f"{api.base_file_url}{api.token}/voice/nothing.oga")
    assert as_json.json()["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    assert as_query.json()["result"]["text"] == "42" and api.calls_to("sendMessage")[1].params["text"] == "42"
    assert unknown.status_code == 404 and unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert missing_file.status_code == 404


def test_every_user_update_deserialises_in_ptb(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "see /help@onewindow_test_bot please")
    api.user_sends_photo(CHAT, caption="pothole")
    api.user_sends_document(CHAT)
    api.user_sends_sticker(CHAT)
    api.user_shares_contact(CHAT, "0412 345 678", own=False)
    api.user_shares_location(CHAT, -33.86, 151.2)
    updates = with_bot(api, lambda bot: bot.get_updates())
    kinds = ("text", "photo", "document", "sticker", "contact", "location")
    assert [next(k for k in kinds if getattr(u.message, k)) for u in updates] == list(kinds)
    command = message_of(updates[0]).entities[0]
    assert message_of(updates[0]).parse_entity(command) == "/help@onewindow_test_bot"
    contact = expect.present(message_of(updates[4]).contact, "the shared contact")
    assert contact.user_id != CHAT and message_of(updates[1]).caption == "pothole"


def test_waiting_helpers_time_out_with_the_recent_calls(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "hi")
    with_bot(api, lambda bot: bot.send_message(CHAT, "hello"))
    api.wait_quiet(0.2, timeout=5)
    mark = api.mark()
    with pytest.raises(AssertionError, match=r"sendMessage \[200\] chat=4242 'hello'"):
        api.wait_for("sendMessage", since=mark, timeout=0.3)
    assert len(api.wait_for("sendMessage", timeout=0.3)) == 1


def test_a_dropped_connection_raises_a_network_error_and_after_lets_calls_through_first(api: LocalBotApi) -> None:
    api.user_sends_text(CHAT, "hi")
    api.fail_next("sendMessage", kind="disconnect", chat_id=CHAT, after=1)

    async def send_twice(bot: Bot) -> None:
        await bot.send_message(CHAT, "first")
        await bot.send_message(CHAT, "second")

    with pytest.raises(NetworkError, match="RemoteProtocolError"):
        with_bot(api, send_twice)
    assert api.sent_texts(CHAT) == ["first"]
    dropped = api.failed_calls()
    assert [(c.params["text"], c.status, c.error) for c in dropped] == [("second", 0, "connection closed without an answer")]
    with_bot(api, lambda bot: bot.send_message(CHAT, "third"))  # the fault is used up
    assert api.sent_texts(CHAT) == ["first", "third"]
