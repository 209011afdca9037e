"""`python -m voice gateway | kiosk | devices`: the hotline gateway, the kiosk, the sound devices."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import List, Optional

from onewindow.backend import ServiceBackend
from onewindow.channels.rasa_client import RasaClient
from onewindow.logs import configure
from voice.call import CallSession, CallSettings
from voice.gateway import Address, Gateway
from voice.kiosk import KioskError, KioskTransport, audio_devices, find_device
from voice.listening import Listener
from voice.recognition import Recogniser, SpeechUnavailable, shared_recogniser
from voice.synthesis import PromptCache, shared_synthesiser
from voice.voicing import Voicing


def speech_or_keypad() -> Optional[Recogniser]:
    """The vosk model, or None (keypad only) with the reason printed once."""
    try:
        return shared_recogniser()
    except SpeechUnavailable as error:
        print(f"voice: {error}; callers can use the keypad only", file=sys.stderr)
        return None


def rasa_client(channel: str) -> RasaClient:
    return RasaClient(os.environ.get("RASA_URL", "http://127.0.0.1:5005"), float(os.environ.get("RASA_TIMEOUT", "8")), channel)


async def serve_gateway() -> None:
    address = Address(
        os.environ.get("VOICE_HOST", "127.0.0.1"),
        int(os.environ.get("VOICE_PORT", "9092")),
        int(os.environ.get("VOICE_CONTROL_PORT", "9093")),
    )
    gateway = Gateway(speech_or_keypad(), PromptCache(shared_synthesiser()), ServiceBackend.from_url(), rasa_client("phone"))
    await gateway.start(address)
    await asyncio.Event().wait()


async def run_kiosk(device: Optional[str]) -> None:
    devices = audio_devices()
    microphone, speaker = find_device(device, "input", devices), find_device(device, "output", devices)
    recogniser, prompts = speech_or_keypad(), PromptCache(shared_synthesiser())
    backend, rasa = ServiceBackend.from_url(), rasa_client("kiosk")
    while True:  # one conversation after another, like calls
        transport = KioskTransport(microphone, speaker)
        listener = Listener(recogniser, CallSettings.end_silence_ms, CallSettings.max_utterance_ms)
        await CallSession(transport, listener, Voicing(prompts), rasa, backend).run()
        await asyncio.sleep(2)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voice", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("gateway", help="serve the hotline (AudioSocket) on VOICE_HOST:VOICE_PORT")
    kiosk = commands.add_parser("kiosk", help="the voice loop on a local microphone and speaker")
    kiosk.add_argument("--device", help="part of the sound device's name (see `devices`)")
    commands.add_parser("devices", help="list the sound devices")
    args = parser.parse_args(argv)
    configure()
    try:
        if args.command == "gateway":
            asyncio.run(serve_gateway())
        elif args.command == "kiosk":
            asyncio.run(run_kiosk(args.device))
        else:
            for index, device in enumerate(audio_devices()):
                print(f"{index}: {device['name']} (in {device['max_input_channels']}, out {device['max_output_channels']})")
            if not audio_devices():
                print("no audio devices found")
    except KioskError as error:
        print(f"kiosk: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
