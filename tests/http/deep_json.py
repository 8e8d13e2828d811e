"""JSON nested far deeper than any parser's stack, in about 40 KB: arrays in arrays,
objects in objects."""

from __future__ import annotations


def deep_arrays(depth: int = 20_000) -> str:
    return "[" * depth + "]" * depth


def deep_objects(depth: int = 8_000) -> str:
    return '{"":' * depth + "1" + "}" * depth


DEEP = {"arrays": deep_arrays(), "objects": deep_objects()}
