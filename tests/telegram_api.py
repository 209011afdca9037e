"""A local Telegram Bot API server for tests and benchmarks.

`LocalBotApi` listens on 127.0.0.1 and speaks the real Bot API HTTP protocol, so a bot built
on python-telegram-bot (or any other client) runs unchanged against it: point the bot at
``base_url=api.base_url`` and ``base_file_url=api.base_file_url``. Every request is recorded
(`calls`), the test plays the users (`user_sends_text`, `user_presses_button`, ...) and the
updates reach the bot by long polling (`getUpdates`) or by webhook, as chosen by the bot.

It answers like Telegram does where a bot can get it wrong: formatting errors
(``parse_mode`` HTML / MarkdownV2 / Markdown), empty or too long texts, callback data over
64 bytes, editing a message without changing it, answering an unknown callback query,
sending to an unknown chat, getUpdates while a webhook is set or from two pollers at once.
Faults (flood control, a bad gateway, server errors, a blocked bot) are injected with
`fail_next`.

    with LocalBotApi() as api:
        bot_process = start_bot(base_url=api.base_url, base_file_url=api.base_file_url)
        api.user_sends_text(42, "/start")
        api.wait_for("sendMessage", chat_id=42)
        assert "Welcome" in api.sent_texts(42)[0]

Webhook deliveries: with ``LocalBotApi(redeliver_after=seconds)`` an update the webhook did not answer
with 2xx (an error status, a refused or dropped connection) is posted again, after `redeliver_after`
seconds doubling up to 8 times that, until it is accepted or the webhook is deleted, as Telegram does;
each chat's updates wait behind their chat's unaccepted one (order kept). Without it a failed delivery
is recorded and not retried (the stand-in's own tests count single deliveries).

Deliberate differences from Telegram: webhook URLs may be plain http on loopback, Telegram's retry
intervals are shorter here, ``allowed_updates`` is stored but not
applied, uploaded media is not transcoded or measured, and leading/trailing whitespace of
texts is kept.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import aiohttp
from aiohttp import web

JSON = dict[str, Any]
BOT_IDS = itertools.count(100_000 + 1_000 * (os.getpid() % 900_000))
Handler = Callable[[JSON, dict[str, bytes]], Any]

# --------------------------------------------------------------------------------------------
# Errors and records
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer of the Bot API: HTTP `status` and Telegram's `description`."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        """The JSON body Telegram sends for this error."""
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def response_json(response: web.Response) -> Any:
    """The JSON of a response built here: TypeError when its body is not bytes, ValueError when they are not JSON."""
    if not isinstance(response.body, bytes):
        raise TypeError(f"the response's body is {type(response.body).__name__}, not bytes")
    return json.loads(response.body)


def bad_request(detail: str) -> ApiError:
    """A 400 error, worded like Telegram's ("Bad Request: <detail>")."""
    return ApiError(400, f"Bad Request: {detail}")


@dataclass
class ApiCall:
    """One HTTP request the bot made, as the server saw and answered it.

    `params` holds the decoded parameters (JSON values such as ``reply_markup`` become dicts,
    numeric ``chat_id`` becomes an int, texts stay strings), `files` the uploaded multipart
    files by part name. `status` is the HTTP status answered (0 while a long poll is still
    open), `result` the ``result`` returned on success and `error` the description otherwise.
    """

    method: str
    params: JSON
    files: dict[str, bytes]
    at: float
    status: int = 0
    result: Any = None
    error: str | None = None

    @property
    def chat_id(self) -> Any:
        """The ``chat_id`` parameter, if any."""
        return self.params.get("chat_id")

    def summary(self) -> str:
        """One line for assertion messages."""
        detail = self.params.get("text") or self.params.get("caption") or self.params.get("data") or ""
        detail = f" {str(detail)[:60]!r}" if detail else ""
        error = f" -> {self.error}" if self.error else ""
        chat = f" chat={self.chat_id}" if self.chat_id is not None else ""
        return f"{self.method} [{self.status}]{chat}{detail}{error}"


# --------------------------------------------------------------------------------------------
# Request decoding
# --------------------------------------------------------------------------------------------

# Parameters whose values are plain strings even when they look like JSON ("42", "true").
TEXT_PARAMS = frozenset(
    """text caption parse_mode url secret_token file_id callback_query_id inline_message_id
    title address phone_number first_name last_name vcard action emoji performer description
    short_description name ip_address query language_code business_connection_id
    message_effect_id foursquare_id foursquare_type google_place_id google_place_type
    photo voice audio document video animation sticker video_note thumbnail
    explanation question""".split()
)


def decode_param(name: str, value: Any) -> Any:
    """Decode one request value the way the Bot API does.

    Clients send every value as a string, JSON-encoded unless it is itself a string
    (python-telegram-bot: ``reply_markup='{"inline_keyboard": ...}'``, ``chat_id='42'``,
    ``disable_notification='true'``). Non-string values (a JSON body) pass through.
    """
    if not isinstance(value, str) or name in TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: web.Request) -> tuple[JSON, dict[str, bytes]]:
    """Parameters and uploaded files of a request: query string, then JSON, form or multipart body."""
    raw: JSON = dict(request.query)
    files: dict[str, bytes] = {}
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as error:
                raise bad_request("can't parse JSON encoded request") from error
            if not isinstance(body, dict):
                raise bad_request("can't parse JSON encoded request")
            raw.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    with value.file:  # aiohttp spools uploads to a temporary file
                        files[name] = value.file.read()
                else:
                    raw[name] = value
    return {name: decode_param(name, value) for name, value in raw.items()}, files


# --------------------------------------------------------------------------------------------
# Formatted text: parse_mode HTML, MarkdownV2 and Markdown
# --------------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and length limits."""
    return len(text.encode("utf-16-le")) // 2


def byte_offset(text: str, index: int) -> int:
    """UTF-8 byte offset of character `index`, as Telegram reports parse errors."""
    return len(text[:index].encode("utf-8"))


def entity_error(detail: str) -> ApiError:
    """A formatting error, worded like Telegram's."""
    return bad_request(f"can't parse entities: {detail}")


