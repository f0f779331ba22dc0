"""The catalog is the one place that knows each product; the README's option tables are generated from it."""

from __future__ import annotations

from pathlib import Path

from tui_stt import catalog

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_option_tables_are_the_catalog() -> None:
    block = README.split("<!-- options:", 1)[1].split("-->", 1)[1].split("<!-- /options -->", 1)[0]
    assert block.strip() == catalog.options_markdown().strip(), "run catalog.options_markdown() into README.md"


def test_every_product_names_a_connection_class_and_a_service() -> None:
    from tui_stt.providers.base import Connection

    for spec in catalog.PRODUCTS.values():
        assert issubclass(spec.connection_class(), Connection), spec.name
        assert spec.connection_class().product == spec.name
        assert spec.service.key_env is None or spec.service.url_flag, spec.name


def test_no_product_name_is_spelled_outside_the_catalog_in_core_dispatch() -> None:
    """The registry and secrets decide by the catalog, not by product names (a fifth product needs no edit)."""
    root = Path(__file__).parents[2] / "tui_stt"
    for module in ("providers/registry.py", "secrets.py", "controller.py", "session.py"):
        text = (root / module).read_text(encoding="utf-8")
        for name in ("\"nova-3\"", "\"flux\"", "\"u3-rt-pro\"", "\"local\""):
            assert name not in text, (module, name)
