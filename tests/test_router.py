"""The router: one queue in front of the Rasa instances, a conversation's messages on one instance at a time."""
from __future__ import annotations

import asyncio
import json
from typing import Dict, List, Tuple

from aiohttp import ClientSession, web

from onewindow.router import Dispatcher, make_app, sender_of
from onewindow.stack import free_port


def test_sender_comes_from_the_rest_body_or_the_conversation_path() -> None:
    assert sender_of("POST", "/webhooks/rest/webhook", json.dumps({"sender": "ana", "message": "hi"}).encode()) == "ana"
    assert sender_of("GET", "/conversations/ana%20b/tracker", b"") == "ana b"
    assert sender_of("POST", "/webhooks/rest/webhook", b"not json") is None
    assert sender_of("GET", "/status", b"") is None


def test_a_free_instance_takes_the_next_message_and_a_busy_conversation_stays_where_it_is() -> None:
    async def scenario() -> None:
        dispatcher = Dispatcher(["http://a", "http://b"], limit=1)
        first = await dispatcher.acquire("ana")
        second = await dispatcher.acquire("ben")
        assert {first, second} == {"http://a", "http://b"}, "both instances take work"
        again = await dispatcher.acquire("ana")  # ana's next message while ana's first is worked on
        assert again == first, "a conversation being worked on keeps its instance"
        dispatcher.release("ana", again)
        dispatcher.release("ana", first)
        dispatcher.release("ben", second)
        assert await dispatcher.acquire("ben") == second, "back to the instance that served it last"
        assert await dispatcher.acquire("ana") == first

    asyncio.run(scenario())


def test_waiting_messages_are_served_oldest_first_and_a_gone_caller_frees_its_turn() -> None:
    async def scenario() -> None:
        dispatcher = Dispatcher(["http://a"], limit=1)
        busy = await dispatcher.acquire("busy")
        served: List[str] = []

        async def message(sender: str) -> None:
            upstream = await dispatcher.acquire(sender)
            served.append(sender)
            await asyncio.sleep(0)
            dispatcher.release(sender, upstream)

        tasks = [asyncio.create_task(message(f"c{n}")) for n in range(4)]
        await asyncio.sleep(0.01)
        assert served == [], "nobody passes the message being worked on"
        tasks[1].cancel()  # this caller hung up while waiting
        dispatcher.release("busy", busy)
        await asyncio.gather(*tasks, return_exceptions=True)
        assert served == ["c0", "c2", "c3"]
        assert dispatcher.working == {"http://a": 0} and not dispatcher.serving and not dispatcher.waiting

    asyncio.run(scenario())


async def _exchange(messages_per_instance: int, down: Tuple[str, ...] = ()) -> Tuple[Dict[str, List[str]], List[int], int, List[str]]:
    """Two recording upstreams behind a real router, 20 conversations at once with 3 messages each.

    Returns who got which sender, the answer statuses, the most messages one upstream held at
    once, and any conversation seen on two upstreams at the same time.
    """
    seen: Dict[str, List[str]] = {"one": [], "two": []}
    at_once: Dict[str, int] = {"one": 0, "two": 0}
    most = [0]
    working_on: Dict[str, str] = {}
    overlaps: List[str] = []
    runners = []

    def upstream(name: str) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            sender = sender_of(request.method, request.path, body) or request.path
            seen[name].append(sender)
            if working_on.get(sender, name) != name:
                overlaps.append(sender)
            working_on[sender] = name
            at_once[name] += 1
            most[0] = max(most[0], at_once[name])
            await asyncio.sleep(0.005)
            at_once[name] -= 1
            working_on.pop(sender, None)
            return web.json_response([{"recipient_id": "x", "text": name}])

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    ports = []
    for name in ("one", "two"):
        port = free_port()
        ports.append(port)
        if name in down:  # nothing listens on its port
            continue
        runner = web.AppRunner(upstream(name))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    router = web.AppRunner(make_app([f"http://127.0.0.1:{p}" for p in ports], messages_per_instance))
    await router.setup()
    router_port = free_port()
    await web.TCPSite(router, "127.0.0.1", router_port).start()
    statuses = []
    async with ClientSession() as session:

        async def conversation(n: int) -> None:
            for _ in range(3):
                async with session.post(f"http://127.0.0.1:{router_port}/webhooks/rest/webhook", json={"sender": f"c{n}", "message": "hi"}) as answer:
                    statuses.append(answer.status)

        await asyncio.gather(*(conversation(n) for n in range(20)))
        async with session.get(f"http://127.0.0.1:{router_port}/conversations/c0/tracker") as answer:
            statuses.append(answer.status)
        async with session.get(f"http://127.0.0.1:{router_port}/status") as answer:
            statuses.append(answer.status)
    for runner in [router, *runners]:
        await runner.cleanup()
    return seen, statuses, most[0], overlaps


def test_router_spreads_the_load_and_gives_each_instance_at_most_its_share() -> None:
    seen, statuses, most, overlaps = asyncio.run(_exchange(messages_per_instance=2))
    assert set(statuses) == {200}
    conversations = [s for s in seen["one"] + seen["two"] if s.startswith("c")]
    assert len(conversations) == 61, "every message and the tracker request reach an instance"
    assert len(seen["one"]) > 10 and len(seen["two"]) > 10, "both instances get work"
    assert most == 2, "20 conversations at once, but never more than 2 messages on an instance"
    assert overlaps == [], "no conversation is worked on by two instances at once"
    assert "/status" in seen["one"], "requests without a conversation go to the first instance"


def test_an_instance_that_is_down_leaves_its_messages_to_the_other() -> None:
    seen, statuses, most, overlaps = asyncio.run(_exchange(messages_per_instance=2, down=("two",)))
    assert statuses[:-1] == [200] * 61, "every conversation message answered by the instance that is up"
    assert len([s for s in seen["one"] if s.startswith("c")]) == 61 and seen["two"] == [] and overlaps == []
    assert most == 2
    assert statuses[-1] == 200, "status goes to the first instance, which is up"
    _, statuses, _, _ = asyncio.run(_exchange(messages_per_instance=2, down=("one", "two")))
    assert set(statuses) == {502}, "nothing up: a clear 502, not a hang"
