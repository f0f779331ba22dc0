"""Scripts (known text + reference audio) and the per-connection word timeline.

Core module: no Textual, no SDK imports.

A *script* is a JSON file next to its reference audio::

    {"audio": "speech_3.wav", "sample_rate": 16000,
     "utterances": [{"text": "The quick brown fox.", "start": 0.52, "end": 2.91,
                     "words": [{"text": "The", "start": 0.52, "end": 0.7}, ...]}, ...]}

``start``/``end`` are seconds in the audio file; ``words`` is optional (without it each utterance's span is
split among its words proportionally to word length). The reference audio is decoded with
``decibri.File`` to 16 kHz mono int16, i.e. exactly what a client reading the same file with decibri sends.

:class:`AudioTracker` turns the audio one connection actually received into a word timeline in *that
connection's* time (milliseconds from its first audio byte, 32 bytes per ms at 16 kHz):

* **Alignment.** Received audio is cut into 20 ms frames. A frame that is not digital silence, arriving
  while the connection is not aligned, triggers a search for the last <=200 ms of unaligned audio in every
  reference PCM (``bytes.find``, even offsets only, the match must be unique). On a hit the connection is
  mapped onto that reference (extended backwards over matching leading silence), and every later frame
  is checked against the reference sample-exactly; a mismatch (skipped, repeated or foreign audio) ends
  the aligned piece and alignment is searched again. The words of an aligned piece are the script words
  whose midpoint lies in the reference audio that piece covers, so a connection only ever transcribes the
  audio it carried (replay too much: repeated words; too little: lost words).
* **Energy VAD fallback.** Audio that matches no reference (a microphone, another resampler) goes
  through a 20 ms-frame RMS VAD (``vad_dbfs``, default -45 dBFS). Each speech segment (segments closer
  than ``VAD_SEGMENT_GAP_MS`` merge) gets the next utterance of the fallback script, in order, or a
  placeholder ``Speech N.``; its words are revealed as the segment's audio arrives, using the script's
  relative word timing.
* **Silence.** ``silence_ms(t)`` is the time since the end of the last speech before ``t`` (script word
  spans for aligned audio, VAD frames and revealed words otherwise), 0 while speech is in progress.
"""

from __future__ import annotations

import array
import functools
import json
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

BYTES_PER_MS_16K = 32
FRAME_MS = 20
PROBE_MS = 200  # the most audio used to search a reference
NONSILENT_DBFS = -60.0  # a frame louder than this can start an alignment search
VAD_DBFS = -45.0  # a frame louder than this is speech for the energy VAD
VAD_SEGMENT_GAP_MS = 600  # unaligned speech closer than this belongs to one utterance
TERMINAL = (".", "?", "!")

_WORD_CHARS = re.compile(r"[^\w']+")


def normalize(token: str) -> str:
    """Lowercase, no punctuation: ``"Door,"`` -> ``"door"``."""
    return _WORD_CHARS.sub("", token).strip("'").lower()


def ends_sentence(token: str) -> bool:
    return token.rstrip("\"')]").endswith(TERMINAL)


def word_confidence(token: str) -> float:
    """A deterministic, plausible confidence for a word."""
    return round(0.9 + (sum(map(ord, normalize(token))) % 10) / 100, 2)


@dataclass(frozen=True)
class ScriptWord:
    text: str  # as written, with punctuation
    start: float  # seconds in the reference audio
    end: float
    utterance: int

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2


@dataclass(frozen=True)
class Utterance:
    text: str
    start: float
    end: float
    words: tuple[ScriptWord, ...]


def split_proportionally(tokens: list[str], start: float, end: float, utterance: int = 0) -> list[ScriptWord]:
    weights = [max(1, len(normalize(t))) for t in tokens]
    total = sum(weights)
    words: list[ScriptWord] = []
    t = start
    for tok, w in zip(tokens, weights, strict=True):
        dur = (end - start) * w / total
        words.append(ScriptWord(tok, t, t + dur, utterance))
        t += dur
    return words


