"""Deepgram listen v1 (Nova-3) emulator: ``/v1/listen``.

Nothing is sent on open. Per 20 ms of received audio the session may send ``SpeechStarted``
(``vad_events``), interim ``Results`` every ``INTERIM_EVERY_MS`` of audio while there are unfinalised
words (``interim_results``), a final ``Results`` with ``speech_final`` once the silence after the last
word reaches ``endpointing`` ms (10 ms when not given, as on the real service; ``endpointing=false``
turns it off), and ``UtteranceEnd`` once the gap after the last word reaches ``utterance_end_ms``
(needs ``interim_results``). Long speech without a pause is finalised (``is_final`` without
``speech_final``) every ``MAX_SEGMENT_MS``; with endpointing off, after ``NO_ENDPOINT_FINAL_MS`` of
silence.

A final's window (``start`` .. ``start + duration``) runs from the end of the previous final to the audio
position where it was decided, so it includes the silence that ended it; ``Finalize`` always gets a final,
an empty one over silence. ``Faults.no_silence_finals`` (a Deepgram-compatible server) ends every final at
its last word and sends none for a window without words; ``Faults.refuse_finalize`` answers ``Finalize``
with an ``UnsupportedMessage`` error (and close 4400).

Settings: ``DeepgramV1Config`` (``EmulatorServer(idle_timeout_s=...)``). ``DeepgramHandshake`` is the Deepgram
side of the handshake, shared with Flux: key and parameter checks (HTTP 401/400 with ``dg-error``), the
Deepgram-style 503 refusal and the ``dg-request-id`` header on the upgrade.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

from websockets.http11 import Request, Response

from .common import (
    ConfigT,
    ConnectionRecord,
    Faults,
    ParamError,
    ProtocolConfig,
    Query,
    Session,
    SessionContext,
    http_response,
    new_id,
    q_bool,
    q_list,
    q_num,
    q_one,
    raw_credential,
    register,
)
from .script import HeardWord

INTERIM_EVERY_MS = 300
MAX_SEGMENT_MS = 6000
NO_ENDPOINT_FINAL_MS = 800
NET0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)
MODEL_VERSION = "2025-01-01.0"
V1_MODEL = re.compile(r"^(nova-3|nova-2|nova|enhanced|base)(-[a-z0-9]+)*$")
ENCODINGS = ("linear16",)  # what the emulator can read (the real service knows more)


# -- handshake checks shared with v2 -------------------------------------------------------------------


def deepgram_error(status: int, err_code: str, message: str, request_id: str) -> Response:
    body = json.dumps({"err_code": err_code, "err_msg": message, "request_id": request_id})
    return http_response(status, body, "application/json",
                         {"dg-error": message, "dg-request-id": request_id})


def deepgram_key(request: Request) -> str | None:
    """The key or token the client presented (``Token``/``bearer`` header, or the ``token`` subprotocol)."""
    auth = request.headers.get("Authorization")
    if auth:
        scheme, _, rest = auth.strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and rest.strip():
            return rest.strip()
        return None
    proto = request.headers.get("Sec-WebSocket-Protocol")
    if proto:
        parts = [p.strip() for p in proto.split(",")]
        if len(parts) >= 2 and parts[0].lower() == "token":
            return parts[1]
    return None


def deepgram_auth(ctx: SessionContext, record: ConnectionRecord, request: Request,
                  faults: Faults) -> Response | None:
    if faults.reject_auth or not ctx.key_ok(deepgram_key(request)):
        record.error = "invalid credentials"
        return deepgram_error(401, "INVALID_AUTH", "Invalid credentials.", record.request_id)
    return None


def echo_http(record: ConnectionRecord, status: int, err_code: str, message: str, secret: str) -> Response:
    """``echo_auth="http"``: a refusal whose body and ``dg-error`` carry the client's credential."""
    record.echoed_auth = "http"
    record.error = record.error or "invalid credentials"
    return deepgram_error(status, err_code, f"{message} (Authorization: {secret})", record.request_id)


