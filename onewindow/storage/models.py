"""SQLAlchemy models of the service backend (written in 2.0 style on SQLAlchemy 1.4)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
if TYPE_CHECKING:
    # SQLAlchemy 1.4 ships no type information and declarative_base() returns a class built at run time,
    # which mypy cannot use as a base. This stand-in declares what the declarative base gives every model,
    # so mypy checks the models as ordinary classes (a misspelt attribute is an error); the columns are
    # Any, as sqlalchemy is untyped. (sqlalchemy2-stubs is alpha and needs SQLAlchemy's deprecated mypy plugin.)

    class Base:
        metadata: ClassVar[MetaData]
        __table__: ClassVar[Table]

        def __init__(self, **columns: Any) -> None: ...

else:
    Base = declarative_base(metadata=MetaData(naming_convention=NAMING))


def utcnow() -> datetime:
    return datetime.utcnow()


# --- catalogue (loaded from catalogue/*.yml) -------------------------------------


class City(Base):
    __tablename__ = "city"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    currency = Column(String(30), nullable=False)
    hotline_number = Column(String(40), nullable=False)
    hotline_hours = Column(JSON, nullable=False)  # {"mon": [["08:00", "20:00"]], ...}


class District(Base):
    __tablename__ = "districts"
    id = Column(String(50), primary_key=True)
    name = Column(String(100), nullable=False)


class Office(Base):
    __tablename__ = "offices"
    id = Column(String(50), primary_key=True)
    name = Column(String(200), nullable=False)
    kind = Column(String(30), nullable=False)
    district_id = Column(String(50), ForeignKey("districts.id"), nullable=False)
    address = Column(String(300), nullable=False)
    latitude = Column(Float)
    longitude = Column(Float)
    phone = Column(String(40), nullable=False)
    accessibility = Column(JSON, nullable=False, default=list)
    windows = Column(Integer, nullable=False)
    slot_minutes = Column(Integer, nullable=False)
    note = Column(Text)
    stops = Column(JSON)  # a mobile point's place per weekday: {"0": {"place": ..., "lat": ..., "lon": ...}}
    active = Column(Boolean, nullable=False, default=True)

    district = relationship("District")
    hours = relationship("OpeningHours", cascade="all, delete-orphan", order_by="OpeningHours.opens")


class OpeningHours(Base):
    __tablename__ = "opening_hours"
    id = Column(Integer, primary_key=True)
    office_id = Column(String(50), ForeignKey("offices.id"), nullable=False, index=True)
    weekday = Column(Integer, nullable=False)  # 0 = Monday
    opens = Column(Time, nullable=False)
    closes = Column(Time, nullable=False)
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),)


class ServiceOffice(Base):
    __tablename__ = "service_offices"
    service_id = Column(String(60), ForeignKey("services.id"), primary_key=True)
    office_id = Column(String(50), ForeignKey("offices.id"), primary_key=True)


class Service(Base):
    __tablename__ = "services"
    id = Column(String(60), primary_key=True)
    name = Column(String(200), nullable=False)
    department = Column(String(200), nullable=False)
    description = Column(Text, nullable=False)
    eligibility = Column(Text, nullable=False)
    documents = Column(JSON, nullable=False)
    fee_cents = Column(Integer, nullable=False)  # in the city currency; 0 means free
    fee_note = Column(Text)
    # what a benefit pays the citizen (NULL: the service pays nothing); period: week | month | year | once
    benefit_cents = Column(Integer)
    benefit_up_to = Column(Boolean)
    benefit_period = Column(String(10))
    benefit_basis = Column(Text)
    processing_days = Column(Integer, nullable=False)
    online_available = Column(Boolean, nullable=False)
    online_where = Column(Text)
    one_visit = Column(Boolean, nullable=False)
    bookable = Column(Boolean, nullable=False)
    active = Column(Boolean, nullable=False, default=True)

    offices = relationship("Office", secondary="service_offices", order_by="Office.name")


class LifeEvent(Base):
    __tablename__ = "life_events"
    id = Column(String(60), primary_key=True)
    name = Column(String(200), nullable=False)
    summary = Column(Text, nullable=False)
    sympathy = Column(Text)  # a short word of sympathy said first, for sad events
    active = Column(Boolean, nullable=False, default=True)

    steps = relationship("LifeEventStep", cascade="all, delete-orphan", order_by="LifeEventStep.position")


class LifeEventStep(Base):
    __tablename__ = "life_event_steps"
    id = Column(Integer, primary_key=True)
    life_event_id = Column(String(60), ForeignKey("life_events.id"), nullable=False, index=True)
    position = Column(Integer, nullable=False)
    service_id = Column(String(60), ForeignKey("services.id"), nullable=False)
    when = Column(Text, nullable=False)

    service = relationship("Service")


class ReportCategory(Base):
    __tablename__ = "report_categories"
    id = Column(String(60), primary_key=True)
    name = Column(String(200), nullable=False)
    department = Column(String(200), nullable=False)
    urgent = Column(Boolean, nullable=False)
    active = Column(Boolean, nullable=False, default=True)


class Alias(Base):
    """A phrase citizens use for a catalogue entry (service, office, district, ...)."""

    __tablename__ = "aliases"
    id = Column(Integer, primary_key=True)
    kind = Column(String(30), nullable=False)
    phrase = Column(String(200), nullable=False)
    target_id = Column(String(60), nullable=False)
    __table_args__ = (UniqueConstraint("kind", "phrase", "target_id", name="alias_once"),)


# --- citizens and their business with the city ----------------------------------


class Citizen(Base):
    __tablename__ = "citizens"
    id = Column(Integer, primary_key=True)
    name = Column(String(200))
    phone = Column(String(30), unique=True)  # normalised digits, "+" allowed first
    created_at = Column(DateTime, nullable=False, default=utcnow)

    identities = relationship("ChannelIdentity", cascade="all, delete-orphan")


class ChannelIdentity(Base):
    """Links a chat, a caller number or a REST sender id to a citizen."""

    __tablename__ = "channel_identities"
    id = Column(Integer, primary_key=True)
    citizen_id = Column(Integer, ForeignKey("citizens.id"), nullable=False, index=True)
    channel = Column(String(30), nullable=False)
    external_id = Column(String(200), nullable=False)
    linked_at = Column(DateTime, nullable=False, default=utcnow)
    __table_args__ = (UniqueConstraint("channel", "external_id", name="identity_once"),)


class ChatPreference(Base):
    """How one chat or caller wants answers: by voice as well as text, slower speech."""

    __tablename__ = "chat_preferences"
    id = Column(Integer, primary_key=True)
    channel = Column(String(30), nullable=False)
    external_id = Column(String(200), nullable=False)
    reply_by_voice = Column(Boolean, nullable=False, default=False)
    slow_speech = Column(Boolean, nullable=False, default=False)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    __table_args__ = (UniqueConstraint("channel", "external_id", name="preference_once"),)


class CallTranscript(Base):
    """One voice call, both sides with times and recognition confidence, for staff to review."""

    __tablename__ = "call_transcripts"
    id = Column(Integer, primary_key=True)
    call_id = Column(String(64), nullable=False, unique=True)
    channel = Column(String(30), nullable=False)  # phone, kiosk
    sender_id = Column(String(200), nullable=False, index=True)
    started_at = Column(DateTime, nullable=False)
    ended_at = Column(DateTime, nullable=False)
    outcome = Column(String(30), nullable=False)  # completed, transferred, caller_hung_up, timed_out, failed
    caller_audio_seconds = Column(Float, nullable=False, default=0.0)
    turns = Column(JSON, nullable=False, default=list)  # [{"at", "speaker", "text", "confidence", "audio_seconds"}]


class AppointmentSlot(Base):
    """A bookable time window at an office; `booked` never exceeds `capacity`."""

    __tablename__ = "appointment_slots"
    id = Column(Integer, primary_key=True)
    office_id = Column(String(50), ForeignKey("offices.id"), nullable=False)
    day = Column(Date, nullable=False)
    starts_at = Column(DateTime, nullable=False)
    capacity = Column(Integer, nullable=False)
    booked = Column(Integer, nullable=False, default=0)
    __table_args__ = (
        UniqueConstraint("office_id", "starts_at", name="slot_once"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="not_overbooked"),
    )


class Appointment(Base):
    __tablename__ = "appointments"
    id = Column(Integer, primary_key=True)
    reference = Column(String(20), nullable=False, unique=True)
    slot_id = Column(Integer, ForeignKey("appointment_slots.id"), nullable=False, index=True)
    service_id = Column(String(60), ForeignKey("services.id"), nullable=False)
    office_id = Column(String(50), ForeignKey("offices.id"), nullable=False)
    citizen_id = Column(Integer, ForeignKey("citizens.id"), nullable=False, index=True)
    status = Column(String(20), nullable=False, default="booked")  # booked | cancelled
    channel = Column(String(30), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    slot = relationship("AppointmentSlot")
    service = relationship("Service")
    office = relationship("Office")
    citizen = relationship("Citizen")


class Application(Base):
    __tablename__ = "applications"
    id = Column(Integer, primary_key=True)
    reference = Column(String(20), nullable=False, unique=True)
    service_id = Column(String(60), ForeignKey("services.id"), nullable=False)
    citizen_id = Column(Integer, ForeignKey("citizens.id"), index=True)
    status = Column(String(30), nullable=False)
    submitted_at = Column(DateTime, nullable=False, default=utcnow)

    service = relationship("Service")
    history = relationship(
        "ApplicationStatusChange",
        cascade="all, delete-orphan",
        order_by="ApplicationStatusChange.changed_at",
    )


class ApplicationStatusChange(Base):
    __tablename__ = "application_status_changes"
    id = Column(Integer, primary_key=True)
    application_id = Column(Integer, ForeignKey("applications.id"), nullable=False, index=True)
    status = Column(String(30), nullable=False)
    changed_at = Column(DateTime, nullable=False, default=utcnow)
    note = Column(Text)


class Report(Base):
    """An issue a citizen reported (pothole, broken light...), routed to a department."""

    __tablename__ = "reports"
    id = Column(Integer, primary_key=True)
    reference = Column(String(20), nullable=False, unique=True)
    category_id = Column(String(60), ForeignKey("report_categories.id"), nullable=False)
    department = Column(String(200), nullable=False)
    location = Column(Text, nullable=False)
    description = Column(Text, nullable=False)
    urgent = Column(Boolean, nullable=False)
    status = Column(String(20), nullable=False, default="open")
    channel = Column(String(30), nullable=False)
    sender_id = Column(String(200), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class RecordLookup(Base):
    """A failed or refused look-up of a citizen's record, for the limits and for staff; pseudonyms only."""

    __tablename__ = "record_lookups"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    kind = Column(String(20), nullable=False)  # appointment | application
    channel = Column(String(30), nullable=False)
    conversation_key = Column(String(64), nullable=False, index=True)  # pseudonym of the sender id
    source_key = Column(String(64), nullable=False, index=True)  # pseudonym of the channel and linked identity or sender
    record_key = Column(String(64), nullable=False, index=True)  # pseudonym of the reference asked for
    reason = Column(String(20), nullable=False)  # unknown | wrong_proof | limited


