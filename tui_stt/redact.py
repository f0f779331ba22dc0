"""One redaction step for text that came from a server (core: no Textual).

Error messages, close reasons, warnings, echoed URLs and raw frames can carry a credential back to us:
a provider that quotes the request, a proxy that echoes headers, a URL with ``user:password@``. Before
such text is shown, journaled or logged it goes through a ``Redactor``:

* every known secret (API keys, passwords taken from URLs) is replaced with ``[REDACTED]``, raw,
  percent-encoded (either hex case, ``+`` for spaces or not) and base64-encoded;
* credential-looking text is scrubbed even when the secret is not known: ``Authorization: ...`` (and
  ``Proxy-Authorization``, ``X-API-Key``, ``X-Auth-Token``) up to the end of the line, a quote or a
  comma; ``Token``/``Bearer``/``Basic`` followed by something that looks like a credential (8+
  characters with a digit, an inner capital or ``=`` padding); ``api_key=``/``token=``/``password=``...
  parameters; ``"token": "..."`` in JSON; bare JWTs; and the user info of URLs
  (``ws://user:pw@host`` -> ``ws://[REDACTED]@host``).

Ordinary text is left alone: "the token was refused", ``tokens.txt``, ``trigger=model``,
``keyterm=Textual``. ``Redactor.value`` redacts the strings inside nested dicts, lists and tuples (and
the values of dict keys such as ``"authorization"`` or ``"api_key"``); ``redact_event`` returns a copy of
a ``tui_stt.events`` event with every string redacted, and the event itself when nothing needed it.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from tui_stt.events import Turn, Word

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 4  # a shorter "secret" would mangle ordinary text

# Parameter and key names whose value is a credential (compared lower-case, "-" read as "_").
SENSITIVE_NAMES = frozenset({
    "api_key", "apikey", "access_token", "auth_token", "refresh_token", "id_token", "token", "key",
    "password", "passwd", "secret", "client_secret", "authorization", "proxy_authorization", "x_api_key",
    "x_auth_token",
})
_NAME_RE = "|".join(sorted((re.escape(n).replace("_", "[_-]") for n in SENSITIVE_NAMES), key=len, reverse=True))

# Characters of a token after Token/Bearer/Basic; it looks like a credential when it is 8+ of these with
# a digit, a capital after a small letter, or "=" padding at its end, not followed by a letter of any
# script ("the token was refused", "token endpointing=300" and "token trigger=ä" are left alone).
_CRED = r"[A-Za-z0-9._~+/-]"
_CRED_OR_EQ = r"[A-Za-z0-9._~+/=-]"
_CREDENTIAL = (rf"(?={_CRED_OR_EQ}{{8}})(?={_CRED}*?(?:[0-9]|[a-z][A-Z]|{_CRED}=+(?![A-Za-z0-9_.~+/-]|[^\x00-\x7f])))"
               rf"{_CRED_OR_EQ}+")

# Each pattern: (text kept in front of the redaction, the part replaced). Case-insensitive only where
# it says (?i:...): the credential test needs to see capitals.
_PATTERNS = (
    # Authorization: Token abc / "Authorization": "Bearer x" / authorization=...
    (r"(?<![A-Za-z0-9_])(?i:proxy-authorization|authorization|x-api-key|x-auth-token)"
     r"[\"']?[ \t]*[:=][ \t]*[\"']?",
     r"[^\s\"',}][^\r\n\"',}]*"),
    # Token abc123... / Bearer eyJ... / basic dXNlcjpwYXNz (also "token, KEY" as in a subprotocol list)
    (r"\b(?i:bearer|token|basic)(?:[ \t]+|[ \t]*,[ \t]*)", _CREDENTIAL),
    # ?api_key=...&token=... and password=... in any text
    (rf"(?<![A-Za-z0-9_])(?i:{_NAME_RE})=", r"[^&\s\"'#,;<>]+"),
    # "token": "..." / 'api_key': '...' in JSON or a Python repr
    (rf"[\"'](?i:{_NAME_RE})[\"'][ \t]*:[ \t]*[\"']", r"[^\"'\r\n]+"),
    # ws://user:password@host -> ws://[REDACTED]@host (up to the last "@" of the authority)
    (r"\b[A-Za-z][A-Za-z0-9+.-]*://", r"[^\s/?#\"'<>]+(?=@)"),
    # a bare JSON Web Token
    ("", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
)

# Something every pattern above needs, looked for in the lower-cased text first: most text has none of
# these, and one search for them is much faster than trying every pattern at every position.
_TRIGGERS = ("authoriz", "bearer", "token", "basic", "key", "pass", "secret", "://", "eyj")
_TRIGGER = re.compile("|".join(re.escape(t) for t in _TRIGGERS))

_T = TypeVar("_T")


def _hex_any_case(encoded: str) -> str:
    """A regex for ``encoded`` where each ``%XX`` escape matches in either hex case."""
    parts = re.split(r"(%[0-9A-Fa-f]{2})", encoded)
    out = []
    for part in parts:
        if re.fullmatch(r"%[0-9A-Fa-f]{2}", part):
            out.append("%" + "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in part[1:]))
        elif part:
            out.append(re.escape(part))
    return "".join(out)


def _variants(secret: str) -> dict[str, int]:
    """Regexes for the forms ``secret`` can take in text (raw, percent-encoded, base64), each with the
    length of the text it matches."""
    forms = {re.escape(secret): len(secret)}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret, safe=""), quote_plus(secret)):
        if encoded != secret:
            forms[_hex_any_case(encoded)] = len(encoded)
    data = secret.encode("utf-8")
    for encoded_bytes in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
        text = encoded_bytes.decode("ascii").rstrip("=")
        if len(text) >= MIN_SECRET_CHARS:
            forms[re.escape(text)] = len(text)
    return forms


class Redactor:
    """Redacts the given secrets, and anything that looks like a credential, from server-provided text.

    ``secrets`` are the secrets in force (API keys, passwords from URLs); ``None``, empty and shorter
    than ``MIN_SECRET_CHARS`` ones are ignored. Build it once and reuse it: when there is nothing to
    redact, ``text`` is two quick searches (``may_need``) and returns its argument. ``repr()`` never
    shows a secret.
    """

    __slots__ = ("_compiled", "_count", "_keep", "_known")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._known = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._count = len(self._known)
        self._keep = [f"keep{number}" for number, (keep, _value) in enumerate(_PATTERNS) if keep]
        self._compiled: tuple[re.Pattern[str], re.Pattern[str] | None] | None = None  # see _regexes

    def _regexes(self) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
        """The pattern of everything redacted and the one of the secrets' forms, built on first use (not at
        start-up: the dashboard's first frame does not wait for them)."""
        if self._compiled is None:
            forms: dict[str, int] = {}
            for secret in self._known:
                forms.update(_variants(secret))
            # Longest first: the alternation takes the first form that matches, and that must be the whole
            # (one secret can start with another).
            ordered = sorted(forms, key=lambda form: (-forms[form], form))
            alternatives = list(ordered)
            for number, (keep, value) in enumerate(_PATTERNS):
                alternatives.append(f"(?P<keep{number}>{keep}){value}" if keep else value)
            self._compiled = (re.compile("|".join(alternatives), re.ASCII),
                              re.compile("|".join(ordered)) if ordered else None)
        return self._compiled

    @property
    def _pattern(self) -> re.Pattern[str]:
        return self._regexes()[0]

    @property
    def _secrets(self) -> re.Pattern[str] | None:
        return self._regexes()[1]

    def _replace(self, match: re.Match[str]) -> str:
        for name in self._keep:
            kept = match.group(name)
            if kept is not None:
                return kept + REDACTED
        return REDACTED

    def text(self, s: str) -> str:
        """``s`` with every secret and credential-looking part replaced by ``[REDACTED]`` (``s`` itself,
        the same object, when there is nothing to redact)."""
        if not self.may_need(s):
            return s
        pattern, secrets = self._compiled or self._regexes()
        result = pattern.sub(self._replace, s)
        if secrets is not None:  # a secret hidden in a kept prefix (a header name, say)
            result = secrets.sub(REDACTED, result)
        return s if result == s else result

    def may_need(self, s: str) -> bool:
        """False when ``text(s)`` is certainly ``s``: no secret form and no keyword any pattern needs
        (one search of the lower-cased text, one of the text for the secrets)."""
        secrets = (self._compiled or self._regexes())[1]
        return _TRIGGER.search(s.lower()) is not None or (secrets is not None and secrets.search(s) is not None)

    def value(self, obj: _T) -> _T:
        """``obj`` with every string inside (nested dicts, lists, tuples, frozen dataclasses) redacted;
        the value of a dict key named like a credential (``authorization``, ``api_key``, ``token``,
        ``password``...) is replaced outright. Other values are kept; unchanged parts are the same
        objects, and ``obj`` itself comes back when nothing needed redacting."""
        return self._value(obj)

    def _value(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            changed = False
            result = {}
            for key, item in obj.items():
                new_key = self.text(key) if isinstance(key, str) else key
                if isinstance(key, str) and isinstance(item, str) and item and _sensitive(key):
                    new_item: Any = REDACTED
                else:
                    new_item = self._value(item)
                changed = changed or new_key is not key or new_item is not item
                result[new_key] = new_item
            return result if changed else obj
        if isinstance(obj, (list, tuple)):
            if obj and all(type(item) is Word for item in obj) and not self.may_need(_word_strings(obj)):
                return obj  # Partial.words, Turn.words: one search for them all
            items = [self._value(item) for item in obj]
            if all(new is old for new, old in zip(items, obj, strict=True)):
                return obj
            if isinstance(obj, list):
                return items
            if hasattr(obj, "_fields"):  # a named tuple
                return type(obj)(*items)
            return tuple(items)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return _redact_dataclass(obj, self)
        return obj

    def __repr__(self) -> str:
        return f"Redactor({self._count} secret{'s' if self._count != 1 else ''})"


def _sensitive(key: str) -> bool:
    return key.strip().lower().replace("-", "_") in SENSITIVE_NAMES


_FIELDS: dict[type, tuple[str, ...]] = {}


def _word_strings(words: Iterable[Word]) -> str:
    return "\n".join(f"{w.text}\n{w.speaker or ''}" for w in words)


def _redact_dataclass(obj: Any, redactor: Redactor) -> Any:
    # A turn's strings are searched as one text first: ``may_need`` looks for substrings, so the joined
    # text has one whenever any of its strings has.
    if type(obj) is Turn and not redactor.may_need(
        f"{obj.text}\n{obj.product}\n{obj.speaker or ''}\n{obj.trigger or ''}\n{_word_strings(obj.words)}"
    ):
        return obj
    cls = type(obj)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(obj) if f.init)
    changes = {}
    for name in names:
        old = getattr(obj, name)
        if old is None or isinstance(old, (bool, int, float)):
            continue
        new = redactor._value(old)
        if new is not old:
            changes[name] = new
    return dataclasses.replace(obj, **changes) if changes else obj


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``Redactor(secrets).text(text)``: for a one-off; build a ``Redactor`` to redact many."""
    return Redactor(secrets).text(text)


def redact_event(event: _T, redactor: Redactor) -> _T:
    """A copy of a ``tui_stt.events`` event with every string redacted: ``str`` fields, the strings in
    dict fields (``Configured.changes``) and in nested turns and words (``Committed.turn``,
    ``Partial.words``). The event itself comes back when nothing needed it (the usual case: one regex
    search per string, no copy)."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise TypeError(f"redact_event takes an event, not {type(event).__name__}")
    result: _T = _redact_dataclass(event, redactor)
    return result
