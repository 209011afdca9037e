"""Sample applications so that status questions have something to find in a demo.

Each belongs to a sample citizen whose phone number is one of the numbers Australia reserves for
fiction (0491 570 xxx), so the status is shown to whoever gives its last four digits.
The first five have references of the six-digit format made before the ten-digit one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import List, Optional, Tuple

from onewindow.backend import ServiceBackend

Change = Tuple[str, int, Optional[str]]  # status, days ago, note
SAMPLE_APPLICATIONS: List[Tuple[str, str, str, List[Change]]] = [  # reference, service, phone, history
    (
        "APP-100001",
        "passport_renewal",
        "0491 570 006",
        [
            ("received", 12, None),
            ("in review", 9, None),
            ("approved", 2, "Your passport is being printed."),
            ("ready for collection", 0, "Collect it at the Immigration Office with your old passport."),
        ],
    ),
    (
        "APP-100002",
        "child_benefit",
        "0491 570 156",
        [("received", 5, None), ("in review", 3, "We are checking the birth registration.")],
    ),
    (
        "APP-100003",
        "housing_fund_withdrawal",
        "0491 570 157",
        [("received", 20, None), ("waiting for documents", 14, "We need your property purchase contract.")],
    ),
    (
        "APP-100004",
        "business_licence",
        "0491 570 158",
        [
            ("received", 30, None),
            ("in review", 25, None),
            ("rejected", 10, "The premises failed the fire safety check. You can apply again."),
        ],
    ),
    ("APP-100005", "pension_application", "0491 570 159", [("received", 1, None)]),
    ("APP-48291-37508", "passport_new", "0491 570 110", [("received", 4, None), ("in review", 1, "We are checking your photo.")]),
]


def load_sample_applications(backend: ServiceBackend, now: datetime) -> int:
    """Add the sample applications that are not there yet; returns how many exist."""
    for reference, service_id, phone, changes in SAMPLE_APPLICATIONS:
        history = [(status, now - timedelta(days=days), note) for status, days, note in changes]
        backend.applications.record(reference, service_id, history, phone)
    return len(SAMPLE_APPLICATIONS)