class TextBuilder:
    """Collects the plain text and the entities while a formatted text is parsed."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0  # in UTF-16 code units
        self.entities: list[JSON] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.offset += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        """Close an entity of `kind` opened at `start`; empty entities are dropped like Telegram does."""
        if self.offset > start:
            self.entities.append({"type": kind, "offset": start, "length": self.offset - start, **extra})

    def result(self) -> tuple[str, list[JSON]]:
        return "".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


_HTML_KINDS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s[^<>]*)?)>")
_HTML_ATTR = re.compile(r"""([A-Za-z-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_HTML_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


@dataclass
class _OpenTag:
    name: str
    kind: str
    start: int
    attrs: dict[str, str]


def _html_attrs(text: str) -> dict[str, str]:
    attrs = {}
    for name, value in _HTML_ATTR.findall(text):
        value = value[1:-1] if value[:1] in "\"'" and len(value) >= 2 else value
        attrs[name.lower()] = _HTML_ENTITY.sub(lambda m: _html_entity(m.group(1)), value)
    return attrs


def _html_entity(name: str) -> str:
    if name in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[name]
    number = int(name[2:], 16) if name[1:2] in "xX" else int(name[1:])
    return chr(number) if 0 < number < 0x110000 else ""


def parse_html(text: str) -> tuple[str, list[JSON]]:
    """Plain text and entities of an HTML formatted text; ApiError on what Telegram rejects."""
    out = TextBuilder()
    stack: list[_OpenTag] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            match = _HTML_TAG.match(text, i)
            if match is None:
                raise entity_error(f"Unclosed start tag at byte offset {byte_offset(text, i)}")
            _html_tag(match, stack, out, byte_offset(text, i))
            i = match.end()
            continue
        if char == "&":
            match = _HTML_ENTITY.match(text, i)
            if match:
                out.add(_html_entity(match.group(1)))
                i = match.end()
                continue
        out.add(char)
        i += 1
    if stack:
        raise entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


def _html_tag(match: re.Match[str], stack: list[_OpenTag], out: TextBuilder, at: int) -> None:
    closing, name = match.group(1) == "/", match.group(2).lower()
    if not closing:
        attrs = _html_attrs(match.group(3))
        kind = _HTML_KINDS.get(name)
        if kind is None or (name == "span" and attrs.get("class") != "tg-spoiler"):
            raise entity_error(f'Unsupported start tag "{name}" at byte offset {at}')
        stack.append(_OpenTag(name, kind, out.offset, attrs))
        return
    if not stack:
        raise entity_error(f"Unexpected end tag at byte offset {at}")
    tag = stack.pop()
    if tag.name != name:
        raise entity_error(f'Unmatched end tag at byte offset {at}, expected "</{tag.name}>", found "</{name}>"')
    if tag.kind == "code" and stack and stack[-1].kind == "pre":
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].attrs["language"] = language[len("language-") :]
        return
    if tag.kind == "text_link":
        if tag.attrs.get("href"):
            out.entity("text_link", tag.start, url=tag.attrs["href"])
    elif tag.kind == "pre" and tag.attrs.get("language"):
        out.entity("pre", tag.start, language=tag.attrs["language"])
    elif tag.kind == "blockquote" and "expandable" in tag.attrs:
        out.entity("expandable_blockquote", tag.start)
    elif tag.kind == "custom_emoji":
        out.entity("custom_emoji", tag.start, custom_emoji_id=tag.attrs.get("emoji-id", ""))
    else:
        out.entity(tag.kind, tag.start)


MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "code": "Code",
    "pre": "Pre",
}


class _MarkdownV2Parser:
    """Telegram's MarkdownV2: every reserved character outside an entity must be escaped."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.out = TextBuilder()
        self.stack: list[tuple[str, int, int]] = []  # (kind, start offset, char index)
        self.quote_start: int | None = None

    def parse(self) -> tuple[str, list[JSON]]:
        text = self.text
        while self.i < len(text):
            char = text[self.i]
            if self.i == 0 or text[self.i - 1] == "\n":
                if self._quote_line():
                    continue
            if char == "\\":
                self._escaped()
            elif char == "`":
                self._code()
            elif char == "*":
                self._toggle("bold", 1)
            elif char == "_":
                self._toggle("underline", 2) if text.startswith("__", self.i) else self._toggle("italic", 1)
            elif char == "~":
                self._toggle("strikethrough", 1)
            elif char == "|" and text.startswith("||", self.i):
                self._toggle("spoiler", 2)
            elif char == "[":
                self.stack.append(("text_link", self.out.offset, self.i))
                self.i += 1
            elif char == "]" and self.stack and self.stack[-1][0] == "text_link":
                self._link_end()
            elif char in MARKDOWN_V2_RESERVED:
                raise entity_error(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
            else:
                if char == "\n":
                    self._end_quote_unless_continued()
                self.out.add(char)
                self.i += 1
        self._end_quote_unless_continued()
        if self.stack:
            kind, _, index = self.stack[-1]
            raise entity_error(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte_offset(text, index)}")
        return self.out.result()

    def _quote_line(self) -> bool:
        """A '>' at the start of a line opens (or continues) a block quotation."""
        if self.text[self.i] != ">":
            return False
        if self.quote_start is None:
            self.quote_start = self.out.offset
        self.i += 1
        return True

    def _end_quote_unless_continued(self) -> None:
        if self.quote_start is not None and not self.text.startswith(">", self.i + 1):
            self.out.entity("blockquote", self.quote_start)
            self.quote_start = None

    def _escaped(self) -> None:
        following = self.text[self.i + 1 : self.i + 2]
        if following and 0 < ord(following) < 127:
            self.out.add(following)
            self.i += 2
        else:
            raise entity_error("Character '\\' is reserved and must be escaped with the preceding '\\'")

    def _toggle(self, kind: str, width: int) -> None:
        if self.stack and self.stack[-1][0] == kind:
            _, start, _ = self.stack.pop()
            self.out.entity(kind, start)
        else:
            self.stack.append((kind, self.out.offset, self.i))
        self.i += width

    def _code(self) -> None:
        text, start_index = self.text, self.i
        fence = "```" if text.startswith("```", self.i) else "`"
        kind = "pre" if fence == "```" else "code"
        self.i += len(fence)
        body: list[str] = []
        while not text.startswith(fence, self.i):
            if self.i >= len(text):
                where = byte_offset(text, start_index)
                raise entity_error(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {where}")
            if text[self.i] == "\\" and self.i + 1 < len(text):
                self.i += 1
            body.append(text[self.i])
            self.i += 1
        self.i += len(fence)
        content, language = "".join(body), None
        if kind == "pre" and "\n" in content:
            first, rest = content.split("\n", 1)
            if first and not first.isspace() and " " not in first:
                content, language = rest, first
        start = self.out.offset
        self.out.add(content)
        extra = {"language": language} if language else {}
        self.out.entity(kind, start, **extra)

    def _link_end(self) -> None:
        text = self.text
        _, start, index = self.stack.pop()
        if not text.startswith("(", self.i + 1):
            raise entity_error(f"Can't find end of TextUrl entity at byte offset {byte_offset(text, index)}")
        self.i += 2
        url: list[str] = []
        while self.i < len(text) and text[self.i] != ")":
            if text[self.i] == "\\" and self.i + 1 < len(text):
                self.i += 1
            url.append(text[self.i])
            self.i += 1
        if self.i >= len(text):
            raise entity_error(f"Can't find end of a url at byte offset {byte_offset(text, index)}")
        self.i += 1
        self.out.entity("text_link", start, url="".join(url))


def parse_markdown_v2(text: str) -> tuple[str, list[JSON]]:
    """Plain text and entities of a MarkdownV2 formatted text; ApiError on what Telegram rejects."""
    return _MarkdownV2Parser(text).parse()


def parse_markdown(text: str) -> tuple[str, list[JSON]]:
    """Plain text and entities of a legacy Markdown text (no nesting; escapes only before _*`[)."""
    out, i = TextBuilder(), 0
    kinds = {"*": "bold", "_": "italic", "`": "code"}

    def unclosed() -> ApiError:
        return entity_error(f"Can't find end of the entity starting at byte offset {byte_offset(text, i)}")

    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1 : i + 2] in ("_", "*", "`", "["):
            out.add(text[i + 1])
            i += 2
        elif text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise unclosed()
            start = out.offset
            out.add(text[i + 3 : end])
            out.entity("pre", start)
            i = end + 3
        elif char in kinds:
            end = text.find(char, i + 1)
            if end < 0:
                raise unclosed()
            start = out.offset
            out.add(text[i + 1 : end])
            out.entity(kinds[char], start)
            i = end + 1
        elif char == "[":
            middle = text.find("](", i + 1)
            end = text.find(")", middle + 2) if middle >= 0 else -1
            if end < 0:
                raise unclosed()
            start = out.offset
            out.add(text[i + 1 : middle])
            out.entity("text_link", start, url=text[middle + 2 : end])
            i = end + 1
        else:
            out.add(char)
            i += 1
    return out.result()


