"""The ``local`` product: on-device English transcription with Moonshine base-en (sherpa-onnx), offline.

Moonshine is not a streaming model, so streaming is simulated like this:

* ``send`` runs a Silero VAD over 32 ms windows (fast, on the event loop) and a ``Segmenter`` turns the
  per-window speech flags into segments: a segment opens after ``MIN_SPEECH_S`` of speech (with
  ``PREROLL_S`` of audio before the onset), and closes after ``min_silence_ms`` of silence (trigger
  ``vad``), early when its text ends a sentence (trigger ``punctuation``, below), when it reaches
  ``max_segment_s`` (trigger ``max_segment``: cut in the longest pause in its second half as a VAD close
  there would, else right there), or on ``finish()`` (trigger ``finish``).
* Decoding runs on one worker thread per connection, one decode at a time. A closed segment is always
  decoded and committed (``Committed`` + ``TurnEnded``; an empty text commits nothing); while a segment
  is open and the last VAD window was speech, it is re-decoded for a ``Partial`` when the worker is
  idle and at least ``max(partial_interval_s, last decode time)`` of new audio has arrived since the
  last partial (skipped, never queued, while a decode runs; also skipped when the segment would reach
  ``max_segment_s`` before the decode ends, so its commit starts at once). Audio cut mid-speech gets ``PAD_S`` of
  silence appended before decoding (Moonshine otherwise often loops), and ``collapse_repeats`` removes
  loops that still come out.
* In a pause, once the close tail follows the last speech window, the open segment is decoded once
  more with exactly the audio a close in that pause would commit ("speculative" partial; started as
  soon as the worker is free). When the segment does close there, its commit reuses that text (the
  worker memoises the last few decodes by audio range) instead of decoding again, so the commit follows
  the close almost at once. The close tail is ``TAIL_S``, or ``EARLY_TAIL_S`` with ``punctuation_commit``.
* ``punctuation_commit`` (the idea of AssemblyAI's ``min_turn_silence``): when the speculative text ends
  a sentence (``ends_sentence``: . ? ! possibly before closing quotes; not "..." or "Mr."), the segment is
  closed at the end of that audio (trigger ``punctuation``, ``Segmenter.end_turn``) once
  ``MIN_TURN_SILENCE_S`` of silence follows the speech with no speech since (a shorter gap is a pause
  between words, which Moonshine also ends with a full stop), and the memoised text is committed at once;
  otherwise ``min_silence_ms`` stays the close. A plain partial whose audio happened to take the last
  words counts as well (it often runs when the speech ends, and the speculative decode would wait for
  it). Speech that comes back opens a new segment whose pre-roll stops at the end of the committed
  audio, so nothing is decoded twice or lost. The decode itself (about 0.12 s per second of segment on
  one thread here) is what remains of the lag.
* Results come back to the event loop with ``call_soon_threadsafe`` in the worker's order, so partials
  of a segment always precede its commit.

The recognizer is loaded once per process (``local_model.get_recognizer``) and shared by connections.
No Textual here; sherpa-onnx and numpy are imported only when a connection opens (or by the segmenter).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui_stt import events as ev
from tui_stt.providers import local_model
from tui_stt.providers.base import Connection, ConnectionConfig, ProviderError
from tui_stt.providers.local_model import local_available, missing_reason
from tui_stt.providers.options import LOCAL

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "FRAME",
    "LocalConnection",
    "Onset",
    "Segment",
    "Segmenter",
    "SileroFrames",
    "local_available",
    "missing_reason",
]

log = logging.getLogger("tui_stt.providers.local")

RATE = 16000
FRAME = 512  # samples per VAD decision (32 ms), Silero's window shift at 16 kHz
PREROLL_S = 0.3  # audio kept before the detected onset (the VAD reacts late; first words get cut)
MIN_SPEECH_S = 0.09  # speech needed to open a segment (3 windows): single clicks open nothing
TAIL_S = 0.3  # silence kept after the last speech window in the decoded audio
EARLY_TAIL_S = 0.1  # the same with punctuation_commit: the speculative decode starts this much sooner
MIN_TURN_SILENCE_S = 0.25  # silence before a segment whose text ends a sentence is closed (punctuation_commit)
PAD_S = 0.2  # silence appended to audio cut mid-speech before decoding (stops looping outputs)
URL = "local:moonshine-base-en"
EMPTY_DECODE_WARN_S = 1.5  # a segment this long that decodes to nothing is reported (shorter: likely noise)


# -- segmenting (pure: numpy + a per-window speech classifier) --------------------------------------------
@dataclass(frozen=True)
class Onset:
    """Speech started (a segment opened). ``at`` is the first speech window, in connection samples."""

    at: int
    index: int  # segment index


@dataclass(frozen=True)
class Segment:
    """A closed segment. Positions are connection samples; ``audio`` is ``[start, end)`` as int16."""

    index: int
    start: int
    end: int
    covered_until: int  # audio up to here is accounted for (the point where the segment was closed)
    trigger: str  # "vad" | "punctuation" | "max_segment" | "finish"
    audio: np.ndarray
    ends_in_silence: bool = True  # False when cut mid-speech (max_segment, or input ending in speech)
    starts_in_silence: bool = True  # False when it goes on from a segment cut mid-speech (no pause before it)


@dataclass(frozen=True)
class OpenSegment:
    index: int
    start: int
    end: int  # samples received so far
    speech_end: int  # end of the last speech window
    trailing_silence: int  # samples of silence since the last speech window (as far as classified)


class Segmenter:
    """Cuts a 16 kHz int16 stream into speech segments from per-window VAD decisions.

    ``is_speech`` is called once per ``FRAME`` samples (int16 array) in stream order. ``feed`` returns
    ``Onset`` and ``Segment`` events in order; ``flush`` closes the open segment at the end of input.
    ``min_silence_ms``, ``max_segment_s`` and ``close_tail`` may be changed at any time (they apply from
    the next window).

    ``close_tail`` (samples, ``tail`` unless given) is the silence after the last speech window that a
    segment closed in a pause keeps (``vad`` and ``punctuation`` closes); ``tail`` itself sets the margins
    of ``max_segment`` cuts and of ``flush``. ``end_turn`` closes a segment early (trigger
    ``punctuation``): its caller has found that the decoded text ends a sentence.
    """

    def __init__(self, is_speech: Callable[[np.ndarray], bool], *, min_silence_ms: float = 500,
                 max_segment_s: float = 9.0, preroll_s: float = PREROLL_S, min_speech_s: float = MIN_SPEECH_S,
                 tail_s: float = TAIL_S, close_tail_s: float | None = None, rate: int = RATE) -> None:
        import numpy as np

        self._np = np
        self._is_speech = is_speech
        self.rate = rate
        self.min_silence_ms = float(min_silence_ms)
        self.max_segment_s = float(max_segment_s)
        self.preroll = int(round(preroll_s * rate))
        self.min_speech = int(round(min_speech_s * rate))
        self.tail = int(round(tail_s * rate))
        self.close_tail = self.tail if close_tail_s is None else int(round(close_tail_s * rate))
        self._buf = bytearray()  # int16 audio from sample _buf_start to _received
        self._buf_start = 0
        self._received = 0
        self._vad_pos = 0  # samples classified so far (a multiple of FRAME)
        self._prev_end = 0  # end of the last decoded segment: the next pre-roll never reaches back past it
        self._run_start: int | None = None  # idle: first window of the current speech run
        self._open_start: int | None = None
        self._last_speech_end = 0
        self._pauses: list[tuple[int, int]] = []  # silence runs (start, end) inside the open segment
        self._open_mid_speech = False  # the open segment goes on from a cut made mid-speech
        self._index = 0
        self._turn_end: tuple[int, int, int] | None = None  # armed early close: (index, end, min silence)

    # -- state --------------------------------------------------------------------------------------
    @property
    def received(self) -> int:
        return self._received

    @property
    def is_open(self) -> bool:
        return self._open_start is not None

    def open_segment(self) -> OpenSegment | None:
        if self._open_start is None:
            return None
        return OpenSegment(self._index, self._open_start, self._received, self._last_speech_end,
                           max(self._vad_pos - self._last_speech_end, 0))

    def close_end(self, speech_end: int) -> int:
        """Where a segment whose speech ends at ``speech_end`` ends when closed in the pause after it."""
        return speech_end + self.close_tail

    @property
    def turn_end_pending(self) -> bool:
        """An early close (``end_turn``) waits for its silence."""
        return self._turn_end is not None

    def end_turn(self, index: int, end: int, min_silence: int) -> Segment | None:
        """The text decoded from the open segment's audio ``[start, end)`` ends a sentence: close the
        segment at ``end`` (trigger ``punctuation``) once ``min_silence`` samples of silence follow its last
        speech window, if no speech comes after ``end``. Returns the segment when that is so already;
        otherwise the close is armed and a later ``feed`` returns it, unless speech comes first (then it is
        dropped). Nothing happens (None) when segment ``index`` is no longer open, or has speech after
        ``end`` (the decoded text is not all of it)."""
        if (self._open_start is None or index != self._index or not self._last_speech_end <= end <= self._received
                or end <= self._open_start):
            return None
        # (at least up to ``end``: the audio after the segment is all classified, and silent, when it closes)
        self._turn_end = (index, end, max(int(min_silence), end - self._last_speech_end, 1))
        if self._vad_pos - self._last_speech_end >= self._turn_end[2]:
            return self._close_turn()
        return None

    def audio(self, start: int, end: int) -> np.ndarray:
        """A copy of the int16 audio ``[start, end)`` (must still be buffered)."""
        lo = max(start, self._buf_start) - self._buf_start
        hi = max(min(end, self._received) - self._buf_start, lo)
        return self._np.frombuffer(bytes(self._buf[2 * lo:2 * hi]), dtype=self._np.int16)

    # -- input --------------------------------------------------------------------------------------
    def feed(self, samples: np.ndarray) -> list[Onset | Segment]:
        out: list[Onset | Segment] = []
        if len(samples):
            self._buf += samples.astype(self._np.int16, copy=False).tobytes()
            self._received += len(samples)
        while self._vad_pos + FRAME <= self._received:
            start = self._vad_pos
            frame = self.audio(start, start + FRAME)
            speech = bool(self._is_speech(frame))
            self._vad_pos = end = start + FRAME
            if self._open_start is None:
                if not speech:
                    self._run_start = None
                    continue
                if self._run_start is None:
                    self._run_start = start
                if end - self._run_start >= self.min_speech:
                    out.append(Onset(self._run_start, self._index))
                    self._open(self._run_start, end)
                continue
            if speech:
                self._last_speech_end = end
                self._turn_end = None  # speech came back: the sentence went on
            elif self._pauses and self._pauses[-1][1] == start:
                self._pauses[-1] = (self._pauses[-1][0], end)
            else:
                self._pauses.append((start, end))
            if self._turn_end is not None and end - self._last_speech_end >= self._turn_end[2]:
                out.append(self._close_turn())
            elif (end - self._last_speech_end) * 1000 >= self.min_silence_ms * self.rate:
                out.append(self._close_vad(end))
            elif end - self._open_start >= self.max_segment_s * self.rate:
                out.append(self._cut(end))
        if self._open_start is None:
            self._trim()
        return out

    def flush(self) -> Segment | None:
        """End of input: close the open segment (trigger ``finish``), if any."""
        if self._open_start is None:
            return None
        received = self._received
        # speech up to (nearly) the end: keep everything, the unclassified remainder may be speech too
        near_end = received - self._last_speech_end <= self.tail + FRAME
        end = received if near_end else self.close_end(self._last_speech_end)
        if end <= self._open_start:  # a max_segment cut mid-speech at the very last sample left nothing open
            self._open_start = None
            self._run_start = None
            self._pauses = []
            self._turn_end = None
            return None
        return self._close(end, received, "finish", ends_in_silence=not near_end)

    # -- internals ----------------------------------------------------------------------------------
    def _open(self, onset: int, now: int) -> None:
        self._open_start = max(self._prev_end, onset - self.preroll, self._buf_start)
        self._last_speech_end = now
        self._pauses = []
        self._run_start = None
        self._open_mid_speech = False

    def _close_vad(self, now: int) -> Segment:
        return self._close(min(now, self.close_end(self._last_speech_end)), now, "vad")

    def _close_turn(self) -> Segment:
        assert self._turn_end is not None
        end = self._turn_end[1]
        return self._close(end, max(self._vad_pos, end), "punctuation")

    def _close(self, end: int, covered: int, trigger: str, ends_in_silence: bool = True) -> Segment:
        assert self._open_start is not None
        seg = Segment(self._index, self._open_start, end, covered, trigger, self.audio(self._open_start, end),
                      ends_in_silence, not self._open_mid_speech)
        self._index += 1
        self._open_start = None
        self._prev_end = end  # the next segment's pre-roll stops here: no audio is decoded twice
        self._run_start = None
        self._pauses = []
        self._turn_end = None
        return seg

    def _cut(self, now: int) -> Segment:
        """Max segment length reached: cut in a pause as a VAD close and a new onset there would (the
        segment keeps up to ``tail`` of the pause, the next one starts up to ``preroll`` before the speech
        after it), so that neither segment begins or ends in the middle of a word; the pause going on now
        closes the segment with nothing left open. The pause is the one leaving the most silence on both
        sides of the cut (capped at ``tail``/``preroll``; the latest of equals) among those whose middle is
        in the second half and the one going on now. Without a pause, cut right here (mid-speech)."""
        assert self._open_start is not None
        self._turn_end = None
        start = self._open_start
        half = start + (now - start) // 2
        full = min(self.tail, self.preroll)
        pause: tuple[int, int] | None = None
        best = 0
        for p in reversed(self._pauses):  # (in time order: the middles before half are all at the front)
            going_on = p[1] == now and self._last_speech_end <= p[0]
            if not going_on and (p[0] + p[1]) // 2 < half:
                break
            margin = min(p[1] - p[0], self.tail) if going_on else min((p[1] - p[0]) // 2, full)
            if margin > best:
                pause, best = p, margin
        if pause is None:  # mid-speech (the window just classified is speech): the rest goes on at once
            seg = Segment(self._index, start, now, now, "max_segment", self.audio(start, now), False,
                          not self._open_mid_speech)
            self._open_mid_speech = True
            self._open_start = self._prev_end = self._last_speech_end = now
            self._pauses = []
        else:
            p_start, p_end = pause
            if self._last_speech_end <= p_start:  # the pause lasts until now: nothing left open
                return self._close(min(now, self.close_end(p_start)), now, "max_segment")
            mid = (p_start + p_end) // 2
            end = min(mid, p_start + self.tail)
            resume = max(mid, p_end - self.preroll)  # the speech after the pause opens the next segment
            seg = Segment(self._index, start, end, resume, "max_segment", self.audio(start, end), True,
                          not self._open_mid_speech)
            self._open_mid_speech = False
            self._open_start = self._prev_end = resume
            self._pauses = [p for p in self._pauses if p[0] >= p_end]
        self._index += 1
        self._trim()
        return seg

    def _trim(self) -> None:
        if self._open_start is not None:
            keep = self._open_start
        else:
            anchor = self._run_start if self._run_start is not None else self._vad_pos
            keep = max(self._prev_end, anchor - self.preroll)
        drop = keep - self._buf_start
        if drop >= self.rate or (self._open_start is not None and drop > 0):
            del self._buf[:2 * drop]
            self._buf_start = keep


_CLOSERS = "\"'\u201d\u2019\u00bb)]"  # closing quotes and brackets that may follow the full stop
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e"})


def ends_sentence(text: str) -> bool:
    """``text`` ends in terminal punctuation: ``.``, ``?`` or ``!``, possibly followed by closing quotes or
    brackets. Not an ellipsis (the speaker trails off) and not a title such as ``Mr.``."""
    t = text.rstrip().rstrip(_CLOSERS).rstrip()
    if not t or t[-1] not in ".?!" or not any(ch.isalnum() for ch in t):
        return False
    if t[-1] == ".":
        if t.endswith(".."):
            return False
        words = t[:-1].split()
        if words and words[-1].lower().lstrip("\"'(\u201c\u2018") in _ABBREVIATIONS:
            return False
    return True


def collapse_repeats(text: str) -> str:
    """Cut a decoder loop: ``"the train leaves the train leaves the train"`` -> ``"the train leaves"``.

    Only when everything after the first copy of a phrase repeats it (a full copy at least, the last one
    possibly cut short): phrases of two or more words, or one word said four or more times in a row.
    Punctuation and case are ignored when comparing.
    """
    words = text.split()
    norm = ["".join(ch for ch in w.lower() if ch.isalnum()) for w in words]
    n = len(norm)
    for start in range(n):
        for k in range(1, (n - start) // 2 + 1):
            rest = n - start - k
            if k == 1 and rest < 3:
                continue
            phrase = norm[start:start + k]
            if all(norm[start + k + i] == phrase[i % k] for i in range(rest)):
                return " ".join(words[:start + k])
    return text


class SileroFrames:
    """Per-window speech decisions from a ``sherpa_onnx.VadModel`` (Silero v5: each call sees the
    previous 64 samples as context plus the new 512)."""

    def __init__(self, model: Any) -> None:
        import numpy as np

        self._np = np
        self.model = model
        self.context = max(int(model.window_size()) - FRAME, 0)
        self._ctx: np.ndarray = np.zeros(self.context, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> bool:
        np = self._np
        x = frame.astype(np.float32) / 32768.0
        window = np.concatenate((self._ctx, x)) if self.context else x
        if self.context:
            self._ctx = x[-self.context:]
        return bool(self.model.is_speech(window))


# -- the connection -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    kind: str  # "partial" | "commit" | "rebuild"
    segment: int = -1
    start: int = 0
    end: int = 0
    covered_until: int = 0
    trigger: str = ""
    audio: Any = None
    pad: int = 0  # samples of silence appended before decoding


@dataclass(frozen=True)
class DecodeStat:
    kind: str
    audio_seconds: float
    decode_seconds: float
    text: str
    cached: bool = False  # the same audio was decoded before (a speculative partial): no decode ran


class LocalConnection(Connection):
    """Offline Moonshine transcription behind the ``Connection`` interface (see the module docstring)."""

    product = "local"
    send_timeout = None  # a send waits for the decoder (back-pressure), never for a network
    watch_liveness = False
    MAX_QUEUED_COMMITS = 2  # send() waits while this many closed segments wait for their decode

    def __init__(self, config: ConnectionConfig, emit: ev.Emit) -> None:
        super().__init__(config, emit)
        opts = LOCAL.defaults()
        for name, value in self.options.items():
            if name in opts:
                opts[name] = LOCAL.option(name).parse(value, self.product)
        self.options = opts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._segmenter: Segmenter | None = None
        self._recognizer: local_model.LoadedRecognizer | None = None
        self._threads_wanted = int(opts["threads"])
        self._jobs: list[asyncio.Future[None]] = []
        self._commit_jobs: list[asyncio.Future[None]] = []
        # an onset is said after the commits submitted before it (time order), not before their decode ends
        self._held_onsets: list[tuple[int, ev.SpeechStarted]] = []  # (commits submitted before it, event)
        self._commits_submitted = 0
        self._commits_delivered = 0
        self._inflight = 0  # jobs submitted and not yet delivered (loop thread only)
        self._last_decode_s = 0.0
        self._partial_seg = -1
        self._partial_pos = 0
        self._speculated: tuple[int, int] | None = None  # (segment, speech end) of the last speculative decode
        self._turn_pad: tuple[int, int, int] | None = None  # (segment, end, pad) of the partial that ended a turn
        self._memo: dict[tuple[int, int, int], str] = {}  # worker thread only: (start, end, pad) -> text
        self._committed_seg = -1
        self._turn_index = 0
        self._odd = b""
        self._stopping = False
        self._aborted = False
        self.decode_stats: list[DecodeStat] = []  # for the benchmark and tests

    # -- lifecycle ----------------------------------------------------------------------------------
    async def open(self) -> None:
        local_model.require_extra()
        self._loop = asyncio.get_running_loop()
        loaded, vad = await asyncio.to_thread(self._load)
        self._recognizer = loaded
        self._segmenter = Segmenter(SileroFrames(vad), min_silence_ms=self.options["min_silence_ms"],
                                    max_segment_s=self.options["max_segment_s"], close_tail_s=self._close_tail_s())
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tui-stt-local")
        self.emit(ev.Opened(self.product, url=URL))

    def _close_tail_s(self) -> float:
        return EARLY_TAIL_S if self.options["punctuation_commit"] else TAIL_S

    def _load(self) -> tuple[local_model.LoadedRecognizer, Any]:
        return local_model.get_recognizer(self._threads_wanted), local_model.new_vad()

    async def send(self, pcm: bytes) -> None:
        if self.closed or self._stopping or self._segmenter is None:
            raise ProviderError("the local recognizer is not open", code="closed")
        self.bytes_sent += len(pcm)
        data = self._odd + pcm if self._odd else pcm
        if len(data) % 2:
            self._odd, data = data[-1:], data[:-1]
        else:
            self._odd = b""
        if not data:
            return
        import numpy as np

        for item in self._segmenter.feed(np.frombuffer(data, dtype=np.int16)):
            if isinstance(item, Onset):
                started = ev.SpeechStarted(self.product, at=self.t(item.at / RATE))
                if self._commits_delivered < self._commits_submitted:
                    self._held_onsets.append((self._commits_submitted, started))  # a turn before it is decoding
                else:
                    self.emit(started)
            else:
                self._submit_commit(item)
        self._maybe_partial()
        # back-pressure: audio faster than the decoder (a file at --speed max) waits here, so the
        # session holds a bounded amount and commits keep coming instead of a growing queue
        while True:
            self._commit_jobs = [j for j in self._commit_jobs if not j.done()]
            if len(self._commit_jobs) < self.MAX_QUEUED_COMMITS or self.closed or self._aborted:
                break
            await asyncio.wait({self._commit_jobs[0]})

    async def configure(self, changes: Mapping[str, Any]) -> None:
        for name, raw in changes.items():
            if name not in self.options:
                log.debug("local: ignoring unknown option %s", name)
                continue
            self.options[name] = LOCAL.option(name).parse(raw, self.product)
        if self._segmenter is not None:
            self._segmenter.min_silence_ms = float(self.options["min_silence_ms"])
            self._segmenter.max_segment_s = float(self.options["max_segment_s"])
            self._segmenter.close_tail = int(round(self._close_tail_s() * RATE))
        changed = {k: self.options[k] for k in changes if k in self.options}
        if changed:
            self.emit(ev.Configured(self.product, changes=changed, how="in-session"))
        threads = int(self.options["threads"])
        if threads != self._threads_wanted:
            self._threads_wanted = threads
            if self._inflight == 0 and self._executor is not None and not self._stopping:
                self._submit(_Job("rebuild"))  # otherwise the next decode job rebuilds first

    async def finish(self) -> None:
        if self.closed:
            return
        self._stopping = True
        if self._segmenter is not None:
            seg = self._segmenter.flush()
            if seg is not None:
                self._submit_commit(seg)
        pending = [job for job in self._jobs if not job.done()]
        if pending:
            timeout = max(self.config.finish_timeout, 30.0)
            _done, not_done = await asyncio.wait(pending, timeout=timeout)
            if not_done:
                self._aborted = True
                self.emit(ev.Warning(self.product, f"local decoding did not finish within {timeout:.0f} s; "
                                                   "the last segment is lost", code="finish_timeout"))
        self.completed = not self._aborted
        self._shutdown()
        self.mark_closed(1000, "finished")

    async def abort(self) -> None:
        self._stopping = True
        self._aborted = True
        self._shutdown()
        self.mark_closed(1000, "aborted")

    @property
    def busy(self) -> bool:
        """A decode (or recognizer rebuild) is queued or running."""
        return self._inflight > 0

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no decode is queued or running and its results are emitted. False on timeout.

        For replaying a file faster than real time while still getting partials, and for tests.
        """
        pending = [job for job in self._jobs if not job.done()]
        if pending:
            _done, not_done = await asyncio.wait(pending, timeout=timeout)
            return not not_done
        return True

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._jobs = []

    # -- scheduling (event loop thread) -------------------------------------------------------------
    def _submit(self, job: _Job) -> None:
        assert self._executor is not None and self._loop is not None
        self._inflight += 1
        future = asyncio.wrap_future(self._executor.submit(self._work, job), loop=self._loop)
        self._jobs = [j for j in self._jobs if not j.done()]
        self._jobs.append(future)
        if job.kind == "commit":
            self._commit_jobs.append(future)

    def _submit_commit(self, seg: Segment) -> None:
        self._commits_submitted += 1
        pad = 0 if seg.ends_in_silence else int(PAD_S * RATE)
        if seg.trigger == "punctuation" and self._turn_pad is not None and self._turn_pad[:2] == (seg.index, seg.end):
            pad = self._turn_pad[2]  # as the partial that ended the sentence was decoded (its text is memoised)
        self._submit(_Job("commit", seg.index, seg.start, seg.end, seg.covered_until, seg.trigger, seg.audio, pad))

    def _maybe_partial(self, pause_only: bool = False) -> None:
        if self._inflight or self._stopping or self._aborted or self.closed or self._segmenter is None:
            return
        seg = self._segmenter.open_segment()
        if seg is None or self._segmenter.turn_end_pending:  # (its text is decoded: the close only waits)
            return
        if seg.trailing_silence:
            # In a pause. A partial now would only delay the commit that may come soon, except one: once
            # the tail after the last speech is in, decode exactly the audio a close in this pause would
            # commit. It is shown as a partial; if its text ends a sentence (punctuation_commit) the segment
            # closes early, and if the segment closes there anyway the commit reuses the text.
            spec_end = self._segmenter.close_end(seg.speech_end)
            if seg.end >= spec_end and self._speculated != (seg.index, seg.speech_end):
                self._speculated = (seg.index, seg.speech_end)
                self._partial_seg, self._partial_pos = seg.index, spec_end
                self._submit(_Job("partial", seg.index, seg.start, spec_end,
                                  audio=self._segmenter.audio(seg.start, spec_end)))
            return
        if pause_only:
            return
        since = seg.end - (self._partial_pos if self._partial_seg == seg.index else seg.start)
        interval = max(float(self.options["partial_interval_s"]), self._last_decode_s)
        if since < interval * RATE:
            return
        if (seg.end - seg.start) / RATE + self._last_decode_s >= float(self.options["max_segment_s"]):
            return  # the segment is cut before this partial would finish: keep the worker free for it
        self._partial_seg, self._partial_pos = seg.index, seg.end
        self._submit(_Job("partial", seg.index, seg.start, seg.end,
                          audio=self._segmenter.audio(seg.start, seg.end), pad=int(PAD_S * RATE)))

    def _deliver(self, job: _Job, text: str | None, seconds: float, error: BaseException | None,
                 cached: bool = False) -> None:
        if job.kind == "commit":
            self._commits_delivered += 1
        try:
            self._deliver_result(job, text, seconds, error, cached)
        finally:
            while self._held_onsets and self._held_onsets[0][0] <= self._commits_delivered:
                _, started = self._held_onsets.pop(0)
                if not (self._aborted or self.closed):
                    self.emit(started)
        # the worker is free: a pause that is long enough by now gets its speculative decode at once
        # (not at the next send, up to a batch later)
        self._maybe_partial(pause_only=True)

    def _deliver_result(self, job: _Job, text: str | None, seconds: float, error: BaseException | None,
                        cached: bool) -> None:
        self._inflight -= 1
        if job.kind != "rebuild" and not cached and text is not None:
            self._last_decode_s = seconds
        if self._aborted or self.closed:
            return
        if error is not None:
            what = "rebuilding the recognizer" if job.kind == "rebuild" else f"decoding ({job.kind})"
            self.emit(ev.Error(self.product, f"local {what} failed: {error}", code="decode"))
            return
        if text is None:
            return
        audio_s = (job.end - job.start) / RATE
        self.decode_stats.append(DecodeStat(job.kind, audio_s, seconds, text, cached))
        if job.kind == "partial":
            if text and job.segment > self._committed_seg:
                self.emit(ev.Partial(self.product, text, start=self.t(job.start / RATE),
                                     end=self.t(job.end / RATE)))
            if text:
                self._maybe_end_turn(job, text)
            return
        self._committed_seg = max(self._committed_seg, job.segment)
        self._deliver_commit(job, text)

    def _maybe_end_turn(self, job: _Job, text: str) -> None:
        """A partial's text ends a sentence and no speech has come after its audio (a speculative partial,
        or one that happened to take the last words): close the segment there now, or once
        ``MIN_TURN_SILENCE_S`` of silence has followed the speech if not yet, unless speech comes back."""
        seg = self._segmenter
        if not self.options["punctuation_commit"] or self._stopping or seg is None or not ends_sentence(text):
            return
        closed = seg.end_turn(job.segment, job.end, int(round(MIN_TURN_SILENCE_S * RATE)))
        if seg.turn_end_pending or closed is not None:
            self._turn_pad = (job.segment, job.end, job.pad)
        if closed is not None:
            self._submit_commit(closed)  # the same audio as the partial: the worker's memo has the text

    def _deliver_commit(self, job: _Job, text: str) -> None:
        if not text:
            seconds = (job.end - job.start) / RATE
            if seconds >= EMPTY_DECODE_WARN_S:  # speech the decoder gave no words for: say it, never silently
                start, end = self.t(job.start / RATE), self.t(job.end / RATE)
                self.emit(ev.Warning(self.product, f"the local model heard no words in {seconds:.1f}s of speech "
                                                   f"({start:.1f}-{end:.1f}s)", code="empty_decode"))
            return
        start, end = self.t(job.start / RATE), self.t(job.end / RATE)
        turn = ev.Turn(text=text, start=start, end=end, product=self.product, words=(), received_at=time.time(),
                       turn_index=self._turn_index, end_of_turn=True, trigger=job.trigger)
        self.emit(ev.Committed(self.product, turn=turn, covered_until=self.t(job.covered_until / RATE)))
        self.emit(ev.TurnEnded(self.product, turn_index=self._turn_index, at=end, trigger=job.trigger))
        self._turn_index += 1

    # -- worker thread --------------------------------------------------------------------------------
    def _work(self, job: _Job) -> None:
        text: str | None = None
        error: BaseException | None = None
        cached = False
        started = time.perf_counter()
        try:
            if not self._aborted:
                rec, rebuild_error = self._ensure_recognizer()
                if rebuild_error is not None:
                    self._call_soon(self._warn, f"could not switch the local recognizer to "
                                    f"{self._threads_wanted} threads ({rebuild_error}); keeping {rec.threads}")
                if job.kind != "rebuild":
                    started = time.perf_counter()
                    key = (job.start, job.end, job.pad)
                    text = self._memo.get(key)
                    cached = text is not None
                    if text is None:
                        # audio cut mid-speech gets job.pad of silence after it: without it Moonshine
                        # often loops ("open the window open the window ...") and decodes much longer
                        text = collapse_repeats(self._decode(rec, job.audio, job.pad))
                        self._memo[key] = text
                        while len(self._memo) > 4:
                            del self._memo[next(iter(self._memo))]
        except Exception as exc:  # reported as an Error event; the connection goes on
            log.exception("local %s job failed", job.kind)
            error = exc
        self._call_soon(self._deliver, job, text, time.perf_counter() - started, error, cached)

    def _call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _warn(self, message: str) -> None:
        if not (self._aborted or self.closed):
            self.emit(ev.Warning(self.product, message, code="threads"))

    def _ensure_recognizer(self) -> tuple[local_model.LoadedRecognizer, BaseException | None]:
        """The recognizer with the wanted thread count, rebuilt here (worker thread, between decodes).
        If the rebuild fails, the old one is kept and the error returned."""
        rec = self._recognizer
        wanted = self._threads_wanted
        if rec is not None and rec.threads == wanted:
            return rec, None
        try:
            new = local_model.get_recognizer(wanted)
        except Exception as exc:
            if rec is None:
                raise
            self._threads_wanted = rec.threads
            return rec, exc
        self._recognizer = new
        return new, None

    @staticmethod
    def _decode(rec: local_model.LoadedRecognizer, audio: np.ndarray, pad: int = 0) -> str:
        if audio is None or len(audio) == 0:
            return ""
        import numpy as np

        samples = audio.astype(np.float32) / 32768.0
        if pad:
            samples = np.concatenate((samples, np.zeros(pad, dtype=np.float32)))
        with rec.lock:
            stream = rec.recognizer.create_stream()
            stream.accept_waveform(RATE, samples)
            rec.recognizer.decode_stream(stream)
            return str(stream.result.text).strip()
