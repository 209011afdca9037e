"""Generated inputs for every entry point (tests/test_fuzz_*.py and bench/entry_fuzz.py): JSON of any shape, raw
bodies, HTTP requests, Telegram updates, AudioSocket frame sequences and catalogue documents.

`fuzz_settings(examples)` is the one hypothesis profile the entry-point fuzz tests use: the same cases in every
`make test` run (derandomized), `examples` of them; bench/entry_fuzz.py sets ONEWINDOW_ENTRY_FUZZ_SCALE (a multiple
of every test's count) and ONEWINDOW_FUZZ_RANDOM (new cases, from the seed it prints).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from voice.audiosocket import Kind, encode

# text that must never reach a page unescaped: an HTML element and an attribute breaker
MARKER = '<ow-fuzz-x9 a="1">'
SCALE = float(os.environ.get("ONEWINDOW_ENTRY_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    """`examples` generated cases (times the bench's scale), the same in every run unless ONEWINDOW_FUZZ_RANDOM is set."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize="ONEWINDOW_FUZZ_RANDOM" not in os.environ,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


# --- JSON and text ------------------------------------------------------------------------------------------

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.just(MARKER),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12
)


def nested(depth: int) -> bytes:
    """A JSON document nested `depth` levels deep (deeper than a recursive parser goes)."""
    return b'{"sender": "deep", "message": ' + b"[" * depth + b"]" * depth + b"}"


def dumps(value: Any) -> bytes:
    """JSON as Python writes it (NaN and Infinity included, which strict parsers refuse)."""
    return json.dumps(value).encode()


# --- REST channel bodies ------------------------------------------------------------------------------------

REST_FIELDS = ("sender", "message", "metadata", "input_channel", "stream")
rest_objects = st.fixed_dictionaries(
    {},
    optional={
        "sender": st.one_of(texts, json_values),
        "message": st.one_of(texts, json_values, st.just("x" * 5000), st.just(MARKER)),
        "metadata": json_values,
        "input_channel": json_values,
    },
).flatmap(lambda body: st.dictionaries(texts, json_values, max_size=2).map(lambda extra: {**extra, **body}))
raw_bodies = st.one_of(
    rest_objects.map(dumps),
    json_values.map(dumps),
    st.binary(max_size=64),
    rest_objects.map(dumps).flatmap(lambda body: st.integers(0, len(body)).map(lambda cut: body[:cut])),  # truncated
    st.sampled_from([b"", b"\xff\xfe\x00{", b'{"sender": "a\xc3\x28", "message": "\xed\xa0\x80"}', nested(100_000)]),
)
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
)
content_types = st.sampled_from(CONTENT_TYPES)
query_strings = st.lists(
    st.tuples(st.sampled_from(["stream", "token", "output_channel", "include_events", "q", "x"]), texts), max_size=3
).map(lambda pairs: "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs))

# --- HTTP requests -----------------------------------------------------------------------------------------

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
path_segments = st.one_of(
    texts.filter(lambda value: "/" not in value),
    st.sampled_from(["..", ".", "%2e%2e", "%00", "%ff", "a%2fb", "", "default", "telegram:42"]),
)

# --- Telegram updates --------------------------------------------------------------------------------------

big_ints = st.integers(min_value=-(2**63), max_value=2**63)


def entities(text_length: int) -> st.SearchStrategy[List[Dict[str, Any]]]:
    """Message entities, in range or not, of known and unknown types."""
    entity = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["bot_command", "mention", "url", "bold", "text_link", "custom_emoji", "nonsense"]),
            "offset": st.one_of(st.integers(0, max(0, text_length)), big_ints),
            "length": st.one_of(st.integers(0, text_length + 2), big_ints),
        },
        optional={"url": texts, "user": json_values},
    )
    return st.lists(entity, max_size=3)


def message_contents() -> st.SearchStrategy[Dict[str, Any]]:
    """What a user's message may carry: text (commands, huge, entities), contact, location, voice, or anything."""
    text = st.one_of(
        texts,
        st.sampled_from(["/start", "/help", "/human", "/forget", "/cancel", "/language", "/voice", "/start@other_bot x"]),
        st.just("word " * 1500),
        st.just(MARKER),
    )
    with_entities = text.flatmap(lambda t: entities(len(t)).map(lambda e: {"text": t, "entities": e}))
    contact = st.fixed_dictionaries(
        {"phone_number": st.one_of(texts, st.just("+61 412 345 678")), "first_name": texts},
        optional={"user_id": big_ints, "last_name": texts, "vcard": texts},
    ).map(lambda c: {"contact": c})
    location = st.fixed_dictionaries(
        {"latitude": st.floats(-1e6, 1e6), "longitude": st.floats(-1e6, 1e6)},
        optional={"horizontal_accuracy": st.floats(0, 2000)},
    ).map(lambda loc: {"location": loc})
    voice = st.fixed_dictionaries(
        {
            "file_id": st.one_of(texts, st.just("does-not-exist")),
            "file_unique_id": texts,
            "duration": st.one_of(st.integers(-(2**31), 2**31), st.just(0), st.just(10**6)),
        },
        optional={"mime_type": texts, "file_size": big_ints},
    ).map(lambda v: {"voice": v})
    return st.one_of(
        text.map(lambda t: {"text": t}), with_entities, contact, location, voice, st.dictionaries(texts, json_values, max_size=3)
    )


