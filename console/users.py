"""Staff accounts: create, authenticate, list, deactivate (the `staff_users` table)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from console.password_policy import WeakPasswordError, check_password
from console.passwords import DECOY_HASH, hash_password, verify_password
from onewindow.storage import models

ROLES = ("agent", "supervisor", "admin")  # each role can do everything the ones before it can
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")


class AccountError(ValueError):
    """A user cannot be created or changed as asked (bad username or role, duplicate, weak password)."""


@dataclass(frozen=True)
class StaffMember:
    id: int
    username: str
    role: str
    active: bool = True
    created_at: Optional[datetime] = None

    def can(self, role: str) -> bool:
        """Whether this member's role is `role` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)


def member_of(row: models.StaffUser) -> StaffMember:
    return StaffMember(row.id, row.username, row.role, row.active, row.created_at)


def create_user(engine: Engine, username: str, role: str, password: str) -> StaffMember:
    """Add an active staff member; raises AccountError with a message a person can act on."""
    if not USERNAME_PATTERN.match(username):
        raise AccountError("the username must be 2 to 40 characters: lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"the role must be one of: {', '.join(ROLES)}")
    password_hash = hash_password(policy_checked(password, username))
    try:
        with Session(engine, future=True) as session, session.begin():
            row = models.StaffUser(
                username=username, role=role, password_hash=password_hash, active=True, password_changed_at=datetime.utcnow()
            )
            session.add(row)
            session.flush()
            return member_of(row)
    except IntegrityError as error:
        raise AccountError(f"a user named {username!r} already exists") from error


def policy_checked(password: str, username: str) -> str:
    """`password` if it meets the password policy, else AccountError saying why."""
    try:
        check_password(password, [username, *username.replace("-", ".").replace("_", ".").split(".")])
    except WeakPasswordError as error:
        raise AccountError(str(error)) from error
    return password


def change_password(engine: Engine, member: StaffMember, current: str, new: str) -> None:
    """Set a new password after checking the current one and the policy. Raises AccountError."""
    if authenticate(engine, member.username, current) is None:
        raise AccountError("the current password is not right")
    if new == current:
        raise AccountError("the new password must differ from the current one")
    password_hash = hash_password(policy_checked(new, member.username))
    with Session(engine, future=True) as session, session.begin():
        row = session.get(models.StaffUser, member.id)
        row.password_hash, row.password_changed_at = password_hash, datetime.utcnow()


def authenticate(engine: Engine, username: str, password: str) -> Optional[StaffMember]:
    """The active member with these credentials, or None (unknown users cost as much time as wrong passwords)."""
    with Session(engine, future=True) as session:
        row = session.scalars(select(models.StaffUser).where(models.StaffUser.username == username)).first()
    matches = verify_password(password, row.password_hash if row else DECOY_HASH)
    return member_of(row) if row is not None and row.active and matches else None


def is_account(engine: Engine, username: str) -> bool:
    """Whether a staff account has this username (active or not)."""
    with Session(engine, future=True) as session:
        return session.scalars(select(models.StaffUser.id).where(models.StaffUser.username == username)).first() is not None


def member_by_id(engine: Engine, user_id: int) -> Optional[StaffMember]:
    with Session(engine, future=True) as session:
        row = session.get(models.StaffUser, user_id)
        return member_of(row) if row is not None else None


def active_username(engine: Engine, username: str) -> Optional[str]:
    """`username` when it is an active account's name, else None."""
    with Session(engine, future=True) as session:
        row = session.scalars(select(models.StaffUser).where(models.StaffUser.username == username)).first()
    return row.username if row is not None and row.active else None


def list_users(engine: Engine) -> List[StaffMember]:
    with Session(engine, future=True) as session:
        return [member_of(row) for row in session.scalars(select(models.StaffUser).order_by(models.StaffUser.username))]


def any_user(engine: Engine) -> bool:
    """Whether at least one staff account exists."""
    with Session(engine, future=True) as session:
        return session.scalars(select(models.StaffUser.id).limit(1)).first() is not None


def deactivate(engine: Engine, user_id: int) -> StaffMember:
    """Stop a member from logging in, and end their sessions."""
    with Session(engine, future=True) as session, session.begin():
        row = session.get(models.StaffUser, user_id)
        if row is None:
            raise AccountError("no such user")
        row.active = False
        session.execute(delete(models.StaffSession).where(models.StaffSession.user_id == user_id))
        return member_of(row)
