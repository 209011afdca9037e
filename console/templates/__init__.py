"""HTML pages: Jinja2 templates in this folder, autoescaped, rendered with the user, CSRF token and nav.

Templates extend base.html and fill `{% block title %}` and `{% block content %}`; forms that
change something include `<input type="hidden" name="csrf_token" value="{{ csrf_token }}">`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, List, NamedTuple, Optional

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sanic import Request
from sanic.response import HTTPResponse, html


class NavItem(NamedTuple):
    label: str
    path: str
    role: str  # the lowest role that sees it


NAV = (
    NavItem("Queue", "/queue", "agent"),
    NavItem("Transcripts", "/transcripts", "agent"),
    NavItem("Improve", "/improve", "agent"),
    NavItem("Analytics", "/analytics", "agent"),
    NavItem("Audit", "/audit", "supervisor"),
    NavItem("Failed look-ups", "/lookups", "supervisor"),
    NavItem("Users", "/admin/users", "admin"),
)


def waited(since: Optional[datetime], now: Optional[datetime] = None) -> str:
    """ "4 min", "1 h 05 min" since `since` (UTC)."""
    if since is None:
        return ""
    minutes = max(0, int(((now or datetime.utcnow()) - since).total_seconds() // 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def when(moment: Optional[datetime]) -> str:
    """A stored UTC time as "2026-11-23 21:07 UTC"."""
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


environment = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent)),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["waited"] = waited
environment.filters["when"] = when


def nav_for(request: Request) -> List[NavItem]:
    user = getattr(request.ctx, "user", None)
    return [item for item in NAV if user is not None and user.can(item.role)]


def render(request: Request, template_name: str, status: int = 200, **context: Any) -> HTTPResponse:
    """The page `template_name` with `user`, `csrf_token`, `nav` and `path` added to `context`."""
    page = environment.get_template(template_name).render(
        user=getattr(request.ctx, "user", None),
        csrf_token=getattr(request.ctx, "csrf_token", ""),
        nav=nav_for(request),
        path=request.path,
        **context,
    )
    return html(page, status=status)


HEADINGS = {400: "Please check the form", 403: "Not allowed", 404: "Not found", 409: "Not possible now"}


def error_page(request: Request, status: int, message: str, back: Optional[str] = None) -> HTTPResponse:
    """A page that says what went wrong, with a link back (to `back`, or to the queue)."""
    heading = HEADINGS.get(status, "Something went wrong")
    return render(request, "error.html", status=status, heading=heading, message=message, back=back)
