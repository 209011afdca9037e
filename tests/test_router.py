"""The sticky router: a conversation always reaches the same Rasa instance."""
from __future__ import annotations

import asyncio
import json
from typing import Dict, List, Tuple

from aiohttp import ClientSession, web

from onewindow.router import make_app, pick, sender_of
from onewindow.stack import free_port


def test_sender_comes_from_the_rest_body_or_the_conversation_path() -> None:
    assert sender_of("POST", "/webhooks/rest/webhook", json.dumps({"sender": "ana", "message": "hi"}).encode()) == "ana"
    assert sender_of("GET", "/conversations/ana%20b/tracker", b"") == "ana b"
    assert sender_of("POST", "/webhooks/rest/webhook", b"not json") is None
    assert sender_of("GET", "/status", b"") is None


def test_pick_is_stable_and_spreads_senders() -> None:
    upstreams = ["http://a", "http://b"]
    assert all(pick(upstreams, "chat-42") == pick(upstreams, "chat-42") for _ in range(5))
    chosen = {pick(upstreams, f"chat-{n}") for n in range(50)}
    assert chosen == set(upstreams)
    assert pick(upstreams, None) == "http://a"


async def _exchange() -> Tuple[Dict[str, List[str]], List[int]]:
    """Two recording upstreams behind a real router; returns who got which sender."""
    seen: Dict[str, List[str]] = {"one": [], "two": []}
    runners = []

    def upstream(name: str) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            seen[name].append(sender_of(request.method, request.path, body) or request.path)
            return web.json_response([{"recipient_id": "x", "text": name}])

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    ports = []
    for name in ("one", "two"):
        runner = web.AppRunner(upstream(name))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        ports.append(port)
    router = web.AppRunner(make_app([f"http://127.0.0.1:{p}" for p in ports]))
    await router.setup()
    router_port = free_port()
    await web.TCPSite(router, "127.0.0.1", router_port).start()
    statuses = []
    async with ClientSession() as session:
        for n in range(20):
            for _ in range(3):
                async with session.post(f"http://127.0.0.1:{router_port}/webhooks/rest/webhook", json={"sender": f"c{n}", "message": "hi"}) as answer:
                    statuses.append(answer.status)
        async with session.get(f"http://127.0.0.1:{router_port}/conversations/c0/tracker") as answer:
            statuses.append(answer.status)
        async with session.get(f"http://127.0.0.1:{router_port}/status") as answer:
            statuses.append(answer.status)
    for runner in [router, *runners]:
        await runner.cleanup()
    return seen, statuses


def test_router_keeps_each_conversation_on_one_instance() -> None:
    seen, statuses = asyncio.run(_exchange())
    assert set(statuses) == {200}
    senders_one = {s for s in seen["one"] if s.startswith("c")}
    senders_two = {s for s in seen["two"] if s.startswith("c")}
    assert senders_one and senders_two, "both instances get conversations"
    assert not senders_one & senders_two, "no conversation is split between instances"
    assert "/status" in seen["one"], "requests without a conversation go to the first instance"
    c0 = (seen["one"].count("c0"), seen["two"].count("c0"))
    assert sorted(c0) == [0, 4], "three messages and the tracker request of c0 reach the same instance"
