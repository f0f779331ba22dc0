"""``tui-stt --show-code``: a standalone Python program that connects the way tui-stt does (core: no Textual).

``snippet(product, options)`` returns a complete program: a decibri ``Microphone`` at 16 kHz, mono, int16,
100 ms chunks, streamed to the product's official SDK client (deepgram-sdk listen v1 for Nova-3, listen v2 for
Flux, AssemblyAI's streaming v3 client for u3-rt-pro) opened with exactly the connect parameters tui-stt
sends for these options (``connect_kwargs``), printing partials and finals. The API key is read from the
environment, never written into the program. The local product's program runs Moonshine base-en with
sherpa-onnx behind sherpa-onnx's Silero VAD: a simpler version of what tui-stt does (its own segmenter,
pre-roll and repeat removal are left out).

Nothing here imports an SDK: the programs are text. Every value is written as a Python literal
(``json.dumps`` for text), so an option value cannot break out of its literal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from tui_stt.providers.options import ASSEMBLYAI_HOSTS, validate_options

SAMPLE_RATE = 16000
CHUNK_MS = 100
FRAMES_PER_BUFFER = SAMPLE_RATE * CHUNK_MS // 1000  # 1600 frames = 3200 bytes of int16 mono


class ShowCodeError(ValueError):
    """No program for this product. ``str()`` is one line."""


def literal(value: Any) -> str:
    """``value`` as Python source (text through ``json.dumps``: quotes and control characters escaped)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no literal for {type(value).__name__}")


# -- the connect parameters, exactly as the providers build them ----------------------------------------------


def _nova3_kwargs(o: Mapping[str, Any]) -> dict[str, Any]:
    """``NovaConnection._connect_kwargs`` (tests keep the two equal)."""
    kw: dict[str, Any] = {
        "model": o["model"], "language": o["language"], "encoding": "linear16", "sample_rate": SAMPLE_RATE,
        "channels": 1, "punctuate": o["punctuate"], "smart_format": o["smart_format"], "diarize": o["diarize"],
        "interim_results": o["interim_results"], "vad_events": o["vad_events"], "numerals": o["numerals"],
        "endpointing": o["endpointing"] if o["endpointing"] is not None else "false",
    }
    if o["utterance_end_ms"] is not None and o["interim_results"]:
        kw["utterance_end_ms"] = o["utterance_end_ms"]
    if o["keyterm"]:
        kw["keyterm"] = list(o["keyterm"])
    return kw


def _flux_kwargs(o: Mapping[str, Any]) -> dict[str, Any]:
    """``FluxConnection._connect_kwargs``."""
    kw: dict[str, Any] = {"model": o["model"], "encoding": "linear16", "sample_rate": SAMPLE_RATE,
                          "eot_threshold": o["eot_threshold"], "eot_timeout_ms": o["eot_timeout_ms"]}
    if o["eager_eot_threshold"] is not None:
        kw["eager_eot_threshold"] = o["eager_eot_threshold"]
    if o["keyterm"]:
        kw["keyterm"] = list(o["keyterm"])
    return kw


def _u3pro_kwargs(o: Mapping[str, Any]) -> dict[str, Any]:
    """``AssemblyAIConnection._params`` (its None fields are not sent, so they are left out here)."""
    kw: dict[str, Any] = {
        "sample_rate": SAMPLE_RATE, "encoding": "pcm_s16le", "speech_model": o["speech_model"],
        "end_of_turn_confidence_threshold": o["end_of_turn_confidence_threshold"],
        "min_turn_silence": o["min_turn_silence"], "max_turn_silence": o["max_turn_silence"],
        "format_turns": o["format_turns"],
    }
    if o["keyterms_prompt"]:
        kw["keyterms_prompt"] = list(o["keyterms_prompt"])
    if o["speaker_labels"]:
        kw["speaker_labels"] = True
    kw["vad_threshold"] = o["vad_threshold"]
    return kw


def _local_kwargs(o: Mapping[str, Any]) -> dict[str, Any]:
    return {"min_silence_ms": o["min_silence_ms"], "max_segment_s": o["max_segment_s"],
            "partial_interval_s": o["partial_interval_s"], "threads": o["threads"]}


_KWARGS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "nova-3": _nova3_kwargs, "flux": _flux_kwargs, "u3-rt-pro": _u3pro_kwargs, "local": _local_kwargs,
}


def products() -> tuple[str, ...]:
    """The products ``snippet`` writes a program for."""
    return tuple(_KWARGS)


def _label(product: str) -> str:
    from tui_stt import catalog

    try:
        return catalog.get(product).label
    except ValueError:
        return product


