"""JSON-value equality for replayed metadata."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mana_credits_core.replays import same_json, same_metadata

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_a_value_equals_itself_written_any_way(value: object) -> None:
    text = json.dumps(value, sort_keys=True, indent=2)
    assert same_json(value, json.loads(text))


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        (1, 1.0, True),
        (1, True, False),
        (0, False, False),
        (True, True, True),
        ([1, 2], [2, 1], False),
        ({"a": None}, {}, False),
        ("1", 1, False),
        (None, None, True),
        ({"a": [1, {"b": 2.5}]}, {"a": [1.0, {"b": 2.5}]}, True),
        ({"a": [1]}, {"a": [1, 1]}, False),
    ],
)
def test_json_values(a: object, b: object, same: bool) -> None:
    assert same_json(a, b) is same
    assert same_json(b, a) is same


def test_absent_null_and_empty_metadata_are_one() -> None:
    assert same_metadata(None, {})
    assert same_metadata({}, None)
    assert not same_metadata(None, {"a": 1})