class HandoffRequest(Base):
    """A request for a person to take over a conversation."""

    __tablename__ = "handoff_requests"
    id = Column(Integer, primary_key=True)
    reference = Column(String(20), nullable=False, unique=True)
    sender_id = Column(String(200), nullable=False, index=True)
    channel = Column(String(30), nullable=False)
    reason = Column(String(40), nullable=False)
    summary = Column(JSON, nullable=False)
    priority = Column(Integer, nullable=False, default=2)  # 1 high .. 3 low
    # open (waiting) -> claimed (a person is on it) -> resolved | returned (to the assistant);
    # withdrawn when the citizen leaves the queue
    status = Column(String(20), nullable=False, default="open")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    claimed_by = Column(String(80))
    claimed_at = Column(DateTime)
    closed_at = Column(DateTime)
    outcome = Column(String(60))
    notified_position = Column(Integer)  # the queue place the citizen was last told
    callback_requested = Column(Boolean, nullable=False, default=False)
    messages = relationship("HandoffMessage", order_by="HandoffMessage.id", cascade="all, delete-orphan")


class HandoffMessage(Base):
    """A staff reply sent to the citizen, or an internal note only staff see."""

    __tablename__ = "handoff_messages"
    id = Column(Integer, primary_key=True)
    handoff_id = Column(Integer, ForeignKey("handoff_requests.id"), nullable=False, index=True)
    kind = Column(String(10), nullable=False)  # reply | note
    author = Column(String(80), nullable=False)
    text = Column(Text, nullable=False)
    delivered = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


