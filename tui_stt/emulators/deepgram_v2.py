"""Deepgram listen v2 (Flux) emulator: ``/v2/listen``.

``Connected`` first; every server message carries ``sequence_id`` from 0. Turn events follow the words
this connection heard:

* ``StartOfTurn`` when the turn's first word has arrived; ``Update`` every ``UPDATE_EVERY_MS`` of audio.
* End-of-turn confidence is modelled from the silence after the last word:
  ``confidence = 0.2 + silence_ms / 1000``, capped at 1.0 when the last word ends a sentence
  (``. ? !``) and at ``MID_SENTENCE_CAP`` (0.45) otherwise. So a threshold ``t`` is reached after
  **``1000 * (t - 0.2)`` ms of silence**: ``eot_threshold`` 0.7 (default) -> 500 ms, 0.5 -> 300 ms,
  0.9 -> 700 ms, 1.0 -> 800 ms; ``eager_eot_threshold`` 0.3 -> 100 ms, 0.5 -> 300 ms. Mid-sentence
  (e.g. a comma pause) only an eager threshold <= 0.45 can fire, never the end of turn.
* ``EagerEndOfTurn`` (only with ``eager_eot_threshold``) when the confidence reaches it, ``TurnResumed``
  if speech resumes after it, ``EndOfTurn`` with ``trigger: "model"`` when the confidence reaches
  ``eot_threshold``, or ``trigger: "timeout"`` after ``eot_timeout_ms`` of silence whatever the text.
* ``ForceEndTurn`` -> ``EndOfTurn`` ``trigger: "manual"`` with the words heard so far (always sent, even
  with no open turn). ``turn_index`` increments after each ``EndOfTurn``. ``Faults.refuse_force_end_turn``
  (a compatible server): ``Error`` ``UNSUPPORTED_MESSAGE`` instead (+ close 4400 unless ``"error"``).
* ``Configure`` -> ``ConfigureSuccess`` echoing the effective thresholds and keyterms; new values apply to
  the audio that follows. ``CloseStream`` -> trailing ``Update`` -> close with no status (client: 1005).
* Unknown or invalid client messages (including ``KeepAlive``, which Flux does not have) -> fatal
  ``Error`` ``UNPARSABLE_CLIENT_MESSAGE`` + close 1011. Idle (no audio, text or ping for
  ``FluxConfig.idle_timeout_s``, ``EmulatorServer(flux_idle_timeout_s=...)``, default 60 s) -> ``Error``
  ``TIMEOUT`` + close 1011.

The handshake (key/parameter checks, 503 refusals, ``dg-request-id``) is ``deepgram_v1.DeepgramHandshake``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .common import ParamError, ProtocolConfig, Query, new_id, q_list, q_num, q_one, register
from .deepgram_v1 import DeepgramHandshake
from .script import HeardWord, ends_sentence

UPDATE_EVERY_MS = 240
MID_SENTENCE_CAP = 0.45
MODELS = ("flux-general-en", "flux-general-multi")
RATES = (8000, 16000, 24000, 44100, 48000)
EOT_RANGE = (0.5, 1.0)
EAGER_RANGE = (0.3, 0.9)
TIMEOUT_RANGE = (500, 60000)


def silence_for(threshold: float) -> float:
    """Silence (ms) after a sentence end that reaches ``threshold``."""
    return 1000 * (threshold - 0.2)


def confidence(silence_ms: float, sentence_end: bool) -> float:
    cap = 1.0 if sentence_end else MID_SENTENCE_CAP
    return round(min(cap, 0.2 + silence_ms / 1000), 3)


def check_thresholds(eot: float, eager: float | None, timeout: float) -> None:
    if not EOT_RANGE[0] <= eot <= EOT_RANGE[1]:
        raise ParamError(f"eot_threshold {eot} is out of range {EOT_RANGE}")
    if eager is not None:
        if not EAGER_RANGE[0] <= eager <= EAGER_RANGE[1]:
            raise ParamError(f"eager_eot_threshold {eager} is out of range {EAGER_RANGE}")
        if eager > eot:
            raise ParamError("eager_eot_threshold must not exceed eot_threshold")
    if not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1] or timeout != int(timeout):
        raise ParamError(f"eot_timeout_ms {timeout} is out of range {TIMEOUT_RANGE}")


@dataclass(frozen=True)
class FluxConfig(ProtocolConfig):
    """``/v2/listen`` settings. ``idle_timeout_s``: ``Error`` ``TIMEOUT`` + close 1011 after this long without
    audio, a text message or a ping."""

    server_kwargs: ClassVar[Mapping[str, str]] = {"flux_idle_timeout_s": "idle_timeout_s"}
    idle_timeout_s: float = 60.0


class FluxSession(DeepgramHandshake[FluxConfig]):
    product: ClassVar[str] = "flux"
    path: ClassVar[str] = "/v2/listen"
    counts_pings: ClassVar[bool] = True

    @staticmethod
    def parse(query: Query) -> dict[str, Any]:
        model = q_one(query, "model")
        if not model:
            raise ParamError("model is required")
        if model not in MODELS:
            raise ParamError(f"model {model!r} is not a Flux model ({', '.join(MODELS)})")
        encoding = q_one(query, "encoding")
        rate = q_num(query, "sample_rate", None, integer=True)
        if not encoding or rate is None:
            raise ParamError("encoding and sample_rate are required (the emulator takes raw audio only)")
        if encoding != "linear16":
            raise ParamError(f"encoding {encoding!r} is not supported (use linear16)")
        if rate not in RATES:
            raise ParamError(f"sample_rate {rate} is not supported ({', '.join(map(str, RATES))})")
        eot = q_num(query, "eot_threshold", 0.7)
        eager = q_num(query, "eager_eot_threshold", None)
        timeout = q_num(query, "eot_timeout_ms", 5000)
        assert eot is not None and timeout is not None
        check_thresholds(eot, eager, timeout)
        return {
            "model": model,
            "sample_rate": int(rate),
            "eot_threshold": eot,
            "eager_eot_threshold": eager,
            "eot_timeout_ms": int(timeout),
            "keyterms": q_list(query, "keyterm"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.parse(self.query)
        if o["sample_rate"] != 16000:
            self.tracker = self.make_tracker(o["sample_rate"])
        self.eot: float = o["eot_threshold"]
        self.eager_threshold: float | None = o["eager_eot_threshold"]
        self.eot_timeout_ms: int = o["eot_timeout_ms"]
        self.keyterms: list[str] = o["keyterms"]
        self.idle_timeout = self.config.idle_timeout_s
        self.seq = 0
        self.turn_index = 0
        self.turn_first = 0  # index of the open turn's first word
        self.turn_open = False
        self.window_start = 0.0  # ms
        self.last_update = 0.0
        self.eager_sent = False
        self.eager_words = 0  # words in the turn when EagerEndOfTurn went out

    # -- messages --------------------------------------------------------------------------------
    def stamp(self, msg: dict[str, Any]) -> dict[str, Any]:
        head = {"type": msg["type"]}
        if "request_id" in msg:
            head["request_id"] = msg["request_id"]
        out = {**head, "sequence_id": self.seq, **msg}
        self.seq += 1
        return out

    def turn_info(self, event: str, words: list[HeardWord], pos: float, conf: float,
                  trigger: str | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "TurnInfo",
            "request_id": self.request_id,
            "event": event,
            "turn_index": self.turn_index,
            "audio_window_start": round(self.window_start / 1000, 3),
            "audio_window_end": round(pos / 1000, 3),
            "transcript": " ".join(w.text for w in words),
            "words": [
                {"word": w.text.rstrip(".,?!;:"), "confidence": w.confidence,
                 "start": round(w.start / 1000, 3), "end": round(w.end / 1000, 3)}
                for w in words
            ],
            "end_of_turn_confidence": conf,
        }
        if trigger is not None:
            msg["trigger"] = trigger
        return msg

    def final_text(self, msg: dict[str, Any]) -> str | None:
        if msg.get("type") == "TurnInfo" and msg.get("event") == "EndOfTurn":
            return str(msg["transcript"]) or None
        return None

    def malformed(self) -> str:
        return '{"type": "TurnInfo", "event": "Update", "transcript": '

    def fault_frames(self, code: int | None, reason: str) -> list[dict[str, Any]]:
        if code == 1000:
            return []
        return [{"type": "Error", "code": "INTERNAL_SERVER_ERROR",
                 "description": reason or "An internal server error occurred."}]

    def echo_frame(self, text: str) -> dict[str, Any]:
        return {"type": "Error", "code": "INVALID_AUTH", "description": text}

    def fatal(self, code: str, description: str) -> None:
        self.send({"type": "Error", "code": code, "description": description})
        self.close(1011, description)

    async def on_open(self) -> None:
        self.send({"type": "Connected", "request_id": self.request_id})

    def on_idle(self) -> None:
        self.fatal("TIMEOUT", "Did not receive audio, a message or a ping within the timeout window.")

    # -- turn state ---------------------------------------------------------------------------------
    def end_turn(self, words: list[HeardWord], pos: float, conf: float, trigger: str) -> None:
        self.send(self.turn_info("EndOfTurn", words, pos, conf, trigger))
        self.turn_first += len(words)
        self.turn_index += 1
        self.turn_open = False
        self.eager_sent = False
        self.window_start = pos

    def step(self, pos: float) -> None:
        tr = self.tracker
        words = tr.available(pos, self.turn_first)
        silence = tr.silence_ms(pos)
        if not self.turn_open:
            if not words:
                return
            self.turn_open = True
            self.eager_sent = False
            self.last_update = pos
            self.send(self.turn_info("StartOfTurn", words, pos, confidence(silence, False)))
            return
        if not words:
            return
        sentence_end = ends_sentence(words[-1].text)
        conf = confidence(silence, sentence_end)
        if self.eager_sent and (silence == 0 or len(words) > self.eager_words):
            self.eager_sent = False
            self.last_update = pos
            self.send(self.turn_info("TurnResumed", words, pos, conf))
        eager = self.eager_threshold
        if sentence_end and conf >= self.eot:
            if eager is not None and not self.eager_sent:
                self.send(self.turn_info("EagerEndOfTurn", words, pos, conf))
            self.end_turn(words, pos, conf, "model")
        elif silence >= self.eot_timeout_ms:
            self.end_turn(words, pos, conf, "timeout")
        elif eager is not None and not self.eager_sent and silence > 0 and conf >= eager:
            self.eager_sent = True
            self.eager_words = len(words)
            self.last_update = pos
            self.send(self.turn_info("EagerEndOfTurn", words, pos, conf))
        elif pos - self.last_update >= UPDATE_EVERY_MS:
            self.last_update = pos
            self.send(self.turn_info("Update", words, pos, conf))

    # -- control messages ----------------------------------------------------------------------------
    def on_text(self, raw: str, msg: Any) -> None:
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "CloseStream":
            self.close_stream()
        elif kind == "ForceEndTurn" and self.faults.refuse_force_end_turn:
            self.send({"type": "Error", "code": "UNSUPPORTED_MESSAGE",
                       "description": "ForceEndTurn is not supported"})
            if self.faults.refuse_force_end_turn != "error":
                self.close(4400, "unsupported message: ForceEndTurn")
        elif kind == "ForceEndTurn":
            self.force_end_turn()
        elif kind == "Configure":
            self.configure(msg)
        else:
            what = "not valid JSON" if msg is None else f"unknown message type {kind!r}"
            self.fatal("UNPARSABLE_CLIENT_MESSAGE", f"Could not parse client message: {what}")

    def force_end_turn(self) -> None:
        tr = self.tracker
        tr.flush()
        pos = self.pos
        words = tr.heard(pos, self.turn_first)
        conf = confidence(tr.silence_ms(pos), bool(words) and ends_sentence(words[-1].text))
        if words and not self.turn_open:
            self.send(self.turn_info("StartOfTurn", words, pos, conf))
        self.end_turn(words, pos, conf, "manual")

    def close_stream(self) -> None:
        tr = self.tracker
        tr.flush()
        pos = self.pos
        words = tr.heard(pos, self.turn_first)
        if words:
            conf = confidence(tr.silence_ms(pos), ends_sentence(words[-1].text))
            if not self.turn_open:
                self.turn_open = True
                self.send(self.turn_info("StartOfTurn", words, pos, conf))
            self.send(self.turn_info("Update", words, pos, conf))
        self.close(None)

    def thresholds(self) -> dict[str, Any]:
        out: dict[str, Any] = {"eot_threshold": self.eot, "eot_timeout_ms": self.eot_timeout_ms}
        if self.eager_threshold is not None:
            out["eager_eot_threshold"] = self.eager_threshold
        return out

    def configure(self, msg: dict[str, Any]) -> None:
        def failure(description: str) -> None:
            self.send({"type": "ConfigureFailure", "request_id": new_id(), "code": "INVALID_CONFIGURATION",
                       "description": description})

        thresholds = msg.get("thresholds") or {}
        keyterms = msg.get("keyterms")
        if not isinstance(thresholds, dict):
            failure("thresholds must be an object")
            return
        if keyterms is not None and (
            not isinstance(keyterms, list) or not all(isinstance(k, str) for k in keyterms)
        ):
            failure("keyterms must be a list of strings")
            return
        unknown = set(thresholds) - {"eot_threshold", "eager_eot_threshold", "eot_timeout_ms"}
        if unknown:
            failure(f"unknown thresholds: {', '.join(sorted(unknown))}")
            return
        try:
            eot = float(thresholds.get("eot_threshold", self.eot))
            eager_raw = thresholds.get("eager_eot_threshold", self.eager_threshold)
            eager = None if eager_raw is None else float(eager_raw)
            timeout = float(thresholds.get("eot_timeout_ms", self.eot_timeout_ms))
            check_thresholds(eot, eager, timeout)
        except (TypeError, ValueError) as exc:
            failure(str(exc))
            return
        self.eot, self.eager_threshold, self.eot_timeout_ms = eot, eager, int(timeout)
        if keyterms is not None:
            self.keyterms = list(keyterms)
        reply: dict[str, Any] = {"type": "ConfigureSuccess", "request_id": new_id(),
                                 "thresholds": self.thresholds(), "keyterms": self.keyterms}
        for extra in ("language_hints", "numerals"):
            if extra in msg:
                reply[extra] = msg[extra]
        self.send(reply)


register(FluxSession, FluxConfig.from_server_kwargs)
