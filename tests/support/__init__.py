"""Shared test helpers: fixtures paths, a dummy fifth product, list sources."""
