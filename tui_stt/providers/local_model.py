"""Where the local product's model files are, and loading them once per process (core: no Textual).

The Moonshine base-en weights ship inside the ``moonshine-cpp`` wheel (``moonshine_cpp/models/base-en/``).
That package is **never imported** and its ``libmoonshine.so`` never loaded (it is built for AVX-512 and
dies with SIGILL elsewhere): the folder is found with ``importlib.util.find_spec``, which does not run the
package. sherpa-onnx runs the weights; it needs a ``tokens.txt`` that the wheel lacks, generated once from
``tokenizer.bin`` into the user cache dir. The Silero VAD model comes from decibri
(``decibri/models/silero_vad.onnx``).

``local_available()`` / ``missing_reason()`` only look for files (cheap, no model load), for the CLI to
choose the default product. ``get_recognizer(threads)`` loads the recognizer once per process and keeps
it; a different thread count replaces it.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_stt.providers.base import FatalProviderError

MODEL_NAME = "moonshine-base-en"
ENCODER = "encoder_model.ort"
DECODER = "decoder_model_merged.ort"
TOKENIZER = "tokenizer.bin"
VAD_MODEL = "silero_vad.onnx"
SAMPLE_RATE = 16000

INSTALL_HINT = (
    'The local product needs the "local" extra: pip install -e ".[local]" '
    "(sherpa-onnx and moonshine-cpp; moonshine-cpp exists for Linux x86_64 only)"
)


# -- locating files (no imports of the packages themselves) ------------------------------------------
def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing (running) it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    return Path(spec.origin).parent if spec.origin else None


def model_dir() -> Path | None:
    """``moonshine_cpp/models/base-en`` if the wheel is installed, else None."""
    pkg = _package_dir("moonshine_cpp")
    return pkg / "models" / "base-en" if pkg is not None else None


def vad_model_path() -> Path | None:
    pkg = _package_dir("decibri")
    return pkg / "models" / VAD_MODEL if pkg is not None else None


def missing_reason() -> str | None:
    """Why the local product cannot run here (a message saying what to install), or None if it can.

    Only looks for packages and files: nothing is imported or loaded.
    """
    missing: list[str] = []
    if _package_dir("sherpa_onnx") is None:
        missing.append("sherpa-onnx is not installed")
    if _package_dir("numpy") is None:
        missing.append("numpy is not installed")
    mdir = model_dir()
    if mdir is None:
        missing.append("moonshine-cpp is not installed")
    else:
        absent = [n for n in (ENCODER, DECODER, TOKENIZER) if not (mdir / n).is_file()]
        if absent:
            missing.append(f"moonshine-cpp has no {', '.join(absent)} under {mdir}")
    vad = vad_model_path()
    if vad is None or not vad.is_file():
        missing.append(f"decibri's Silero VAD model ({VAD_MODEL}) is missing")
    if not missing:
        return None
    return f"{INSTALL_HINT}. Missing: {'; '.join(missing)}."


def local_available() -> bool:
    return missing_reason() is None


# -- tokens.txt ---------------------------------------------------------------------------------------
def parse_tokenizer(data: bytes) -> list[bytes]:
    """Split Moonshine's ``tokenizer.bin``: a stream of length-prefixed byte strings.

    Length byte ``b``: if ``b < 128`` the length is ``b``, else ``next_byte * 128 + (b - 128)``.
    """
    tokens: list[bytes] = []
    i = 0
    n = len(data)
    while i < n:
        length = data[i]
        i += 1
        if length >= 128:
            if i >= n:
                raise ValueError("tokenizer.bin is truncated (length byte at the end)")
            length = data[i] * 128 + (length - 128)
            i += 1
        if i + length > n:
            raise ValueError(f"tokenizer.bin is truncated (token {len(tokens)} runs past the end)")
        tokens.append(data[i:i + length])
        i += length
    return tokens


def tokens_text(tokens: list[bytes]) -> str:
    """sherpa-onnx's ``tokens.txt`` for Moonshine: one line per token, ``base64(token_bytes) index``."""
    return "".join(f"{base64.b64encode(tok).decode('ascii')} {idx}\n" for idx, tok in enumerate(tokens))