def connect_kwargs(product: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters the program connects with: the product's defaults overlaid with ``options``, checked
    (``OptionError`` for a bad one), shaped as tui-stt's connection sends them."""
    if product not in _KWARGS:
        raise ShowCodeError(f"no code sample for {_label(product)} (--show-code knows {', '.join(_KWARGS)})")
    return _KWARGS[product](validate_options(product, options))


def _call_args(kwargs: Mapping[str, Any], indent: str) -> str:
    return "".join(f"{indent}{key}={literal(value)},\n" for key, value in kwargs.items())


def _key_env(product: str) -> tuple[str, str]:
    from tui_stt import catalog

    spec = catalog.get(product)
    return spec.key_env or "", spec.service.key_help


def _header(title: str, install: str, run: str,
            what: str = "the same connection tui-stt opens for these options") -> str:
    return (f'"""{title}\n\n'
            f"Written by `tui-stt --show-code`: {what}.\n\n"
            f"    {install}\n    {run}\n\n"
            'Speak; partials and finals are printed. Ctrl+C stops (the last words are flushed first).\n"""\n\n')


_MIC = (f"# decibri: the default microphone, 16 kHz mono int16, {CHUNK_MS} ms per chunk "
        f"({FRAMES_PER_BUFFER} frames = {FRAMES_PER_BUFFER * 2} bytes)\n"
        f"SAMPLE_RATE = {SAMPLE_RATE}\n"
        f"FRAMES_PER_BUFFER = {FRAMES_PER_BUFFER}\n")

def _open_mic(indent: str) -> str:
    pad = " " * len("mic = decibri.Microphone(")
    return (f"{indent}mic = decibri.Microphone(sample_rate=SAMPLE_RATE, channels=1, "
            f'frames_per_buffer=FRAMES_PER_BUFFER,\n{indent}{pad}dtype="int16")\n')


def _api_key(env: str, where: str) -> str:
    return (f"    api_key = os.environ.get({literal(env)})\n"
            "    if not api_key:\n"
            f"        sys.exit({literal(f'Set {env} first (get a key at {where}).')})\n")


def _nova3(options: Mapping[str, Any]) -> str:
    env, where = _key_env("nova-3")
    return (_header("Live transcription from the microphone with Deepgram Nova-3 (listen v1).",
                    "pip install deepgram-sdk decibri", f"{env}=... python nova3_mic.py")
            + "import os\nimport sys\nimport threading\n\nimport decibri\nfrom deepgram import DeepgramClient\n"
              "from deepgram.core.events import EventType\n\n" + _MIC + "\n\n"
            + "def on_message(message):\n"
              '    if getattr(message, "type", None) != "Results":\n'
              "        return  # SpeechStarted, UtteranceEnd, Metadata\n"
              "    text = message.channel.alternatives[0].transcript\n"
              "    if text:\n"
              '        print("final:  " if message.is_final else "partial:", text, flush=True)\n\n\n'
            + "def main():\n" + _api_key(env, where)
            + "    client = DeepgramClient(api_key=api_key)\n"
              "    with client.listen.v1.connect(\n" + _call_args(_nova3_kwargs(options), "        ")
            + "    ) as connection:\n"
              "        connection.on(EventType.MESSAGE, on_message)\n"
              '        connection.on(EventType.ERROR, lambda error: print("error:", error, file=sys.stderr))\n'
              "        listener = threading.Thread(target=connection.start_listening, daemon=True)\n"
              "        listener.start()\n"
            + _open_mic("        ")
            + "        try:\n"
              "            with mic:\n"
              "                for chunk in mic:\n"
              "                    connection.send_media(chunk)\n"
              "        except KeyboardInterrupt:\n"
              "            pass\n"
              "        connection.send_finalize()  # the words still in flight come back as a final\n"
              "        connection.send_close_stream()  # then Metadata, then Deepgram closes the socket\n"
              "        listener.join(timeout=5)\n\n\n"
              'if __name__ == "__main__":\n    main()\n')


def _flux(options: Mapping[str, Any]) -> str:
    env, where = _key_env("flux")
    return (_header("Live transcription from the microphone with Deepgram Flux (listen v2).",
                    "pip install deepgram-sdk decibri", f"{env}=... python flux_mic.py")
            + "import os\nimport sys\nimport threading\n\nimport decibri\nfrom deepgram import DeepgramClient\n"
              "from deepgram.core.events import EventType\n\n" + _MIC
            + "turn_ended = threading.Event()\n\n\n"
            + "def on_message(message):\n"
              '    if getattr(message, "type", None) != "TurnInfo":\n'
              "        return  # Connected, ConfigureSuccess, Warning, ...\n"
              '    if message.event == "EndOfTurn":\n'
              "        if message.transcript:\n"
              '            print("final:  ", message.transcript, flush=True)\n'
              "        turn_ended.set()\n"
              "    elif message.transcript:  # StartOfTurn, Update, EagerEndOfTurn, TurnResumed\n"
              '        print("partial:", message.transcript, flush=True)\n\n\n'
            + "def main():\n" + _api_key(env, where)
            + "    client = DeepgramClient(api_key=api_key)\n"
              "    with client.listen.v2.connect(\n" + _call_args(_flux_kwargs(options), "        ")
            + "    ) as connection:\n"
              "        connection.on(EventType.MESSAGE, on_message)\n"
              '        connection.on(EventType.ERROR, lambda error: print("error:", error, file=sys.stderr))\n'
              "        listener = threading.Thread(target=connection.start_listening, daemon=True)\n"
              "        listener.start()\n"
            + _open_mic("        ")
            + "        try:\n"
              "            with mic:\n"
              "                for chunk in mic:\n"
              "                    connection.send_media(chunk)\n"
              "        except KeyboardInterrupt:\n"
              "            pass\n"
              "        turn_ended.clear()\n"
              "        connection.send_force_end_turn()  # end the open turn now: its EndOfTurn is the last final\n"
              "        turn_ended.wait(timeout=3)\n"
              "        connection.send_close_stream()\n"
              "        listener.join(timeout=5)\n\n\n"
              'if __name__ == "__main__":\n    main()\n')


def _u3pro(options: Mapping[str, Any]) -> str:
    env, where = _key_env("u3-rt-pro")
    host = ASSEMBLYAI_HOSTS[options.get("region") or "us"].removeprefix("wss://")
    return (_header("Live transcription from the microphone with AssemblyAI Universal-3 Pro (streaming v3).",
                    "pip install assemblyai decibri", f"{env}=... python u3pro_mic.py")
            + "import os\nimport sys\n\nimport decibri\n"
              "from assemblyai.streaming.v3 import (\n"
              "    StreamingClient,\n    StreamingClientOptions,\n    StreamingEvents,\n    StreamingParameters,\n"
              ")\n\n" + _MIC + "\n\n"
            + "def on_turn(client, event):\n"
              "    if event.transcript:\n"
              '        print("final:  " if event.end_of_turn else "partial:", event.transcript, flush=True)\n\n\n'
              "def on_error(client, error):\n"
              '    print("error:", error, file=sys.stderr)\n\n\n'
            + "def main():\n" + _api_key(env, where)
            + f"    client = StreamingClient(StreamingClientOptions(api_key=api_key, api_host={literal(host)}))\n"
              "    client.on(StreamingEvents.Turn, on_turn)\n"
              "    client.on(StreamingEvents.Error, on_error)\n"
              "    client.connect(StreamingParameters(\n" + _call_args(_u3pro_kwargs(options), "        ")
            + "    ))\n"
            + _open_mic("    ")
            + "    try:\n"
              "        with mic:\n"
              "            client.stream(mic)  # every chunk as it comes (AssemblyAI takes 50-1000 ms chunks)\n"
              "    except KeyboardInterrupt:\n"
              "        pass\n"
              "    finally:\n"
              "        client.disconnect(terminate=True)  # the last turn, then Termination\n\n\n"
              'if __name__ == "__main__":\n    main()\n')


def _local(options: Mapping[str, Any]) -> str:
    kw = _local_kwargs(options)
    consts = (f"MIN_SILENCE_MS = {literal(kw['min_silence_ms'])}  # silence that ends a turn\n"
              f"MAX_SEGMENT_S = {literal(float(kw['max_segment_s']))}  # longest turn before it is committed anyway\n"
              f"PARTIAL_INTERVAL_S = {literal(float(kw['partial_interval_s']))}  # least time between partials\n"
              f"THREADS = {literal(kw['threads'])}  # decoder threads\n")
    return (_header("Offline transcription from the microphone: Moonshine base-en in sherpa-onnx, Silero VAD.",
                    'pip install decibri sherpa-onnx moonshine-cpp numpy   # moonshine-cpp: Linux x86_64',
                    "python local_mic.py   # no key, no network",
                    "tui-stt's local product with these options, simplified (sherpa-onnx's own VAD)")
            + "import base64\nimport importlib.util\nimport sys\nimport tempfile\nimport time\n"
              "from pathlib import Path\n\nimport decibri\nimport numpy as np\nimport sherpa_onnx\n\n" + _MIC + consts
            + "\n\n"
              "def package_dir(name):\n"
              '    """An installed package\'s folder, found without importing it (moonshine_cpp\'s own library\n'
              '    needs AVX-512: only its model files are used)."""\n'
              "    spec = importlib.util.find_spec(name)\n"
              "    if spec is None or not spec.submodule_search_locations:\n"
              '        sys.exit(f"{name} is not installed")\n'
              "    return Path(list(spec.submodule_search_locations)[0])\n\n\n"
              "def write_tokens(tokenizer_bin, folder):\n"
              '    """sherpa-onnx\'s tokens.txt from Moonshine\'s tokenizer.bin (length-prefixed byte strings)."""\n'
              "    data = tokenizer_bin.read_bytes()\n"
              "    lines, i = [], 0\n"
              "    while i < len(data):\n"
              "        length, i = data[i], i + 1\n"
              "        if length >= 128:\n"
              "            length, i = data[i] * 128 + (length - 128), i + 1\n"
              '        lines.append(f"{base64.b64encode(data[i:i + length]).decode()} {len(lines)}\\n")\n'
              "        i += length\n"
              '    path = Path(folder) / "tokens.txt"\n'
              '    path.write_text("".join(lines), encoding="utf-8")\n'
              "    return path\n\n\n"
              "def decode(recognizer, samples):\n"
              "    # 0.2 s of silence after audio cut mid-speech keeps Moonshine from repeating itself\n"
              "    samples = np.concatenate([samples, np.zeros(SAMPLE_RATE // 5, dtype=np.float32)])\n"
              "    stream = recognizer.create_stream()\n"
              "    stream.accept_waveform(SAMPLE_RATE, samples)\n"
              "    recognizer.decode_stream(stream)\n"
              "    return stream.result.text.strip()\n\n\n"
              "def main():\n"
              '    models = package_dir("moonshine_cpp") / "models" / "base-en"\n'
              "    with tempfile.TemporaryDirectory() as tmp:\n"
              "        recognizer = sherpa_onnx.OfflineRecognizer.from_moonshine_v2(\n"
              '            encoder=str(models / "encoder_model.ort"),\n'
              '            decoder=str(models / "decoder_model_merged.ort"),\n'
              '            tokens=str(write_tokens(models / "tokenizer.bin", tmp)),\n'
              "            num_threads=THREADS,\n"
              "        )\n"
              "    config = sherpa_onnx.VadModelConfig()\n"
              '    config.silero_vad.model = str(package_dir("decibri") / "models" / "silero_vad.onnx")\n'
              "    config.silero_vad.min_silence_duration = MIN_SILENCE_MS / 1000\n"
              "    config.silero_vad.max_speech_duration = MAX_SEGMENT_S\n"
              "    config.sample_rate = SAMPLE_RATE\n"
              "    vad = sherpa_onnx.VoiceActivityDetector(config, buffer_size_in_seconds=60)\n"
              "    window = config.silero_vad.window_size\n"
              "    pending = np.zeros(0, dtype=np.float32)\n"
              "    last_partial, shown = time.monotonic(), \"\"\n\n"
              "    def finals():\n"
              "        while not vad.empty():\n"
              "            text = decode(recognizer, vad.front.samples)\n"
              "            vad.pop()\n"
              "            if text:\n"
              '                print("final:  ", text, flush=True)\n\n'
            + _open_mic("    ")
            + "    try:\n"
              "        with mic:\n"
              "            for chunk in mic:\n"
              "                samples = np.frombuffer(chunk, dtype=np.int16).astype(np.float32) / 32768\n"
              "                pending = np.concatenate([pending, samples])\n"
              "                while len(pending) >= window:\n"
              "                    vad.accept_waveform(pending[:window])\n"
              "                    pending = pending[window:]\n"
              "                finals()\n"
              "                if vad.is_speech_detected() and time.monotonic() - last_partial >= PARTIAL_INTERVAL_S:\n"
              "                    last_partial = time.monotonic()\n"
              "                    text = decode(recognizer, vad.current_segment.samples)\n"
              "                    if text and text != shown:\n"
              '                        print("partial:", text, flush=True)\n'
              "                        shown = text\n"
              "    except KeyboardInterrupt:\n"
              "        pass\n"
              "    vad.flush()  # the turn still open when the microphone stops\n"
              "    finals()\n\n\n"
              'if __name__ == "__main__":\n    main()\n')


_PROGRAMS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "nova-3": _nova3, "flux": _flux, "u3-rt-pro": _u3pro, "local": _local,
}


def snippet(product: str, options: Mapping[str, Any]) -> str:
    """A complete Python program that streams the microphone to ``product`` connected with ``options``
    (the product's defaults overlaid with them, checked: ``OptionError`` for a bad value).

    Raises ``ShowCodeError`` for a product it has no program for.
    """
    if product not in _PROGRAMS:
        raise ShowCodeError(f"no code sample for {_label(product)} (--show-code knows {', '.join(_PROGRAMS)})")
    return _PROGRAMS[product](validate_options(product, options))


__all__ = ["ShowCodeError", "connect_kwargs", "literal", "products", "snippet"]
