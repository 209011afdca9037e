"""In-band keypad (DTMF) tones: a detector for telephone audio, and tones and silence for tests."""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy

DIGITS = "123A456B789C*0#D"
ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
BLOCK_SECONDS = 205 / 8000  # N = 205 samples at 8 kHz
HOP_SECONDS = 0.005  # the blocks overlap: one starts every 5 ms
CONFIRM_BLOCKS = 5  # consecutive blocks with the same digit: accepts tones from 40 ms, rejects 30 ms
RELEASE_BLOCKS = 8  # consecutive blocks without it before it counts again: bridges 15 ms drop-outs, not 30 ms gaps
MIN_TONE_LEVEL = 0.01  # each tone's amplitude, full scale 1.0: -40 dBFS, about -37 dBm0 (Q.24 accepts from -25)
MIN_PURITY = 0.75  # share of the block's energy in the two tones (speech spreads its energy)
MIN_PEAK_RATIO_DB = 8.0  # each tone above the other three of its group
NORMAL_TWIST_DB = 8.0  # column (high) tone weaker than the row (low) tone
REVERSE_TWIST_DB = 4.0  # row tone weaker than the column tone
FULL_SCALE = 32768.0


class _Filters:
    """The eight Goertzel filters for one block length, and the per-block tests for a keypad tone."""

    def __init__(self, block: int, rate: int) -> None:
        """Filters for blocks of `block` samples at `rate` Hz."""
        # A Goertzel filter's output power at the end of a block is |sum x[n] e^(-jwn)|^2: one matrix
        # product with the filters' cosines and sines computes it for all eight and every block at once.
        phases = 2 * numpy.pi * numpy.outer(numpy.arange(block), numpy.array(ROWS + COLUMNS) / rate)
        self.basis = numpy.hstack([numpy.cos(phases), numpy.sin(phases)])
        self.block = block
        self.min_energy = (MIN_TONE_LEVEL * FULL_SCALE) ** 2 * block / 2

    def digits(self, blocks: numpy.ndarray) -> list[Optional[str]]:
        """For each row of `blocks`, the digit whose two tones make up the block, or None."""
        projections = blocks @ self.basis
        tones = (projections[:, :8] ** 2 + projections[:, 8:] ** 2) * (2 / self.block)  # each tone's energy
        rows, columns = tones[:, :4], tones[:, 4:]
        low, high = rows.max(axis=1), columns.max(axis=1)
        total = (blocks**2).sum(axis=1) - blocks.sum(axis=1) ** 2 / self.block  # without any DC offset
        valid = (low + high >= MIN_PURITY * total) & (numpy.minimum(low, high) >= self.min_energy)
        if not valid.any():  # speech and silence stop here
            return [None] * len(blocks)
        peak = 10 ** (MIN_PEAK_RATIO_DB / 10)
        valid &= (
            (low <= high * 10 ** (NORMAL_TWIST_DB / 10))
            & (high <= low * 10 ** (REVERSE_TWIST_DB / 10))
            & (low >= numpy.sort(rows, axis=1)[:, -2] * peak)
            & (high >= numpy.sort(columns, axis=1)[:, -2] * peak)
        )
        row, column = rows.argmax(axis=1).tolist(), columns.argmax(axis=1).tolist()
        return [DIGITS[4 * r + c] if ok else None for r, c, ok in zip(row, column, valid.tolist())]


@lru_cache(maxsize=8)
def _filters(block: int, rate: int) -> _Filters:
    """The shared filters for `block` samples at `rate` Hz."""
    if rate < 4000:
        raise ValueError(f"keypad tones need a sample rate of at least 4000 Hz, got {rate}")
    return _Filters(block, rate)


def _samples(frame: bytes) -> numpy.ndarray:
    """s16le audio as float samples."""
    if len(frame) % 2:
        raise ValueError(f"16-bit audio needs an even number of bytes, got {len(frame)}")
    return numpy.frombuffer(frame, dtype="<i2").astype(numpy.float64)


def keypad_tone(frame: bytes, rate: int = 8000) -> Optional[str]:
    """The digit whose two tones make up this short frame (one block, unconfirmed), or None."""
    samples = _samples(frame)
    return _filters(len(samples), rate).digits(samples[None, :])[0] if len(samples) else None


class DtmfDetector:
    """In-band keypad tones: Goertzel filters on 697/770/852/941 and 1209/1336/1477/1633 Hz."""

    def __init__(self, rate: int = 8000) -> None:
        """A detector for mono signed 16-bit little-endian audio at `rate` samples per second."""
        self._filters = _filters(round(BLOCK_SECONDS * rate), rate)
        self._hop = round(HOP_SECONDS * rate)
        self.reset()

    def reset(self) -> None:
        """Forget buffered audio and any tone in progress."""
        self._pending = numpy.zeros(0)
        self._candidate: Optional[str] = None
        self._run = 0
        self._held: Optional[str] = None
        self._gap = 0

    def feed(self, frame: bytes) -> Optional[str]:
        """The digit confirmed in this audio (s16le, any length), once per key press; None otherwise.

        At most one digit per call: with 20 ms frames that is never a limit; a longer chunk holding several
        digits returns the first and keeps the rest of the audio for the next call (`feed(b"")` drains it).
        The blocks start every 5 ms from the first sample fed, however the audio is cut into frames.
        """
        self._pending = numpy.concatenate([self._pending, _samples(frame)])
        block = self._filters.block
        starts = range(0, len(self._pending) - block + 1, self._hop)
        if not starts:
            return None
        blocks = numpy.array([self._pending[start : start + block] for start in starts])
        for start, candidate in zip(starts, self._filters.digits(blocks)):
            digit = self._step(candidate)
            if digit is not None:
                self._pending = self._pending[start + self._hop :]
                return digit
        self._pending = self._pending[len(starts) * self._hop :]
        return None

    def _step(self, candidate: Optional[str]) -> Optional[str]:
        """Advance by one block; the digit when this block confirms a new key press."""
        self._run = self._run + 1 if candidate is not None and candidate == self._candidate else 1
        self._candidate = candidate
        if self._held is not None:
            self._gap = 0 if candidate == self._held else self._gap + 1
            if self._gap >= RELEASE_BLOCKS:
                self._held = None
        if candidate is None or candidate == self._held or self._run < CONFIRM_BLOCKS:
            return None
        self._held, self._gap = candidate, 0
        return candidate


def tone(digit: str, ms: int = 100, rate: int = 8000, level: float = 0.3) -> bytes:
    """The keypad tone of `digit` for `ms` milliseconds as s16le; `level` is the peak of the two tones together."""
    if len(digit) != 1 or digit.upper() not in DIGITS:
        raise ValueError(f"not a keypad digit: {digit!r}")
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    index = DIGITS.index(digit.upper())
    time = numpy.arange(round(rate * ms / 1000)) / rate
    wave = numpy.sin(2 * numpy.pi * ROWS[index // 4] * time) + numpy.sin(2 * numpy.pi * COLUMNS[index % 4] * time)
    return numpy.round(wave * (level / 2) * (FULL_SCALE - 1)).astype("<i2").tobytes()


def silence(ms: int, rate: int = 8000) -> bytes:
    """`ms` milliseconds of digital silence as s16le."""
    return bytes(2 * round(rate * ms / 1000))
