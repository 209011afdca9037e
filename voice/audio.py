"""Mono 16-bit audio in memory, resampling, and OGG/Opus (Telegram voice notes) and WAV in and out."""

from __future__ import annotations

import io
from dataclasses import dataclass
from math import gcd

import numpy
import soundfile

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
OPUS_RATE = 48000


class AudioError(ValueError):
    """Audio that cannot be read or written."""


@dataclass(frozen=True, eq=False)
class Pcm:
    """Mono signed 16-bit samples and their rate."""

    samples: numpy.ndarray
    rate: int

    def __post_init__(self) -> None:
        if not isinstance(self.samples, numpy.ndarray) or self.samples.ndim != 1 or self.samples.dtype != numpy.int16:
            raise AudioError("samples must be a one-dimensional numpy array of int16")
        if self.rate <= 0:
            raise AudioError(f"sample rate must be positive, got {self.rate}")

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.rate

    def to_bytes(self) -> bytes:
        """Little-endian signed 16-bit samples."""
        return self.samples.astype("<i2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, rate: int) -> Pcm:
        """Audio from little-endian signed 16-bit samples."""
        if len(data) % 2:
            raise AudioError(f"16-bit audio needs an even number of bytes, got {len(data)}")
        return cls(numpy.frombuffer(data, dtype="<i2").astype(numpy.int16), rate)


def _to_int16(samples: numpy.ndarray) -> numpy.ndarray:
    """Float samples (full scale 1.0) as int16, clipped."""
    return numpy.clip(numpy.round(samples * 32768.0), -32768, 32767).astype(numpy.int16)


def _resampled(samples: numpy.ndarray, source: int, target: int) -> numpy.ndarray:
    """Float samples from `source` to `target` Hz with a polyphase low-pass filter."""
    if target <= 0:
        raise AudioError(f"sample rate must be positive, got {target}")
    if source == target or not len(samples):
        return samples
    from scipy.signal import resample_poly  # imported on first use: scipy.signal takes about 0.5 s to import

    divisor = gcd(source, target)
    return resample_poly(samples, target // divisor, source // divisor)


def resample(pcm: Pcm, rate: int) -> Pcm:
    """The same audio at `rate` samples per second (anti-aliased); `pcm` itself when the rate is unchanged."""
    if rate == pcm.rate:
        return pcm
    return Pcm(_to_int16(_resampled(pcm.samples / 32768.0, pcm.rate, rate)), rate)


def _read(data: bytes) -> tuple[numpy.ndarray, int]:
    """Float mono samples and their rate from any audio file soundfile can read."""
    if not data:
        raise AudioError("no audio: the data is empty")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as error:
        raise AudioError(f"cannot read the audio ({len(data)} bytes): {error}") from error
    if not len(samples):
        raise AudioError("no audio: the file has no samples")
    return samples.mean(axis=1), rate


def decode_ogg_opus(data: bytes, rate: int = 16000) -> Pcm:
    """Mono audio at `rate` from an OGG/Opus voice note (or any audio file soundfile reads, such as WAV)."""
    samples, source = _read(data)
    return Pcm(_to_int16(_resampled(samples, source, rate)), rate)


def encode_ogg_opus(pcm: Pcm) -> bytes:
    """An OGG/Opus file of `pcm` (what Telegram shows as a voice message), resampled to 48 kHz if Opus needs it."""
    if not len(pcm.samples):
        raise AudioError("no audio to encode")
    if pcm.rate not in OPUS_RATES:
        pcm = resample(pcm, OPUS_RATE)
    buffer = io.BytesIO()
    try:
        soundfile.write(buffer, pcm.samples, pcm.rate, format="OGG", subtype="OPUS")
    except (RuntimeError, TypeError, ValueError) as error:
        raise AudioError(f"cannot encode {pcm.seconds:.2f} s of audio as OGG/Opus: {error}") from error
    return buffer.getvalue()


def read_wav(data: bytes) -> Pcm:
    """Mono audio at its own rate from a WAV file (what pyttsx3 writes)."""
    samples, rate = _read(data)
    return Pcm(_to_int16(samples), rate)
