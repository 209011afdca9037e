"""Per-chat preferences: answers by voice as well as text, slower speech."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql import Select

from onewindow.storage import models


@dataclass(frozen=True)
class Preferences:
    reply_by_voice: bool = False
    slow_speech: bool = False


class ChatPreferences:
    """Stored per channel identity (a Telegram chat, a caller), so they survive restarts."""

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def get(self, channel: str, external_id: str) -> Preferences:
        with self._sessions() as session:
            row = session.scalars(self._query(channel, external_id)).first()
            return Preferences(row.reply_by_voice, row.slow_speech) if row else Preferences()

    def update(self, channel: str, external_id: str, **changes: bool) -> Preferences:
        """Change some preferences (reply_by_voice, slow_speech); returns all of them."""
        unknown = set(changes) - {"reply_by_voice", "slow_speech"}
        if unknown:
            raise ValueError(f"unknown preferences: {sorted(unknown)}")
        with self._sessions.begin() as session:
            row = session.scalars(self._query(channel, external_id)).first()
            if row is None:
                row = models.ChatPreference(channel=channel, external_id=external_id, reply_by_voice=False, slow_speech=False)
                session.add(row)
            for name, value in changes.items():
                setattr(row, name, bool(value))
            return Preferences(row.reply_by_voice, row.slow_speech)

    def forget(self, channel: str, external_id: str) -> None:
        with self._sessions.begin() as session:
            session.execute(
                delete(models.ChatPreference).where(
                    models.ChatPreference.channel == channel, models.ChatPreference.external_id == external_id
                )
            )

    @staticmethod
    def _query(channel: str, external_id: str) -> Select:
        return select(models.ChatPreference).where(
            models.ChatPreference.channel == channel, models.ChatPreference.external_id == external_id
        )
