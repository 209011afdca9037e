"""Transcripts: the searchable list of conversations, one conversation's turns, review marks, exports.

Personal data is masked everywhere (console.masking) except in the one response a supervisor or admin
gets by asking to reveal a transcript (audited as personal_data.reveal). Every view and export is audited.
Conversations are addressed by their key (the first event id), so URLs never carry a phone number.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional
from urllib.parse import urlencode

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw, redirect

from console import audit
from console.auth import REVEAL_ROLE, requires
from console.conversations import ConversationStore, ConversationSummary, Transcript
from console.filters import (
    CHANNELS,
    HANDOFF_REASONS,
    OUTCOMES,
    REVIEWED,
    ConversationFilter,
    InvalidFilter,
    known_intents,
    parse_filter,
    parse_page,
    tags_from_text,
)
from console.masking import Masker, no_masking, search_detail, slot_value_masked
from console.templates import error_page, render

bp = Blueprint("transcripts")
MAX_NOTE = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def store_of(request: Request) -> ConversationStore:
    """The conversations as this user may search them: in clear for roles that may reveal personal data."""
    return ConversationStore(
        request.app.ctx.tracker, request.app.ctx.backend.engine, search_in_clear=request.ctx.user.can(REVEAL_ROLE)
    )


async def audit_search(request: Request, criteria: ConversationFilter, where: str) -> None:
    """Every free-text search is audited, the query as a salted hash and its kinds of personal data, never in clear."""
    if criteria.text:
        await audit.record(
            request, "transcripts.search", where, **search_detail(criteria.text, store_of(request).search_in_clear)
        )


def first(args: Mapping[str, Any], name: str) -> str:
    """A query or form field's first value ("" when absent)."""
    return str(args.get(name) or "")


def filter_options() -> Dict[str, Any]:
    return {
        "channels": CHANNELS,
        "intents": sorted(known_intents()),
        "outcomes": OUTCOMES,
        "reasons": HANDOFF_REASONS,
        "reviewed_choices": REVIEWED,
    }


# --- the list ----------------------------------------------------------------------------------


@bp.get("/transcripts")
@requires("agent")
async def transcript_list(request: Request) -> HTTPResponse:
    form = {
        name: first(request.args, name)
        for name in ("from", "to", "channel", "intent", "outcome", "reason", "tag", "q", "reviewed")
    }
    store = store_of(request)
    tags = await asyncio.to_thread(store.all_tags)
    try:
        criteria, number = parse_filter(request.args), parse_page(request.args)
    except InvalidFilter as error:
        return render(
            request,
            "transcripts.html",
            status=400,
            error=str(error),
            form=form,
            page=None,
            tags=tags,
            maskers={},
            links={},
            **filter_options(),
        )
    await audit_search(request, criteria, "list")
    page = await asyncio.to_thread(store.search, criteria, number)
    personal = await asyncio.to_thread(store.personal_values, [item.sender_id for item in page.items])
    maskers = {item.sender_id: Masker(personal.get(item.sender_id, [])) for item in page.items}
    params = criteria.params()
    links = {
        "previous": f"/transcripts?{urlencode({**params, 'page': number - 1})}" if number > 1 else "",
        "next": f"/transcripts?{urlencode({**params, 'page': number + 1})}" if number < page.pages else "",
        "csv": "/transcripts/export.csv" + (f"?{urlencode(params)}" if params else ""),
        "json": "/transcripts/export.json" + (f"?{urlencode(params)}" if params else ""),
    }
    return render(
        request, "transcripts.html", error="", form=form, page=page, tags=tags, maskers=maskers, links=links, **filter_options()
    )


# --- one conversation --------------------------------------------------------------------------


async def conversation(request: Request, key: int) -> Optional[Transcript]:
    store = store_of(request)
    sender = await asyncio.to_thread(store.sender_of, key)
    return await asyncio.to_thread(store.transcript, sender) if sender else None


def render_transcript(
    request: Request, transcript: Transcript, revealed: bool, status: int = 200, error: str = ""
) -> HTTPResponse:
    mask: Callable[[Any], Any] = no_masking if revealed else transcript.masker()
    slot = (lambda name, value: value) if revealed else (lambda name, value: slot_value_masked(mask, name, value))
    return render(
        request,
        "transcript.html",
        status=status,
        t=transcript,
        mask=mask,
        slot=slot,
        revealed=revealed,
        error=error,
        outcomes=OUTCOMES,
    )


async def show(request: Request, key: int, action: str, revealed: bool) -> HTTPResponse:
    """A transcript page (masked, or with personal data shown), the view audited as `action`."""
    transcript = await conversation(request, key)
    if transcript is None:
        return error_page(request, 404, "There is no such conversation (it may have been deleted).", back="/transcripts")
    await audit.record(request, action, f"conversation:{key}", channel=transcript.channel)
    return render_transcript(request, transcript, revealed=revealed)


@bp.get("/transcripts/<key:int>")
@requires("agent")
async def transcript_page(request: Request, key: int) -> HTTPResponse:
    return await show(request, key, "transcript.view", revealed=False)


@bp.post("/transcripts/<key:int>/reveal")
@requires("supervisor")
async def reveal(request: Request, key: int) -> HTTPResponse:
    return await show(request, key, "personal_data.reveal", revealed=True)


