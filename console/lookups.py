"""Failed look-ups of citizens' records, for supervisors and admins at /lookups: the sources that keep failing and
the latest failures, over the last `days` days (default 7). What the page shows is what `record_lookups` holds:
pseudonyms (salted hashes of the conversation, the source and the reference) and closed vocabularies, never a
reference, a phone number, the digits given or a sender id. Every view is audited (`lookups.view`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from console.audit import record
from console.auth import requires
from console.filters import MAX_RANGE_DAYS, parse_whole
from console.templates import render
from onewindow.backend.ownership import MAX_FAILURES, FailedLookup, Ownership, RepeatedFailures

DEFAULT_DAYS = 7
LATEST = 100  # failed look-ups listed, newest first
REASONS = {"unknown": "no such record", "wrong_proof": "wrong digits", "limited": "refused: a limit was reached"}

bp = Blueprint("lookups")


@dataclass(frozen=True)
class LookupReport:
    """The sources with repeated failures and the latest failed look-ups since `since`."""

    days: int
    since: datetime
    repeated: List[RepeatedFailures]
    latest: List[FailedLookup]


def lookup_report(ownership: Ownership, days: int, now: Optional[datetime] = None) -> LookupReport:
    """The failed look-ups of the last `days` days (`now`: UTC, by default the present)."""
    since = (now or datetime.utcnow()) - timedelta(days=days)
    return LookupReport(days, since, ownership.repeated_failures(since), ownership.failed_lookups(since, LATEST))


def repeated_sources(ownership: Ownership, days: int = DEFAULT_DAYS) -> int:
    """How many sources had repeated failed look-ups in the last `days` days (for the analytics page)."""
    return len(ownership.repeated_failures(datetime.utcnow() - timedelta(days=days)))


@bp.get("/lookups")
@requires("supervisor")
async def lookups_page(request: Request) -> HTTPResponse:
    days = parse_whole(request.args, "days", DEFAULT_DAYS, MAX_RANGE_DAYS)
    report = await asyncio.to_thread(lookup_report, request.app.ctx.backend.ownership, days)
    await record(request, "lookups.view", "/lookups", days=days, sources=len(report.repeated))
    return render(
        request, "lookups.html", report=report, reasons=REASONS, at_least=MAX_FAILURES, latest=LATEST, max_days=MAX_RANGE_DAYS
    )
