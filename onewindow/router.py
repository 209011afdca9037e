"""Sticky router: one public port in front of several Rasa server instances.

A Rasa server handles one conversation at a time per sender, but all its work runs on one
core. With several instances, each conversation must always reach the same instance (its
tracker and lock live there): the router sends it by a hash of the sender id, taken from
the REST channel's JSON body or from the HTTP API path (/conversations/<id>/...). Other
requests (status, version) go to the first instance.

    python -m onewindow.router --port 5005 --upstream http://127.0.0.1:5101 --upstream http://127.0.0.1:5102
"""
from __future__ import annotations

import argparse
import json
import re
import zlib
from typing import List, Optional
from urllib.parse import unquote

from aiohttp import ClientSession, ClientTimeout, web

CONVERSATION_PATH = re.compile(r"^/conversations/([^/]+)/")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


def sender_of(method: str, path: str, body: bytes) -> Optional[str]:
    """The conversation a request belongs to, or None when it belongs to none."""
    match = CONVERSATION_PATH.match(path)
    if match:
        return unquote(match.group(1))
    if method == "POST" and path.startswith("/webhooks/") and body:
        try:
            sender = json.loads(body).get("sender")
        except (ValueError, AttributeError):
            return None
        return str(sender) if sender is not None else None
    return None


def pick(upstreams: List[str], sender: Optional[str]) -> str:
    if sender is None:
        return upstreams[0]
    return upstreams[zlib.crc32(sender.encode("utf-8")) % len(upstreams)]


def make_app(upstreams: List[str], timeout_seconds: float = 60.0) -> web.Application:
    app = web.Application(client_max_size=4 * 2**20)

    async def start(app: web.Application) -> None:
        app["session"] = ClientSession(timeout=ClientTimeout(total=timeout_seconds), auto_decompress=False)

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        upstream = pick(upstreams, sender_of(request.method, request.path, body))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with app["session"].request(request.method, upstream + request.path_qs, data=body, headers=headers) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(body=payload, status=answer.status, headers=kept)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True, help="a Rasa server URL; repeat for each instance")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the router works on the standard event loop too, only slower
        pass
    web.run_app(make_app([u.rstrip("/") for u in args.upstream]), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
