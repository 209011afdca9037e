"""Typed look-ups for tests: each returns what the test expects to exist, or fails the test saying what was missing."""

from __future__ import annotations

import re
from typing import Optional, TypeVar, Union

from onewindow.backend import ServiceBackend
from onewindow.backend.catalogue import CatalogueQueries
from onewindow.backend.records import AppointmentRecord, LifeEventRecord, OfficeRecord, ServiceRecord

T = TypeVar("T")


def present(value: Optional[T], what: str) -> T:
    """`value`, which the test expects to be there (`what` names it in the failure)."""
    assert value is not None, f"expected {what}, found None"
    return value


def matched(pattern: Union[str, re.Pattern[str]], text: str, flags: int = 0) -> re.Match[str]:
    """The first match of `pattern` in `text`, which the test expects to contain it."""
    found = re.compile(pattern, flags).search(text)
    assert found is not None, f"expected {pattern!r} in {text!r}"
    return found


def service(catalogue: CatalogueQueries, service_id: str) -> ServiceRecord:
    """The active service `service_id`."""
    return present(catalogue.service(service_id), f"service {service_id!r} in the catalogue")


def office(catalogue: CatalogueQueries, office_id: str) -> OfficeRecord:
    """The active office `office_id`."""
    return present(catalogue.office(office_id), f"office {office_id!r} in the catalogue")


def life_event(catalogue: CatalogueQueries, event_id: str) -> LifeEventRecord:
    """The active life event `event_id`."""
    return present(catalogue.life_event(event_id), f"life event {event_id!r} in the catalogue")


def booking(backend: ServiceBackend, reference: Optional[str]) -> AppointmentRecord:
    """The appointment booked under `reference` (in any status)."""
    return present(backend.bookings.get(reference), f"an appointment {reference!r}")
