"""tokens.txt for sherpa-onnx, generated from Moonshine's tokenizer.bin into the user cache dir."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tui_stt.providers import local_model
from tui_stt.providers.base import FatalProviderError
from tui_stt.providers.local_model import ensure_tokens, parse_tokenizer, tokens_path, tokens_text

from .conftest import needs_local


def _encode(tokens: list[bytes]) -> bytes:
    out = bytearray()
    for tok in tokens:
        n = len(tok)
        out += bytes([n]) if n < 128 else bytes([128 + n % 128, n // 128])
        out += tok
    return bytes(out)


def test_parse_handles_long_and_empty_tokens() -> None:
    tokens = [b"<unk>", b"", b"x" * 127, b"y" * 128, b"z" * 300, "\u2581the".encode()]
    assert parse_tokenizer(_encode(tokens)) == tokens


@pytest.mark.parametrize("data", [b"\x05abc", b"\x85"])
def test_parse_refuses_truncated_data(data: bytes) -> None:
    with pytest.raises(ValueError, match="truncated"):
        parse_tokenizer(data)


def test_tokens_path_follows_xdg_cache_home_at_call_time(isolated_xdg: Path, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    assert tokens_path() == isolated_xdg / "cache" / "tui-stt" / "moonshine-base-en" / "tokens.txt"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    assert tokens_path() == tmp_path / "elsewhere" / "tui-stt" / "moonshine-base-en" / "tokens.txt"


def test_synthetic_tokenizer_round_trip(tmp_path: Path) -> None:
    tokens = [b"<unk>", b"<s>", b"</s>", "\u2581hello".encode(), b"\xe9\xbb", b"q" * 200]
    src = tmp_path / "tokenizer.bin"
    src.write_bytes(_encode(tokens))
    dest = ensure_tokens(src, tmp_path / "out" / "tokens.txt")
    lines = dest.read_text(encoding="ascii").splitlines()
    assert [base64.b64decode(line.split(" ")[0]) for line in lines] == tokens
    assert [int(line.split(" ")[1]) for line in lines] == list(range(len(tokens)))


def test_unreadable_tokenizer_is_a_fatal_provider_error(tmp_path: Path) -> None:
    src = tmp_path / "tokenizer.bin"
    src.write_bytes(b"\x09short")
    with pytest.raises(FatalProviderError, match="tokenizer"):
        ensure_tokens(src, tmp_path / "tokens.txt")


@needs_local
def test_real_tokenizer_generates_32000_lines_in_the_cache_dir(isolated_xdg: Path) -> None:
    mdir = local_model.model_dir()
    assert mdir is not None
    dest = ensure_tokens()
    assert dest == isolated_xdg / "cache" / "tui-stt" / "moonshine-base-en" / "tokens.txt"
    lines = dest.read_text(encoding="ascii").splitlines()
    assert len(lines) == 32000
    table = {int(i): base64.b64decode(b64) for b64, i in (line.split(" ") for line in lines)}
    assert table[0] == b"<unk>" and table[1] == b"<s>" and table[2] == b"</s>"
    assert table[278] == "\u2581the".encode()
    assert table[3474] == "\u2581window".encode()
    assert table[49] == b"."
    assert table == dict(enumerate(parse_tokenizer((mdir / "tokenizer.bin").read_bytes())))
    assert not [p for p in dest.parent.iterdir() if p.name != "tokens.txt"]  # no temporary file left


@needs_local
def test_valid_file_is_reused_and_a_corrupt_or_missing_one_regenerated() -> None:
    dest = ensure_tokens()
    good = dest.read_bytes()
    stamp = dest.stat().st_mtime_ns
    os.utime(dest, ns=(stamp - 10**9, stamp - 10**9))
    stamp = dest.stat().st_mtime_ns
    assert ensure_tokens() == dest
    assert dest.stat().st_mtime_ns == stamp  # reused, not rewritten

    dest.write_bytes(good[: len(good) // 2])  # truncated
    ensure_tokens()
    assert dest.read_bytes() == good

    dest.write_bytes(good.replace(b" 31999\n", b" 1\n"))  # wrong index
    ensure_tokens()
    assert dest.read_bytes() == good

    dest.unlink()
    ensure_tokens()
    assert dest.read_bytes() == good
    assert good == tokens_text(parse_tokenizer((local_model.model_dir() / "tokenizer.bin").read_bytes())).encode()
