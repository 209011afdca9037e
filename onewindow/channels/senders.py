"""Conversation ids: each channel names its senders "<channel>:<id on that channel>"
("telegram:42", "phone:0412345678", "kiosk:<call id>"); any other id came over REST."""
from __future__ import annotations

from typing import Optional, Tuple

IDENTIFIED_CHANNELS = ("telegram", "phone", "kiosk")
REST = "rest"


def split_sender(sender_id: str) -> Tuple[Optional[str], str]:
    """(channel, id on that channel) for "telegram:42"; (None, the whole id) for a sender no channel named."""
    channel, separator, external_id = sender_id.partition(":")
    if separator and channel in IDENTIFIED_CHANNELS:
        return channel, external_id
    return None, sender_id


def channel_of_sender(sender_id: str) -> str:
    """telegram, phone, kiosk, or rest for any other sender."""
    return split_sender(sender_id)[0] or REST
