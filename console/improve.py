"""Improving the assistant: staff pick the right intent for misunderstood messages, and download the
corrections as Rasa NLU training data (YAML, masked) ready to merge into nlu/."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import urlencode

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw, redirect

from console import audit
from console.auth import requires
from console.conversations import ConversationStore
from console.corrections import WHY, Corrections
from console.filters import InvalidFilter, domain_intents, parse_choice, parse_page
from console.masking import Masker
from console.templates import error_page, render

bp = Blueprint("improve")


def corrections_of(request: Request) -> Corrections:
    store = ConversationStore(request.app.ctx.tracker, request.app.ctx.backend.engine)
    return Corrections(store, request.app.ctx.settings.low_confidence)


def list_link(page: int, include_corrected: bool) -> str:
    return "/improve?" + urlencode({"page": page, **({"all": "1"} if include_corrected else {})})


@bp.get("/improve")
@requires("agent")
async def improve_page(request: Request) -> HTTPResponse:
    number = parse_page(request.args)
    include_corrected = parse_choice(request.args, "all", ("1",)) == "1"
    corrections = corrections_of(request)
    page = await asyncio.to_thread(corrections.misunderstood, number, include_corrected)
    personal = await asyncio.to_thread(corrections.store.personal_values, sorted({i.message.sender_id for i in page.items}))
    maskers = {sender: Masker(values) for sender, values in personal.items()}
    links = {
        "previous": list_link(number - 1, include_corrected) if number > 1 else "",
        "next": list_link(number + 1, include_corrected) if number < page.pages else "",
        "toggle": list_link(1, not include_corrected),
        "here": list_link(number, include_corrected),
    }
    return render(
        request,
        "improve.html",
        page=page,
        maskers=maskers,
        default_mask=Masker(),
        why=WHY,
        intents=domain_intents(),
        include_corrected=include_corrected,
        links=links,
        threshold=corrections.threshold,
    )


@bp.post("/improve/corrections")
@requires("agent")
async def save_correction(request: Request) -> HTTPResponse:
    form = request.form or {}
    event_text, intent = str(form.get("event_id") or ""), str(form.get("intent") or "")
    back = str(form.get("back") or "/improve")
    back = back if back.startswith("/improve") and "//" not in back else "/improve"
    if not event_text.isdigit() or len(event_text) > 12:
        return error_page(request, 400, "That message is not one of the list.", back=back)
    try:
        await asyncio.to_thread(corrections_of(request).save, int(event_text), intent, request.ctx.user.username)
    except InvalidFilter as error:
        return error_page(request, 400, str(error).capitalize() + ".", back=back)
    await audit.record(request, "nlu.correct", f"event:{event_text}", intent=intent)
    return redirect(back, status=303)


@bp.get("/improve/export.yml")
@requires("agent")
async def export_training_data(request: Request) -> HTTPResponse:
    body = await asyncio.to_thread(corrections_of(request).training_data)
    await audit.record(request, "nlu.export", "corrections")
    filename = f"nlu_corrections-{datetime.utcnow():%Y%m%d-%H%M}.yml"
    return raw(
        body.encode("utf-8"),
        content_type="application/x-yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
