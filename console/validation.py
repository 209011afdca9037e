"""The console's one validation layer for what arrives in the address: every bad query parameter or path id is
answered 400 with a message that says which and why, and no input can make a page fail with a 5xx.

- before any route runs: the path and the query must be text without control characters (a NUL byte included),
  the query at most MAX_QUERY characters, and numeric path ids no larger than the database's ids (MAX_ID);
- handlers parse their parameters with console.filters, whose InvalidFilter becomes the 400 page here;
- anything else that goes wrong is logged by its kind and route only (never the address, its query or a
  citizen's text) and answered with a plain error page.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse

from console.filters import InvalidFilter
from console.templates import error_page
from onewindow.infra.logs import log_event

logger = logging.getLogger("onewindow.console")
MAX_ID = 2**31 - 1
MAX_QUERY = 4000
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def input_problem(request: Request) -> str:
    """What is wrong with the request's address (a message for the 400 page), or ""."""
    if CONTROL.search(unquote(request.path)):
        return "The address contains characters that are not allowed."
    if len(request.query_string) > MAX_QUERY:
        return f"The address is too long: its query can have at most {MAX_QUERY} characters."
    for name, values in request.args.items():
        if CONTROL.search(name) or any(CONTROL.search(value) for value in values):
            return f"The parameter '{CONTROL.sub('', name)[:40]}' contains characters that are not allowed."
    for name, value in (request.match_info or {}).items():
        if isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
            return f"The {name} in the address is not one that exists (too large)."
    return ""


async def refuse_bad_input(request: Request) -> "HTTPResponse | None":
    problem = input_problem(request)
    return error_page(request, 400, problem) if problem else None


async def invalid_parameter(request: Request, exception: Exception) -> HTTPResponse:
    return error_page(request, 400, f"{str(exception)[:1].upper()}{str(exception)[1:]}.", back=request.path)


async def failed(request: Request, exception: Exception) -> HTTPResponse:
    """Sanic's own refusals keep their status; anything else is logged without the address and answered 500."""
    if isinstance(exception, SanicException) and exception.status_code < 500:
        return error_page(request, exception.status_code, "This request cannot be answered.")
    route = request.route.name if request.route is not None else ""
    log_event(logger, "console.failed", route=route, method=request.method, error=exception.__class__.__name__)
    return error_page(request, 500, "Something went wrong on our side; it has been logged. Please try again.")


def install(app: Sanic) -> None:
    """Check every request's address before its route runs; turn InvalidFilter into 400 and anything else into a page."""
    app.register_middleware(refuse_bad_input, "request")
    app.error_handler.add(InvalidFilter, invalid_parameter)
    app.error_handler.add(Exception, failed)