@dataclass
class Script:
    path: Path
    audio_path: Path
    utterances: list[Utterance]
    pcm: bytes = field(default=b"", repr=False)  # reference audio, 16 kHz mono int16 (b"" if not loaded)
    sample_rate: int = 16000

    @property
    def name(self) -> str:
        return self.path.name

    @functools.cached_property
    def words(self) -> list[ScriptWord]:
        return [w for u in self.utterances for w in u.words]

    @classmethod
    def load(cls, path: str | Path, *, load_audio: bool = True) -> Script:
        """A JSON script, or a plain-text transcript (``.txt``) next to its ``.wav`` (see ``from_text``)."""
        path = Path(path)
        if path.suffix.lower() == ".txt":
            return cls.from_text(path)
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        audio_path = (path.parent / str(data["audio"])).resolve()
        utterances: list[Utterance] = []
        for i, u in enumerate(data.get("utterances", [])):
            text = str(u["text"])
            start, end = float(u["start"]), float(u["end"])
            if u.get("words"):
                words = [ScriptWord(str(w["text"]), float(w["start"]), float(w["end"]), i) for w in u["words"]]
            else:
                words = split_proportionally(text.split(), start, end, i)
            utterances.append(Utterance(text, start, end, tuple(words)))
        script = cls(path, audio_path, utterances, sample_rate=int(data.get("sample_rate", 16000)))
        if load_audio:
            script.pcm = read_pcm(audio_path)
        return script


    @classmethod
    def from_text(cls, text_path: str | Path, audio_path: str | Path | None = None) -> Script:
        """A script from a plain transcript (e.g. the packaged ``sample.txt`` + ``sample.wav``).

        Sentences (split after ``. ? !``) are matched to the speech segments an energy VAD finds in the
        audio (pauses of ``SEGMENT_GAP_MS`` or more separate them); if the counts differ, the whole text is
        one utterance over all the speech. Words are split proportionally inside each utterance.
        """
        text_path = Path(text_path)
        audio = Path(audio_path) if audio_path is not None else text_path.with_suffix(".wav")
        pcm = read_pcm(audio)
        sentences = [t for t in _SENTENCE_END.split(text_path.read_text(encoding="utf-8").strip()) if t]
        segments = speech_segments(pcm)
        if not segments:
            segments = [(0.0, len(pcm) / 32000)]
        if len(segments) != len(sentences):
            segments = [(segments[0][0], segments[-1][1])]
            sentences = [" ".join(sentences)]
        utterances = [
            Utterance(text, start, end, tuple(split_proportionally(text.split(), start, end, i)))
            for i, (text, (start, end)) in enumerate(zip(sentences, segments, strict=True))
        ]
        return cls(text_path, audio.resolve(), utterances, pcm)


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
SEGMENT_GAP_MS = 400


def speech_segments(pcm: bytes, *, dbfs: float = VAD_DBFS, gap_ms: float = SEGMENT_GAP_MS) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz mono int16 audio: 20 ms frames above ``dbfs``, pauses
    shorter than ``gap_ms`` bridged."""
    frame = BYTES_PER_MS_16K * FRAME_MS
    segments: list[list[float]] = []
    for at in range(0, len(pcm) - frame + 1, frame):
        if frame_dbfs(pcm[at : at + frame]) < dbfs:
            continue
        t0, t1 = at / 32000, (at + frame) / 32000
        if segments and (t0 - segments[-1][1]) * 1000 < gap_ms:
            segments[-1][1] = t1
        else:
            segments.append([t0, t1])
    return [(round(a, 3), round(b, 3)) for a, b in segments]


def read_pcm(path: str | Path) -> bytes:
    """The file as 16 kHz mono int16 little-endian bytes, decoded (and resampled) by decibri."""
    import decibri

    out = bytearray()
    with decibri.File(str(path)) as f:
        while (chunk := f.read()) is not None:
            out += cast(bytes, chunk)
    return bytes(out)


def frame_dbfs(frame: bytes | bytearray | memoryview) -> float:
    samples = array.array("h")
    samples.frombytes(bytes(frame[: len(frame) - len(frame) % 2]))
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return -120.0
    rms = math.sqrt(sum(x * x for x in samples) / len(samples))
    return 20 * math.log10(rms / 32768) if rms > 0 else -120.0


def find_even(haystack: bytes, needle: bytes, start: int = 0) -> int:
    i = haystack.find(needle, start)
    while i != -1 and i % 2:
        i = haystack.find(needle, i + 1)
    return i


@dataclass
class HeardWord:
    """A word this connection heard; times are ms from the connection's first audio byte."""

    text: str  # formatted token ("Door,")
    start: float
    end: float
    confidence: float
    source: str  # script name, or "" for placeholders

    @property
    def word(self) -> str:
        return normalize(self.text)

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2