@bp.post("/transcripts/<key:int>/review")
@requires("agent")
async def review(request: Request, key: int) -> HTTPResponse:
    transcript = await conversation(request, key)
    if transcript is None:
        return error_page(request, 404, "There is no such conversation (it may have been deleted).", back="/transcripts")
    form = request.form or {}
    note = first(form, "note").strip()
    try:
        tags = tags_from_text(first(form, "tags"))
        if len(note) > MAX_NOTE:
            raise InvalidFilter(f"the note can be at most {MAX_NOTE} characters")
    except InvalidFilter as error:
        return render_transcript(request, transcript, revealed=False, status=400, error=str(error))
    reviewed = first(form, "reviewed") in ("on", "yes", "1")
    await asyncio.to_thread(store_of(request).save_review, transcript.sender_id, tags, note, reviewed, request.ctx.user.username)
    await audit.record(request, "transcript.review", f"conversation:{key}", tags=tags, reviewed=reviewed)
    return redirect(f"/transcripts/{key}", status=303)


# --- exports -----------------------------------------------------------------------------------


async def exported(request: Request, kind: str) -> Any:
    """The conversations of the request's filter with their transcripts and maskers, or an error page."""
    try:
        criteria = parse_filter(request.args)
    except InvalidFilter as error:
        return error_page(request, 400, str(error), back="/transcripts")
    store = store_of(request)
    await audit_search(request, criteria, kind)
    summaries = await asyncio.to_thread(store.matching, criteria)
    transcripts = await asyncio.to_thread(store.transcripts, summaries)
    await audit.record(request, "transcripts.export", kind, filter=criteria.params(), conversations=len(transcripts))
    return criteria, summaries, transcripts


def download(body: str, content_type: str, filename: str) -> HTTPResponse:
    return raw(
        body.encode("utf-8"), content_type=content_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def export_name(extension: str) -> str:
    return f"transcripts-{datetime.utcnow():%Y%m%d-%H%M}.{extension}"


def csv_cell(value: Any) -> Any:
    """A spreadsheet must not run a citizen's text as a formula."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_rows(transcript: Transcript) -> Iterator[List[Any]]:
    """One row per message: conversation, sender, time, channel, from, text, intent, confidence, actions."""
    mask = transcript.masker()
    sender = mask(transcript.sender_id)
    for turn in transcript.turns():
        messages = ([turn.citizen] if turn.citizen else []) + turn.replies
        for index, message in enumerate(messages):
            is_first = index == 0
            who = f"staff:{message.author}" if message.speaker == "staff" else message.speaker
            yield [
                transcript.key,
                sender,
                f"{message.at:%Y-%m-%dT%H:%M:%S}Z",
                message.channel or transcript.channel,
                who,
                mask(message.text),
                message.intent or "",
                "" if message.confidence is None else round(message.confidence, 3),
                " ".join(turn.actions) if is_first else "",
            ]


@bp.get("/transcripts/export.csv")
@requires("agent")
async def export_csv(request: Request) -> HTTPResponse:
    result = await exported(request, "csv")
    if isinstance(result, HTTPResponse):
        return result
    _, _, transcripts = result
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["conversation", "sender", "time", "channel", "from", "text", "intent", "confidence", "actions"])
    for transcript in transcripts:
        writer.writerows([csv_cell(cell) for cell in row] for row in csv_rows(transcript))
    return download(buffer.getvalue(), "text/csv; charset=utf-8", export_name("csv"))


def conversation_json(summary: ConversationSummary, transcript: Transcript) -> Dict[str, Any]:
    mask = transcript.masker()

    def message(m: Any) -> Dict[str, Any]:
        return {"at": m.at.isoformat() + "Z", "from": m.speaker, "author": m.author or None, "text": mask(m.text)}

    return {
        "conversation": transcript.key,
        "sender": mask(transcript.sender_id),
        "channel": transcript.channel,
        "started_at": summary.started_at.isoformat() + "Z",
        "last_at": summary.last_at.isoformat() + "Z",
        "outcome": transcript.outcome,
        "handoffs": [
            {
                "reference": h.reference,
                "reason": h.reason,
                "status": h.status,
                "outcome": h.outcome,
                "created_at": h.created_at.isoformat() + "Z",
                "wait_minutes": h.wait_minutes,
            }
            for h in transcript.handoffs
        ],
        "tags": transcript.review.tags,
        "note": mask(transcript.review.note),
        "reviewed": transcript.review.reviewed,
        "sessions": [
            {
                "started_at": session.started_at.isoformat() + "Z",
                "turns": [
                    {
                        "citizen": {
                            **message(turn.citizen),
                            "intent": turn.citizen.intent,
                            "confidence": turn.citizen.confidence,
                            "entities": [{"entity": e, "value": mask(v)} for e, v in turn.citizen.entities],
                        }
                        if turn.citizen
                        else None,
                        "replies": [message(reply) for reply in turn.replies],
                        "actions": turn.actions,
                        "slots": [{"name": name, "value": slot_value_masked(mask, name, value)} for name, value in turn.slots],
                    }
                    for turn in session.turns
                ],
            }
            for session in transcript.sessions
        ],
    }


@bp.get("/transcripts/export.json")
@requires("agent")
async def export_json(request: Request) -> HTTPResponse:
    result = await exported(request, "json")
    if isinstance(result, HTTPResponse):
        return result
    criteria, summaries, transcripts = result
    body = {
        "exported_at": datetime.utcnow().isoformat(timespec="seconds") + "Z",
        "filter": criteria.params(),
        "conversations": [conversation_json(s, t) for s, t in zip(summaries, transcripts)],
    }
    return download(json.dumps(body, ensure_ascii=False, indent=1), "application/json", export_name("json"))
