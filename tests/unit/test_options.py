import datetime
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_stt.providers.base import FatalProviderError, check_url
from tui_stt.providers.options import PRODUCTS, OptionError, changed_options, validate_options


def test_defaults_are_valid_for_every_product() -> None:
    for name in PRODUCTS:
        assert validate_options(name) == PRODUCTS[name].defaults()


@pytest.mark.parametrize(
    ("product", "name", "value", "text"),
    [
        ("flux", "eot_threshold", 1.5, "flux option eot_threshold: 1.5 is out of range: a number from 0.5 to 1.0"),
        ("flux", "eager_eot_threshold", "0.95", "from 0.3 to 0.9"),
        ("flux", "eot_timeout_ms", 100, "from 500 to 60000 ms"),
        ("nova-3", "endpointing", "soon", "'soon' is not a whole number from 10 to 10000 ms"),
        ("nova-3", "interim_results", "maybe", "true or false"),
        ("u3-rt-pro", "speech_model", "best", "one of u3-rt-pro"),
        ("u3-rt-pro", "region", "mars", "one of us, eu"),
        ("nova-3", "colour", "red", "unknown option"),
    ],
)
def test_bad_values_are_refused_naming_the_option_and_range(product, name, value, text) -> None:
    with pytest.raises(OptionError) as info:
        validate_options(product, {name: value})
    assert text in str(info.value)
    assert name in str(info.value)


def test_values_are_parsed_from_text() -> None:
    o = validate_options("nova-3", {"endpointing": "500", "smart_format": "off", "keyterm": "Textual, Deepgram"})
    assert o["endpointing"] == 500 and o["smart_format"] is False and o["keyterm"] == ["Textual", "Deepgram"]
    assert validate_options("flux", {"eager_eot_threshold": ""})["eager_eot_threshold"] is None


def test_changes_split_into_live_and_reconnect() -> None:
    old = validate_options("flux")
    new = validate_options("flux", {"eot_threshold": 0.8, "model": "flux-general-multi"})
    live, cold = changed_options("flux", old, new)
    assert live == {"eot_threshold": 0.8}
    assert cold == {"model": "flux-general-multi"}


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8765", "ws://localhost:1/", "wss://api.example.com", "ws://[::1]:9"])
def test_safe_urls_pass(url: str) -> None:
    assert not check_url(url).endswith("/")


def test_plain_ws_to_a_remote_host_is_refused_unless_allowed() -> None:
    with pytest.raises(FatalProviderError, match="unencrypted ws:// to example.com.*--allow-insecure"):
        check_url("ws://example.com:8080")
    assert check_url("ws://example.com:8080", allow_insecure=True) == "ws://example.com:8080"
    with pytest.raises(FatalProviderError, match="not a WebSocket URL"):
        check_url("http://example.com")


# -- parse never lets a bad value through, and never fails with anything but OptionError ----------------------

SPECS = [(product, spec) for product, p in PRODUCTS.items() for spec in p.options]

NUMBER_TEXT = st.from_regex(r"\s*[-+]?(\d{1,400}|\d*\.\d+|inf|infinity|nan)([eE][-+]?\d{1,4})?\s*", fullmatch=True)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), NUMBER_TEXT,
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-1e400", "1_000", " 500 ", "0x10", "true", "off", "",
                     "9" * 5000, "us", "flux-general-multi", "a, b,,c"]),
    st.datetimes(), st.dates(), st.times(), st.from_type(complex), st.from_type(bytes), st.decimals(),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(st.text(max_size=5), inner, max_size=3),
), max_leaves=8)


def assert_allowed(spec, value) -> None:
    if value is None:
        assert spec.optional
    elif spec.type == "bool":
        assert isinstance(value, bool)
    elif spec.type in ("int", "float"):
        assert type(value) is (int if spec.type == "int" else float)
        assert math.isfinite(value) and spec.min <= value <= spec.max
    elif spec.type == "choice":
        assert value in spec.choices
    elif spec.type == "list":
        assert isinstance(value, list) and all(isinstance(i, str) and i == i.strip() and i for i in value)
    else:
        assert isinstance(value, str) and value == value.strip()


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SPECS), VALUES)
def test_parse_returns_an_allowed_value_or_raises_option_error(case, raw) -> None:
    product, spec = case
    try:
        value = spec.parse(raw, product)
    except OptionError as exc:
        text = str(exc)
        assert text.startswith(f"{product} option {spec.name}: ") and spec.allowed() in text
        assert "\n" not in text and len(text) < 400
        return
    assert_allowed(spec, value)
    again = spec.parse(value, product)
    assert again == value and type(again) is type(value)


@pytest.mark.parametrize(("product", "name", "value", "text"), [
    ("nova-3", "endpointing", "inf", "'inf' is not a whole number from 10 to 10000 ms"),
    ("nova-3", "endpointing", math.inf, "inf is not a whole number"),
    ("nova-3", "endpointing", -math.inf, "-inf is not a whole number"),
    ("nova-3", "endpointing", math.nan, "nan is not a whole number"),
    ("nova-3", "utterance_end_ms", "1e400", "'1e400' is not a whole number from 1000 to 5000 ms"),
    ("nova-3", "utterance_end_ms", 1e300, "1e+300 is out of range"),
    ("nova-3", "endpointing", 10**400, "a number of about 400 digits is out of range: a whole number from 10"),
    ("nova-3", "endpointing", -(10**400), "a negative number of about 400 digits is out of range"),
    ("flux", "eot_threshold", 10**400, "a number of about 400 digits is out of range: a number from 0.5 to 1.0"),
    ("flux", "eot_threshold", "nan", "'nan' is not a number from 0.5 to 1.0"),
    ("flux", "eot_timeout_ms", True, "True is not a whole number"),
    ("flux", "eot_threshold", [0.8], "[0.8] is not a number"),
    ("flux", "eot_threshold", {"v": 0.8}, "{'v': 0.8} is not a number"),
    ("flux", "eot_threshold", datetime.date(2024, 1, 2), "datetime.date(2024, 1, 2) is not a number"),
    ("flux", "keyterm", 7, "7 is not a comma-separated list"),
    ("flux", "keyterm", {"a": 1}, "{'a': 1} is not a comma-separated list"),
    ("flux", "keyterm", [["nested"]], "[['nested']] is not a comma-separated list"),
    ("flux", "model", ["flux-general-en"], "['flux-general-en'] is not one of"),
    ("nova-3", "model", 3, "3 is not text"),
    ("nova-3", "diarize", 1, "1 is not true or false"),
    ("nova-3", "language", "x" * 5000, "'xxxxxxxx"),  # text is text, however long
])
def test_bad_values_of_every_kind_are_option_errors(product, name, value, text) -> None:
    if name == "language":
        assert validate_options(product, {name: value})[name] == value
        return
    with pytest.raises(OptionError) as info:
        validate_options(product, {name: value})
    assert text in str(info.value) and len(str(info.value)) < 300
