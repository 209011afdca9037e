"""Plain records the backend hands to actions and channels (no database sessions attached)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Dict, List, Optional, Tuple

Periods = List[Tuple[time, time]]


@dataclass(frozen=True)
class BenefitRecord:
    """What a benefit pays the citizen: `amount` (the most, when `up_to`) each `period` (week, month, year, once)."""

    amount: float
    period: str
    basis: str
    up_to: bool = False


@dataclass(frozen=True)
class ServiceRecord:
    id: str
    name: str
    department: str
    description: str
    eligibility: str
    documents: List[str]
    fee: float
    fee_note: Optional[str]
    processing_days: int
    online_available: bool
    online_where: Optional[str]
    one_visit: bool
    bookable: bool
    office_ids: List[str]
    life_event_ids: List[str]
    benefit: Optional[BenefitRecord] = None  # None: the service pays the citizen nothing


@dataclass(frozen=True)
class OfficeRecord:
    id: str
    name: str
    kind: str
    district_id: str
    district_name: str
    address: str
    phone: str
    accessibility: List[str]
    note: Optional[str]
    hours: Dict[int, Periods]  # weekday -> periods
    service_ids: List[str]
    slot_minutes: int = 30
    windows: int = 1
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    stops: Dict[int, "StopRecord"] = field(default_factory=dict)  # a mobile point's place per weekday

    def hours_on(self, day: date) -> Periods:
        return self.hours.get(day.weekday(), [])

    def place_on(self, day: date) -> "StopRecord":
        """Where to find the office on `day`: a mobile point's stop that day, otherwise its address."""
        return self.stops.get(day.weekday()) or StopRecord(self.address, self.latitude, self.longitude)


@dataclass(frozen=True)
class StopRecord:
    place: str
    latitude: Optional[float]
    longitude: Optional[float]


@dataclass(frozen=True)
class LifeEventStepRecord:
    service: ServiceRecord
    when: str


@dataclass(frozen=True)
class LifeEventRecord:
    id: str
    name: str
    summary: str
    steps: List[LifeEventStepRecord]
    sympathy: Optional[str] = None  # said first, for sad events (a death, a lost job)


@dataclass(frozen=True)
class CityRecord:
    name: str
    currency: str
    hotline_number: str
    hotline_hours: Dict[int, Periods]


@dataclass(frozen=True)
class AppointmentRecord:
    reference: str
    status: str
    starts_at: datetime
    service_id: str
    service_name: str
    office_id: str
    office_name: str
    office_address: str
    documents: List[str]


@dataclass(frozen=True)
class StatusChangeRecord:
    status: str
    changed_at: datetime
    note: Optional[str]


@dataclass(frozen=True)
class ApplicationRecord:
    reference: str
    service_name: str
    status: str
    submitted_at: datetime
    history: List[StatusChangeRecord] = field(default_factory=list)


@dataclass(frozen=True)
class ReportRecord:
    reference: str
    category_name: str
    department: str
    urgent: bool


@dataclass(frozen=True)
class HandoffRecord:
    """A conversation's handoff as the assistant sees it."""

    reference: str
    sender_id: str
    reason: str
    priority: int
    status: str  # open | claimed | resolved | returned | withdrawn
    position_in_queue: Optional[int]  # place in the queue while open, else None
    notified_position: Optional[int]  # the place the citizen was last told
    callback_requested: bool = False


@dataclass
class DeskMessage:
    """One staff reply or internal note."""

    kind: str  # reply | note
    author: str
    text: str
    delivered: bool
    created_at: datetime


@dataclass
class QueueItem:
    """A handoff as the staff console shows it."""

    reference: str
    sender_id: str
    channel: str
    reason: str
    priority: int
    status: str
    created_at: datetime
    claimed_by: Optional[str]
    claimed_at: Optional[datetime]
    position: Optional[int]
    summary: Dict[str, Any]
    callback_requested: bool
    outcome: Optional[str]
    messages: List[DeskMessage]
