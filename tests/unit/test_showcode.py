"""--show-code programs: they compile, connect with exactly tui-stt's parameters, and name real SDK APIs."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.dummy_product import SPEC as DUMMY
from tui_stt import catalog
from tui_stt.presets import BUILTIN, preset_options
from tui_stt.providers.base import ConnectionConfig
from tui_stt.providers.options import OptionError, validate_options
from tui_stt.showcode import ShowCodeError, connect_kwargs, literal, products, snippet

PRODUCTS = ("nova-3", "flux", "u3-rt-pro", "local")
KEY_ENV = {"nova-3": "DEEPGRAM_API_KEY", "flux": "DEEPGRAM_API_KEY", "u3-rt-pro": "ASSEMBLYAI_API_KEY"}
SOME_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "nova-3": [{}, {"endpointing": None, "keyterm": ["Textual", "tui-stt"], "diarize": True},
               {"interim_results": False, "utterance_end_ms": 3000, "language": "multi", "numerals": True},
               {"utterance_end_ms": None, "model": "nova-3-medical"}],
    "flux": [{}, {"eager_eot_threshold": 0.5, "eot_threshold": 0.9, "eot_timeout_ms": 60000},
             {"model": "flux-general-multi", "keyterm": ["a", "b"]}],
    "u3-rt-pro": [{}, {"keyterms_prompt": ["Textual"], "speaker_labels": True, "format_turns": False},
                  {"region": "eu", "min_turn_silence": 0, "max_turn_silence": 60000, "vad_threshold": 0.5}],
    "local": [{}, {"min_silence_ms": 100, "max_segment_s": 2.0, "partial_interval_s": 0.2, "threads": 8}],
}
CASES = [(product, options) for product, many in SOME_OPTIONS.items() for options in many]
CASES += [(product, preset_options(product, name)) for product in PRODUCTS for name in BUILTIN]


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def tree(product: str, options: dict[str, Any]) -> ast.Module:
    source = snippet(product, options)
    compile(source, f"<{product}>", "exec")
    return ast.parse(source)


def call_named(module: ast.Module, suffix: str) -> ast.Call:
    """The one call whose function is written ``...suffix`` (e.g. ``listen.v1.connect``)."""
    found = [node for node in ast.walk(module) if isinstance(node, ast.Call)
             and ast.unparse(node.func).endswith(suffix)]
    assert len(found) == 1, (suffix, [ast.unparse(f.func) for f in found])
    return found[0]


def literal_kwargs(call: ast.Call) -> dict[str, Any]:
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg is not None}


def constants(module: ast.Module) -> dict[str, Any]:
    return {node.targets[0].id: ast.literal_eval(node.value) for node in module.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper()}


def connected_with(product: str, module: ast.Module) -> dict[str, Any]:
    """What the program connects with, read back out of its source."""
    if product == "nova-3":
        return literal_kwargs(call_named(module, "listen.v1.connect"))
    if product == "flux":
        return literal_kwargs(call_named(module, "listen.v2.connect"))
    if product == "u3-rt-pro":
        return literal_kwargs(call_named(module, "StreamingParameters"))
    consts = constants(module)
    return {"min_silence_ms": consts["MIN_SILENCE_MS"], "max_segment_s": consts["MAX_SEGMENT_S"],
            "partial_interval_s": consts["PARTIAL_INTERVAL_S"], "threads": consts["THREADS"]}


# -- every product's program compiles and carries the options ------------------------------------------


def test_every_builtin_product_has_a_program() -> None:
    assert set(products()) == set(PRODUCTS)


@pytest.mark.parametrize(("product", "options"), CASES)
def test_the_program_compiles_and_connects_with_exactly_the_options(product: str, options: dict[str, Any]) -> None:
    module = tree(product, options)
    assert connected_with(product, module) == connect_kwargs(product, options)
    full = validate_options(product, options)
    if product == "u3-rt-pro":  # the region is the host, not a parameter
        host = call_named(module, "StreamingClientOptions")
        expected = {"us": "streaming.assemblyai.com", "eu": "streaming.eu.assemblyai.com"}[full["region"]]
        assert {kw.arg: ast.unparse(kw.value) for kw in host.keywords} == {"api_key": "api_key",
                                                                            "api_host": repr(expected)}


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_options_appear_in_the_source(product: str) -> None:
    options = SOME_OPTIONS[product][1]
    source = snippet(product, options)
    for value in connect_kwargs(product, options).values():
        assert literal(value) in source


@pytest.mark.parametrize("product", ["nova-3", "flux", "u3-rt-pro"])
def test_the_key_comes_from_the_environment_never_the_source(product: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV[product], "sk-secret-0123456789")
    source = snippet(product, {})
    assert "sk-secret" not in source
    assert f'os.environ.get("{KEY_ENV[product]}")' in source
    assert "api_key=api_key" in source


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_microphone_is_decibri_at_16_khz_mono_int16_100_ms(product: str) -> None:
    module = tree(product, {})
    call = call_named(module, "decibri.Microphone")
    assert {kw.arg: ast.unparse(kw.value) for kw in call.keywords} == {
        "sample_rate": "SAMPLE_RATE", "channels": "1", "frames_per_buffer": "FRAMES_PER_BUFFER", "dtype": "'int16'"}
    assert constants(module)["SAMPLE_RATE"] == 16000 and constants(module)["FRAMES_PER_BUFFER"] == 1600


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_program_prints_partials_and_finals(product: str) -> None:
    source = snippet(product, {})
    assert '"partial:"' in source and '"final:  "' in source


text_values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(terms=st.lists(text_values, max_size=4), language=text_values)
def test_any_text_option_stays_inside_its_literal(terms: list[str], language: str) -> None:
    try:
        options = validate_options("nova-3", {"keyterm": terms, "language": language})
    except OptionError:
        return
    module = tree("nova-3", options)
    got = literal_kwargs(call_named(module, "listen.v1.connect"))
    assert got["language"] == options["language"]
    assert got.get("keyterm", []) == options["keyterm"]
    # nothing but the expected statements: no text became code
    assert [type(n).__name__ for n in module.body][-1] == "If"


def test_bad_options_are_refused() -> None:
    with pytest.raises(OptionError, match="endpointing"):
        snippet("nova-3", {"endpointing": 5})


def test_a_product_without_a_program_is_one_line() -> None:
    catalog.register(DUMMY)
    try:
        with pytest.raises(ShowCodeError) as exc:
            snippet("dummy", {})
        assert str(exc.value) == "no code sample for DummyCo Echo (--show-code knows nova-3, flux, u3-rt-pro, local)"
    finally:
        catalog.unregister("dummy")


# -- the programs connect as tui-stt does ------------------------------------------------------------------


def provider_kwargs(product: str, options: dict[str, Any]) -> dict[str, Any]:
    """What tui-stt's own connection class sends for these options."""
    config = ConnectionConfig(product=product, options=validate_options(product, options), api_key="k",
                              base_url=None)
    cls = catalog.get(product).connection_class()
    conn: Any = cls(config, lambda _event: None)
    if product == "u3-rt-pro":
        params = conn._params()
        return {k: (v.value if hasattr(v, "value") else v) for k, v in params.model_dump(exclude_none=True).items()}
    return dict(conn._connect_kwargs())