def results_words(words: list[HeardWord], punctuate: bool, diarize: bool) -> list[dict[str, Any]]:
    out = []
    for w in words:
        item: dict[str, Any] = {
            "word": w.word,
            "start": round(w.start / 1000, 3),
            "end": round(w.end / 1000, 3),
            "confidence": w.confidence,
        }
        if punctuate:
            item["punctuated_word"] = w.text
        if diarize:
            item["speaker"] = 0
            item["speaker_confidence"] = 0.9
        out.append(item)
    return out


@dataclass(frozen=True)
class DeepgramV1Config(ProtocolConfig):
    """``/v1/listen`` settings. ``idle_timeout_s``: close 1011 (NET-0001) after this long without audio or text."""

    server_kwargs: ClassVar[Mapping[str, str]] = {"idle_timeout_s": "idle_timeout_s"}
    idle_timeout_s: float = 10.0


class DeepgramHandshake(Session[ConfigT]):
    """Deepgram's handshake, shared by v1 and v2: the key, then the parameters (HTTP 401 / 400); refusals are
    Deepgram-style 503s and the upgrade carries ``dg-request-id``."""

    @staticmethod
    def parse(query: Query) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def refusal_response(cls, record: ConnectionRecord) -> Response:
        return deepgram_error(503, "SERVICE_UNAVAILABLE", "Service unavailable.", record.request_id)

    @classmethod
    def response_headers(cls, record: ConnectionRecord) -> Mapping[str, str]:
        return {"dg-request-id": record.request_id}

    @classmethod
    def check_request(cls, config: ConfigT, ctx: SessionContext, record: ConnectionRecord, request: Request,
                      query: Query, faults: Faults) -> Response | None:
        if faults.echo_auth == "http":
            secret = raw_credential(request, query)
            try:
                cls.parse(query)
            except ParamError as exc:
                record.error = str(exc)
                return echo_http(record, 400, "Bad Request", str(exc), secret)
            return echo_http(record, 401, "INVALID_AUTH", "Invalid credentials.", secret)
        reject = deepgram_auth(ctx, record, request, faults)
        if reject is not None:
            return reject
        try:
            cls.parse(query)
        except ParamError as exc:
            record.error = str(exc)
            return deepgram_error(400, "Bad Request", str(exc), record.request_id)
        return None