PARSERS: dict[str, Callable[[str], tuple[str, list[JSON]]]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def render_text(text: Any, parse_mode: Any, entities: Any, limit: int, what: str) -> tuple[str, list[JSON]]:
    """The text and entities Telegram would store for a (possibly formatted) text or caption."""
    if not isinstance(text, str):
        text = "" if text is None else json.dumps(text)
    if parse_mode:
        parser = PARSERS.get(str(parse_mode).lower())
        if parser is None:
            raise bad_request("unsupported parse_mode")
        text, entities = parser(text)
    if what == "text" and not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > limit:
        raise bad_request("message is too long" if what == "text" else "message caption is too long")
    return text, list(entities) if isinstance(entities, list) else []


# --------------------------------------------------------------------------------------------
# Reply markup
# --------------------------------------------------------------------------------------------

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "copy_text",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
)


def _rows(markup: JSON, key: str) -> list[list[Any]]:
    rows = markup.get(key)
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{key}" of the reply markup must be an Array of Arrays')
    return rows


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if not button["text"]:
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _INLINE_ACTIONS if name in button]
    if not actions:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    data = button.get("callback_data")
    if "callback_data" in button and (not isinstance(data, str) or not 1 <= len(data.encode()) <= 64):
        raise bad_request("BUTTON_DATA_INVALID")
    url = button.get("url")
    if "url" in button and not (isinstance(url, str) and re.match(r"(https?|tg)://\S+$", url)):
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def check_reply_markup(markup: Any) -> JSON | None:
    """Validate `reply_markup` like Telegram; return it when Telegram echoes it (inline keyboards only)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = _rows(markup, "inline_keyboard")
        buttons = [button for row in rows for button in row]
        if len(buttons) > 100:
            raise bad_request("reply markup is too long")
        for button in buttons:
            _check_inline_button(button)
        return {"inline_keyboard": rows}
    if "keyboard" in markup:
        for button in (button for row in _rows(markup, "keyboard") for button in row):
            label = button.get("text") if isinstance(button, dict) else button
            if not isinstance(label, str) or not label:
                raise bad_request("BUTTON_TEXT_INVALID")
        return None
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return None
    raise bad_request("can't parse reply keyboard markup JSON object")


# --------------------------------------------------------------------------------------------
# Server-side state: chats, messages, files, updates, webhook
# --------------------------------------------------------------------------------------------


@dataclass
class StoredFile:
    """A file Telegram keeps: downloadable with getFile and GET <base_file_url><token>/<file_path>."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes

    def as_file(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class ChatState:
    """A private chat with one user (Telegram: chat id == user id); messages of both sides by id."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    next_message_id: int = 1
    messages: dict[int, JSON] = field(default_factory=dict)

    def user(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for name in ("last_name", "username", "language_code"):
            if getattr(self, name):
                user[name] = getattr(self, name)
        return user

    def chat(self) -> JSON:
        chat: JSON = {"id": self.id, "type": "private", "first_name": self.first_name}
        for name in ("last_name", "username"):
            if getattr(self, name):
                chat[name] = getattr(self, name)
        return chat

    def new_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class WebhookConfig:
    """What setWebhook stored."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending: int) -> JSON:
        info: JSON = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
        }
        for name in ("allowed_updates", "ip_address", "last_error_date", "last_error_message"):
            if getattr(self, name) is not None:
                info[name] = getattr(self, name)
        return info


@dataclass
class PendingUpdate:
    """An update waiting for the bot: confirmed by a getUpdates offset or a 2xx webhook answer."""

    update: JSON
    redelivery: bool = False  # a copy of an update queued before
    returned: bool = False  # sent in a getUpdates answer

    @property
    def update_id(self) -> int:
        return self.update["update_id"]


