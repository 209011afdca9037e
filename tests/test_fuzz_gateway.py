"""AudioSocket connections, generated, into the running hotline gateway (`python -m voice gateway`, keypad only, on the
stack) over real TCP sockets: one to three lines at once per case — openings that are no call id, truncated headers,
wrong kinds, lengths that lie, oversize audio, DTMF floods, a hang-up mid-audio, two lines with the same call id while
the first is live — cut into pieces, kept live with silence, then half-closed, closed or reset.

What must hold: a caller in another call meanwhile is still served (it keeps hearing the gateway, and its line ends
only when it hangs up); the gateway closes every half-closed line itself (an end of stream, no reset); afterwards no
call is left open in the gateway (/health), it is ready, a new call is answered, and its log has no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.stack import Stack, free_port, http_get
from onewindow.settings import PROJECT_ROOT
from tests.fuzz_strategies import Line, fuzz_settings, lines
from tests.phone import PhoneCall, wait_until
from voice.audiosocket import Kind, encode
from voice.phone_wording import REPEAT_KEY
from voice.transport import FRAME_BYTES, FRAME_SECONDS

pytestmark = pytest.mark.stack
CLOSE_SECONDS = 60.0  # a half-closed line the gateway has not closed by then counts as left open
SILENCE = encode(Kind.AUDIO, bytes(FRAME_BYTES))


class GatewayProcess:
    """`python -m voice gateway` on free ports against the stack, its log in `log`."""

    def __init__(self, stack: Stack, log: Path) -> None:
        self.port, self.control = free_port(), free_port()
        self.log = log
        env = {name: value for name, value in os.environ.items() if name != "VOSK_MODEL_PATH"}  # keypad only
        env.update(
            {
                "VOICE_HOST": "127.0.0.1",
                "VOICE_PORT": str(self.port),
                "VOICE_CONTROL_PORT": str(self.control),
                "DATABASE_URL": stack.database_url,
                "RASA_URL": f"http://127.0.0.1:{stack.rasa_port}",
                "RASA_API_URL": stack.api_url,
                **stack.api_env(),
            }
        )
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "voice", "gateway"], cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until(lambda: self.process.poll() is not None or http_get(self.url("/health/ready")), timeout=120)
        assert self.process.poll() is None, self.log.read_text()[-3000:]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.control}{path}"

    def open_calls(self) -> int:
        return int(json.loads(http_get(self.url("/health")) or b'{"calls": -1}')["calls"])

    def tracebacks(self) -> List[str]:
        """Log lines with a traceback: JSON events carrying one, and anything printed outside the JSON log."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict) and (entry.get("traceback") or entry.get("level") in ("error", "critical")):
                found.append(line)
            elif not isinstance(entry, dict) and ("Traceback" in line or "Error" in line or "exception" in line):
                found.append(line)
        return found


@pytest.fixture(scope="module")
def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    running = GatewayProcess(stack, tmp_path_factory.mktemp("fuzz-gateway") / "voice.log")
    yield running
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=60) == 0, running.log.read_text()[-3000:]


async def play(port: int, line: Line, call_ids: List[bytes]) -> None:
    """One line, as its plan says; a half-closed one must then be closed by the gateway (an end of stream, no reset)."""
    await asyncio.sleep(line.delay)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    draining = asyncio.create_task(reader.read(-1))  # what the gateway plays, read until it closes the line
    data = (encode(Kind.ID, call_ids[line.call]) if line.call is not None else line.opening) + line.body
    try:
        for start, stop in zip((0, *line.cuts), (*line.cuts, len(data))):
            writer.write(data[start:stop])
            await writer.drain()
            await asyncio.sleep(0.01)
        for _ in range(int(line.live / FRAME_SECONDS)):
            writer.write(SILENCE)
            await writer.drain()
            await asyncio.sleep(FRAME_SECONDS)
    except ConnectionError:
        pass  # the gateway ended the call first (a protocol error, a hang-up frame)
    if line.end == "eof":
        with contextlib.suppress(OSError, RuntimeError):  # the gateway has closed it already (uvloop: RuntimeError)
            writer.write_eof()
        with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread: the kernel resets the line
            await asyncio.wait_for(draining, CLOSE_SECONDS)  # a line the gateway leaves open times out here
    elif line.end == "reset":
        sock = writer.get_extra_info("socket")  # None once the gateway has closed the line
        with contextlib.suppress(OSError):
            if sock is not None and not writer.is_closing():
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    draining.cancel()
    await asyncio.gather(draining, return_exceptions=True)


async def keep_talking(caller: PhoneCall) -> None:
    """The other caller asks for a repeat every few seconds (so that no silence timeout ends the call meanwhile)."""
    while True:
        await asyncio.sleep(3.0)
        await caller.press(REPEAT_KEY)


async def calls_beside_a_caller(port: int, plan: List[Line]) -> None:
    """The plan's lines while another caller is on the line; that caller must still be answered afterwards."""
    call_ids = [uuid.uuid4().bytes for _ in range(2)]
    async with PhoneCall(port) as caller:
        await caller.bot_started()
        talking = asyncio.create_task(keep_talking(caller))
        try:
            await asyncio.gather(*(play(port, line, call_ids) for line in plan))
        finally:
            talking.cancel()
            await asyncio.gather(talking, return_exceptions=True)
        heard = len(caller.received)
        await caller.press(REPEAT_KEY)
        await caller.bot_started(timeout=30.0, listen=0.0)  # the repeat is said: this call was served throughout
        assert not caller.hung_up_by_gateway and len(caller.received) > heard
        await caller.hang_up()
        await caller.wait_hangup(timeout=CLOSE_SECONDS)


@fuzz_settings(25)
@given(plan=st.lists(lines, min_size=1, max_size=3))
@example(  # the same call id on a second line while the first is live
    plan=[Line(0, b"", SILENCE, (), 1.0, "eof", 0.0), Line(0, b"", SILENCE, (), 0.0, "eof", 0.3)]
)
@example(plan=[Line(0, b"", encode(Kind.DTMF, b"1") * 300, (), 0.0, "eof", 0.0)])  # a DTMF flood, then gone
@example(plan=[Line(None, b"\x10\xff", b"", (), 0.0, "eof", 0.0)])  # a truncated header, nothing more
@example(plan=[Line(1, b"", bytes([Kind.AUDIO]) + b"\xff\xff" + bytes(100), (), 0.0, "reset", 0.0)])  # a lying length
def test_generated_lines_leave_the_gateway_serving_and_every_line_closed(gateway: GatewayProcess, plan: List[Line]) -> None:
    asyncio.run(calls_beside_a_caller(gateway.port, plan))
    wait_until(lambda: gateway.open_calls() == 0, timeout=CLOSE_SECONDS)  # every call has ended, none left in the table
    assert gateway.process.poll() is None and http_get(gateway.url("/health/ready"))
    assert gateway.tracebacks() == []
