"""The live handoff queue: the list, one handoff's page, and its actions (claim, reply, note, resolve,
hand back), all through StaffDesk. The list updates itself over server-sent events (/queue/events):
one task per app polls StaffDesk.queue_version() about once a second and wakes the open streams
when it changes; the page then fetches the list again (/queue/items)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, redirect

from console import audit
from console.auth import SESSION_COOKIE, requires, session_member
from console.conversations import ConversationStore
from console.masking import PERSONAL_SLOTS, Masker, no_masking, slot_personal_values, slot_value_masked
from console.templates import error_page, render
from console.users import active_username
from onewindow.backend.references import normalise_reference
from onewindow.backend.staff_desk import OUTCOMES, HandoffNotFound, HandoffStateError, QueueItem, StaffDesk, tell_queue_moves
from onewindow.infra.logs import log_event

logger = logging.getLogger("onewindow.console")  # OneWindow's JSON log lines (onewindow.infra.logs)
bp = Blueprint("queue")

PRIORITIES = {1: "high", 2: "normal", 3: "low"}
MAX_TEXT = 2000
POLL_SECONDS = 1.0
NOT_FOUND = "There is no handoff with this reference."
HEARTBEAT_SECONDS = 15.0  # well under Sanic's response timeout, which a silent stream would hit


class QueueWatch:
    """The queue's current version, polled from StaffDesk; streams wait here for the next change."""

    def __init__(self, desk: StaffDesk) -> None:
        self.desk = desk
        self.version = ""
        self._changed = asyncio.Condition()

    async def poll_forever(self) -> None:
        while True:
            try:
                version = await asyncio.to_thread(self.desk.queue_version)
            except Exception as error:  # a database hiccup must not end the live updates
                log_event(logger, "console.queue_poll_failed", error=error.__class__.__name__)
            else:
                if version != self.version:
                    self.version = version
                    async with self._changed:
                        self._changed.notify_all()
            await asyncio.sleep(POLL_SECONDS)

    async def next_version(self, seen: str, timeout: float) -> Optional[str]:
        """The version once it differs from `seen`, or None after `timeout` seconds without a change."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version != seen), timeout)
            except asyncio.TimeoutError:
                return None
        return self.version


def install(app: Sanic) -> None:
    """Run the queue watch while the server runs."""

    @app.after_server_start
    async def start_watch(app: Sanic, _loop: object) -> None:
        app.ctx.queue_watch = QueueWatch(app.ctx.desk)
        app.ctx.queue_watch_task = asyncio.create_task(app.ctx.queue_watch.poll_forever())

    @app.before_server_stop
    async def stop_watch(app: Sanic, _loop: object) -> None:
        app.ctx.queue_watch_task.cancel()
        await asyncio.gather(app.ctx.queue_watch_task, return_exceptions=True)


def masker_for(item: QueueItem, history: List[str], revealed: bool) -> Callable[[Any], Any]:
    """Masks the citizen's personal data in what the page shows, unless a supervisor revealed it: the summary's
    personal slots, `history` (every value the conversation's personal slots ever held, also ones cleared since)
    and the names found in the summary's and the staff's texts."""
    if revealed:
        return no_masking
    slots = item.summary.get("slots") or {}
    texts = [str(turn.get("text", "")) for turn in item.summary.get("last_turns") or []] + [m.text for m in item.messages]
    return Masker(
        [value for name in PERSONAL_SLOTS for value in slot_personal_values(name, str(slots.get(name) or ""))] + history, texts
    )


def shown_summary(item: QueueItem, mask: Callable[[Any], Any]) -> Dict[str, Any]:
    summary = item.summary or {}
    return {
        "intents": [str(intent) for intent in summary.get("intents") or []],
        "slots": {name: slot_value_masked(mask, name, value) for name, value in (summary.get("slots") or {}).items()},
        "last_turns": [
            {"from": turn.get("from", ""), "text": mask(turn.get("text", ""))} for turn in summary.get("last_turns") or []
        ],
    }


@bp.get("/queue")
@requires("agent")
async def queue_page(request: Request) -> HTTPResponse:
    return render(request, "queue.html", items=await request.app.ctx.desk.queue(), priorities=PRIORITIES)


@bp.get("/queue/items")
@requires("agent", touch=False)
async def queue_items(request: Request) -> HTTPResponse:
    """The queue's rows alone, fetched by the page when the queue changes."""
    return render(request, "queue_items.html", items=await request.app.ctx.desk.queue(), priorities=PRIORITIES)


@bp.get("/queue/events")
@requires("agent", touch=False)
async def queue_events(request: Request) -> None:
    """Server-sent events: `event: queue` with the queue's version when it changes; ends at logout."""
    watch: QueueWatch = request.app.ctx.queue_watch
    engine = request.app.ctx.backend.engine
    token = request.cookies[SESSION_COOKIE]
    response = await request.respond(content_type="text/event-stream; charset=utf-8", headers={"X-Accel-Buffering": "no"})
    seen = watch.version
    await response.send(f"retry: 3000\nevent: queue\ndata: {seen}\n\n")
    while True:
        version = await watch.next_version(seen, HEARTBEAT_SECONDS)
        if not await asyncio.to_thread(session_member, engine, token, request.app.ctx.settings.idle_minutes, False):
            break
        if version is None:
            await response.send(": still here\n\n")
        else:
            seen = version
            await response.send(f"event: queue\ndata: {version}\n\n")
    await response.send("event: logout\ndata: \n\n", end_stream=True)


def handoff_reference(reference: str) -> Optional[str]:
    return normalise_reference(reference, "handoff")


async def find_handoff(request: Request, reference: str) -> Optional[QueueItem]:
    """The handoff with this reference, or None (malformed or unknown reference)."""
    ref = handoff_reference(reference)
    try:
        return await request.app.ctx.desk.get(ref) if ref else None
    except HandoffNotFound:
        return None


async def render_handoff(request: Request, item: QueueItem, revealed: bool) -> HTTPResponse:
    store = ConversationStore(request.app.ctx.tracker, request.app.ctx.backend.engine)
    history = (await asyncio.to_thread(store.personal_values, [item.sender_id])).get(item.sender_id, [])
    transcript_key = await asyncio.to_thread(store.key_of, item.sender_id)  # links carry the key, never the sender id
    mask = masker_for(item, history, revealed)
    messages = [
        {"kind": m.kind, "author": m.author, "text": mask(m.text), "delivered": m.delivered, "created_at": m.created_at}
        for m in item.messages
    ]
    return render(
        request,
        "handoff.html",
        item=item,
        summary=shown_summary(item, mask),
        messages=messages,
        revealed=revealed,
        outcomes=OUTCOMES,
        priorities=PRIORITIES,
        max_text=MAX_TEXT,
        transcript_key=transcript_key,
    )


async def show(request: Request, reference: str, action: str, revealed: bool) -> HTTPResponse:
    """A handoff's page (masked, or with personal data shown), the view audited as `action`."""
    item = await find_handoff(request, reference)
    if item is None:
        return error_page(request, 404, NOT_FOUND)
    await audit.record(request, action, item.reference)
    return await render_handoff(request, item, revealed=revealed)


@bp.get("/handoffs/<reference>")
@requires("agent")
async def handoff_page(request: Request, reference: str) -> HTTPResponse:
    return await show(request, reference, "handoff.view", revealed=False)


@bp.post("/handoffs/<reference>/reveal")
@requires("supervisor")
async def reveal(request: Request, reference: str) -> HTTPResponse:
    """The handoff page with the citizen's personal data shown (logged as personal_data.reveal)."""
    return await show(request, reference, "personal_data.reveal", revealed=True)


async def _act(
    request: Request,
    reference: str,
    action: str,
    change: Callable[[StaffDesk, str], Awaitable[Any]],
    done: Optional[str] = None,
    **detail: Any,
) -> HTTPResponse:
    """Apply `change` to the handoff through the StaffDesk, audit it as `action`, then show `done` (the handoff's page)."""
    ref = handoff_reference(reference)
    if ref is None:
        return error_page(request, 404, NOT_FOUND)
    try:
        await change(request.app.ctx.desk, ref)
    except HandoffNotFound:
        return error_page(request, 404, NOT_FOUND)
    except HandoffStateError as error:
        return error_page(
            request, 409, f"Not possible now: {error}. The handoff page shows its current state.", back=f"/handoffs/{ref}"
        )
    await audit.record(request, action, ref, **detail)
    return redirect(done or f"/handoffs/{ref}", status=303)


def form_text(request: Request) -> Optional[str]:
    """The form's `text`, trimmed, or None when empty or too long."""
    text = (request.form.get("text") or "").strip()
    return text if 0 < len(text) <= MAX_TEXT else None


@bp.post("/handoffs/<reference>/claim")
@requires("agent")
async def claim(request: Request, reference: str) -> HTTPResponse:
    username = request.ctx.user.username
    return await _act(request, reference, "handoff.claim", lambda desk, ref: desk.claim(ref, username))


async def post_text(request: Request, reference: str, kind: str, send: Callable[..., Awaitable[Any]]) -> HTTPResponse:
    """A reply or a note: `send(desk, reference, username, text)` once the form's text is valid."""
    text = form_text(request)
    if text is None:
        return error_page(request, 400, f"Write a {kind} of 1 to {MAX_TEXT} characters.", back=f"/handoffs/{reference}")
    username = request.ctx.user.username
    return await _act(request, reference, f"handoff.{kind}", lambda desk, ref: send(desk, ref, username, text))


@bp.post("/handoffs/<reference>/reply")
@requires("agent")
async def reply(request: Request, reference: str) -> HTTPResponse:
    return await post_text(request, reference, "reply", lambda desk, *args: desk.reply(*args))


@bp.post("/handoffs/<reference>/note")
@requires("agent")
async def note(request: Request, reference: str) -> HTTPResponse:
    return await post_text(request, reference, "note", lambda desk, *args: desk.note(*args))


@bp.post("/handoffs/<reference>/resolve")
@requires("agent")
async def resolve(request: Request, reference: str) -> HTTPResponse:
    outcome = request.form.get("outcome") or ""
    if outcome not in OUTCOMES:
        return error_page(request, 400, "Choose the outcome from the list.", back=f"/handoffs/{reference}")
    username = request.ctx.user.username
    return await _act(
        request,
        reference,
        "handoff.resolve",
        lambda desk, ref: desk.resolve(ref, username, outcome),
        done="/queue",
        outcome=outcome,
    )


@bp.post("/handoffs/<reference>/hand-back")
@requires("agent")
async def hand_back(request: Request, reference: str) -> HTTPResponse:
    username = request.ctx.user.username
    return await _act(request, reference, "handoff.hand_back", lambda desk, ref: desk.hand_back(ref, username), done="/queue")


@bp.post("/handoffs/<reference>/reassign")
@requires("supervisor")
async def reassign(request: Request, reference: str) -> HTTPResponse:
    """A supervisor releases a claimed handoff back to the queue (`to` empty) or gives it to another active member,
    also when the one who claimed it has left (a deactivated account)."""
    target = (request.form.get("to") or "").strip().lower()
    username = await asyncio.to_thread(active_username, request.app.ctx.backend.engine, target) if target else None
    if target and username is None:
        return error_page(
            request, 400, "Choose an active staff member to reassign to, or none to release.", back=f"/handoffs/{reference}"
        )

    async def change(desk: StaffDesk, ref: str) -> None:
        await asyncio.to_thread(desk.backend.handoffs.reassign, ref, username)
        await tell_queue_moves(desk.backend, desk.outbound)

    return await _act(
        request,
        reference,
        "handoff.release" if username is None else "handoff.reassign",
        change,
        **({"to": username} if username else {}),
    )
