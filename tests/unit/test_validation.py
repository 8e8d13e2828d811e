"""Argument rules, independent of any store."""

from __future__ import annotations

import pytest

from mana_credits_core import InvalidInput
from mana_credits_core import validation as v
from mana_credits_core.services.credits import decode_cursor


@pytest.mark.parametrize("value", [1, 2, v.MAX_CREDITS])
def test_good_amounts(value: int) -> None:
    assert v.amount(value) == value


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, "1", None, v.MAX_CREDITS + 1, 10**500])
def test_bad_amounts(value: object) -> None:
    with pytest.raises(InvalidInput):
        v.amount(value)


def test_text_allows_newlines_but_ids_do_not() -> None:
    assert v.text("line one\nline two", "description", 100) == "line one\nline two"
    with pytest.raises(InvalidInput):
        v.identifier("user\nid", "userId")


def test_metadata_is_copied_plain_json() -> None:
    original: dict[str, object] = {"a": [1, 2], "b": {"c": None}}
    copied = v.metadata(original)
    assert copied == original
    assert copied is not original
    with pytest.raises(InvalidInput):
        v.metadata({"nul": "\x00"})
    with pytest.raises(InvalidInput):
        v.metadata(["not", "an", "object"])


def test_page_size_caps_and_offset_checks() -> None:
    assert v.page_size(None) == 50
    assert v.page_size(10**9) == v.MAX_PAGE_SIZE
    with pytest.raises(InvalidInput):
        v.offset(-1)
    with pytest.raises(InvalidInput):
        v.page_size("10")


@pytest.mark.parametrize("cursor", ["", "!!!", "bm8tc2VwYXJhdG9y", "MjAyNi0wMS0wMXxhYmM"])
def test_malformed_cursors(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


def nested(levels: int) -> dict[str, object]:
    """An object `levels` deep (itself the first level), built without recursion."""
    value: dict[str, object] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_metadata_nested_too_deep_is_invalid_input_not_a_recursion_error() -> None:
    assert v.metadata(nested(v.MAX_METADATA_DEPTH)) is not None
    for levels in (v.MAX_METADATA_DEPTH + 1, 5_000):
        with pytest.raises(InvalidInput) as raised:
            v.metadata(nested(levels))
        assert raised.value.field == "metadata"
    deep_list: list[object] = []
    for _ in range(5_000):
        deep_list = [deep_list]
    with pytest.raises(InvalidInput):
        v.metadata({"a": deep_list})
