"""Kiosk mode: the voice loop on local audio devices. This machine has no sound card, so the tests
check device selection on described devices and the clear error when there are none."""
from __future__ import annotations

import subprocess
import sys

import pytest

from voice.kiosk import KioskError, audio_devices, find_device

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