def tokens_path() -> Path:
    """Where ``tokens.txt`` is cached (evaluated at call time, so XDG_CACHE_HOME changes apply)."""
    import platformdirs

    return platformdirs.user_cache_path("tui-stt", appauthor=False) / MODEL_NAME / "tokens.txt"


def ensure_tokens(tokenizer: Path | None = None, dest: Path | None = None) -> Path:
    """Write ``tokens.txt`` from ``tokenizer.bin`` unless an identical file is already there.

    The expected content is rebuilt in memory (a few ms) and compared, so a truncated or corrupt file
    is replaced; the write is atomic (temporary file + ``os.replace``).
    """
    if tokenizer is None:
        mdir = model_dir()
        if mdir is None:
            raise FatalProviderError(INSTALL_HINT)
        tokenizer = mdir / TOKENIZER
    dest = dest or tokens_path()
    try:
        tokens = parse_tokenizer(tokenizer.read_bytes())
    except (OSError, ValueError) as exc:
        raise FatalProviderError(f"cannot read the Moonshine tokenizer {tokenizer}: {exc}") from exc
    expected = tokens_text(tokens).encode("utf-8")
    try:
        if dest.read_bytes() == expected:
            return dest
    except OSError:
        pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(expected)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest


# -- loading (once per process) ---------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFiles:
    encoder: Path
    decoder: Path
    tokens: Path
    vad: Path


@dataclass
class LoadedRecognizer:
    recognizer: Any  # sherpa_onnx.OfflineRecognizer
    threads: int
    load_seconds: float
    lock: threading.Lock  # one decode at a time on this recognizer, whatever the connection


_files: ModelFiles | None = None
_loaded: LoadedRecognizer | None = None
_load_lock = threading.Lock()


def require_extra() -> None:
    """Raise ``FatalProviderError`` (what to install) unless the local product can run."""
    reason = missing_reason()
    if reason is not None:
        raise FatalProviderError(reason)


def model_files() -> ModelFiles:
    """The model paths (tokens.txt generated if needed); cached for the process."""
    global _files
    if _files is not None and _files.tokens.is_file():
        return _files
    require_extra()
    mdir = model_dir()
    vad = vad_model_path()
    assert mdir is not None and vad is not None
    _files = ModelFiles(encoder=mdir / ENCODER, decoder=mdir / DECODER, tokens=ensure_tokens(mdir / TOKENIZER),
                        vad=vad)
    return _files


def get_recognizer(threads: int) -> LoadedRecognizer:
    """The process's recognizer, loaded on first use (blocking: call it off the event loop).

    A different ``threads`` replaces the cached one (the old one is freed once no decode holds it).
    """
    global _loaded
    with _load_lock:
        if _loaded is not None and _loaded.threads == threads:
            return _loaded
        files = model_files()
        try:
            import sherpa_onnx
        except ImportError as exc:  # find_spec saw it but it does not load
            raise FatalProviderError(f"{INSTALL_HINT} (importing sherpa_onnx failed: {exc})") from exc
        started = time.perf_counter()
        try:
            recognizer = sherpa_onnx.OfflineRecognizer.from_moonshine_v2(
                encoder=str(files.encoder), decoder=str(files.decoder), tokens=str(files.tokens),
                num_threads=int(threads),
            )
        except Exception as exc:  # the native loader raises assorted types
            raise FatalProviderError(f"could not load the local model {MODEL_NAME}: {exc}") from exc
        _loaded = LoadedRecognizer(recognizer, int(threads), time.perf_counter() - started, threading.Lock())
        return _loaded


def cached_recognizer() -> LoadedRecognizer | None:
    return _loaded


def new_vad() -> Any:
    """A fresh Silero ``sherpa_onnx.VadModel`` that classifies single windows, with no smoothing of its
    own (min speech / min silence 0): the segmenter does the smoothing. Cheap (about 60 ms)."""
    files = model_files()
    import sherpa_onnx

    config = sherpa_onnx.VadModelConfig()
    config.silero_vad.model = str(files.vad)
    config.silero_vad.min_silence_duration = 0.0
    config.silero_vad.min_speech_duration = 0.0
    config.silero_vad.max_speech_duration = 1e6
    config.sample_rate = SAMPLE_RATE
    config.num_threads = 1
    try:
        return sherpa_onnx.VadModel.create(config)
    except Exception as exc:
        raise FatalProviderError(f"could not load the Silero VAD model {files.vad}: {exc}") from exc
