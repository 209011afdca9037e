"""Turn-taking and keypad for the phone line, on real audio: keypad digits, end of utterance and barge-in.

Human speech is Debian's `asterisk-core-sounds-en-wav`: recorded 8 kHz English telephone prompts.
Keypad digits are synthetic tones (voice.dtmf.tone), clean and in white noise at 20 dB SNR; no speech, recorded
or from espeak-ng, may give a digit. Run with -s to see the measured timings; the detectors' CPU time per frame
is measured by `python -m bench.voice_load` (step 0).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy
import pytest
import soundfile

from voice.audio import read_wav, resample
from voice.dtmf import COLUMNS, DIGITS, ROWS, DtmfDetector, silence, tone
from voice.vad import FRAME_MS, BargeIn, SpeechStarted, UtteranceDetector, UtteranceEnded

SOUNDS = Path("/usr/share/asterisk/sounds/en")
FRAME = 320  # bytes in 20 ms at 8 kHz
Event = Union[SpeechStarted, UtteranceEnded]

needs_sounds = pytest.mark.skipif(
    not SOUNDS.is_dir(), reason="needs Debian's asterisk-core-sounds-en-wav (apt-get install asterisk-core-sounds-en-wav)"
)


def frames(audio: bytes) -> Iterator[bytes]:
    """`audio` as 20 ms frames, the last one padded with silence."""
    audio += bytes(-len(audio) % FRAME)
    return (audio[start : start + FRAME] for start in range(0, len(audio), FRAME))


def prompt(name: str) -> bytes:
    """A recorded asterisk prompt as 8 kHz s16le."""
    samples, rate = soundfile.read(SOUNDS / f"{name}.wav", dtype="int16")
    assert rate == 8000 and samples.ndim == 1
    return samples.astype("<i2").tobytes()


def speech_bounds(audio: bytes) -> Tuple[int, int]:
    """Where speech starts and ends in a clean recording (ms): 10 ms frames within 40 dB of the loudest."""
    samples = numpy.frombuffer(audio, dtype="<i2").astype(float)
    count = len(samples) // 80
    level = numpy.sqrt((samples[: count * 80].reshape(count, 80) ** 2).mean(axis=1))
    loud = numpy.nonzero(level >= level.max() / 100)[0]
    return int(loud[0]) * 10, int(loud[-1] + 1) * 10


def with_noise(audio: bytes, rms: float, seed: int) -> bytes:
    """`audio` plus white noise of `rms` (in 16-bit units)."""
    samples = numpy.frombuffer(audio, dtype="<i2").astype(float)
    noisy = samples + numpy.random.default_rng(seed).normal(0, rms, len(samples))
    return numpy.clip(numpy.round(noisy), -32768, 32767).astype("<i2").tobytes()


def keyed(audio: bytes, chunk: int = FRAME) -> str:
    """The digits a fresh DtmfDetector reads from `audio` fed in pieces of `chunk` bytes."""
    detector, digits = DtmfDetector(), []
    for start in range(0, len(audio), chunk):
        digits.append(detector.feed(audio[start : start + chunk]) or "")
    while digit := detector.feed(b""):
        digits.append(digit)
    return "".join(digits)


def events(detector: UtteranceDetector, audio: bytes) -> List[Event]:
    """Every event a detector gives for `audio`, frame by frame."""
    return [event for event in map(detector.feed, frames(audio)) if event is not None]


def barge_in_ms(barge_in: BargeIn, audio: bytes) -> List[int]:
    """Stream times (end of the frame, ms) where barge-in was confirmed."""
    return [(index + 1) * FRAME_MS for index, hit in enumerate(map(barge_in.feed, frames(audio))) if hit]


# Keypad tones: ITU-T Q.24 style -- at least 40 ms of tone, 8/4 dB twist, speech must not trigger.

TONE_POWER = 2 * (0.3 / 2 * 32767) ** 2 / 2  # tone(level=0.3): two sines of amplitude 0.15 full scale


@pytest.mark.parametrize("ms", [40, 60, 100])
@pytest.mark.parametrize("snr_db", [None, 20])
def test_every_digit_is_read_once(ms: int, snr_db: Optional[int]) -> None:
    for index, digit in enumerate(DIGITS):
        audio = silence(200) + bytes(2 * 13 * index) + tone(digit, ms) + silence(200)  # a different alignment each
        if snr_db is not None:
            audio = with_noise(audio, (TONE_POWER / 10 ** (snr_db / 10)) ** 0.5, seed=index)
        assert keyed(audio) == digit, (digit, ms, snr_db)


def test_a_30_ms_tone_is_too_short() -> None:
    for digit in DIGITS:
        for offset in (0, 41, 97, 160):
            assert keyed(silence(100) + bytes(2 * offset) + tone(digit, 30) + silence(100)) == "", (digit, offset)


def test_a_held_key_is_one_digit() -> None:
    assert keyed(silence(100) + tone("7", 1000) + silence(200)) == "7"


def test_the_same_digit_twice_needs_a_gap() -> None:
    assert keyed(silence(100) + tone("5", 100) + silence(50) + tone("5", 100) + silence(100)) == "55"
    assert keyed(silence(100) + tone("5", 100) + silence(10) + tone("5", 100) + silence(100)) == "5"  # a drop-out


@pytest.mark.parametrize("on_ms, off_ms", [(100, 100), (60, 50)])
def test_a_phone_number_is_read_back_exactly(on_ms: int, off_ms: int) -> None:
    number = "0412345678#"
    audio = silence(150) + b"".join(tone(digit, on_ms) + silence(off_ms) for digit in number)
    assert keyed(audio) == number
    assert keyed(with_noise(audio, (TONE_POWER / 100) ** 0.5, seed=7)) == number
    # The block grid runs from the first sample, however the audio is cut up: odd pieces and one chunk agree.
    assert keyed(audio, chunk=2 * 173) == number
    assert keyed(audio, chunk=len(audio)) == number


def test_level_and_twist_limits() -> None:
    def pair(digit: str, row_level: float, column_level: float) -> bytes:
        index = DIGITS.index(digit)
        time_s = numpy.arange(800) / 8000
        wave = row_level * numpy.sin(2 * numpy.pi * ROWS[index // 4] * time_s) + column_level * numpy.sin(
            2 * numpy.pi * COLUMNS[index % 4] * time_s
        )
        return silence(50) + numpy.round(wave * 32767).astype("<i2").tobytes() + silence(50)

    assert keyed(pair("8", 0.15, 0.15 * 10 ** (-6 / 20))) == "8"  # normal twist 6 dB: accepted
    assert keyed(pair("8", 0.15, 0.15 * 10 ** (-10 / 20))) == ""  # 10 dB: rejected
    assert keyed(pair("8", 0.15 * 10 ** (-3 / 20), 0.15)) == "8"  # reverse twist 3 dB: accepted
    assert keyed(pair("8", 0.15 * 10 ** (-6 / 20), 0.15)) == ""  # 6 dB: rejected
    assert keyed(pair("8", 0.15, 0.0)) == ""  # one tone alone is not a digit
    assert keyed(pair("8", 0.02, 0.02)) == "8"  # -34 dBFS a tone
    assert keyed(pair("8", 0.005, 0.005)) == ""  # -46 dBFS: below the floor


@needs_sounds
def test_no_digit_in_any_recorded_prompt() -> None:
    files = sorted(SOUNDS.glob("*.wav"))
    assert len(files) >= 300
    seconds, hits, started = 0.0, [], time.process_time()
    for path in files:  # all of them; 1 s pieces give the same blocks as 20 ms frames, only faster
        audio = prompt(path.stem)
        seconds += len(audio) / 16000
        hits += [(path.name, digit) for digit in keyed(audio, chunk=16000)]
    spent = time.process_time() - started
    print(f"\nDTMF over {len(files)} prompts, {seconds:.0f} s of speech: {len(hits)} false digits, CPU {spent:.1f} s")
    assert hits == []


def test_no_digit_in_espeak_speech(tmp_path: Path) -> None:
    if not shutil.which("espeak-ng"):
        pytest.skip("needs espeak-ng")
    text = (
        "Hello, I would like to book an appointment for a passport renewal on Monday at ten in the morning. "
        "My phone number is zero four one two, three four five, six seven eight. Oooh. Eeee. Mmm hmm. Yes."
    )
    seconds, hits = 0.0, []
    for voice, options in [("en-us", []), ("en-gb+f3", ["-p", "80"]), ("en-gb-scotland+f4", ["-p", "99", "-s", "120"])]:
        wav = tmp_path / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, *options, "-w", str(wav), text], check=True)
        audio = resample(read_wav(wav.read_bytes()), 8000).to_bytes()
        seconds += len(audio) / 16000
        hits += [(voice, digit) for digit in keyed(audio)]
    print(f"\nDTMF over {seconds:.0f} s of espeak-ng English: {len(hits)} false digits")
    assert hits == []


@needs_sounds
def test_digits_are_read_over_speech_pauses() -> None:
    speech = prompt("vm-intro")
    audio = speech + silence(100) + tone("4", 80) + silence(100) + speech + tone("#", 100) + silence(100)
    assert keyed(audio) == "4#"


# End of utterance.


@needs_sounds
@pytest.mark.parametrize("rms", [0, 100])  # digital silence, and white noise at -50 dBFS
def test_one_prompt_is_one_utterance(rms: float) -> None:
    speech = prompt("vm-intro")  # 5.7 s: "Please leave your message after the tone..."
    onset, end = speech_bounds(speech)
    lead = 500
    stream = with_noise(silence(lead) + speech + silence(1000), rms, seed=3)
    found = events(UtteranceDetector(), stream)
    assert [type(event) for event in found] == [SpeechStarted, UtteranceEnded]
    started, ended = found
    assert isinstance(started, SpeechStarted) and isinstance(ended, UtteranceEnded)
    print(f"\nspeech from {lead + onset} to {lead + end} ms; detected {started.at_ms} to {ended.speech_ended_at_ms} ms")
    assert abs(started.at_ms - (lead + onset)) <= 100
    assert abs(ended.speech_ended_at_ms - (lead + end)) <= 100
    assert ended.detected_at_ms - ended.speech_ended_at_ms == 600
    assert not ended.truncated
    # The audio is the stream from 200 ms before speech began to the end of speech, so it holds the whole prompt.
    first = (started.at_ms - 200) * 16
    assert ended.audio == stream[first : ended.speech_ended_at_ms * 16]
    assert first <= (lead + onset) * 16 and ended.speech_ended_at_ms >= lead + end - 40
    assert "audio" not in repr(ended)  # the caller's voice stays out of logs


@needs_sounds
def test_a_short_pause_continues_the_utterance_and_a_long_one_ends_it() -> None:
    first, second = prompt("please-try-again"), prompt("vm-goodbye")
    short = events(UtteranceDetector(), silence(300) + first + silence(300) + second + silence(1000))
    assert [type(event) for event in short] == [SpeechStarted, UtteranceEnded]
    assert isinstance(short[1], UtteranceEnded) and len(short[1].audio) >= len(first) + len(second)
    long = events(UtteranceDetector(), silence(300) + first + silence(1200) + second + silence(1000))
    assert [type(event) for event in long] == [SpeechStarted, UtteranceEnded] * 2


def test_silence_and_low_noise_are_no_utterance() -> None:
    assert events(UtteranceDetector(), silence(10000)) == []
    for rms in (30, 100, 300):  # -61, -50 and -41 dBFS white noise
        assert events(UtteranceDetector(), with_noise(silence(10000), rms, seed=rms)) == [], rms


def burst(ms: int, offset: int, rms: float) -> bytes:
    """Loud noise (-15 dBFS) for `ms`, from `offset` samples into a frame, in background noise of `rms`."""
    loud = with_noise(silence(ms), 6000, seed=ms + offset)
    return with_noise(silence(500) + bytes(2 * offset) + loud + silence(1000), rms, seed=offset)


def test_a_click_or_a_short_burst_is_not_speech() -> None:
    click = numpy.zeros(8000)
    click[4000:4040] = 25000 * numpy.exp(-numpy.arange(40) / 10) * numpy.sign(numpy.sin(numpy.arange(40) * 2.1))
    assert events(UtteranceDetector(), click.astype("<i2").tobytes()) == []
    for rms in (0, 100, 300):  # 80 ms touches at most 5 frames, under min_speech_ms (6 frames)
        for offset in (0, 80):
            assert events(UtteranceDetector(), burst(80, offset, rms)) == [], (rms, offset)
            assert [type(event) for event in events(UtteranceDetector(), burst(160, offset, rms))] == [
                SpeechStarted,
                UtteranceEnded,
            ]  # longer than min_speech_ms: speech, as a short "no" would be


def test_a_keypad_tone_is_not_speech() -> None:
    for digit in DIGITS:  # webrtcvad calls every keypad tone speech; the detectors do not
        for ms in (100, 1000):
            for rms in (0, 100):
                audio = with_noise(silence(300) + tone(digit, ms) + silence(700), rms, seed=ms)
                assert events(UtteranceDetector(), audio) == [], (digit, ms, rms)
                assert barge_in_ms(BargeIn(), audio) == [], (digit, ms, rms)


@needs_sounds
def test_speech_right_after_a_keypad_tone_is_heard() -> None:
    speech = prompt("vm-goodbye")
    _, end = speech_bounds(speech)
    found = events(UtteranceDetector(), silence(300) + tone("5", 200) + speech + silence(1000))
    assert [type(event) for event in found] == [SpeechStarted, UtteranceEnded]
    assert isinstance(found[1], UtteranceEnded) and abs(found[1].speech_ended_at_ms - (500 + end)) <= 100


@needs_sounds
def test_a_long_utterance_is_truncated() -> None:
    speech = prompt("vm-intro")
    found = events(UtteranceDetector(max_utterance_ms=2000), silence(300) + speech + silence(1000))
    started, cut = found[:2]
    assert isinstance(started, SpeechStarted) and isinstance(cut, UtteranceEnded)
    assert cut.truncated and cut.detected_at_ms - started.at_ms == 2000
    assert cut.speech_ended_at_ms <= cut.detected_at_ms
    assert len(cut.audio) == (cut.speech_ended_at_ms - started.at_ms + 200) * 16
    assert isinstance(found[-1], UtteranceEnded) and not found[-1].truncated  # the rest of the prompt ends normally


@needs_sounds
def test_reset_forgets_a_partial_utterance() -> None:
    detector = UtteranceDetector()
    speech = prompt("vm-intro")
    assert [type(event) for event in events(detector, speech[:16000])] == [SpeechStarted]
    assert detector.in_speech
    detector.reset()
    assert not detector.in_speech
    assert events(detector, silence(2000)) == []


@pytest.mark.parametrize("make", [UtteranceDetector, BargeIn])
def test_a_frame_of_the_wrong_size_is_refused(make: Callable[[], Union[UtteranceDetector, BargeIn]]) -> None:
    detector = make()
    for size in (0, 318, 321, 640):
        with pytest.raises(ValueError):
            detector.feed(bytes(size))
    assert not detector.feed(bytes(FRAME))


# Barge-in.


@needs_sounds
@pytest.mark.parametrize("name", ["vm-goodbye", "hello-world", "vm-intro", "conf-getpin"])
def test_barge_in_within_300_ms_of_speech(name: str) -> None:
    speech = prompt(name)
    onset, _ = speech_bounds(speech)
    confirmed = barge_in_ms(BargeIn(), silence(500) + speech + silence(500))
    print(f"\nbarge-in on {name}: {confirmed[0] - 500 - onset} ms after the onset")
    assert len(confirmed) == 1
    assert 240 <= confirmed[0] - (500 + onset) <= 240 + 60


def test_a_burst_shorter_than_speech_ms_is_no_barge_in() -> None:
    beep = (0.3 * 32767 * numpy.sin(2 * numpy.pi * 1000 * numpy.arange(800) / 8000)).astype("<i2").tobytes()
    for short in (beep, tone("5", 100)):
        assert barge_in_ms(BargeIn(), silence(300) + short + silence(500)) == []
    for rms in (0, 100, 300):  # webrtcvad's own hangover would add 60 to 140 ms to each burst
        for offset in (0, 80):
            for ms in (100, 200):
                assert barge_in_ms(BargeIn(), burst(ms, offset, rms)) == [], (ms, offset, rms)


@needs_sounds
def test_barge_in_again_after_reset() -> None:
    barge_in, speech = BargeIn(), silence(300) + prompt("vm-goodbye") + silence(300)
    assert len(barge_in_ms(barge_in, speech)) == 1
    assert barge_in_ms(barge_in, speech) == []  # confirmed once until reset
    barge_in.reset()
    assert len(barge_in_ms(barge_in, speech)) == 1


# A long stretch, frame by frame (the CPU time per frame is measured by bench/voice_load.py, step 0).


@needs_sounds
def test_four_prompts_in_a_row_are_followed_frame_by_frame() -> None:
    """Every frame counts: over 27 s of speech and silence each detector keeps the stream's time to within two frames."""
    speech = prompt("vm-intro")
    onset, end = speech_bounds(speech)
    repeat = silence(500) + speech + silence(500)
    audio = repeat * 4
    period_ms = len(repeat) / 16
    found = events(UtteranceDetector(), audio)
    assert [type(event) for event in found] == [SpeechStarted, UtteranceEnded] * 4
    for number, (started, ended) in enumerate(zip(found[::2], found[1::2])):
        assert isinstance(started, SpeechStarted) and isinstance(ended, UtteranceEnded)
        assert abs(started.at_ms - (number * period_ms + 500 + onset)) <= 2 * FRAME_MS
        assert abs(ended.speech_ended_at_ms - (number * period_ms + 500 + end)) <= 2 * FRAME_MS
    barge_in = BargeIn()
    for _ in range(4):  # the bot starts a new turn before each prompt: barge-in is counted afresh
        barge_in.reset()
        [at_ms] = barge_in_ms(barge_in, repeat)
        assert 0 < at_ms - (500 + onset) <= 300
    detector = DtmfDetector()
    assert [detector.feed(frame) for frame in frames(audio)] == [None] * (-(-len(audio) // FRAME))  # no digit, every frame taken
