"""Smoke test of an installed copy (python -m tests.smoke.installed); the README examples."""
