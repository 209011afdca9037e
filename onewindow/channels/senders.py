"""Conversation ids: each channel names its senders "<channel>:<id on that channel>"
("telegram:42", "phone:0412345678", "kiosk:<call id>"); any other id came over REST.

Anyone can post to the REST webhook with any sender id, so the channel adapters (the Telegram bot,
the hotline gateway) sign each message's sender id with a secret only they and the action server
know; only a signed sender's identity proves who is talking (onewindow/backend/ownership.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from typing import Optional, Tuple

from onewindow.settings.variables import ONEWINDOW_CHANNEL_SECRET, PROJECT_ROOT

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


@functools.lru_cache(maxsize=1)
def _channel_secret() -> bytes:
    """`ONEWINDOW_CHANNEL_SECRET`, or a random key kept in var/channel.key (made on first use, owner-only)."""
    configured = ONEWINDOW_CHANNEL_SECRET.read()
    if configured:
        return configured.encode()
    path = PROJECT_ROOT / "var" / "channel.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "w") as key_file:
        key_file.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def sign_sender(sender_id: str) -> str:
    """The signature a channel adapter sends in a message's metadata ("sender_signature")."""
    return hmac.new(_channel_secret(), sender_id.encode(), hashlib.sha256).hexdigest()


def signed_by_channel(sender_id: str, signature: object) -> bool:
    """Whether this message's sender id was signed by a channel adapter (not just claimed over REST)."""
    return isinstance(signature, str) and hmac.compare_digest(signature, sign_sender(sender_id))
