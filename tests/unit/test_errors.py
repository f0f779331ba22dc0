"""Errors are classified once (``tui_stt.providers.errors``): fatal ends at once with one line, transient retries."""

from __future__ import annotations

import pytest

from tui_stt.providers import errors
from tui_stt.providers.base import AuthError, FatalProviderError


@pytest.mark.parametrize(("status", "fatal"), [
    (101, False),  # the upgrade itself
    (200, True), (204, True),  # a web page (a web server, a captive portal): not a WebSocket endpoint
    (301, True), (302, True), (307, True),  # a redirect the WebSocket client could not follow
    (400, True), (401, True), (403, True), (404, True), (414, True), (418, True),
    (408, False), (425, False), (429, False),  # "try again" 4xx
    (500, False), (502, False), (503, False), (504, False),
    (None, False),
])
def test_handshake_answers_are_fatal_or_transient(status: int | None, fatal: bool) -> None:
    assert errors.http_is_fatal(status) is fatal
    err = errors.from_http("Deepgram", status)
    assert err.retryable is not fatal
    if status in (401, 403):
        assert isinstance(err, AuthError)


@pytest.mark.parametrize(("status", "words"), [(200, "web page"), (302, "redirects elsewhere"),
                                               (404, "no such endpoint"), (414, "too long")])
def test_a_fatal_handshake_says_what_to_check(status: int, words: str) -> None:
    err = errors.from_http("AssemblyAI", status)
    assert isinstance(err, FatalProviderError) and words in str(err) and f"HTTP {status}" in str(err)


def test_a_redirect_to_a_url_the_client_cannot_follow_is_fatal() -> None:
    from websockets.exceptions import InvalidURI

    try:
        try:
            raise InvalidURI("http://portal.invalid/login", "scheme isn't ws or wss")
        except InvalidURI as inner:
            raise RuntimeError("connect failed") from inner
    except RuntimeError as exc:
        err = errors.from_exception("Deepgram", "wss://api.example", exc)
    assert isinstance(err, FatalProviderError) and not err.retryable
    assert "not a WebSocket endpoint" in str(err) and "portal.invalid" in str(err)


@pytest.mark.parametrize(("code", "fatal"), [(1008, True), (4001, True), (3006, True), (1002, True),
                                             (1006, False), (1011, False), (3005, False), (4400, False),
                                             (1012, False), (None, False)])
def test_close_codes_are_fatal_or_transient(code: int | None, fatal: bool) -> None:
    assert errors.close_is_fatal(code) is fatal
    assert errors.from_close("Deepgram", code).retryable is not fatal


def test_a_connection_that_never_answers_http_stays_transient() -> None:
    err = errors.from_exception("Deepgram", "ws://127.0.0.1:9", ConnectionRefusedError(111, "refused"))
    assert err.retryable and "cannot connect" in str(err)
