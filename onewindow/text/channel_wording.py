"""What the citizen's channel lets them do, and prompts worded for it.

A chat (Telegram, REST) shows buttons and takes typed words. A phone call always has the keypad,
and speech only when the gateway has a speech model for the assistant's language (it sends
`{"speech": true|false}` with every message). A kiosk listens and speaks. From these follows the
citizen's `mode`, and every prompt is worded for it:

- chat: "type", never "say", "tell me" or "press";
- voice (a call or kiosk that listens): "say", never "type", "tap", "click" or "button", nor
  "call the hotline" (they are on it);
- keypad (a call without speech): neither "say" nor "type"; the choices are the message's buttons.

Keys and "press N" are never written here: the gateway adds them from the buttons (voice/phone_wording.py).
Domain responses get the same wording through Rasa's channel variations: the REST channel names
its output channel after the mode (onewindow/channels/rest.py), so `channel: voice` and
`channel: keypad` variations are chosen for calls, the plain one for chats.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

from onewindow.channels.senders import channel_of_sender

CHAT, VOICE, KEYPAD = "chat", "voice", "keypad"
MODES = (CHAT, VOICE, KEYPAD)
CALLS = ("phone", "kiosk")


@dataclass(frozen=True)
class Abilities:
    """How the citizen can answer on this channel, and how they see or hear the assistant's choices."""

    channel: str
    speech: bool  # the assistant hears what they say
    keypad: bool  # they can key in digits and choose options by number
    typing: bool  # they can type words
    buttons: bool  # choices appear as buttons on a screen

    @property
    def mode(self) -> str:
        """chat, voice or keypad: what a prompt's wording depends on."""
        if self.typing:
            return CHAT
        return VOICE if self.speech else KEYPAD

    @property
    def on_call(self) -> bool:
        """Whether the citizen is on the hotline or at a kiosk (they hear the assistant)."""
        return self.channel in CALLS


def abilities_for(sender_id: str, metadata: Optional[Mapping[str, Any]]) -> Abilities:
    """The abilities of the citizen sending with this sender id and message metadata (the channel comes from the sender id)."""
    channel = channel_of_sender(sender_id)
    if channel == "phone":
        return Abilities(channel, speech=(metadata or {}).get("speech") is True, keypad=True, typing=False, buttons=False)
    if channel == "kiosk":
        return Abilities(channel, speech=True, keypad=False, typing=False, buttons=False)
    return Abilities(channel, speech=False, keypad=False, typing=True, buttons=True)


class _Blanks(string.Formatter):
    """Fills every field with a placeholder word: how tests render a prompt without its data."""

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        return kwargs.get(key, "something") if isinstance(key, str) else "something"

    def format_field(self, value: Any, format_spec: str) -> str:
        return str(value)


PROMPTS: List["Prompt"] = []


class Prompt:
    """A sentence for the citizen, worded for each mode: `text` for all, then the mode's own part.

    `Prompt("Which service?", chat="You can type its name.", voice="You can say its name.")`: a
    chat gets both sentences, a call with speech the first and the voice one, a keypad call only
    the first (its buttons are the answer). Leave `text` empty when the whole sentence differs.
    Fields in braces are filled by `render(abilities, **fields)`. Every prompt registers itself
    (PROMPTS), so tests render each one for every mode.
    """

    def __init__(self, text: str = "", *, chat: str = "", voice: str = "", keypad: str = "") -> None:
        self.parts = {CHAT: chat, VOICE: voice, KEYPAD: keypad}
        self.text = text
        PROMPTS.append(self)

    def for_mode(self, mode: str) -> str:
        """The prompt's wording for `mode`, its fields unfilled."""
        return " ".join(part for part in (self.text, self.parts[mode]) if part)

    def render(self, abilities: Abilities, **fields: Any) -> str:
        return self.for_mode(abilities.mode).format(**fields)

    def render_blank(self, mode: str) -> str:
        """The wording for `mode` with placeholder words in its fields (for tests)."""
        return _Blanks().format(self.for_mode(mode))

    def __repr__(self) -> str:
        return f"Prompt({self.text!r}, {self.parts!r})"