@pytest.mark.parametrize(("product", "options"), [c for c in CASES if c[0] != "local"])
async def test_connect_kwargs_are_what_the_app_sends(product: str, options: dict[str, Any]) -> None:
    # async: the connection classes make asyncio events
    assert connect_kwargs(product, options) == provider_kwargs(product, options)


# -- the SDK names the programs use exist in the installed SDKs ------------------------------------------


def imported_names(module: ast.Module) -> Iterator[tuple[str, str | None, str]]:
    """(module, name imported from it or None, the name it is bound to in the program)."""
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                yield node.module or "", alias.name, alias.asname or alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, alias.asname or alias.name.split(".")[0]


def attribute_chains(module: ast.Module, roots: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """``sherpa_onnx.OfflineRecognizer.from_moonshine_v2`` -> ("sherpa_onnx", ["OfflineRecognizer", ...])."""
    for node in ast.walk(module):
        if isinstance(node, ast.Attribute):
            chain: list[str] = []
            cur: ast.expr = node
            while isinstance(cur, ast.Attribute):
                chain.insert(0, cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id in roots:
                yield cur.id, chain


THIRD_PARTY = {"nova-3": ("deepgram", "decibri"), "flux": ("deepgram", "decibri"),
               "u3-rt-pro": ("assemblyai", "decibri"), "local": ("sherpa_onnx", "numpy", "decibri")}


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_imported_sdk_name_exists(product: str) -> None:
    missing = [m for m in THIRD_PARTY[product] if not installed(m)]
    if missing:
        pytest.skip(f"not installed: {missing}")
    module = tree(product, {})
    roots: dict[str, Any] = {}
    for name, attr, bound in imported_names(module):
        imported = importlib.import_module(name)
        if attr is None:
            # ``import numpy as np`` binds the module; ``import importlib.util`` binds the package
            roots[bound] = imported if bound != name.split(".")[0] else importlib.import_module(bound)
        else:
            assert hasattr(imported, attr), f"{name}.{attr}"
            roots[bound] = getattr(imported, attr)
    assert "decibri" in roots
    checked = 0
    for root, chain in attribute_chains(module, roots):
        obj = roots[root]
        for attr in chain:
            assert hasattr(obj, attr), f"{root}.{'.'.join(chain)}"
            obj = getattr(obj, attr)
        checked += 1
    assert checked >= 3


def test_the_local_program_uses_what_sherpa_onnx_has() -> None:
    if not installed("sherpa_onnx"):
        pytest.skip("sherpa-onnx not installed")
    import sherpa_onnx

    module = tree("local", {})
    used: dict[str, set[str]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            used.setdefault(node.value.id, set()).add(node.attr)
    assert used["vad"] <= set(dir(sherpa_onnx.VoiceActivityDetector)), used["vad"]
    assert used["recognizer"] <= set(dir(sherpa_onnx.OfflineRecognizer)), used["recognizer"]
    config = sherpa_onnx.VadModelConfig()
    for node in ast.walk(module):  # config.silero_vad.x = ... / config.x = ...
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            target = ast.unparse(node.targets[0])
            if target.startswith("config."):
                obj: Any = config
                for attr in target.split(".")[1:]:
                    assert hasattr(obj, attr), target
                    obj = getattr(obj, attr)


def test_the_methods_called_on_sdk_objects_exist() -> None:
    if not installed("deepgram") or not installed("assemblyai"):
        pytest.skip("SDKs not installed")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from assemblyai.streaming.v3 import StreamingClient, StreamingParameters
        from deepgram import DeepgramClient
        from deepgram.listen.v1.socket_client import V1SocketClient
        from deepgram.listen.v2.socket_client import V2SocketClient

    client = DeepgramClient(api_key="x")
    assert callable(client.listen.v1.connect) and callable(client.listen.v2.connect)
    used = {"nova-3": (V1SocketClient, "connection"), "flux": (V2SocketClient, "connection"),
            "u3-rt-pro": (StreamingClient, "client")}
    for product, (cls, var) in used.items():
        module = tree(product, SOME_OPTIONS[product][1])
        methods = {node.func.attr for node in ast.walk(module) if isinstance(node, ast.Call)
                   and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                   and node.func.value.id == var}
        assert methods, product
        for method in methods:
            assert hasattr(cls, method), f"{product}: {cls.__name__}.{method}"
    # the parameters the program passes are fields of the SDK's model
    kwargs = connected_with("u3-rt-pro", tree("u3-rt-pro", SOME_OPTIONS["u3-rt-pro"][1]))
    assert set(kwargs) <= set(StreamingParameters.model_fields)
    StreamingParameters(**kwargs)  # and it accepts their values


def test_the_deepgram_connect_parameters_are_the_sdks() -> None:
    if not installed("deepgram"):
        pytest.skip("deepgram-sdk not installed")
    import inspect
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from deepgram.listen.v1.client import V1Client
        from deepgram.listen.v2.client import V2Client

    for product, cls in (("nova-3", V1Client), ("flux", V2Client)):
        accepted = set(inspect.signature(cls.connect).parameters)
        for options in SOME_OPTIONS[product]:
            assert set(connect_kwargs(product, options)) <= accepted, product
