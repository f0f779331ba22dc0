import pytest

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
    with pytest.raises(FatalProviderError, match="invalid URL"):
        check_url("http://example.com")
