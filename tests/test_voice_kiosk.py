"""Kiosk mode: the voice loop on local audio devices. This machine has no sound card, so the tests
check device selection on described devices, the clear error when there are none, and a whole
kiosk conversation through PortAudio on an ALSA `file` device whose microphone and speaker are
named pipes the test plays and listens to in real time."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from harness.stack import Stack
from tests.phone import SILENCE, loudness, recorded_speech
from voice.kiosk import KioskError, audio_devices, find_device
from voice.transport import FRAME_BYTES, FRAME_SECONDS, RATE

DEVICES = [
    {"name": "HDA Intel PCH: ALC3246 Analog", "max_input_channels": 2, "max_output_channels": 2},
    {"name": "USB Audio Headset", "max_input_channels": 1, "max_output_channels": 0},
    {"name": "HDMI 0", "max_input_channels": 0, "max_output_channels": 8},
]


def test_a_device_is_found_by_part_of_its_name_and_direction() -> None:
    assert find_device("usb", "input", DEVICES) == 1
    assert find_device("hdmi", "output", DEVICES) == 2
    assert find_device(None, "output", DEVICES) == 0


def test_unknown_names_and_missing_devices_give_clear_errors() -> None:
    with pytest.raises(KioskError, match="no output device named 'usb'; there are: HDA Intel PCH: ALC3246 Analog, HDMI 0"):
        find_device("usb", "output", DEVICES)
    with pytest.raises(KioskError, match="no audio input device found: connect a microphone"):
        find_device(None, "input", [])


def test_the_kiosk_on_a_machine_without_sound_devices_stops_with_a_clear_message() -> None:
    if audio_devices():
        pytest.skip("this machine has sound devices")
    done = subprocess.run([sys.executable, "-m", "voice", "kiosk"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "kiosk: no audio input device found" in done.stderr
    listed = subprocess.run([sys.executable, "-m", "voice", "devices"], capture_output=True, text=True, timeout=120)
    assert "no audio devices found" in listed.stdout


# --- a whole conversation through PortAudio, on an ALSA device made of two named pipes ----------

ASOUNDRC = """pcm.kiosk {{
    type asym
    playback.pcm {{ type file; slave.pcm "null"; file "{speaker}"; format "raw" }}
    capture.pcm {{ type file; slave.pcm "null"; file "/dev/null"; infile "{microphone}"; format "raw" }}
    hint {{ show on description "OneWindow test kiosk" }}
}}
"""
KIOSK = """import voice.__main__ as kiosk
from tests.phone import ScriptedRecogniser
kiosk.speech_or_keypad = lambda: ScriptedRecogniser("repeat")
kiosk.main(["kiosk", "--device", "kiosk"])
"""


class PipeKiosk:
    """`python -m voice kiosk` on an ALSA `file` device: the test is the person at the terminal.

    The `null` slave has no clock, so the microphone pipe paces the audio callback: the test keeps at
    most two 20 ms frames in it. The test holds both ends of both pipes (O_RDWR), so nothing blocks
    when the kiosk opens, probes or reopens the device."""

    def __init__(self, folder: Path, stack: Stack) -> None:
        self.microphone, self.speaker = folder / "microphone.raw", folder / "speaker.raw"
        for pipe in (self.microphone, self.speaker):
            os.mkfifo(pipe)
        (folder / "asoundrc").write_text(ASOUNDRC.format(microphone=self.microphone, speaker=self.speaker))
        self.heard: List[Tuple[float, bytes]] = []  # (arrival, 320 bytes) of what the speaker played
        self._loud: List[int] = []  # indexes in `heard` of frames with speech in them
        self._to_say: List[bytes] = []
        self._stop = threading.Event()
        self._mic = os.open(self.microphone, os.O_RDWR | os.O_NONBLOCK)
        self._out = os.open(self.speaker, os.O_RDWR)
        self._threads = [threading.Thread(target=self._talk, daemon=True), threading.Thread(target=self._listen, daemon=True)]
        for thread in self._threads:
            thread.start()
        env = {
            **os.environ,
            "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{folder / 'asoundrc'}",
            "DATABASE_URL": stack.database_url,
            "RASA_URL": f"http://127.0.0.1:{stack.rasa_port}",
            "PYTHONPATH": str(Path(__file__).parents[1]),
        }
        self.log = folder / "kiosk.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen([sys.executable, "-c", KIOSK], env=env, stdout=subprocess.DEVNULL, stderr=log)

    def _queued(self) -> int:
        """Bytes in the microphone pipe that PortAudio has not read yet."""
        return int.from_bytes(fcntl.ioctl(self._mic, termios.FIONREAD, bytes(4)), "little")

    def _talk(self) -> None:
        """The microphone: a 20 ms frame whenever the pipe runs low, silence when there is nothing to say."""
        due = time.monotonic()
        while not self._stop.is_set():
            if self._queued() < 2 * FRAME_BYTES:
                os.write(self._mic, self._to_say.pop(0) if self._to_say else SILENCE)
            due += FRAME_SECONDS
            time.sleep(max(0.0, due - time.monotonic()))

    def _listen(self) -> None:
        """The speaker: every frame PortAudio plays, with its arrival time."""
        pending = b""
        while not self._stop.is_set():
            if select.select([self._out], [], [], 0.1)[0]:
                pending += os.read(self._out, 65536)
                while len(pending) >= FRAME_BYTES:
                    if loudness(pending[:FRAME_BYTES]) > 300:
                        self._loud.append(len(self.heard))
                    self.heard.append((time.monotonic(), pending[:FRAME_BYTES]))
                    pending = pending[FRAME_BYTES:]

    def say(self, pcm: bytes) -> None:
        """Speak into the microphone (in real time, from the next frame on)."""
        self._to_say.extend(pcm[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(pcm), FRAME_BYTES))

    def next_turn(self, timeout: float = 20.0, gap: float = 0.6) -> List[Tuple[float, bytes]]:
        """The kiosk's next stretch of speech: from its first loud frame to `gap` seconds of silence."""
        start, deadline = len(self.heard), time.monotonic() + timeout
        while not self._loud_since(start):
            self._check_running(deadline)
            time.sleep(0.05)
        first = self._loud_since(start)[0]
        while time.monotonic() - self.heard[self._loud_since(first)[-1]][0] < gap:
            self._check_running(deadline)
            time.sleep(0.05)
        return self.heard[first : self._loud_since(first)[-1] + 1]

    def _loud_since(self, start: int) -> List[int]:
        """Indexes of the loud frames from `start` on."""
        return [i for i in self._loud if i >= start]

    def _check_running(self, deadline: float) -> None:
        if self.process.poll() is not None:
            error = self.log.read_text()
            if "no audio" in error or "no input device named" in error:
                pytest.skip(f"ALSA's file plugin gives PortAudio no device here: {error.strip()}")
            raise AssertionError(f"the kiosk stopped: {error[-2000:]}")
        assert time.monotonic() < deadline, "the kiosk said nothing"

    def stop(self) -> None:
        """Ctrl+C, as at a real terminal, then stop listening and talking."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        os.close(self._mic)
        os.close(self._out)


@pytest.fixture
def kiosk(tmp_path: Path, stack: Stack) -> Iterator[PipeKiosk]:
    """The kiosk talking to the real assistant (it asks for the main menu as it starts)."""
    if not Path("/usr/share/alsa/alsa.conf").exists():
        pytest.skip("no ALSA configuration (/usr/share/alsa/alsa.conf) for the file plugin device")
    running = PipeKiosk(tmp_path, stack)
    yield running
    running.stop()


def seconds(turn: List[Tuple[float, bytes]]) -> float:
    return len(turn) * FRAME_BYTES / (2 * RATE)


def test_the_kiosk_greets_out_of_the_speaker_in_real_time_and_answers_what_it_hears(kiosk: PipeKiosk) -> None:
    greeting = kiosk.next_turn(timeout=60.0, gap=2.0)  # the cached greeting, then the assistant's main menu
    assert seconds(greeting) > 3 and max(loudness(frame) for _, frame in greeting) > 500
    played_in = greeting[-1][0] - greeting[0][0]
    assert 0.9 < played_in / (seconds(greeting) - FRAME_SECONDS) < 1.1  # the microphone pipe paces PortAudio
    kiosk.say(recorded_speech("auth-thankyou"))  # real speech the VAD must find; the script hears "repeat"
    repeated = kiosk.next_turn(timeout=60.0, gap=2.0)  # the menu again
    assert 1.0 < seconds(repeated) <= seconds(greeting) + 0.5