# --- staff console -----------------------------------------------------------------


class StaffUser(Base):
    """A person who works in the staff console."""

    __tablename__ = "staff_users"
    id = Column(Integer, primary_key=True)
    username = Column(String(80), nullable=False, unique=True)
    password_hash = Column(String(300), nullable=False)
    role = Column(String(20), nullable=False)  # agent | supervisor | admin
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    password_changed_at = Column(DateTime)


class StaffSession(Base):
    """A server-side login session; the browser holds only the random token whose hash is the key."""

    __tablename__ = "staff_sessions"
    token_hash = Column(String(64), primary_key=True)
    user_id = Column(Integer, ForeignKey("staff_users.id"), nullable=False, index=True)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    last_seen_at = Column(DateTime)  # the last request the staff member made (idle timeout)


class LoginFailure(Base):
    """A failed console login, for throttling: the typed name and the source address only as keyed hashes."""

    __tablename__ = "login_failures"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    account_key = Column(String(64), nullable=False, index=True)
    source_key = Column(String(64), nullable=False, index=True)


class AuditEntry(Base):
    """Who looked at or changed what: every transcript view and personal-data reveal."""

    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    username = Column(String(80), nullable=False)
    action = Column(String(40), nullable=False)
    target = Column(String(200), nullable=False, default="")
    detail = Column(JSON, nullable=False, default=dict)


