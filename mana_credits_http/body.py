"""Strict request parsing: JSON only, no duplicate keys, no NaN, no giant numbers, no
deep nesting."""

from __future__ import annotations

import functools
import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from mana_credits_core.errors import InvalidInput

from .errors import from_validation

M = TypeVar("M", bound=BaseModel)
MAX_INT_DIGITS = 19  # anything longer cannot be a credit amount and is not parsed
# Arrays and objects inside one another, the body itself counting as one level. Our
# bodies need three; free-form `metadata` gets room, but never the depth at which the
# parser, the metadata checks or the store's JSON encoder would run out of stack.
MAX_DEPTH = 32
TOO_DEEP = f"The JSON body is nested deeper than {MAX_DEPTH} levels"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInput(key, f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise InvalidInput("body", f"{name} is not valid JSON")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidInput("body", "number too large")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidInput("body", "number too large")
    return value


# Built once: `json.loads` with hooks builds a new decoder for every call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_no_constants,
    parse_int=_bounded_int,
    parse_float=_finite_float,
)


def depth(value: Any) -> int:
    """How many arrays and objects `value` has inside one another (0 for a scalar);
    walked without recursion, so any depth is measured."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


def parse_json(raw: bytes) -> Any:
    """The JSON value of `raw`. Raises `InvalidInput` (400) for anything but strict
    UTF-8 JSON nested at most `MAX_DEPTH` levels."""
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):  # as `json.loads` refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM", text, 0)
        value = _DECODER.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("body", "Malformed JSON body") from exc
    except RecursionError as exc:  # deeper than the interpreter's stack allows
        raise InvalidInput("body", TOO_DEEP) from exc
    # Each level is an opening bracket in the text: with no more brackets than the bound
    # (any body of ours), the value cannot be too deep and is not walked.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth(value) > MAX_DEPTH:
        raise InvalidInput("body", TOO_DEEP)
    return value


def _folded(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


@functools.cache
def _spellings(model: type[BaseModel]) -> tuple[frozenset[str], dict[str, str]]:
    """The keys `model` takes (field names and aliases), and each field's alias by its
    folded name."""
    fields = model.model_fields.items()
    spellings = frozenset(s for name, f in fields for s in (name, f.alias or name))
    return spellings, {_folded(name): field.alias or name for name, field in fields}


def refuse_near_misses(data: dict[str, Any], model: type[BaseModel]) -> None:
    """Raise `InvalidInput` for a key that is a known field misspelt only in case,
    `_` or `-` (`idempotencykey`, `IdempotencyKey`): ignored like other unknown keys,
    it would silently drop what the caller meant, such as the idempotency key that
    keeps a retried debit from being applied twice. Other unknown keys stay ignored,
    as the old service ignored them."""
    spellings, meant = _spellings(model)
    for key in data:
        if key not in spellings and _folded(key) in meant:
            field = meant[_folded(key)]
            raise InvalidInput(field, f"unknown field {key!r}: the field is spelt {field!r}")


async def read_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body validated into `model` (400 naming the field if not)."""
    if request.content_type != "application/json":
        raise InvalidInput("body", "Content-Type must be application/json")
    raw = await request.read()
    if not raw.strip():
        raise InvalidInput("body", "A JSON body is required")
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidInput("body", "The JSON body must be an object")
    refuse_near_misses(data, model)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise from_validation(error) from error


def query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_INT_DIGITS or not value.lstrip("-").isdigit():
        raise InvalidInput(name, f"{name} must be an integer")
    return int(value)