@dataclass
class Piece:
    """A stretch of the connection's audio: aligned to a reference (``script`` set) or not."""

    conn_start: int  # byte offsets in the connection's audio
    conn_end: int
    script: Script | None = None
    ref_start: int = 0  # byte offset in the reference PCM
    next_word: int = 0  # first script word not yet added (aligned pieces)
    next_span: int = 0  # first script word whose span is not yet added
    spans: list[list[float]] = field(default_factory=list)  # speech spans (conn ms) added by this piece
    last_attempt: int = -(10**9)  # frame index of the last alignment search (unaligned pieces)


@dataclass
class _VadSegment:
    onset: float  # conn ms
    last_loud_end: float
    tokens: list[tuple[str, float, float]]  # (token, rel start ms, rel end ms)
    source: str
    revealed: int = 0


class AudioTracker:
    """The word timeline of one connection, built from the audio it received (see the module doc)."""

    def __init__(
        self,
        scripts: Iterable[Script] = (),
        *,
        sample_rate: int = 16000,
        channels: int = 1,
        fallback: Script | None = None,
        vad_dbfs: float = VAD_DBFS,
    ) -> None:
        self.scripts = [s for s in scripts if s.pcm]
        self.bytes_per_ms = sample_rate * channels * 2 / 1000
        self.frame_bytes = int(self.bytes_per_ms * FRAME_MS)
        self.can_align = sample_rate == 16000 and channels == 1 and bool(self.scripts)
        self.fallback = fallback
        self.vad_dbfs = vad_dbfs
        self.audio = bytearray()
        self.processed = 0  # bytes of audio cut into frames so far
        self.pieces: list[Piece] = []
        self.words: list[HeardWord] = []
        self.spans: list[list[float]] = []  # [start, end] ms of speech, sorted by start
        self._segment: _VadSegment | None = None
        self._next_utterance = 0
        self._placeholders = 0
        self._prev_frame_silent = True
        self._vad_span: list[float] | None = None

    # -- feeding --------------------------------------------------------------------------------
    @property
    def position_ms(self) -> float:
        return len(self.audio) / self.bytes_per_ms

    def ms(self, nbytes: int) -> float:
        return nbytes / self.bytes_per_ms

    def feed(self, data: bytes) -> list[float]:
        """Add received audio; returns the end positions (ms) of the 20 ms frames completed by it."""
        self.audio += data
        ends: list[float] = []
        while len(self.audio) - self.processed >= self.frame_bytes:
            self._frame(self.processed, self.frame_bytes)
            self.processed += self.frame_bytes
            ends.append(self.ms(self.processed))
        return ends

    def flush(self) -> None:
        """Account for a trailing partial frame and reveal words heard up to the end of the audio."""
        tail = len(self.audio) - self.processed
        tail -= tail % 2
        if tail > 0:
            self._frame(self.processed, tail)
            self.processed += tail
        pos = self.ms(self.processed)
        seg = self._segment
        if seg is not None:
            while seg.revealed < len(seg.tokens):
                tok, rs, re_ = seg.tokens[seg.revealed]
                if seg.onset + (rs + re_) / 2 > pos:
                    break
                self._reveal(seg, tok, seg.onset + rs, min(seg.onset + re_, max(pos, seg.onset + rs + 1)))

    # -- queries ---------------------------------------------------------------------------------
    def available(self, pos: float, first: int = 0) -> list[HeardWord]:
        """Words from index ``first`` whose audio has fully arrived by ``pos`` (ms)."""
        out: list[HeardWord] = []
        for w in self.words[first:]:
            if w.end > pos + 1e-6:
                break
            out.append(w)
        return out

    def heard(self, pos: float, first: int = 0) -> list[HeardWord]:
        """Words from index ``first`` that are heard (more than half received) by ``pos``: for flushes."""
        return [w for w in self.words[first:] if w.mid <= pos + 1e-6]

    def silence_ms(self, pos: float) -> float:
        """Silence before ``pos``: 0 during speech, ``pos`` if nothing was said yet."""
        last_end = 0.0
        for span in reversed(self.spans):
            if span[0] > pos + 1e-6:
                continue
            if span[1] > pos + 1e-6:
                return 0.0
            last_end = max(last_end, span[1])
            if span[1] < last_end - 5000:  # spans are sorted by start; nothing older can be later
                break
        return max(0.0, pos - last_end)

    def speech_onset(self, after: float, pos: float) -> float | None:
        """Start (ms) of the first speech at or after ``after`` that has begun by ``pos``."""
        best: float | None = None
        for span in reversed(self.spans):
            if span[1] <= after + 1e-6:
                break
            if span[0] <= pos + 1e-6:
                start = max(span[0], after)
                best = start if best is None else min(best, start)
        return best

    def alignment(self) -> list[dict[str, Any]]:
        """The aligned pieces: which reference audio each stretch of this connection matched."""
        return [
            {
                "script": p.script.name,
                "conn_start_ms": round(self.ms(p.conn_start), 3),
                "ref_start_ms": round(p.ref_start / BYTES_PER_MS_16K, 3),
                "length_ms": round(self.ms(p.conn_end - p.conn_start), 3),
            }
            for p in self.pieces
            if p.script is not None
        ]

    # -- internals ---------------------------------------------------------------------------------
    def _frame(self, at: int, size: int) -> None:
        frame = self.audio[at : at + size]
        piece = self.pieces[-1] if self.pieces else None
        if piece is not None and piece.script is not None:
            ref = piece.script.pcm
            r = piece.ref_start + (at - piece.conn_start)
            if piece.conn_end == at and ref[r : r + size] == frame:
                piece.conn_end += size
                self._cover(piece)
                return
            self._close_piece(piece)
            piece = None
        if piece is None:
            piece = Piece(at, at)
            self.pieces.append(piece)
        piece.conn_end = at + size
        level = frame_dbfs(frame)
        frame_index = at // self.frame_bytes
        onset = self._prev_frame_silent and level > NONSILENT_DBFS
        self._prev_frame_silent = level <= NONSILENT_DBFS
        if (
            self.can_align
            and self._segment is None
            and level > NONSILENT_DBFS
            and (onset or frame_index - piece.last_attempt >= PROBE_MS // FRAME_MS)
        ):
            piece.last_attempt = frame_index
            if self._try_align(piece, at + size):
                return
        self._vad(at, size, level)

    def _try_align(self, piece: Piece, end: int) -> bool:
        start = max(piece.conn_start, end - int(self.bytes_per_ms * PROBE_MS))
        start -= (start - piece.conn_start) % 2
        probe = bytes(self.audio[start:end])
        hit: tuple[Script, int] | None = None
        for script in self.scripts:
            i = find_even(script.pcm, probe)
            if i == -1:
                continue
            if hit is not None or find_even(script.pcm, probe, i + 1) != -1:
                return False  # ambiguous: wait for more audio
            hit = (script, i)
        if hit is None:
            return False
        script, ref_at = hit
        # extend backwards over audio that also matches (e.g. leading silence)
        ref = script.pcm
        step = self.frame_bytes
        while start - step >= piece.conn_start and ref_at - step >= 0 and (
            self.audio[start - step : start] == ref[ref_at - step : ref_at]
        ):
            start -= step
            ref_at -= step
        while start - 2 >= piece.conn_start and ref_at - 2 >= 0 and (
            self.audio[start - 2 : start] == ref[ref_at - 2 : ref_at]
        ):
            start -= 2
            ref_at -= 2
        if start > piece.conn_start:
            piece.conn_end = start  # the unmatched head stays an unaligned piece
            aligned = Piece(start, end, script, ref_at)
            self.pieces.append(aligned)
        else:
            self.pieces[-1] = aligned = Piece(start, end, script, ref_at)
        self._cover(aligned)
        return True

    def _to_conn(self, piece: Piece, ref_seconds: float) -> float:
        return self.ms(piece.conn_start) + ref_seconds * 1000 - piece.ref_start / BYTES_PER_MS_16K

    def _cover(self, piece: Piece) -> None:
        """Add the script words (and speech spans) the aligned piece now covers."""
        assert piece.script is not None
        words = piece.script.words
        ref_lo = piece.ref_start / BYTES_PER_MS_16K / 1000
        ref_hi = (piece.ref_start + piece.conn_end - piece.conn_start) / BYTES_PER_MS_16K / 1000
        conn_lo = self.ms(piece.conn_start)
        while piece.next_span < len(words) and words[piece.next_span].start < ref_hi:
            w = words[piece.next_span]
            piece.next_span += 1
            if w.end <= ref_lo:
                continue
            span = [max(conn_lo, self._to_conn(piece, w.start)), self._to_conn(piece, w.end)]
            piece.spans.append(span)
            self._add_span(span)
        while piece.next_word < len(words) and words[piece.next_word].mid <= ref_hi:
            w = words[piece.next_word]
            piece.next_word += 1
            if w.mid < ref_lo:
                continue
            self.words.append(HeardWord(
                w.text,
                round(max(conn_lo, self._to_conn(piece, w.start)), 3),
                round(self._to_conn(piece, w.end), 3),
                word_confidence(w.text),
                piece.script.name,
            ))

    def _close_piece(self, piece: Piece) -> None:
        """An aligned piece ended early: clip what it added to the audio it really covered."""
        end = self.ms(piece.conn_end)
        for span in piece.spans:
            span[1] = min(span[1], end)
        for w in reversed(self.words):
            if w.end <= end:
                break
            if w.start < end:
                w.end = round(end, 3)

    def _add_span(self, span: list[float], *, merge: bool = False) -> None:
        last = self.spans[-1] if self.spans else None
        if merge and last is not None and last is self._vad_span and abs(last[1] - span[0]) < 1e-6:
            last[1] = span[1]
            return
        self.spans.append(span)
        if merge:
            self._vad_span = span
        if len(self.spans) > 1 and self.spans[-2][0] > span[0]:
            self.spans.sort(key=lambda s: s[0])

    # energy VAD for unaligned audio
    def _next_tokens(self) -> tuple[list[tuple[str, float, float]], str]:
        script = self.fallback
        if script is not None and self._next_utterance < len(script.utterances):
            utt = script.utterances[self._next_utterance]
            self._next_utterance += 1
            base = utt.words[0].start if utt.words else utt.start
            return [(w.text, (w.start - base) * 1000, (w.end - base) * 1000) for w in utt.words], script.name
        self._placeholders += 1
        return [("Speech", 0.0, 300.0), (f"{self._placeholders}.", 300.0, 600.0)], ""

    def _reveal(self, seg: _VadSegment, token: str, start: float, end: float) -> None:
        seg.revealed += 1
        self.words.append(HeardWord(token, round(start, 3), round(end, 3), word_confidence(token), seg.source))
        self._add_span([start, end])

    def _vad(self, at: int, size: int, level: float) -> None:
        f0, f1 = self.ms(at), self.ms(at + size)
        loud = level >= self.vad_dbfs
        seg = self._segment
        if loud:
            if seg is None:
                tokens, source = self._next_tokens()
                seg = self._segment = _VadSegment(f0, f1, tokens, source)
            seg.last_loud_end = f1
            self._add_span([f0, f1], merge=True)
        if seg is None:
            return
        while seg.revealed < len(seg.tokens):
            tok, rs, re_ = seg.tokens[seg.revealed]
            if seg.onset + re_ > f1 or seg.onset + rs > seg.last_loud_end + 200:
                break
            self._reveal(seg, tok, seg.onset + rs, seg.onset + re_)
        if not loud and f1 - seg.last_loud_end >= VAD_SEGMENT_GAP_MS:
            # the utterance is over: squeeze what was not revealed yet into the end of its speech
            rest = seg.tokens[seg.revealed :]
            if rest:
                lo = self.words[-1].end if seg.revealed else seg.onset
                hi = max(seg.last_loud_end, lo + 40 * len(rest))
                for tok, t0, t1 in [(w.text, w.start, w.end) for w in split_proportionally(
                        [t for t, _, _ in rest], lo, hi)]:
                    self._reveal(seg, tok, t0, t1)
            self._segment = None