class ConversationReview(Base):
    """Staff's review of one conversation: tags, a note and the reviewed mark."""

    __tablename__ = "conversation_reviews"
    sender_id = Column(String(200), primary_key=True)
    tags = Column(JSON, nullable=False, default=list)
    note = Column(Text, nullable=False, default="")
    reviewed = Column(Boolean, nullable=False, default=False)
    reviewed_by = Column(String(80))
    updated_at = Column(DateTime, nullable=False, default=utcnow)


class NluCorrection(Base):
    """A misunderstood message with the intent staff say it should have had."""

    __tablename__ = "nlu_corrections"
    id = Column(Integer, primary_key=True)
    sender_id = Column(String(200), nullable=False, index=True)
    event_id = Column(Integer, nullable=False, unique=True)  # the user event in Rasa's tracker store
    text = Column(Text, nullable=False)
    predicted_intent = Column(String(80))
    confidence = Column(Float)
    correct_intent = Column(String(80), nullable=False)
    corrected_by = Column(String(80), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class TelegramUpdate(Base):
    """A webhook update the bot has taken on: who holds it until when, and whether it was answered.

    Telegram delivers an update again until the webhook answers 2xx; this record is how any bot process
    (the active one, its standby, a restarted one) knows an update was already handled (bot/ledger.py).
    """

    __tablename__ = "telegram_updates"
    bot_id = Column(String(20), primary_key=True)  # the token's numeric prefix: one ledger per bot
    update_id = Column(BigInteger, primary_key=True, autoincrement=False)
    holder = Column(String(40), nullable=False)  # the bot process handling it (random per start)
    lease_until = Column(DateTime, nullable=False)  # renewed while it is handled; past it, another may take over
    handled_at = Column(DateTime, index=True)  # set once answered: redeliveries get 200 without a second answer
