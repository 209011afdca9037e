"""Sample applications so that status questions have something to find in a demo."""
from __future__ import annotations

from datetime import datetime, timedelta

from onewindow.backend import ServiceBackend

SAMPLE_APPLICATIONS = [
    ("APP-100001", "passport_renewal", [("received", 12, None), ("in review", 9, None), ("approved", 2, "Your passport is being printed."), ("ready for collection", 0, "Collect it at the Immigration Office with your old passport.")]),
    ("APP-100002", "child_benefit", [("received", 5, None), ("in review", 3, "We are checking the birth registration.")]),
    ("APP-100003", "housing_fund_withdrawal", [("received", 20, None), ("waiting for documents", 14, "We need your property purchase contract.")]),
    ("APP-100004", "business_licence", [("received", 30, None), ("in review", 25, None), ("rejected", 10, "The premises failed the fire safety check. You can apply again.")]),
    ("APP-100005", "pension_application", [("received", 1, None)]),
]


def load_sample_applications(backend: ServiceBackend, now: datetime) -> int:
    """Add the sample applications that are not there yet; returns how many exist."""
    for reference, service_id, changes in SAMPLE_APPLICATIONS:
        history = [(status, now - timedelta(days=days), note) for status, days, note in changes]
        backend.applications.record(reference, service_id, history)
    return len(SAMPLE_APPLICATIONS)
