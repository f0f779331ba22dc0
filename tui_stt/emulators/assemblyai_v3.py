"""AssemblyAI Universal Streaming v3 emulator (``speech_model=u3-rt-pro``): ``/v3/ws``.

The SDK validates every frame with pydantic, so the types here are exact: int ms word times, float
``end_of_turn_confidence``, int epoch ``expires_at``, int seconds in ``Termination``.

* Auth: the raw ``Authorization`` header (or a ``token`` query parameter). A bad key is refused with
  HTTP 401 or, the documented way, upgrade + ``Error`` 1008 + close 1008 (``AssemblyAIConfig.auth_failure``).
* Missing/invalid ``speech_model``/``sample_rate`` or other parameters -> ``Error`` 3006 + close 3006.
* ``Begin`` first. Binary chunks must be 50-1000 ms (1600-32000 bytes at 16 kHz) or ``Error`` 3007 +
  close 3007 (``AssemblyAIConfig.enforce_chunk_ms``).
* Turns (u3-rt-pro): ``SpeechStarted`` (int ms) at each turn's first speech; a partial ``Turn``
  (``end_of_turn`` false, lowercase text without punctuation, ``end_of_turn_confidence`` 0.0,
  ``utterance`` "") after ``EARLY_PARTIAL_MS`` of speech and at each pause of ``min_turn_silence``;
  the final ``Turn`` (``end_of_turn`` true, ``turn_is_formatted`` = ``format_turns``, confidence 1.0,
  ``utterance`` = transcript) when the silence reaches ``min_turn_silence`` and the text ends with
  ``. ? !``, or reaches ``max_turn_silence`` whatever the text.
* ``UpdateConfiguration`` applies silently (no reply). ``ForceEndpoint`` -> final ``Turn`` of what was heard.
  ``Terminate`` -> in-flight final ``Turn`` -> ``Termination`` -> close 1000. ``KeepAlive`` only resets
  the ``inactivity_timeout`` timer; when it runs out: ``Termination`` + close 1000 [assumption].
* Invalid JSON or an unknown message type -> ``Error`` 3006 + close 3006.
* ``Faults.echo_auth``: ``"http"`` -> HTTP 401 whose body ends with the raw credential (whatever
  ``auth_failure`` says); ``"close_reason"``/``"error_frame"`` -> close 3005 (see ``Faults``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from websockets.http11 import Request, Response

from .common import (
    ConnectionRecord,
    Faults,
    ParamError,
    ProtocolConfig,
    Query,
    Session,
    SessionContext,
    http_response,
    q_bool,
    q_num,
    q_one,
    raw_credential,
    register,
)
from .script import HeardWord, ends_sentence

EARLY_PARTIAL_MS = 750
MODELS = ("u3-rt-pro", "u3-pro", "u3-rt-pro-beta-1")
ERROR_TEXT = {
    1008: "Unauthorized Connection: Invalid API key",
    1011: "Internal Server Error",
    3005: "Session Cancelled: An error occurred",
    3006: "Invalid Message",
    3007: "Input duration violation",
    3008: "Session Expired: Maximum session duration exceeded",
    3009: "Unauthorized Connection: Too many concurrent sessions",
}
SESSION_SECONDS = 3 * 3600


def aai_key(request: Request, query: Query) -> str | None:
    auth = request.headers.get("Authorization")
    if auth:
        return auth.strip()
    return q_one(query, "token") or None


def aai_auth_error(ctx: SessionContext, request: Request, query: Query, faults: Faults) -> str | None:
    """Why the key is refused, or None."""
    key = aai_key(request, query)
    if faults.reject_auth:
        return "Unauthorized Connection: Invalid API key"
    if key is None:
        return "Unauthorized Connection: Missing Authorization header"
    if not ctx.key_ok(key):
        return "Unauthorized Connection: Invalid API key"
    return None


def parse_list(raw: Any, name: str) -> list[str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ParamError(f"{name} must be a JSON array of strings") from None
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        raise ParamError(f"{name} must be a list of strings")
    return list(raw)


@dataclass(frozen=True)
class AssemblyAIConfig(ProtocolConfig):
    """``/v3/ws`` settings.

    ``auth_failure``: how a bad key is refused: ``"frame"`` (upgrade, ``Error`` 1008, close 1008; the
    documented way) or ``"http"`` (HTTP 401). ``enforce_chunk_ms``: close 3007 on a chunk outside 50-1000 ms.
    ``max_realtime_factor``: if set, close 3007 when audio arrives faster than this multiple of real time
    (plus a 2 s burst); off by default so tests can send at full speed.
    """

    server_kwargs: ClassVar[Mapping[str, str]] = {
        "aai_auth_failure": "auth_failure",
        "enforce_chunk_ms": "enforce_chunk_ms",
        "aai_max_realtime_factor": "max_realtime_factor",
    }
    auth_failure: Literal["frame", "http"] = "frame"
    enforce_chunk_ms: bool = True
    max_realtime_factor: float | None = None


class AssemblyAISession(Session[AssemblyAIConfig]):
    product: ClassVar[str] = "u3-rt-pro"
    path: ClassVar[str] = "/v3/ws"

    @classmethod
    def check_request(cls, config: AssemblyAIConfig, ctx: SessionContext, record: ConnectionRecord,
                      request: Request, query: Query, faults: Faults) -> Response | None:
        if faults.echo_auth == "http":
            record.echoed_auth = "http"
            record.error = "Unauthorized Connection: Invalid API key"
            return http_response(401, f"Unauthorized Connection: Invalid API key {raw_credential(request, query)}")
        error = aai_auth_error(ctx, request, query, faults)
        if error is None:
            return None
        if faults.reject_auth == "frame":
            mode = "frame"
        elif faults.reject_auth:
            mode = "http"
        else:
            mode = config.auth_failure
        if mode == "http":
            record.error = error
            return http_response(401, error)
        return None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth_error = aai_auth_error(self.ctx, self.ws.request, self.query, self.faults) \
            if self.ws.request is not None else None
        self.param_error: str | None = None
        try:
            self.opts = self.parse(self.query)
        except ParamError as exc:
            self.param_error = str(exc)
            self.opts = {}
        if self.opts.get("sample_rate", 16000) != 16000:
            self.tracker = self.make_tracker(self.opts["sample_rate"])
        self.min_silence: int = self.opts.get("min_turn_silence", 100)
        self.max_silence: int = self.opts.get("max_turn_silence", 1000)
        self.format_turns: bool = self.opts.get("format_turns", True)
        self.keyterms: list[str] = self.opts.get("keyterms_prompt", [])
        self.prompt: str | None = self.opts.get("prompt")
        self.idle_timeout = self.opts.get("inactivity_timeout")
        self.turn_order = 0
        self.turn_first = 0
        self.turn_open = False
        self.turn_boundary = 0.0  # ms: speech after this starts the next turn
        self.turn_speech_start = 0.0
        self.early_sent = False
        self.partial_for: float | None = None  # last word end of the pause already answered by a partial
        self.first_audio_at: float | None = None

    @staticmethod
    def parse(query: Query) -> dict[str, Any]:
        model = q_one(query, "speech_model")
        if not model:
            raise ParamError("speech_model is required")
        if model not in MODELS:
            raise ParamError(f"speech_model {model!r} is not supported by this emulator (u3-rt-pro)")
        rate = q_num(query, "sample_rate", None, 8000, 48000, integer=True)
        if rate is None:
            raise ParamError("sample_rate is required")
        encoding = q_one(query, "encoding") or "pcm_s16le"
        if encoding != "pcm_s16le":
            raise ParamError(f"encoding {encoding!r} is not supported by this emulator (pcm_s16le)")
        min_raw = q_num(query, "min_turn_silence", None, 0, 60000, integer=True)
        if min_raw is None:
            min_raw = q_num(query, "min_end_of_turn_silence_when_confident", 100, 0, 60000, integer=True)
        out: dict[str, Any] = {
            "sample_rate": int(rate),
            "min_turn_silence": int(min_raw or 0),
            "max_turn_silence": int(q_num(query, "max_turn_silence", 1000, 0, 60000, integer=True) or 0),
            "format_turns": q_bool(query, "format_turns", True),
            "end_of_turn_confidence_threshold": q_num(query, "end_of_turn_confidence_threshold", 0.4, 0, 1),
            "vad_threshold": q_num(query, "vad_threshold", 0.3, 0, 1),
            "keyterms_prompt": parse_list(q_one(query, "keyterms_prompt") or "[]", "keyterms_prompt"),
            "prompt": q_one(query, "prompt"),
            "inactivity_timeout": q_num(query, "inactivity_timeout", None, 5, 3600, integer=True),
        }
        return out

    # -- messages --------------------------------------------------------------------------------
    echo_code: ClassVar[int] = 3005
    echo_reason_prefix: ClassVar[str] = "Session Cancelled: upstream rejected the credentials "
    echo_generic_reason: ClassVar[str] = "See Error message for details"

    def echo_frame(self, text: str) -> dict[str, Any]:
        return {"type": "Error", "error_code": self.echo_code, "error": text}

    def error_close(self, code: int, text: str) -> None:
        self.send({"type": "Error", "error_code": code, "error": text})
        self.close(code, text)

    def fault_frames(self, code: int | None, reason: str) -> list[dict[str, Any]]:
        if code is None or code in (1000, 1005, 1006):
            return []
        return [{"type": "Error", "error_code": code, "error": reason or ERROR_TEXT.get(code, "Error")}]

    def malformed(self) -> str:
        return json.dumps({
            "type": "Turn", "turn_order": self.turn_order, "turn_is_formatted": False, "end_of_turn": False,
            "transcript": "malformed", "end_of_turn_confidence": 0.0, "utterance": "",
            "words": [{"start": 120.5, "end": 400, "text": "malformed", "confidence": 0.9,
                       "word_is_final": False}],
        })

    def final_text(self, msg: dict[str, Any]) -> str | None:
        if msg.get("type") == "Turn" and msg.get("end_of_turn"):
            return str(msg["transcript"]) or None
        return None

    def turn(self, words: list[HeardWord], *, final: bool) -> dict[str, Any]:
        formatted = final and self.format_turns
        texts = [w.text if formatted else w.word for w in words]
        transcript = " ".join(texts)
        items = []
        for i, (w, text) in enumerate(zip(words, texts, strict=True)):
            start = int(round(w.start))
            items.append({
                "start": start,
                "end": max(start, int(round(w.end))),
                "text": text,
                "confidence": w.confidence,
                "word_is_final": final or i < len(words) - 1,
            })
        return {
            "type": "Turn",
            "turn_order": self.turn_order,
            "turn_is_formatted": formatted,
            "end_of_turn": final,
            "transcript": transcript,
            "end_of_turn_confidence": 1.0 if final else 0.0,
            "words": items,
            "utterance": transcript if final else "",
            "language_code": "en",
            "language_confidence": 0.99,
        }

    def end_turn(self, words: list[HeardWord], pos: float) -> None:
        self.send(self.turn(words, final=True))
        self.turn_first += len(words)
        self.turn_order += 1
        self.turn_open = False
        self.turn_boundary = pos

    async def on_open(self) -> None:
        if self.auth_error is not None:
            self.record.error = self.auth_error
            self.error_close(1008, self.auth_error)
            return
        if self.param_error is not None:
            self.record.error = self.param_error
            self.error_close(3006, f"User Input Validation Error: {self.param_error}")
            return
        self.send({"type": "Begin", "id": self.request_id, "expires_at": int(time.time()) + SESSION_SECONDS})

    def on_idle(self) -> None:
        self.terminate()

    # -- audio -----------------------------------------------------------------------------------
    def on_audio(self, data: bytes) -> None:
        ms = len(data) / self.tracker.bytes_per_ms
        if self.config.enforce_chunk_ms and not 50 <= ms <= 1000:
            self.error_close(3007, f"Input duration violation: {ms:.3f} ms. Expected between 50 and 1000 ms")
            return
        now = self.loop.time()
        if self.first_audio_at is None:
            self.first_audio_at = now
        factor = self.config.max_realtime_factor
        if factor is not None and self.pos + ms > (now - self.first_audio_at) * 1000 * factor + 2000:
            self.error_close(3007, "Audio Transmission Rate Exceeded")
            return
        self.feed(data)

    def step(self, pos: float) -> None:
        tr = self.tracker
        if not self.turn_open:
            onset = tr.speech_onset(self.turn_boundary, pos)
            if onset is None:
                return
            self.turn_open = True
            self.turn_speech_start = onset
            self.early_sent = False
            self.partial_for = None
            self.send({"type": "SpeechStarted", "timestamp": int(round(onset)), "confidence": 0.9})
        words = tr.available(pos, self.turn_first)
        if not words:
            return
        silence = tr.silence_ms(pos)
        if (silence >= self.min_silence and ends_sentence(words[-1].text)) or silence >= self.max_silence:
            self.end_turn(words, pos)
        elif silence >= self.min_silence and silence > 0 and self.partial_for != words[-1].end:
            self.partial_for = words[-1].end
            self.send(self.turn(words, final=False))
        elif not self.early_sent and pos - self.turn_speech_start >= EARLY_PARTIAL_MS:
            self.early_sent = True
            self.send(self.turn(words, final=False))

    # -- control messages ----------------------------------------------------------------------------
    def on_text(self, raw: str, msg: Any) -> None:
        if not isinstance(msg, dict):
            self.error_close(3006, "Invalid JSON")
            return
        kind = msg.get("type")
        if kind == "KeepAlive":
            return
        if kind == "ForceEndpoint":
            self.tracker.flush()
            pos = self.pos
            words = self.tracker.heard(pos, self.turn_first)
            if words:
                self.end_turn(words, pos)
            return
        if kind == "Terminate":
            self.terminate()
            return
        if kind == "UpdateConfiguration":
            self.update(msg)
            return
        self.error_close(3006, f"Invalid Message Type: {kind}")

    def terminate(self) -> None:
        self.tracker.flush()
        pos = self.pos
        words = self.tracker.heard(pos, self.turn_first)
        if words:
            self.end_turn(words, pos)
        self.send({
            "type": "Termination",
            "audio_duration_seconds": int(round(pos / 1000)),
            "session_duration_seconds": int(round(self.loop.time() - self.opened)),
        })
        self.close(1000)

    def update(self, msg: dict[str, Any]) -> None:
        try:
            for name in ("min_turn_silence", "min_end_of_turn_silence_when_confident", "max_turn_silence"):
                value = msg.get(name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ParamError(f"{name} must be a non-negative integer")
                if name == "max_turn_silence":
                    self.max_silence = int(value)
                else:
                    self.min_silence = int(value)
            if msg.get("keyterms_prompt") is not None:
                self.keyterms = parse_list(msg["keyterms_prompt"], "keyterms_prompt")
            if msg.get("prompt") is not None:
                if not isinstance(msg["prompt"], str):
                    raise ParamError("prompt must be a string")
                self.prompt = msg["prompt"]
            if msg.get("format_turns") is not None:
                if not isinstance(msg["format_turns"], bool):
                    raise ParamError("format_turns must be a boolean")
                self.format_turns = msg["format_turns"]
        except ParamError as exc:
            self.error_close(3006, f"User Input Validation Error: {exc}")


register(AssemblyAISession, AssemblyAIConfig.from_server_kwargs)