def telegram_updates(chat_id: int, update_id: int) -> st.SearchStrategy[Dict[str, Any]]:
    """One update for `chat_id`: a message, an edited message, a callback query with any data, or a broken update."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Fuzz", "language_code": "en"}
    chat = {"id": chat_id, "type": "private", "first_name": "Fuzz"}

    def message(content: Dict[str, Any]) -> Dict[str, Any]:
        return {"message_id": update_id, "from": user, "chat": chat, "date": 1_700_000_000, **content}

    unknown = st.dictionaries(
        st.sampled_from(["brand_new_field", "business_connection", "reaction", "x"]), json_values, max_size=2
    )
    callback = st.fixed_dictionaries(
        {"id": texts, "from": st.just(user), "chat_instance": texts},
        optional={
            "data": st.one_of(texts, st.just("language:xx"), st.just("x" * 200), st.just('/inform{"service": 1}')),
            "message": message_contents().map(message),
            "game_short_name": texts,
        },
    )
    update = st.one_of(
        message_contents().map(lambda content: {"message": message(content)}),
        message_contents().map(lambda content: {"edited_message": {**message(content), "edit_date": 1_700_000_100}}),
        callback.map(lambda query: {"callback_query": query}),
        message_contents().map(lambda content: {"channel_post": message(content)}),
        st.just({}),  # an update carrying nothing the bot knows
    )
    return st.tuples(update, unknown).map(lambda pair: {"update_id": update_id, **pair[1], **pair[0]})


# --- AudioSocket ----------------------------------------------------------------------------------------------

call_ids = st.one_of(st.uuids().map(lambda u: u.bytes), st.just(uuid.UUID(int=0).bytes), st.binary(min_size=16, max_size=16))
good_frames = st.one_of(
    st.integers(0, 16).map(lambda n: encode(Kind.AUDIO, bytes(40 * n))),  # silence, up to 320 bytes
    st.binary(max_size=640).map(lambda audio: encode(Kind.AUDIO, audio[: len(audio) // 2 * 2])),
    st.sampled_from("0123456789*#ABCD").map(lambda key: encode(Kind.DTMF, key.encode())),
)
bad_frames = st.one_of(
    st.binary(max_size=2).map(lambda dtmf: encode(Kind.DTMF, dtmf)),  # DTMF of any byte, or none, or two
    call_ids.map(lambda call: encode(Kind.ID, call)),  # a call id again, mid-call
    st.binary(max_size=40).map(lambda payload: encode(Kind.ID, payload)),  # a call id of the wrong length
    st.integers(0, 255).flatmap(lambda kind: st.binary(max_size=32).map(lambda payload: encode(kind, payload))),
    st.integers(0, 255).flatmap(  # a length that lies: more announced than sent
        lambda kind: st.integers(1, 0xFFFF).map(
            lambda length: bytes([kind]) + length.to_bytes(2, "big") + b"\x00" * min(length - 1, 8)
        )
    ),
    st.binary(min_size=1, max_size=2),  # a truncated header
    st.binary(max_size=64),  # random bytes
    st.just(bytes([Kind.AUDIO]) + (0xFFFF).to_bytes(2, "big") + bytes(0xFFFF)),  # oversize audio
    st.just(encode(Kind.ERROR, b"\x01")),
    st.just(encode(Kind.HANGUP)),
)
frame_sequences = st.tuples(
    st.one_of(call_ids.map(lambda call: encode(Kind.ID, call)), st.just(b""), bad_frames),  # the opening: a call id or not
    st.lists(st.one_of(good_frames, bad_frames), max_size=8),
).map(lambda parts: parts[0] + b"".join(parts[1]))
dtmf_floods = st.tuples(st.sampled_from("0123456789*#"), st.integers(20, 400)).map(
    lambda flood: encode(Kind.DTMF, flood[0].encode()) * flood[1]
)
hangups_mid_audio = st.tuples(st.integers(1, 30), st.integers(0, 10)).map(  # audio, a hang-up, then audio still coming
    lambda counts: encode(Kind.AUDIO, bytes(320)) * counts[0] + encode(Kind.HANGUP) + encode(Kind.AUDIO, bytes(320)) * counts[1]
)
LINE_ENDS = ("eof", "close", "reset")  # the caller's side: half-closed (then the gateway must close), closed, reset


@dataclass(frozen=True)
class Line:
    """One connection to the running gateway: its opening (`call` indexes the example's call ids, so that two lines
    of one example may carry the same id; None: `opening` instead), the bytes after it in `cuts` pieces, `live`
    seconds of 20 ms silence frames before the end, and how it ends."""

    call: Optional[int]
    opening: bytes
    body: bytes
    cuts: Tuple[int, ...]
    live: float
    end: str
    delay: float


lines = st.builds(
    Line,
    call=st.one_of(st.none(), st.integers(0, 1)),
    opening=st.one_of(st.just(b""), bad_frames, call_ids.map(lambda call: encode(Kind.ID, call))),
    body=st.one_of(st.lists(st.one_of(good_frames, bad_frames), max_size=8).map(b"".join), dtmf_floods, hangups_mid_audio),
    cuts=st.lists(st.integers(0, 4000), max_size=4).map(lambda cuts: tuple(sorted(cuts))),
    live=st.sampled_from([0.0, 0.0, 0.3, 1.0, 2.0]),
    end=st.sampled_from(LINE_ENDS),
    delay=st.sampled_from([0.0, 0.0, 0.05, 0.4]),
)

# --- catalogue YAML ----------------------------------------------------------------------------------------

yaml_scalars = st.one_of(
    texts,
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.just("x" * 100_000),
    st.sampled_from(["09:00-17:00", "closed", "25:00-26:00", "17:00-09:00", "yes", "~", "2026-13-45"]),
)
yaml_values = st.recursive(
    yaml_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
)
YAML_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi")
)
