"""Two hotline gateways side by side on one stack; one stopping (what SIGTERM does) apologises to its callers.

Real calls over AudioSocket sockets on loopback (tests/phone.py), the real gateway, speech synthesis and Rasa.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Iterator, Tuple

import pytest

from harness.stack import Stack, http_get
from tests.phone import PhoneCall, RunningGateway, ScriptedRecogniser, loudness, run, saved_transcript
from voice.call import CLOSING_APOLOGY

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def gateways(stack: Stack) -> Iterator[Tuple[RunningGateway, RunningGateway]]:
    first, second = RunningGateway(stack, ScriptedRecogniser()), RunningGateway(stack, ScriptedRecogniser())
    yield first, second
    for gateway in (first, second):
        gateway.stop()


def ready(gateway: RunningGateway) -> bool:
    return http_get(f"http://127.0.0.1:{gateway.address.control_port}/health/ready") is not None


def test_two_gateways_serve_calls_at_once(gateways: Tuple[RunningGateway, RunningGateway]) -> None:
    async def scenario() -> None:
        async with PhoneCall(gateways[0].address.port) as one, PhoneCall(gateways[1].address.port) as other:
            first, second = await asyncio.gather(one.bot_turn(), other.bot_turn())
            assert first.seconds > 1 and second.seconds > 1

    run(scenario)
    assert ready(gateways[0]) and ready(gateways[1])


def test_a_stopping_gateway_apologises_hangs_up_and_takes_no_new_call(
    gateways: Tuple[RunningGateway, RunningGateway],
) -> None:
    closing, other = gateways
    drained = threading.Event()

    async def scenario() -> PhoneCall:
        async with PhoneCall(closing.address.port) as call:
            await call.bot_turn()  # the greeting and the menu: the call now waits for the caller
            heard_before = len(call.received)
            future = asyncio.run_coroutine_threadsafe(closing.gateway.drain(10.0), closing.loop)
            future.add_done_callback(lambda _done: drained.set())
            await call.wait_hangup(timeout=30.0)
            apology = [frame for _, frame in call.received[heard_before:]]
            assert sum(1 for frame in apology if loudness(frame) > 200) > 50  # a second or more of speech
            with pytest.raises(OSError):  # no new call on the stopping gateway
                async with PhoneCall(closing.address.port) as late:
                    await late.bot_turn(timeout=3.0)
            async with PhoneCall(other.address.port) as moved:  # the dialplan's next target answers
                assert (await moved.bot_turn()).seconds > 1
            return call

    call = run(scenario)
    assert drained.wait(15.0)
    record = saved_transcript(closing, call)
    assert record.outcome == "gateway_closed"
    assert any(turn["text"] == CLOSING_APOLOGY for turn in record.turns)
    refused = http_get(f"http://127.0.0.1:{closing.address.control_port}/health/ready")
    assert refused is None  # 503 while draining
    assert json.loads(http_get(f"http://127.0.0.1:{other.address.control_port}/health/ready") or b"{}")["ready"]