CHAT_ACTIONS = frozenset(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document "
    "choose_sticker find_location record_video_note upload_video_note".split()
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
MEDIA = {  # kind -> (file path folder, file extension, default MIME type)
    "voice": ("voice", "oga", "audio/ogg"),
    "audio": ("music", "mp3", "audio/mpeg"),
    "photo": ("photos", "jpg", "image/jpeg"),
    "document": ("documents", "bin", "application/octet-stream"),
    "sticker": ("stickers", "webp", "image/webp"),
}


class BotApiState:
    """Everything the Bot API server knows, and the Bot API methods working on it.

    Not thread-safe by itself: `LocalBotApi` calls it with its lock held.
    """

    def __init__(self, token: str, bot_username: str) -> None:
        self.token = token
        self.bot_user: JSON = {
            "id": int(token.split(":")[0]) if token.split(":")[0].isdigit() else 1,
            "is_bot": True,
            "first_name": "OneWindow Test Bot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.pending: list[PendingUpdate] = []
        self.queued_ids: set[int] = set()
        self.next_update_id = 100_000_001
        self.webhook: WebhookConfig | None = None
        self.open_callback_queries: set[str] = set()
        self.commands: dict[str, list[JSON]] = {}
        self._ids = itertools.count(1)
        self.handlers: dict[str, Handler] = {
            "getMe": self.get_me,
            "logOut": self.accept,
            "close": self.accept,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "sendMessage": self.send_message,
            "sendVoice": self.send_media("voice"),
            "sendAudio": self.send_media("audio"),
            "sendPhoto": self.send_media("photo"),
            "sendDocument": self.send_media("document"),
            "sendSticker": self.send_media("sticker"),
            "sendLocation": self.send_location,
            "sendVenue": self.send_venue,
            "sendContact": self.send_contact,
            "sendChatAction": self.send_chat_action,
            "answerCallbackQuery": self.answer_callback_query,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "getFile": self.get_file,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setMyDescription": self.accept,
            "setMyShortDescription": self.accept,
            "setMyName": self.accept,
            "setChatMenuButton": self.accept,
        }

    # -- chats, files and updates ------------------------------------------------------------

    def chat(self, chat_id: int) -> ChatState:
        """The chat with user `chat_id`, created on first use (the user started the bot)."""
        if chat_id not in self.chats:
            self.chats[chat_id] = ChatState(chat_id, first_name=f"User{chat_id}")
        return self.chats[chat_id]

    def callback_query_id(self) -> str:
        """A fresh callback query id, now awaiting answerCallbackQuery."""
        query_id = str(self.bot_user["id"] * 10**9 + next(self._ids))
        self.open_callback_queries.add(query_id)
        return query_id

    def register_file(self, kind: str, data: bytes) -> StoredFile:
        """Store `data` as a file Telegram would serve, with a file_id and a file_path."""
        folder, extension, _ = MEDIA.get(kind, ("documents", "bin", ""))
        number = next(self._ids)
        stored = StoredFile(
            file_id=f"AwACAgIAAxkBAAI{number:06d}{kind}",
            file_unique_id=f"AgAD{number:06d}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def new_update(self, **payload: Any) -> JSON:
        """An update with the next update_id."""
        update = {"update_id": self.next_update_id, **payload}
        self.next_update_id += 1
        return update

    def queue(self, update: JSON) -> None:
        """Queue an update for the bot; a second copy of an update is a redelivery."""
        self.pending.append(PendingUpdate(update, redelivery=update["update_id"] in self.queued_ids))
        self.queued_ids.add(update["update_id"])
        self.next_update_id = max(self.next_update_id, update["update_id"] + 1)

    def confirm_offset(self, offset: int) -> None:
        """getUpdates' offset: drop updates below it; a negative offset keeps only the last ones.

        A redelivered copy is dropped only once it has been handed out, so the bot sees it.
        """
        if offset < 0:
            del self.pending[: max(0, len(self.pending) + offset)]
        elif offset:
            self.pending = [p for p in self.pending if p.update_id >= offset or (p.redelivery and not p.returned)]

    def take(self, limit: int) -> list[JSON]:
        """The first `limit` pending updates, for a getUpdates answer (they stay until confirmed)."""
        batch = self.pending[:limit]
        for pending in batch:
            pending.returned = True
        return copy.deepcopy([pending.update for pending in batch])

    def confirm(self, update_id: int) -> None:
        """Forget one pending update (delivered to the webhook)."""
        for index, pending in enumerate(self.pending):
            if pending.update_id == update_id:
                del self.pending[index]
                return

    # -- helpers of the methods --------------------------------------------------------------

    def target_chat(self, params: JSON) -> ChatState:
        """The chat named by ``chat_id``; Telegram's errors when it is missing or unknown."""
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if not isinstance(chat_id, int) or chat_id not in self.chats:
            raise bad_request("chat not found")
        return self.chats[chat_id]

    def target_message(self, params: JSON, action: str) -> tuple[ChatState, JSON]:
        """The message named by ``chat_id`` and ``message_id``."""
        chat = self.target_chat(params)
        message_id = params.get("message_id")
        message = chat.messages.get(message_id) if message_id is not None else None
        if message is None:
            raise bad_request(f"message to {action} not found")
        return chat, message

    def bot_message(self, chat: ChatState, params: JSON, content: JSON) -> JSON:
        """Store and return a message the bot sends: reply and keyboard handled like Telegram."""
        markup = check_reply_markup(params.get("reply_markup"))
        replied = self.replied_message(chat, params)
        message: JSON = {
            "message_id": chat.new_message_id(),
            "from": copy.deepcopy(self.bot_user),
            "chat": chat.chat(),
            "date": int(time.time()),
            **content,
        }
        if replied is not None:
            message["reply_to_message"] = copy.deepcopy(replied)
        if markup is not None:
            message["reply_markup"] = markup
        chat.messages[message["message_id"]] = message
        return copy.deepcopy(message)

    def replied_message(self, chat: ChatState, params: JSON) -> JSON | None:
        """The message answered (reply_parameters or the older reply_to_message_id)."""
        reply = params.get("reply_parameters")
        reply = reply if isinstance(reply, dict) else {}
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        replied = chat.messages.get(message_id)
        tolerant = reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
        if replied is None and not tolerant:
            raise bad_request("message to be replied not found")
        if replied is None:
            return None
        return {key: value for key, value in replied.items() if key != "reply_to_message"}

    @staticmethod
    def formatted(params: JSON, key: str, limit: int) -> JSON:
        """``text``/``caption`` with its entities, as the stored message carries them."""
        entities_key = "entities" if key == "text" else "caption_entities"
        text, entities = render_text(params.get(key), params.get("parse_mode"), params.get(entities_key), limit, key)
        content: JSON = {key: text}
        if entities:
            content[entities_key] = entities
        return content

    def media_file(self, kind: str, params: JSON, files: dict[str, bytes]) -> StoredFile:
        """The file sent as `kind`: an upload, an attach:// upload, a known file_id or an URL."""
        value = params.get(kind)
        if kind in files:
            return self.register_file(kind, files[kind])
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            return self.register_file(kind, files[value[9:]])
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and re.match(r"https?://\S+$", value):
            return self.register_file(kind, b"")
        if value:
            raise bad_request("wrong remote file identifier specified: Wrong string length")
        raise bad_request(f"there is no {kind} in the request")

    @staticmethod
    def media_object(kind: str, stored: StoredFile, params: JSON) -> Any:
        """The object describing a sent file (``voice``, ``photo`` sizes, ``document``...)."""
        base = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": len(stored.data)}
        mime = MEDIA[kind][2]
        if kind == "photo":
            return [{**base, "width": 90, "height": 90}, {**base, "width": 800, "height": 800}]
        if kind == "voice":
            return {**base, "duration": int(params.get("duration") or 0), "mime_type": mime}
        if kind == "audio":
            return {**base, "duration": int(params.get("duration") or 0), "mime_type": mime}
        if kind == "sticker":
            return {**base, "type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False}
        return {**base, "file_name": stored.file_path.rsplit("/", 1)[-1], "mime_type": mime}

    @staticmethod
    def location(params: JSON) -> JSON:
        latitude, longitude = params.get("latitude"), params.get("longitude")
        if not isinstance(latitude, (int, float)) or not -90 <= latitude <= 90:
            raise bad_request("wrong latitude specified")
        if not isinstance(longitude, (int, float)) or not -180 <= longitude <= 180:
            raise bad_request("wrong longitude specified")
        return {"latitude": float(latitude), "longitude": float(longitude)}

    # -- methods -----------------------------------------------------------------------------

    def accept(self, params: JSON, files: dict[str, bytes]) -> bool:
        """Setters whose effect the tests do not observe."""
        return True

    def get_me(self, params: JSON, files: dict[str, bytes]) -> JSON:
        return copy.deepcopy(self.bot_user)

    def set_webhook(self, params: JSON, files: dict[str, bytes]) -> bool:
        url = params.get("url") or ""
        if not url:
            return self.delete_webhook(params, files)
        if not isinstance(url, str) or not re.match(r"https?://\S+$", url):
            raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self.pending.clear()
        allowed = params.get("allowed_updates")
        self.webhook = WebhookConfig(
            url=url,
            secret_token=secret,
            max_connections=int(params.get("max_connections") or 40),
            allowed_updates=allowed if isinstance(allowed, list) else None,
            ip_address=params.get("ip_address"),
        )
        return True

    def delete_webhook(self, params: JSON, files: dict[str, bytes]) -> bool:
        if params.get("drop_pending_updates"):
            self.pending.clear()
        self.webhook = None
        return True

    def get_webhook_info(self, params: JSON, files: dict[str, bytes]) -> JSON:
        if self.webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self.pending)}
        return self.webhook.info(len(self.pending))

    def send_message(self, params: JSON, files: dict[str, bytes]) -> JSON:
        chat = self.target_chat(params)
        return self.bot_message(chat, params, self.formatted(params, "text", 4096))

    def send_media(self, kind: str) -> Handler:
        """The handler of sendVoice, sendPhoto, ...: the file becomes downloadable by getFile."""

        def send(params: JSON, files: dict[str, bytes]) -> JSON:
            chat = self.target_chat(params)
            caption = self.formatted(params, "caption", 1024) if params.get("caption") else {}
            stored = self.media_file(kind, params, files)
            return self.bot_message(chat, params, {kind: self.media_object(kind, stored, params), **caption})

        return send

    def send_location(self, params: JSON, files: dict[str, bytes]) -> JSON:
        chat = self.target_chat(params)
        return self.bot_message(chat, params, {"location": self.location(params)})

    def send_venue(self, params: JSON, files: dict[str, bytes]) -> JSON:
        chat = self.target_chat(params)
        location = self.location(params)
        for name in ("title", "address"):
            if not params.get(name):
                raise bad_request(f"venue {name} must be non-empty")
        venue = {"location": location, "title": params["title"], "address": params["address"]}
        return self.bot_message(chat, params, {"venue": venue, "location": location})

    def send_contact(self, params: JSON, files: dict[str, bytes]) -> JSON:
        chat = self.target_chat(params)
        if not params.get("phone_number") or not params.get("first_name"):
            raise bad_request("phone number and first name must be non-empty")
        contact = {"phone_number": params["phone_number"], "first_name": params["first_name"]}
        return self.bot_message(chat, params, {"contact": contact})

    def send_chat_action(self, params: JSON, files: dict[str, bytes]) -> bool:
        self.target_chat(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def answer_callback_query(self, params: JSON, files: dict[str, bytes]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self.open_callback_queries:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self.open_callback_queries.discard(query_id)
        return True

    def edited(self, chat: ChatState, message: JSON, changes: JSON, replaced: tuple[str, ...], markup: JSON | None) -> JSON:
        """Apply an edit (`replaced` fields and the keyboard give way to `changes` and `markup`).

        Telegram refuses an edit that changes nothing ("message is not modified").
        """
        updated = {key: value for key, value in message.items() if key not in (*replaced, "reply_markup", "edit_date")}
        updated.update(changes)
        if markup is not None:
            updated["reply_markup"] = markup
        if updated == {key: value for key, value in message.items() if key != "edit_date"}:
            raise bad_request(NOT_MODIFIED)
        updated["edit_date"] = int(time.time())
        chat.messages[message["message_id"]] = updated
        return copy.deepcopy(updated)

    def editable(self, params: JSON) -> tuple[ChatState, JSON] | None:
        """The bot's message to edit; None for inline messages (Telegram then answers True)."""
        if params.get("inline_message_id") and params.get("chat_id") is None:
            return None
        chat, message = self.target_message(params, "edit")
        if message["from"]["id"] != self.bot_user["id"]:
            raise bad_request("message can't be edited")
        return chat, message

    def edit_message_text(self, params: JSON, files: dict[str, bytes]) -> JSON | bool:
        target = self.editable(params)
        if target is None:
            return True
        chat, message = target
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        changes = self.formatted(params, "text", 4096)
        return self.edited(chat, message, changes, ("text", "entities"), check_reply_markup(params.get("reply_markup")))

    def edit_message_caption(self, params: JSON, files: dict[str, bytes]) -> JSON | bool:
        target = self.editable(params)
        if target is None:
            return True
        chat, message = target
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        changes = self.formatted(params, "caption", 1024) if params.get("caption") else {}
        markup = check_reply_markup(params.get("reply_markup"))
        return self.edited(chat, message, changes, ("caption", "caption_entities"), markup)

    def edit_message_reply_markup(self, params: JSON, files: dict[str, bytes]) -> JSON | bool:
        target = self.editable(params)
        if target is None:
            return True
        chat, message = target
        return self.edited(chat, message, {}, (), check_reply_markup(params.get("reply_markup")))

    def delete_message(self, params: JSON, files: dict[str, bytes]) -> bool:
        chat, message = self.target_message(params, "delete")
        del chat.messages[message["message_id"]]
        return True

    def get_file(self, params: JSON, files: dict[str, bytes]) -> JSON:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.data) > 20 * 1024 * 1024:
            raise bad_request("file is too big")
        return stored.as_file()

    @staticmethod
    def commands_key(params: JSON) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def set_my_commands(self, params: JSON, files: dict[str, bytes]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self.commands_key(params)] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    def get_my_commands(self, params: JSON, files: dict[str, bytes]) -> list[JSON]:
        return copy.deepcopy(self.commands.get(self.commands_key(params), []))

    def delete_my_commands(self, params: JSON, files: dict[str, bytes]) -> bool:
        self.commands.pop(self.commands_key(params), None)
        return True


# --------------------------------------------------------------------------------------------
# The HTTP server and the test-side interface
# --------------------------------------------------------------------------------------------

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)
FAULT_KINDS = ("flood", "bad_gateway", "server_error", "blocked", "disconnect", "stall")
DROPPED = 599  # the status of a "disconnect" fault's reply, which is never sent
WEBHOOK_CONFLICT = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
_BOT_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


@dataclass
class Fault:
    """An injected failure for the next calls of `method` (to `chat_id` when given)."""

    method: str
    kind: str
    remaining: int
    retry_after: int
    chat_id: int | None = None
    after: int = 0  # matching calls to let through first

    def matches(self, method: str, params: JSON) -> bool:
        return (
            self.remaining > 0
            and self.method.lower() == method.lower()
            and (self.chat_id is None or params.get("chat_id") == self.chat_id)
        )

    def take(self) -> bool:
        """Count one matching call; True when this one fails."""
        if self.after:
            self.after -= 1
            return False
        self.remaining -= 1
        return True

    def reply(self) -> web.Response:
        if self.kind in ("disconnect", "stall"):
            return web.Response(status=DROPPED)  # never written: the connection is closed instead
        if self.kind == "bad_gateway":
            return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")
        error = {
            "flood": ApiError(429, f"Too Many Requests: retry after {self.retry_after}", {"retry_after": self.retry_after}),
            "server_error": ApiError(500, "Internal Server Error"),
            "blocked": ApiError(403, "Forbidden: bot was blocked by the user"),
        }[self.kind]
        return json_reply(error.status, error.payload())


def json_reply(status: int, body: Any) -> web.Response:
    """A JSON answer, as Telegram sends it."""
    return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(), content_type="application/json")


def update_chat_id(update: JSON) -> Any:
    """The chat an update belongs to (webhook deliveries keep each chat's order)."""
    for key in ("message", "edited_message", "callback_query", "my_chat_member"):
        if key in update:
            item = update[key]
            chat = item.get("chat") or (item.get("message") or {}).get("chat") or item.get("from") or {}
            return chat.get("id")
    return None


class LocalBotApi:
    """A Telegram Bot API server on 127.0.0.1 speaking the real HTTP protocol; records every call.

    The server runs an aiohttp application in its own thread and event loop; every method of
    this class is meant to be called from the test's thread (plain sync code).
    """

    def __init__(
        self, token: str | None = None, bot_username: str = "onewindow_test_bot", redeliver_after: float | None = None
    ) -> None:
        # each stand-in is another bot: update ids start again at every start, and a bot's records (the webhook's
        # ledger of answered updates) are kept by its id, so two stand-ins never share one
        self.token = token or f"{next(BOT_IDS)}:TEST-TOKEN"
        self.redeliver_after = redeliver_after
        self.bot_username = bot_username
        self.port = 0
        self.state = BotApiState(self.token, bot_username)
        self.calls: list[ApiCall] = []
        self.webhook_deliveries: list[tuple[int, int]] = []
        self._faults: list[Fault] = []
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._updates_event: asyncio.Event | None = None
        self._delivery_slots: asyncio.Semaphore | None = None
        self._chat_locks: dict[Any, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._poll_generation = 0
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """For ``Bot(base_url=...)``: python-telegram-bot appends the token, then ``/<method>``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``Bot(base_file_url=...)``: python-telegram-bot appends the token, then ``/<file_path>``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def start(self) -> "LocalBotApi":
        """Serve on a free loopback port in a background thread; returns self."""
        self._closing = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        started: dict[str, Any] = {}
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, ready, started), name="local-bot-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if "error" in started or not ready.is_set():
            raise RuntimeError(f"local Bot API server did not start: {started.get('error')!r}")
        return self

    def stop(self) -> None:
        """Close the server: open long polls return, webhook deliveries are abandoned."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        self._loop = self._thread = None

    def __enter__(self) -> "LocalBotApi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, sock: socket.socket, ready: threading.Event, started: dict[str, Any]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup(sock))
            self._loop = loop
        except Exception as error:  # reported to start()
            started["error"] = error
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self, sock: socket.socket) -> None:
        self._updates_event = asyncio.Event()
        self._delivery_slots = asyncio.Semaphore(40)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, shutdown_timeout=1.0).start()

    async def _shutdown(self) -> None:
        self._closing = True
        self._wake_pollers()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what the bot did --------------------------------------------------------------------

    def mark(self) -> int:
        """The number of calls so far: pass it as `since` to look only at later calls."""
        with self._cond:
            return len(self.calls)

    def calls_to(self, *methods: str, chat_id: int | None = None, since: int = 0) -> list[ApiCall]:
        """Successful (HTTP 200) calls to any of `methods` (all methods when none), in order."""
        wanted = {m.lower() for m in methods}
        with self._cond:
            return [
                call
                for call in self.calls[since:]
                if call.status == 200
                and (not wanted or call.method.lower() in wanted)
                and (chat_id is None or call.chat_id == chat_id)
            ]

    def failed_calls(self) -> list[ApiCall]:
        """Calls answered with an error (4xx/5xx) or dropped unanswered, injected faults included."""
        with self._cond:
            return [call for call in self.calls if call.status >= 400 or call.error is not None]

    def wait_for(
        self, method: str, count: int = 1, chat_id: int | None = None, timeout: float = 15.0, since: int = 0
    ) -> list[ApiCall]:
        """Block until at least `count` successful calls to `method`; return them all.

        Raises AssertionError, listing the recent calls, on timeout.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self.calls_to(method, chat_id=chat_id, since=since)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} successful {method} call(s)"
                        f"{f' to chat {chat_id}' if chat_id is not None else ''} within {timeout}s, got {len(found)}; "
                        f"recent calls:\n{self.recent_calls()}"
                    )
                self._cond.wait(remaining)

    def wait_quiet(self, seconds: float = 1.0, timeout: float = 30, ignore: Iterable[str] = ("getUpdates",)) -> None:
        """Block until no call arrived for `seconds` (long polls, `ignore`, do not count)."""
        ignored = {m.lower() for m in ignore}
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                arrivals = [call.at for call in self.calls if call.method.lower() not in ignored]
                now = time.monotonic()
                quiet_since = max(arrivals, default=0.0)
                if now - quiet_since >= seconds:
                    return
                if now >= deadline:
                    raise AssertionError(f"calls kept arriving for {timeout}s; recent calls:\n{self.recent_calls()}")
                self._cond.wait(min(seconds - (now - quiet_since), deadline - now))

    def wait_listening(self, timeout: float = 30.0) -> str:
        """Block until the bot can receive updates; return "polling" or "webhook".

        Polling: a getUpdates request has arrived (open or answered; a bot starting with
        drop_pending_updates has dropped the backlog by then). Webhook: one is set.
        """

        def mode() -> str | None:
            if self.state.webhook is not None:
                return "webhook"
            return "polling" if any(call.method == "getUpdates" for call in self.calls) else None

        with self._cond:
            listening = self._cond.wait_for(mode, timeout)
            if listening is None:
                raise AssertionError(f"the bot did not start listening within {timeout}s; calls:\n{self.recent_calls()}")
            return listening

    def wait_webhook_deliveries(self, count: int = 1, timeout: float = 15.0) -> list[tuple[int, int]]:
        """Block until at least `count` webhook deliveries finished (any status)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.webhook_deliveries) >= count, timeout):
                raise AssertionError(f"expected {count} webhook deliveries, got {self.webhook_deliveries}")
            return list(self.webhook_deliveries)

    def recent_calls(self, last: int = 20) -> str:
        """The last calls, one per line, for assertion messages."""
        with self._cond:
            return "\n".join(f"  {call.summary()}" for call in self.calls[-last:]) or "  (none)"

    def sent_texts(self, chat_id: int) -> list[str]:
        """Texts of successful sendMessage calls (and captions of sent media) to `chat_id`, in order."""
        texts = []
        for call in self.calls_to(chat_id=chat_id):
            if call.method == "sendMessage":
                texts.append(str(call.params.get("text", "")))
            elif call.method.startswith("send") and call.params.get("caption"):
                texts.append(str(call.params["caption"]))
        return texts

    def messages(self, chat_id: int) -> list[JSON]:
        """Every message of the chat still there (the user's and the bot's), by message_id."""
        with self._cond:
            chat = self.state.chats.get(chat_id)
            return copy.deepcopy([chat.messages[key] for key in sorted(chat.messages)]) if chat else []

    def inline_buttons(self, chat_id: int, message_id: int | None = None) -> list[JSON]:
        """The inline keyboard buttons of a bot message (the latest with a keyboard by default)."""
        with self._cond:
            chat = self.state.chats.get(chat_id)
            if chat is None:
                raise AssertionError(f"no chat {chat_id}")
            message = self._keyboard_message(chat, message_id)
            return copy.deepcopy([b for row in message["reply_markup"]["inline_keyboard"] for b in row])

    # -- users talking to the bot ------------------------------------------------------------

    def set_user(
        self,
        chat_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> None:
        """Name the user of a private chat (creating the chat, as if they had started the bot)."""
        with self._cond:
            chat = self.state.chat(chat_id)
            chat.first_name, chat.last_name = first_name, last_name
            chat.username, chat.language_code = username, language_code

    def user_sends_text(self, chat_id: int, text: str) -> JSON:
        """The user writes `text`; commands ("/start ...") carry their bot_command entity."""
        entities = [
            {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0))}
            for m in _BOT_COMMAND.finditer(text)
        ]
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        return self._user_message(chat_id, content)

    def user_presses_button(self, chat_id: int, callback_data: str, message_id: int | None = None) -> JSON:
        """The user presses the inline button carrying `callback_data`.

        The button must be on the keyboard of bot message `message_id` (by default the latest
        bot message with a keyboard), else AssertionError: a user can only press what is shown.
        """
        with self._cond:
            chat = self.state.chat(chat_id)
            message = self._keyboard_message(chat, message_id)
            offered = [b.get("callback_data") for row in message["reply_markup"]["inline_keyboard"] for b in row]
            if callback_data not in offered:
                raise AssertionError(
                    f"no button with callback_data {callback_data!r} on message {message['message_id']}; offered: {offered}"
                )
            query = {
                "id": self.state.callback_query_id(),
                "from": chat.user(),
                "message": copy.deepcopy(message),
                "chat_instance": str(4_000_000_000_000_000_000 + chat_id),
                "data": callback_data,
            }
            update = self.state.new_update(callback_query=query)
        self.deliver(update)
        return update

    def user_shares_contact(self, chat_id: int, phone_number: str, own: bool = True) -> JSON:
        """The user shares a contact: their own (user_id = theirs) or someone else's."""
        with self._cond:
            chat = self.state.chat(chat_id)
            owner = chat.user() if own else {"id": chat_id + 1_000_000_000, "first_name": "Someone"}
        contact = {"phone_number": phone_number, "first_name": owner["first_name"], "user_id": owner["id"]}
        return self._user_message(chat_id, {"contact": contact})

    def user_shares_location(self, chat_id: int, latitude: float, longitude: float) -> JSON:
        """The user shares a location."""
        return self._user_message(chat_id, {"location": {"latitude": latitude, "longitude": longitude}})

    def user_sends_voice(self, chat_id: int, ogg: bytes, duration: int) -> JSON:
        """The user records a voice note; its bytes are downloadable with getFile."""
        with self._cond:
            stored = self.state.register_file("voice", ogg)
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(ogg),
        }
        return self._user_message(chat_id, {"voice": voice})

    def user_sends_photo(
        self, chat_id: int, jpeg: bytes = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9", caption: str | None = None
    ) -> JSON:
        """The user sends a photo (two sizes, like Telegram; the largest is last)."""
        with self._cond:
            small, large = self.state.register_file("photo", jpeg), self.state.register_file("photo", jpeg)
        sizes = [
            {
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "file_size": len(jpeg),
                "width": side,
                "height": side * 3 // 4,
            }
            for f, side in ((small, 90), (large, 1280))
        ]
        return self._user_message(chat_id, {"photo": sizes, **({"caption": caption} if caption else {})})

    def user_sends_document(
        self,
        chat_id: int,
        data: bytes = b"%PDF-1.4\n%fake\n",
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> JSON:
        """The user sends a file as a document."""
        with self._cond:
            stored = self.state.register_file("document", data)
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        return self._user_message(chat_id, {"document": document, **({"caption": caption} if caption else {})})

    def user_sends_sticker(self, chat_id: int, emoji: str = "👍") -> JSON:
        """The user sends a (static) sticker."""
        with self._cond:
            stored = self.state.register_file("sticker", b"RIFF\x00\x00\x00\x00WEBPVP8 fake")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "TestStickers",
            "file_size": len(stored.data),
        }
        return self._user_message(chat_id, {"sticker": sticker})

    def deliver(self, update: JSON) -> None:
        """Hand an update to the bot: POST it to the webhook if one is set, else queue it for getUpdates.

        Delivering an update again simulates Telegram's duplicates (a webhook retry, or a bot
        restarted before confirming): the bot receives the copy even when it had already
        confirmed the original with a getUpdates offset.
        """
        update = copy.deepcopy(update)
        with self._cond:
            self.state.queue(update)
            webhook = self.state.webhook is not None
        if webhook:
            self._schedule_delivery(update)
        else:
            self._wake_pollers()

    def _user_message(self, chat_id: int, content: JSON) -> JSON:
        with self._cond:
            chat = self.state.chat(chat_id)
            message = {
                "message_id": chat.new_message_id(),
                "from": chat.user(),
                "chat": chat.chat(),
                "date": int(time.time()),
                **content,
            }
            chat.messages[message["message_id"]] = message
            update = self.state.new_update(message=copy.deepcopy(message))
        self.deliver(update)
        return update

    def _keyboard_message(self, chat: ChatState, message_id: int | None) -> JSON:
        """A bot message with an inline keyboard (AssertionError when there is none)."""
        if message_id is not None:
            candidates = [chat.messages.get(message_id)]
        else:
            candidates = [chat.messages[k] for k in sorted(chat.messages, reverse=True)]
        for message in candidates:
            if message and message["from"]["id"] == self.state.bot_user["id"] and message.get("reply_markup"):
                return message
        raise AssertionError(
            f"no bot message with an inline keyboard in chat {chat.id}"
            f"{f' (message {message_id})' if message_id is not None else ''}"
        )

    # -- faults ------------------------------------------------------------------------------

    def fail_next(
        self, method: str, times: int = 1, kind: str = "flood", retry_after: int = 1, chat_id: int | None = None, after: int = 0
    ) -> None:
        """Answer the next `times` calls of `method` (to `chat_id`, if given) with a failure, once `after` calls have passed.

        kind: "flood" (429 with retry_after), "bad_gateway" (502 nginx HTML page),
        "server_error" (500 JSON error), "blocked" (403 "bot was blocked by the user"),
        "disconnect" (the connection is closed without an answer, as when a network drops),
        "stall" (no answer for `retry_after` seconds, then a disconnect: a call the bot is stuck in, e.g.
        to be killed there).
        Failed calls are recorded with their status (0 for a disconnect) but have no effect.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        with self._cond:
            self._faults.append(Fault(method, kind, times, retry_after, chat_id, after))

    def _take_fault(self, method: str, params: JSON) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, params):
                return fault if fault.take() else None
        return None

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path.startswith("file/bot"):
            return self._download(path[len("file/bot") :])
        if path.startswith("bot") and "/" in path:
            token, method = path[3:].split("/", 1)
            return await self._api_call(request, token, method)
        return json_reply(404, ApiError(404, "Not Found").payload())

    def _download(self, rest: str) -> web.Response:
        token, _, file_path = rest.partition("/")
        with self._cond:
            stored = self.state.files_by_path.get(file_path) if token == self.token else None
            self.calls.append(
                ApiCall(
                    "downloadFile",
                    {"file_path": file_path},
                    {},
                    time.monotonic(),
                    200 if stored else 404,
                    error=None if stored else "Not Found",
                )
            )
            self._cond.notify_all()
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _api_call(self, request: web.Request, token: str, method_name: str) -> web.Response:
        early: ApiError | None = None
        try:
            params, files = await read_params(request)
        except ApiError as error:
            params, files, early = {}, {}, error
        method = self._canonical(method_name)
        call = ApiCall(method, params, files, time.monotonic())
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
        response = await self._answer(call, token, early)
        if response.status == DROPPED:
            assert request.transport is not None
            request.transport.close()  # the client sees the connection close without an answer
        with self._cond:
            call.status = 0 if response.status == DROPPED else response.status
            if response.status == DROPPED:
                call.error = "connection closed without an answer"
            elif response.status == 200:
                call.result = response_json(response)["result"]
            else:
                call.error = self._error_text(response)
            self._cond.notify_all()
        return response

    def _canonical(self, method_name: str) -> str:
        """Bot API method names are case-insensitive: record the documented spelling."""
        for name in (*self.state.handlers, "getUpdates"):
            if name.lower() == method_name.lower():
                return name
        return method_name

    @staticmethod
    def _error_text(response: web.Response) -> str:
        try:
            return response_json(response)["description"]
        except (ValueError, KeyError, TypeError):
            return f"HTTP {response.status} (non-JSON body)"

    async def _answer(self, call: ApiCall, token: str, early: ApiError | None) -> web.Response:
        if token != self.token:
            well_formed = re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token)
            error = ApiError(401, "Unauthorized") if well_formed else ApiError(404, "Not Found")
            return json_reply(error.status, error.payload())
        with self._cond:
            fault = self._take_fault(call.method, call.params)
        if fault is not None:
            if fault.kind == "stall":
                await asyncio.sleep(fault.retry_after)
            return fault.reply()
        if early is not None:
            return json_reply(early.status, early.payload())
        if call.method == "getUpdates":
            return await self._get_updates(call.params)
        handler = self.state.handlers.get(call.method)
        if handler is None:
            return json_reply(404, ApiError(404, "Not Found").payload())
        try:
            with self._cond:
                result = handler(call.params, call.files)
                webhook_set = call.method == "setWebhook" and self.state.webhook is not None
                redeliver = [pending.update for pending in self.state.pending] if webhook_set else []
        except ApiError as error:
            return json_reply(error.status, error.payload())
        for update in redeliver:
            self._schedule_delivery(update)
        if call.method in ("setWebhook", "deleteWebhook"):
            self._wake_pollers()
        return json_reply(200, {"ok": True, "result": result})

    async def _get_updates(self, params: JSON) -> web.Response:
        """Long polling: answer at once when updates are pending, else wait up to `timeout` seconds."""
        loop = asyncio.get_running_loop()
        timeout = float(params.get("timeout") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        with self._cond:
            if self.state.webhook is not None:
                return json_reply(409, ApiError(409, WEBHOOK_CONFLICT).payload())
            self._poll_generation += 1
            generation = self._poll_generation
            self.state.confirm_offset(int(params.get("offset") or 0))
        self._wake_pollers()  # an older long poll is terminated by this one
        deadline = loop.time() + timeout
        assert self._updates_event is not None
        while True:
            self._updates_event.clear()
            with self._cond:
                if generation != self._poll_generation:
                    return json_reply(409, ApiError(409, POLL_CONFLICT).payload())
                if self.state.webhook is not None:
                    return json_reply(409, ApiError(409, WEBHOOK_CONFLICT).payload())
                updates = self.state.take(limit)
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or self._closing:
                return json_reply(200, {"ok": True, "result": updates})
            try:
                await asyncio.wait_for(self._updates_event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def _wake_pollers(self) -> None:
        """Wake the long polls (from any thread)."""
        loop, event = self._loop, self._updates_event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    # -- webhook deliveries ------------------------------------------------------------------

    def _schedule_delivery(self, update: JSON) -> None:
        """POST `update` to the webhook from the server loop (callable from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._start_delivery, copy.deepcopy(update))

    def _start_delivery(self, update: JSON) -> None:
        task = asyncio.get_running_loop().create_task(self._post_update(update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_update(self, update: JSON) -> None:
        """One delivery (and its retries with `redeliver_after`): each chat's updates go one after the other, chats in parallel (up to 40)."""
        assert self._delivery_slots is not None and self._session is not None
        lock = self._chat_locks.setdefault(update_chat_id(update), asyncio.Lock())
        async with lock:
            delay, longest = self.redeliver_after, (self.redeliver_after or 0) * 8
            while True:
                async with self._delivery_slots:
                    with self._cond:
                        hook = copy.copy(self.state.webhook)
                    if hook is None:
                        return  # deleted meanwhile: the update stays pending for getUpdates
                    status, error = await self._post_once(hook, update)
                    self._delivered(update["update_id"], status, error)
                if error is None or delay is None or self._closing:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    async def _post_once(self, hook: WebhookConfig, update: JSON) -> tuple[int, str | None]:
        """POST `update` to the webhook: (status, None) on 2xx, else (status or 0, Telegram's error text)."""
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._session.post(
                hook.url, data=json.dumps(update, ensure_ascii=False).encode(), headers=headers
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as failure:
            return 0, f"Connection failed: {failure.__class__.__name__}"
        return status, None if 200 <= status < 300 else f"Wrong response from the webhook: {status} {response.reason}"

    def _delivered(self, update_id: int, status: int, error: str | None) -> None:
        with self._cond:
            self.webhook_deliveries.append((update_id, status))
            if error is None:
                self.state.confirm(update_id)
            elif self.state.webhook is not None:
                self.state.webhook.last_error_date = int(time.time())
                self.state.webhook.last_error_message = error
            self._cond.notify_all()
