"""Which "/intent{...}" payloads a citizen's message may carry: those the assistant offered, and the channels' own commands.

Rasa reads any message that starts with "/" as an intent with entities, bypassing NLU, so
typed text could otherwise trigger any intent with any entity: Rasa's own `/restart` and
`/session_start` (which wipe the conversation), or slots set by hand. A payload is taken as
one only when it is a button the assistant offered in this session, or one of the commands the
channel adapters send themselves (the Telegram commands /human and /cancel, a shared location,
the keypad's 0, the hotline's main menu at the start of a call and its "nothing understood").
Anything else is read as the words the citizen typed.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Set

# sent by bot/handlers.py and voice/ (call.py, phone_wording.py) on the citizen's behalf
CHANNEL_COMMANDS = frozenset({"/request_human", "/stop", "/find_office", "/main_menu", "/nlu_fallback"})


def button_payloads(message: Mapping[str, Any]) -> Set[str]:
    """The payloads of one assistant message's buttons (a response, or a bot event's data)."""
    return {
        button["payload"]
        for button in message.get("buttons") or []
        if isinstance(button, Mapping) and isinstance(button.get("payload"), str)
    }


def offered_payloads(events: Iterable[Mapping[str, Any]]) -> Set[str]:
    """The button payloads of the assistant's messages since the latest session started."""
    offered: Set[str] = set()
    for event in events:
        if event.get("event") == "session_started":
            offered.clear()
        elif event.get("event") == "bot":
            offered |= button_payloads(event.get("data") or {})
    return offered


def is_payload(text: str) -> bool:
    return text.lstrip().startswith("/")


def citizen_text(text: str, offered: Set[str]) -> str:
    """`text` as the assistant should read it: an offered payload or a channel command as it is, else without its leading slashes."""
    if text.strip() in CHANNEL_COMMANDS or text in offered:
        return text
    while is_payload(text):
        text = text.lstrip().lstrip("/")
    return text
