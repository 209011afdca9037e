"""The router: one queue in front of the Rasa instances, a conversation's messages on one instance at a time;
the channels on the public listener, the HTTP API (with a token) only on the internal one."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Dict, List, Tuple

from aiohttp import ClientSession, web
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from yarl import URL

from harness.stack import free_port
from onewindow.infra.api_auth import api_token, authorization
from onewindow.infra.router import Dispatcher, is_channel_path, make_apps, sender_of

SECRET = secrets.token_urlsafe(32)


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


async def _exchange(
    messages_per_instance: int, down: Tuple[str, ...] = ()
) -> Tuple[Dict[str, List[str]], List[int], int, List[str]]:
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
    public, internal = await start_router([f"http://127.0.0.1:{p}" for p in ports], messages_per_instance)
    statuses = []
    async with ClientSession() as session:

        async def conversation(n: int) -> None:
            for _ in range(3):
                async with session.post(
                    f"{public.url}/webhooks/rest/webhook", json={"sender": f"c{n}", "message": "hi"}
                ) as answer:
                    statuses.append(answer.status)

        await asyncio.gather(*(conversation(n) for n in range(20)))
        async with session.get(f"{internal.url}/conversations/c0/tracker", headers=authorization(SECRET)) as answer:
            statuses.append(answer.status)
        async with session.get(f"{internal.url}/status", headers=authorization(SECRET)) as answer:
            statuses.append(answer.status)
    for runner in [public.runner, internal.runner, *runners]:
        await runner.cleanup()
    return seen, statuses, most[0], overlaps


class Listener:
    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner, self.url = runner, f"http://127.0.0.1:{port}"


async def start_router(upstreams: List[str], messages_per_instance: int = 2) -> Tuple[Listener, Listener]:
    """The router's public and internal listeners on free loopback ports."""
    listeners = []
    for app in make_apps(upstreams, SECRET, messages_per_instance):
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        listeners.append(Listener(runner, port))
    return listeners[0], listeners[1]


async def _recorded(requests: List[Tuple[str, str, Dict[str, str]]]) -> Tuple[List[Tuple[str, int]], List[str]]:
    """Send (listener, path, headers) requests through a real router to a recording upstream.

    Returns each answer's (body, status) and the raw paths the upstream received.
    """
    received: List[str] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(request.raw_path)
        return web.json_response({"upstream": True})

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", handle)
    upstream = web.AppRunner(upstream_app)
    await upstream.setup()
    upstream_port = free_port()
    await web.TCPSite(upstream, "127.0.0.1", upstream_port).start()
    public, internal = await start_router([f"http://127.0.0.1:{upstream_port}"])
    answers = []
    async with ClientSession() as session:
        for listener, path, headers in requests:
            url = URL((public if listener == "public" else internal).url + path, encoded=True)
            async with session.get(url, headers=headers) as answer:
                answers.append((await answer.text(), answer.status))
    for runner in (public.runner, internal.runner, upstream):
        await runner.cleanup()
    return answers, received


API_PATHS = [
    "/status",
    "/version",
    "/",
    "/conversations/telegram:42/tracker",
    "/conversations/x/tracker/events",
    "/model",
    "/domain",
    "/auth",
    "/webhooks/../conversations/x/tracker",
    "/webhooks/rest/../../model",
    "/webhooks/rest/%2e%2e/%2e%2e/status",
    "/webhooks%2frest/webhook",
    "//conversations/x/tracker",
    "/health/../status",
]


def test_the_public_listener_forwards_only_channel_paths_and_answers_health_itself() -> None:
    answers, received = asyncio.run(
        _recorded(
            [("public", path, authorization(SECRET)) for path in API_PATHS]
            + [("public", "/webhooks/rest/webhook", {}), ("public", "/webhooks/rest/", {}), ("public", "/health", {})]
        )
    )
    assert [status for _, status in answers[: len(API_PATHS)]] == [404] * len(API_PATHS), "a token does not open the public port"
    assert [status for _, status in answers[len(API_PATHS) :]] == [200, 200, 200]
    assert json.loads(answers[-1][0]) == {"status": "ok"}
    assert received == ["/webhooks/rest/webhook", "/webhooks/rest/"], "only the channel paths reach Rasa, as sent"


def test_the_internal_listener_forwards_only_requests_with_an_admin_token() -> None:
    refused = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {api_token('x' * 32)}"},
        {"Authorization": f"Bearer {api_token(SECRET, lifetime_seconds=-60)}"},
        {"Authorization": f"Bearer {api_token(SECRET, role='user')}"},
        {"Authorization": api_token(SECRET)},
    ]
    answers, received = asyncio.run(
        _recorded(
            [("internal", "/conversations/ana/tracker", headers) for headers in refused]
            + [("internal", "/conversations/ana/tracker", authorization(SECRET))]
        )
    )
    assert [status for _, status in answers] == [401, 401, 401, 401, 403, 401, 200]
    assert received == ["/conversations/ana/tracker"]


PREFIXES = ["", "/webhooks", "/webhooks/rest", "/webhooks/rest/webhook", "/conversations/telegram:42", "/health"]
TAIL = st.text(st.sampled_from(list("abXZ09_-.%2e/:~?=&")), max_size=24)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PREFIXES), TAIL)
def test_generated_paths_reach_rasa_only_when_they_are_plain_channel_paths(prefix: str, tail: str) -> None:
    path = "/" + (prefix + tail).lstrip("/")
    assume(not path.endswith("?"))  # the client drops an empty query
    answers, received = asyncio.run(_recorded([("public", path, {})]))
    ((_, status),) = answers
    if is_channel_path(path):
        plain = path.partition("?")[0]
        assert [got.partition("?")[0] for got in received] == [plain] and status == 200, "forwarded as sent"
        assert plain.startswith("/webhooks/") and ".." not in plain and "%" not in plain
    elif path == "/health":
        assert received == [] and status == 200
    else:
        assert received == [] and status in (400, 404), (path, status)


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
