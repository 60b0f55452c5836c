"""Each schema limit is declared once (graph.settings.Limits) and reaches the schema from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.api.extensions.limits import QueryGuard
from graph.api.schema import build_schema
from graph.settings import Limits, Settings


def _changed(name: str) -> tuple[str, object]:
    """An environment value for limit ``name`` other than its default, and the value it means."""
    default = Limits.model_fields[name].default
    if isinstance(default, bool):
        return "true" if not default else "false", not default
    if isinstance(default, float):
        return str(default + 1.5), default + 1.5
    return str(default + 1), default + 1


def _guard(settings: Limits) -> QueryGuard:
    *_, factory = build_schema(settings).extensions
    guard = factory()
    assert isinstance(guard, QueryGuard)
    return guard


@pytest.mark.parametrize("name", sorted(Limits.model_fields))
def test_every_limit_is_a_setting_that_reaches_the_schema(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, value = _changed(name)
    monkeypatch.setenv(f"EXECGRAPH_{name.upper()}", text)
    settings = Settings(store=tmp_path)
    assert getattr(settings, name) == value
    limits = _guard(settings).limits
    assert getattr(limits, name) == value
    assert type(limits) is Limits  # a copy: later changes to the settings do not reach it


def test_the_default_schema_has_the_default_limits(tmp_path: Path) -> None:
    assert _guard(Limits()).limits == Limits()
    assert Settings(store=tmp_path).limits() == Limits()


def test_a_default_page_larger_than_the_largest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="default_page_size must not exceed max_page_size"):
        Settings(store=tmp_path, default_page_size=501)
