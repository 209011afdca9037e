"""Analytics: charts first (inline SVG, console.charts), the numbers beside them, for a date range; and how many
sources had repeated failed look-ups in the last week (console.lookups)."""

from __future__ import annotations

import asyncio
from typing import Dict

from markupsafe import Markup
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from console.auth import requires
from console.charts import horizontal_bars, stacked_columns
from console.conversations import ConversationStore
from console.filters import CHANNELS, OUTCOMES, InvalidFilter, parse_range
from console.lookups import DEFAULT_DAYS, repeated_sources
from console.statistics import Analytics, analytics
from console.templates import render

bp = Blueprint("analytics")


def charts(figures: Analytics) -> Dict[str, Markup]:
    days = figures.days
    per_day = [(channel, [figures.per_day.get(day, {}).get(channel, 0) for day in days]) for channel in CHANNELS]
    return {
        "per_day": stacked_columns("per-day", "Conversations per day by channel", [d.isoformat() for d in days], per_day),
        "outcomes": horizontal_bars(
            "outcomes",
            "Conversations resolved by the assistant and handed off",
            [(OUTCOMES[key], n) for key, n in figures.outcomes.items()],
            shares=True,
        ),
        "reasons": horizontal_bars("handoff-reasons", "Handoff reasons", figures.reasons, shares=True),
        "intents": horizontal_bars("top-intents", "Top intents", figures.top_intents),
        "unmet": horizontal_bars("unmet", "Top unmet requests", figures.unmet),
        "wait": horizontal_bars(
            "wait",
            "Median wait for a person by day",
            [(day.isoformat(), round(minutes, 1)) for day, minutes in figures.wait_by_day.items()],
            unit="min",
        ),
    }


@bp.get("/analytics")
@requires("agent")
async def analytics_page(request: Request) -> HTTPResponse:
    form = {name: str(request.args.get(name) or "") for name in ("from", "to")}
    try:
        date_from, date_to = parse_range(request.args)
    except InvalidFilter as error:
        return render(
            request,
            "analytics.html",
            status=400,
            error=str(error),
            form=form,
            figures=None,
            charts={},
            channels=CHANNELS,
            outcomes=OUTCOMES,
        )
    store = ConversationStore(request.app.ctx.tracker, request.app.ctx.backend.engine)
    figures = await asyncio.to_thread(analytics, store, date_from, date_to)
    repeated = await asyncio.to_thread(repeated_sources, request.app.ctx.backend.ownership)
    form = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    return render(
        request,
        "analytics.html",
        error="",
        form=form,
        figures=figures,
        charts=charts(figures),
        channels=CHANNELS,
        outcomes=OUTCOMES,
        repeated_lookups=repeated,
        lookup_days=DEFAULT_DAYS,
    )
