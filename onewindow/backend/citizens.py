"""Citizens and the channel identities (chats, caller numbers) linked to them."""

from __future__ import annotations

import re
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Select

from onewindow import settings
from onewindow.storage import models

PHONE_PATTERN = re.compile(r"^\+?\d{8,15}$")


def normalise_phone(text: Optional[str]) -> Optional[str]:
    """ "0412 345-678" -> "0412345678"; None when it cannot be a phone number.

    A number in international form with the city's own country code ("+61 412 345 678", or
    "61412345678" as Telegram shares contacts) becomes the national form "0412345678", so the
    same person is found whichever way the number was written.
    """
    if not text:
        return None
    compact = re.sub(r"[\s\-().]", "", str(text))
    if not PHONE_PATTERN.match(compact):
        return None
    home = settings.country_calling_code()
    international = compact[1:] if compact.startswith("+") else compact
    if international.startswith(home) and not international.startswith("0") and len(international) > len(home) + 7:
        return "0" + international[len(home) :]
    return compact


def find_or_create_citizen(session: Session, phone: str, name: Optional[str] = None) -> models.Citizen:
    """The citizen with this (normalised) phone number, created if new; the name is kept up to date."""
    citizen = session.scalars(select(models.Citizen).where(models.Citizen.phone == phone)).first()
    if citizen is None:
        citizen = models.Citizen(phone=phone, name=name)
        session.add(citizen)
        session.flush()
    elif name:
        citizen.name = name
    return citizen


def _is_identity(channel: str, external_id: str) -> tuple:
    return (models.ChannelIdentity.channel == channel, models.ChannelIdentity.external_id == external_id)


def _identity(channel: str, external_id: str) -> Select:
    return select(models.ChannelIdentity).where(*_is_identity(channel, external_id))


class Citizens:
    """Link channel identities to citizens so that any channel finds their business."""

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def link_identity(self, channel: str, external_id: str, phone: str, name: Optional[str] = None) -> int:
        """Link a chat or caller to the citizen with this phone; returns the citizen id."""
        normalised = normalise_phone(phone)
        if normalised is None:
            raise ValueError("not a phone number")
        with self._sessions.begin() as session:
            citizen = find_or_create_citizen(session, normalised, name)
            identity = session.scalars(_identity(channel, external_id)).first()
            if identity is None:
                session.add(models.ChannelIdentity(citizen_id=citizen.id, channel=channel, external_id=external_id))
            else:
                identity.citizen_id = citizen.id
            return citizen.id

    def unlink_identity(self, channel: str, external_id: str) -> bool:
        """Forget which citizen a chat or caller is; True when there was a link."""
        with self._sessions.begin() as session:
            identity = session.scalars(_identity(channel, external_id)).first()
            if identity is None:
                return False
            session.delete(identity)
            return True

    def phone_for_identity(self, channel: str, external_id: str) -> Optional[str]:
        with self._sessions() as session:
            return session.scalars(
                select(models.Citizen.phone).join(models.ChannelIdentity).where(*_is_identity(channel, external_id))
            ).first()

    def name_for_identity(self, channel: str, external_id: str) -> Optional[str]:
        """The name on the citizen record a chat or caller is linked to (as the ownership gate, only a linked identity counts)."""
        with self._sessions() as session:
            return session.scalars(
                select(models.Citizen.name).join(models.ChannelIdentity).where(*_is_identity(channel, external_id))
            ).first()

    def chats_for_phone(self, phone: str, channel: str = "telegram") -> List[str]:
        """The ids of the chats on `channel` linked to the citizen with this phone number."""
        normalised = normalise_phone(phone)
        if normalised is None:
            return []
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(models.ChannelIdentity.external_id)
                    .join(models.Citizen)
                    .where(models.Citizen.phone == normalised, models.ChannelIdentity.channel == channel)
                    .order_by(models.ChannelIdentity.linked_at)
                )
            )
