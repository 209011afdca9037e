"""`python -m voice gateway | kiosk | devices`: the hotline gateway, the kiosk, the sound devices.

The gateway's settings (declared in onewindow/settings/variables.py), all read here: VOICE_HOST,
VOICE_PORT, VOICE_CONTROL_PORT; RASA_URL and RASA_TIMEOUT (the REST channel); RASA_API_URL and
RASA_JWT_SECRET (Rasa's HTTP API, where turns the gateway answers itself are added to the
conversation); VOSK_MODEL_PATH and VOSK_MODEL_LANGUAGE (the speech model and, when its folder does
not tell, its language); ONEWINDOW_SILENCE_ACTION (person or hangup: what a silent caller gets
after one reprompt).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from functools import partial
from typing import List, Optional

from onewindow.backend import ServiceBackend
from onewindow.channels.rasa_client import RasaClient, append_events
from onewindow.infra.logs import configure
from onewindow.settings import rasa_jwt_secret
from onewindow.settings import variables as setting
from voice.call import CallSettings, LocalTurns
from voice.gateway import Address, CallFactory, Gateway
from voice.kiosk import KioskError, KioskTransport, audio_devices, find_device
from voice.recognition import LiveRecognition, Recogniser, SpeechUnavailable, model_path_from_environment, shared_recogniser
from voice.recognition_worker import PoolSettings, RecognitionPool
from voice.speech_language import Hearing, hearing
from voice.speech_synthesis import PromptCache, shared_synthesiser

CLOSE_CALLS_SECONDS = 15.0  # on SIGTERM, calls in progress get this long to hear the apology (supervisord waits 20 s)


def speech_or_keypad() -> Optional[Recogniser]:
    """The vosk model, or None (keypad only) with the reason printed once."""
    try:
        return shared_recogniser()
    except SpeechUnavailable as error:
        print(f"voice: {error}; callers can use the keypad only", file=sys.stderr)
        return None


def gateway_speech() -> Optional[RecognitionPool]:
    """Recognition in worker processes on the model at VOSK_MODEL_PATH (started with the gateway), or None (keypad only)."""
    path = model_path_from_environment()
    if path is None:
        print(
            "voice: speech recognition is off: set VOSK_MODEL_PATH (see scripts/get-vosk-model.sh); "
            "callers can use the keypad only",
            file=sys.stderr,
        )
        return None
    return RecognitionPool(path, PoolSettings.from_environment())


def speech_check(recogniser: Optional[LiveRecognition]) -> Hearing:
    """Speech only with a model in the assistant's language (VOSK_MODEL_LANGUAGE when its folder does not say)."""
    hears = hearing(recogniser, model_path_from_environment(), setting.VOSK_MODEL_LANGUAGE.read())
    if recogniser is not None and hears.reason:
        off = "" if hears.speech else "; speech recognition is off and callers can use the keypad only"
        print(f"voice: {hears.reason}{off}", file=sys.stderr)
    return hears


def call_settings() -> CallSettings:
    """ONEWINDOW_SILENCE_ACTION: "person" (default) puts a silent caller through after one reprompt, "hangup" says goodbye."""
    return CallSettings(silence_action=setting.ONEWINDOW_SILENCE_ACTION.read())


def conversation_turns() -> Optional[LocalTurns]:
    """Turns answered by the gateway (repeat, slower, more, a reprompt) added to the conversation through Rasa's
    HTTP API at RASA_API_URL (HAProxy's internal listener), signed with RASA_JWT_SECRET; None without the URL."""
    url = setting.RASA_API_URL.read()
    if not url:
        print("voice: RASA_API_URL is not set: repeats and reprompts are only in the call transcript", file=sys.stderr)
        return None
    return partial(append_events, url, rasa_jwt_secret())


def rasa_client(channel: str) -> RasaClient:
    return RasaClient(setting.RASA_URL.read(), setting.RASA_TIMEOUT.read(), channel)


async def serve_gateway() -> None:
    address = Address(
        setting.VOICE_HOST.read(),
        setting.VOICE_PORT.read(),
        setting.VOICE_CONTROL_PORT.read(),
    )
    recogniser = gateway_speech()
    gateway = Gateway(
        recogniser,
        PromptCache(shared_synthesiser()),
        ServiceBackend.from_url(),
        rasa_client("phone"),
        call_settings(),
        speech_check(recogniser),
        conversation_turns(),
    )
    await gateway.start(address)
    stopping = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stopping.set)
    await stopping.wait()
    await gateway.drain(CLOSE_CALLS_SECONDS)
    await gateway.stop()


async def run_kiosk(device: Optional[str]) -> None:
    devices = audio_devices()
    microphone, speaker = find_device(device, "input", devices), find_device(device, "output", devices)
    hears, prompts = speech_check(speech_or_keypad()), PromptCache(shared_synthesiser())
    backend, rasa, settings, turns = ServiceBackend.from_url(), rasa_client("kiosk"), call_settings(), conversation_turns()
    while True:  # one conversation after another, like calls
        transport = KioskTransport(microphone, speaker)
        await CallFactory(hears.recogniser, prompts, rasa, backend, settings, hears.speech, turns).call(transport).run()
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