class DeepgramV1Session(DeepgramHandshake[DeepgramV1Config]):
    product: ClassVar[str] = "nova-3"
    path: ClassVar[str] = "/v1/listen"

    @staticmethod
    def parse(query: Query) -> dict[str, Any]:
        model = q_one(query, "model")
        if not model:
            raise ParamError("model is required")
        if not V1_MODEL.match(model):
            raise ParamError(f"model {model!r} is not available on /v1/listen")
        encoding = q_one(query, "encoding")
        if not encoding:
            raise ParamError("encoding is required (the emulator takes raw audio only)")
        if encoding not in ENCODINGS:
            raise ParamError(f"encoding {encoding!r} is not supported (use linear16)")
        rate = q_num(query, "sample_rate", None, 8000, 48000, integer=True)
        if rate is None:
            raise ParamError("sample_rate is required with encoding")
        channels = q_num(query, "channels", 1, 1, 1, integer=True)
        endpoint_raw = (q_one(query, "endpointing") or "").lower()
        endpointing: float | None
        if endpoint_raw == "false":
            endpointing = None
        elif endpoint_raw in ("", "true"):
            endpointing = 10
        else:
            endpointing = q_num(query, "endpointing", 10, 0, None, integer=True)
        interim = q_bool(query, "interim_results", False)
        utterance_end = q_num(query, "utterance_end_ms", None, 1000, 5000, integer=True)
        smart = q_bool(query, "smart_format", False)
        return {
            "model": model,
            "sample_rate": int(rate),
            "channels": channels,
            "endpointing": endpointing,
            "interim_results": interim,
            "utterance_end_ms": utterance_end if interim else None,
            "vad_events": q_bool(query, "vad_events", False),
            "punctuate": q_bool(query, "punctuate", False) or smart,
            "smart_format": smart,
            "diarize": q_bool(query, "diarize", False),
            "numerals": q_bool(query, "numerals", False),
            "keyterms": q_list(query, "keyterm"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opts = self.parse(self.query)
        if self.opts["sample_rate"] != 16000:
            self.tracker = self.make_tracker(self.opts["sample_rate"])
        self.keyterms: list[str] = list(self.opts["keyterms"])
        self.features: dict[str, bool] = {"numerals": self.opts["numerals"]}
        self.idle_timeout = self.config.idle_timeout_s
        self.model_uuid = new_id()
        self.created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.committed = 0  # words finalised
        self.final_upto = 0.0  # ms: start of the next Results window
        self.last_interim = 0.0
        self.speech_started = False
        self.vad_from = 0.0  # SpeechStarted looks for speech after this (ms)
        self.utterance_end_for: float | None = None  # last_word_end already reported
        self.configure_pending = False

    # -- messages --------------------------------------------------------------------------------
    def model_info(self) -> dict[str, Any]:
        model = self.opts["model"]
        name = f"general-{model}" if model.count("-") <= 1 else model
        return {"name": name, "version": MODEL_VERSION, "arch": model.split("-general")[0]}

    def results(self, words: list[HeardWord], end: float, *, is_final: bool, speech_final: bool = False,
                from_finalize: bool = False) -> dict[str, Any]:
        punct = self.opts["punctuate"]
        transcript = " ".join(w.text if punct else w.word for w in words)
        confidence = round(sum(w.confidence for w in words) / len(words), 3) if words else 0.0
        start = self.final_upto
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(max(0.0, end - start) / 1000, 3),
            "start": round(start / 1000, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{
                "transcript": transcript,
                "confidence": confidence,
                "words": results_words(words, punct, self.opts["diarize"]),
            }]},
            "metadata": {"request_id": self.request_id, "model_info": self.model_info(),
                         "model_uuid": self.model_uuid},
        }

    def final_text(self, msg: dict[str, Any]) -> str | None:
        if msg.get("type") == "Results" and msg.get("is_final"):
            return str(msg["channel"]["alternatives"][0]["transcript"]) or None
        return None

    def echo_frame(self, text: str) -> dict[str, Any]:
        return {"type": "Error", "variant": "InvalidAuth", "description": text, "message": ""}

    def finalize(self, words: list[HeardWord], end: float, *, speech_final: bool,
                 from_finalize: bool = False) -> None:
        if self.faults.no_silence_finals:  # a compatible server: finals end at their last word, never empty
            if not words:
                return
            end = max(self.final_upto, min(end, words[-1].end))
        self.send(self.results(words, end, is_final=True, speech_final=speech_final,
                               from_finalize=from_finalize))
        self.committed += len(words)
        self.final_upto = end
        self.last_interim = end

    # -- audio -----------------------------------------------------------------------------------
    def on_audio(self, data: bytes) -> None:
        if not data:  # deprecated close request
            self.close_stream()
            return
        self.feed(data)

    def step(self, pos: float) -> None:
        o = self.opts
        tr = self.tracker
        if not self.speech_started:
            onset = tr.speech_onset(self.vad_from, pos)
            if onset is not None:
                self.speech_started = True
                if o["vad_events"]:
                    self.send({"type": "SpeechStarted", "channel": [0], "timestamp": round(onset / 1000, 3)})
        pending = tr.available(pos, self.committed)
        n_heard = self.committed + len(pending)
        silence = tr.silence_ms(pos)
        if pending:
            if o["endpointing"] is not None and silence >= o["endpointing"]:
                self.finalize(pending, pos, speech_final=True)
                self.speech_started = False
                self.vad_from = pos
            elif pos - pending[0].start >= MAX_SEGMENT_MS or (
                o["endpointing"] is None and silence >= NO_ENDPOINT_FINAL_MS
            ):
                self.finalize(pending, pos, speech_final=False)
            elif o["interim_results"] and pos - self.last_interim >= INTERIM_EVERY_MS:
                self.send(self.results(pending, pos, is_final=False))
                self.last_interim = pos
        if o["utterance_end_ms"] is not None and n_heard > 0:
            last = tr.words[n_heard - 1]
            gap = o["utterance_end_ms"]
            if self.utterance_end_for != last.end and silence >= gap and pos - last.end >= gap:
                self.utterance_end_for = last.end
                self.send({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(last.end / 1000, 3)})

    # -- control messages ----------------------------------------------------------------------------
    def on_text(self, raw: str, msg: Any) -> None:
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "KeepAlive":
            return
        if kind == "Finalize" and self.faults.refuse_finalize:
            self.refuse(raw, "Finalize", keep_open=self.faults.refuse_finalize == "error")
            return
        if kind == "Finalize":
            self.tracker.flush()
            pos = self.pos
            self.finalize(self.tracker.heard(pos, self.committed), pos, speech_final=False, from_finalize=True)
            return
        if kind == "CloseStream":
            self.close_stream()
            return
        if kind == "Configure":
            self.configure(msg)
            return
        self.send({
            "type": "Error",
            "variant": "SchemaError",
            "description": "Failed to deserialize the message: unknown or missing type"
            if isinstance(msg, dict) else "Failed to deserialize the message: not valid JSON",
            "message": raw,
        })

    def refuse(self, raw: str, what: str, *, keep_open: bool) -> None:
        """A compatible server that does not know ``what``: Error ``UnsupportedMessage`` (+ close 4400)."""
        self.send({"type": "Error", "variant": "UnsupportedMessage", "description": f"{what} is not supported",
                   "message": raw})
        if not keep_open:
            self.close(4400, f"unsupported message: {what}")

    def close_stream(self) -> None:
        self.tracker.flush()
        pos = self.pos
        rest = self.tracker.heard(pos, self.committed)
        if rest:
            self.finalize(rest, pos, speech_final=True)
        audio = bytes(self.tracker.audio)
        self.send({
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": hashlib.sha256(audio).hexdigest(),
            "created": self.created,
            "duration": round(len(audio) / self.tracker.bytes_per_ms / 1000, 3),
            "channels": 1,
            "models": [self.model_uuid],
            "model_info": {self.model_uuid: self.model_info()},
        })
        self.close(1000)

    def configure(self, msg: dict[str, Any]) -> None:
        def failure(code: str, description: str) -> None:
            self.send({"type": "ConfigureFailure", "request_id": new_id(), "code": code,
                       "description": description})

        if self.configure_pending:
            failure("CONFIGURE_ALREADY_PENDING", "A Configure message is already being processed.")
            return
        keyterms = msg.get("keyterms")
        features = msg.get("features")
        if keyterms is not None and (
            not isinstance(keyterms, list) or not all(isinstance(k, str) for k in keyterms)
        ):
            failure("CONFIGURE_INTERNAL_ERROR", "keyterms must be a list of strings")
            return
        if features is not None and (
            not isinstance(features, dict) or not all(isinstance(v, bool) for v in features.values())
        ):
            failure("CONFIGURE_INTERNAL_ERROR", "features must map names to booleans")
            return
        if keyterms is not None and not self.opts["model"].startswith("nova-3"):
            failure("CONFIGURE_KEYTERMS_NOT_SUPPORTED", "Keyterms are only supported on Nova-3 models.")
            return
        if keyterms is not None and sum(len(k.split()) for k in keyterms) > 500:
            failure("CONFIGURE_KEYTERM_LIMIT_EXCEEDED", "Keyterms exceed the 500 token limit.")
            return
        reply: dict[str, Any] = {"type": "ConfigureSuccess", "request_id": new_id()}
        if keyterms is not None:
            self.keyterms = list(keyterms)
            reply["keyterms"] = self.keyterms
        if features:
            self.features.update(features)
            reply["features"] = dict(features)
        self.configure_pending = True
        self.send(reply)

    def on_idle(self) -> None:
        self.close(1011, NET0001)

    def sent_hook(self, msg: Any) -> None:
        if isinstance(msg, dict) and msg.get("type") in ("ConfigureSuccess", "ConfigureFailure"):
            self.configure_pending = False


register(DeepgramV1Session, DeepgramV1Config.from_server_kwargs)
